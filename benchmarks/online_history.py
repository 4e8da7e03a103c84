"""Issue 23's online rule: does reading the run's own history online beat random selection?

    .venv/bin/python benchmarks/online_history.py --ledger L [--jobs 2] [--settings ...]

`running-mean` (the online twin of `dissect curate --by mean-clipscore`: each pair's
running mean centred CLIPScore over its visits; after a 2-epoch random warm-up a fifth of
the picks at random from the batch and the rest at random among the batch's top 80 % by
running mean, as oracle-clean draws among the clean pairs; runs named
running-mean-pool0.8) against random, full data and the oracle-clean reference, at
r = 0.3, seeds 0, 1, 2, on the four settings of docs/curation.md (shapes with shuffled
captions, shapes with one attribute wrong, Fashion-MNIST, 1,500 pairs and 10 epochs each;
the memorising corner, 500 pairs and 30 epochs) and the emoji benchmark. The rule's top-k
form and a pool of 0.6, which lost to random (docs/selection.md), were removed. Runs share
selection_quality.py's recipe and names, so with the grid's ledger the runs it has are not
trained again. DISSect-Warmup with a warm-up that ends where the run's mean CLIPScore stops
rising (`--warmup-epochs auto`, issue 23 item 6) was measured here too and lost to random
(docs/selection.md); it was removed. Prints one table per setting from online_history.sql.
"""
import argparse
from pathlib import Path

from selection_quality import HERE, SEEDS, Run, make_benchmark, train_all
from table import print_table

from dissect import ledger

SETTINGS = {  # name: (benchmark, train pairs, epochs)
    "shapes-shuffle": ("shapes-shuffle", 1500, 10),
    "shapes-partial": ("shapes-partial", 1500, 10),
    "fashion-mnist": ("fashion-mnist", 1500, 10),
    "memorising": ("shapes-shuffle", 500, 30),
    "emoji": ("emoji", None, 10),
}
METHODS = {  # name in the run: (strategy, its settings)
    "full": ("full", ()),
    "random": ("random", ()),
    "oracle-clean": ("oracle-clean", ()),
    "running-mean-pool0.8": ("running-mean", (("running_mean_pool", 0.8),)),
}
RATIO = 0.3


def runs(setting: str, data: Path, epochs: int, seeds) -> list[Run]:
    out = []
    for seed in seeds:
        for method, (strategy, settings) in METHODS.items():
            ratio, tag = (1.0, "") if strategy == "full" else (RATIO, f"-r{RATIO}")
            out.append(Run(f"{setting}-{method}{tag}-s{seed}", data, strategy, ratio, seed, epochs, epochs // 2,
                           settings=settings))
    return out


def run_settings(ledger_dir: Path, settings, seeds, jobs: int) -> None:
    planned = {}
    for setting in settings:
        benchmark, n, epochs = SETTINGS[setting]
        data = make_benchmark(benchmark, ledger_dir.parent / "benchmark-data", *([n] if n else []))
        if data is not None:
            planned[setting] = runs(setting, data, epochs, seeds)
    train_all(ledger_dir, [run for setting_runs in planned.values() for run in setting_runs], jobs)
    for setting in planned:
        metric = "zeroshot_top1" if SETTINGS[setting][0] == "fashion-mnist" else "rsum4"
        columns, rows = ledger.query(ledger_dir, (HERE / "online_history.sql").read_text(),
                                     variables={"prefix": f"{setting}-", "metric": metric})
        print_table(columns, rows, title=f"{setting}: final {metric} at r = {RATIO} (mean ± std over seeds), "
                                         "clean share of the picks, and how far from random")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--settings", type=lambda v: tuple(v.split(",")), default=tuple(SETTINGS))
    parser.add_argument("--seeds", type=lambda v: tuple(map(int, v.split(","))), default=SEEDS)
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each")
    args = parser.parse_args()
    unknown = set(args.settings) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown settings {', '.join(sorted(unknown))}: choose from {', '.join(SETTINGS)}")
    run_settings(args.ledger, args.settings, args.seeds, args.jobs)


if __name__ == "__main__":
    main()
