"""Step time of every strategy at r = 0.3, as a ratio to `full`, in one run.

    .venv/bin/python benchmarks/step_time.py --defaults
    .venv/bin/python benchmarks/step_time.py [--epochs 3] [--n 2560] [--batch-size 128] [--model dissect-tiny]
    .venv/bin/python benchmarks/step_time.py --cache --workers 0
    .venv/bin/python benchmarks/step_time.py --cheap-scoring --cache --workers 0
    .venv/bin/python benchmarks/step_time.py --precisions fp32,amp_bf16,pure_bf16 --workers 0

Online selection that ranks the batch pays one no-grad forward of the whole batch
plus a forward and backward of r * B samples. Counting a forward as 1 and forward +
backward as 3, its floor is (1 + 3r) / 3 of a full step; random selection needs no
scoring pass, so its floor is r. The table prints the compute part of a step and, as
a user sees it, the step with the wait for the loader (with the CLI's default
--workers, on the shards unless --cache), each as a ratio to full. Steps of the first epoch
(start-up) are left out.

--defaults: what a user sees with no flag given, `dissect train DATA --strategy S` (r = 0.3,
10 epochs, batch 128, the data as train's default --cache auto reads it, the eval of a
500-pair test split every epoch): each strategy's wall time per epoch (training, eval and
ledger; the median over epochs 1..9) and its whole run's, as ratios to a full run trained
just before it (this shared machine's speed drifts by a third over minutes; a full run
measured once, minutes away, would move every ratio with it; step_time_defaults.sql).
"""
import argparse
import tempfile
from pathlib import Path

from table import print_table

from dissect import ledger
from dissect.engine import models, strategies, train
from dissect.engine.data import synthetic

STEP_TIME_SQL = Path(__file__).with_name("step_time.sql")
DEFAULTS_SQL = Path(__file__).with_name("step_time_defaults.sql")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n", type=int, default=2560)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--ratio", type=float, default=0.3)
    parser.add_argument("--model", default="dissect-tiny")
    parser.add_argument("--workers", type=int, default=train.TrainConfig.workers,
                        help="loader processes, as `dissect train` (0 keeps loading off the timed cores)")
    parser.add_argument("--cache", action="store_true",
                        help="read the decoded cache (`dissect train --cache`) instead of the shards")
    parser.add_argument("--defaults", action="store_true",
                        help="instead: every strategy under train's defaults, wall time per epoch and per run")
    parser.add_argument("--precisions", type=lambda v: tuple(v.split(",")), default=(),
                        help="instead: full and dissect-warmup at each of these --precision values "
                             "(e.g. fp32,amp_bf16,pure_bf16)")
    parser.add_argument("--cheap-scoring", action="store_true",
                        help="instead: full, and dissect-warmup scoring exactly, at half the image size "
                             "(--score-image-size), in bf16 (--score-precision amp_bf16) and both")
    args = parser.parse_args()

    if args.defaults:
        return defaults(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "data"
        synthetic.make_synthetic(dataset, n=args.n, test_n=0, noise_ratio=0.4, noise_type="shuffle", seed=0)

        def run(name, strategy, precision=None, **scoring):
            train.train(train.TrainConfig(
                data=str(dataset), ledger=str(Path(tmp) / name.split("/")[0]), run=name.split("/")[-1],
                strategy=strategy, ratio=args.ratio, epochs=args.epochs, batch_size=args.batch_size,
                model=args.model, warmup_epochs=1, workers=args.workers, precision=precision,
                cache="on" if args.cache else "off",
                quiet=True, **scoring))

        if args.cheap_scoring:
            half = models.create(args.model).image_size // 2
            run("scoring/full", "full")
            run("scoring/dissect-warmup-exact", "dissect-warmup")
            run(f"scoring/dissect-warmup-{half}px", "dissect-warmup", score_image_size=half)
            run("scoring/dissect-warmup-bf16", "dissect-warmup", score_precision="amp_bf16")
            run(f"scoring/dissect-warmup-{half}px-bf16", "dissect-warmup", score_image_size=half,
                score_precision="amp_bf16")
            columns, rows = ledger.query(Path(tmp) / "scoring", STEP_TIME_SQL.read_text(), variables={"full": "full"})
            print_table(columns, rows, title=f"step time by scoring pass, {args.model}, batch {args.batch_size}, "
                                      f"{args.workers} loader workers; exact floor {(1 + 3 * args.ratio) / 3:.3f}")
            return

        if args.precisions:
            for precision in args.precisions:
                for strategy in ("full", "dissect-warmup"):
                    run(f"precision/{strategy}-{precision}", strategy, precision)
            columns, rows = ledger.query(Path(tmp) / "precision", STEP_TIME_SQL.read_text(), variables={"full": "full-fp32"})
            print_table(columns, rows, title=f"step time by --precision, {args.model}, batch {args.batch_size}, "
                                      f"{args.workers} loader workers, as a ratio to full in fp32")
            return
        for strategy in strategies.REGISTRY:
            run(f"ledger/{strategy}", strategy)
        columns, rows = ledger.query(Path(tmp) / "ledger", STEP_TIME_SQL.read_text(), variables={"full": "full"})
    floor = (1 + 3 * args.ratio) / 3
    print_table(columns, rows, title=f"step time at r = {args.ratio}, {args.model}, batch {args.batch_size}, "
                              f"{args.workers} loader workers; floor (1 + 3r) / 3 = {floor:.3f}, random's r")


def defaults(n: int) -> None:
    """Every strategy as `dissect train DATA --strategy S` runs it: nothing else set."""
    with tempfile.TemporaryDirectory() as tmp:
        dataset, ledger_dir = Path(tmp) / "data", Path(tmp) / "ledger"
        synthetic.make_synthetic(dataset, n=n, test_n=500, noise_ratio=0.4, noise_type="shuffle", seed=0)
        for strategy in (s for s in strategies.REGISTRY if s != "full"):
            for run, trained in ((f"full-before-{strategy}", "full"), (strategy, strategy)):
                train.train(train.TrainConfig(data=str(dataset), ledger=str(ledger_dir), run=run, strategy=trained,
                                              quiet=True))
        columns, rows = ledger.query(ledger_dir, DEFAULTS_SQL.read_text())
    config = train.TrainConfig
    print_table(columns, rows, title=f"CLI defaults, no flags: wall time at r = {config.ratio}, {config.model}, "
                              f"batch {config.batch_size}, {config.epochs} epochs, {n} pairs, --cache {config.cache}")


if __name__ == "__main__":
    main()
