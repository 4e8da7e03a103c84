"""Does DISSect beat random selection here? The strategies x ratios x seeds grid.

    .venv/bin/python benchmarks/selection_quality.py --ledger L [--quick] [--regime]

Strategies {full, random, small-loss, big-loss, clipscore, dissect-warmup,
dissect-momentum} and the oracle-clean reference (random among the pairs whose
is_noisy is false: the head-room), at ratios {0.3, 0.5, 0.7} and seeds {0, 1, 2},
on three benchmarks with 40 % caption noise: synthetic shapes with shuffled
captions, synthetic shapes with partially wrong captions (one attribute changed),
and Fashion-MNIST with another class's caption (needs Debian's
dataset-fashion-mnist; left out with a note where it is missing). Every run
goes into one ledger; runs already there are not trained again, so an
interrupted grid continues. --quick: seed 0, r = 0.3, the two synthetic
benchmarks. --regime: dissect-warmup against random at r = 0.3 on shapes-shuffle
over dataset size x epochs x warm-up point (the regime map, docs/selection.md).

Prints, per benchmark, Table 1 (R@sum mean ± std over seeds) and the clean
fraction of each strategy's picks, from the ledger.
"""
import argparse
import itertools
from pathlib import Path

from dissect import ledger
from dissect.cli.output import emit
from dissect.engine import fashion_mnist, synthetic, train
from dissect.engine.errors import InputError

STRATEGIES = ("random", "small-loss", "big-loss", "clipscore", "dissect-warmup", "dissect-momentum", "oracle-clean")
N, TEST_N, EPOCHS, NOISE = 1500, 500, 10, 0.4


def make_benchmark(name: str, root: Path, n: int = N) -> Path | None:
    out = root / f"{name}-n{n}"
    if (out / "samples.parquet").exists():
        return out
    if name == "shapes-shuffle":
        synthetic.make_synthetic(out, n=n, test_n=TEST_N, noise_ratio=NOISE, noise_type="shuffle", seed=0)
    elif name == "shapes-partial":
        synthetic.make_synthetic(out, n=n, test_n=TEST_N, noise_ratio=NOISE, noise_type="partial", seed=0)
    else:
        try:
            fashion_mnist.make_fashion_mnist(out, noise_ratio=NOISE, seed=0, n=n, test_n=1000)
        except InputError as e:
            print(f"fashion-mnist left out: {e}")
            return None
    return out


def run(ledger_dir: Path, data: Path, name: str, strategy: str, ratio: float, seed: int, epochs: int,
        warmup_epochs: int) -> None:
    if ledger.read_run(ledger_dir, name) is not None:
        return
    print(f"training {name}", flush=True)
    train.train(train.TrainConfig(data=str(data), ledger=str(ledger_dir), run=name, strategy=strategy,
                                  ratio=ratio, epochs=epochs, warmup_epochs=warmup_epochs, seed=seed,
                                  workers=2, quiet=True))


def grid(ledger_dir: Path, benchmarks, ratios, seeds) -> None:
    for bench in benchmarks:
        data = make_benchmark(bench, ledger_dir.parent / "benchmark-data")
        if data is None:
            continue
        for seed in seeds:
            run(ledger_dir, data, f"{bench}-full-s{seed}", "full", 1.0, seed, EPOCHS, EPOCHS // 2)
            for strategy, ratio in itertools.product(STRATEGIES, ratios):
                run(ledger_dir, data, f"{bench}-{strategy}-r{ratio}-s{seed}", strategy, ratio, seed,
                    EPOCHS, EPOCHS // 2)
        columns, rows = ledger.named_query(ledger_dir, "selection_quality", [f"{bench}-%"])
        emit(columns, rows, title=f"{bench}: R@sum (mean ± std over seeds) and clean fraction of the picks")


def regime(ledger_dir: Path) -> None:
    for n, epochs in itertools.product((500, 2000), (10, 30)):
        data = make_benchmark("shapes-shuffle", ledger_dir.parent / "benchmark-data", n)
        run(ledger_dir, data, f"regime-n{n}-e{epochs}-random", "random", 0.3, 0, epochs, epochs // 2)
        for fraction in (0.25, 0.5, 0.75):
            warmup = max(1, int(epochs * fraction))
            run(ledger_dir, data, f"regime-n{n}-e{epochs}-tw{warmup}", "dissect-warmup", 0.3, 0, epochs, warmup)
    columns, rows = ledger.named_query(ledger_dir, "regime_map")
    emit(columns, rows, title="regime map: dissect-warmup minus random, R@sum, r = 0.3, shapes-shuffle")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--regime", action="store_true")
    args = parser.parse_args()
    if args.regime:
        regime(args.ledger)
    elif args.quick:
        grid(args.ledger, ("shapes-shuffle", "shapes-partial"), (0.3,), (0,))
    else:
        grid(args.ledger, ("shapes-shuffle", "shapes-partial", "fashion-mnist"), (0.3, 0.5, 0.7), (0, 1, 2))


if __name__ == "__main__":
    main()
