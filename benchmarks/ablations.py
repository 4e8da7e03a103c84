"""The paper's ablations the grid lacks, on shapes with shuffled captions (40 % noise), 3 seeds:

    .venv/bin/python benchmarks/ablations.py --ledger L [--jobs 2]

- beta of DISSect-Momentum over {0.5, 0.7, 0.9, 0.99} at r = 0.3 (the paper: insensitive);
- T_w of DISSect-Warmup over {1, 3, 5, 7} of 10 epochs at r = 0.3;
- the ratio over 0.1 ... 0.9 for DISSect-Warmup (T_w = 5) and random (Fig. 5b; the paper's
  curve peaks near 0.6).

The runs share selection_quality.py's benchmark, recipe and run names, so with the grid's
ledger (--ledger of selection_quality.py) the runs the grid has are not trained again.
Prints one table from ablations.sql.
"""
import argparse
from dataclasses import replace
from pathlib import Path

from selection_quality import HERE, SEEDS, Run, make_benchmark, train_all
from table import print_table

from dissect import ledger

BENCHMARK = "shapes-shuffle"
BETAS = (0.5, 0.7, 0.9, 0.99)
WARMUPS = (1, 3, 5, 7)
RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def runs(data) -> list[Run]:
    out = [Run(f"{BENCHMARK}-full-s{seed}", data, "full", 1.0, seed) for seed in SEEDS]
    for seed in SEEDS:
        out += [Run(f"{BENCHMARK}-{strategy}-r{ratio}-s{seed}", data, strategy, ratio, seed)
                for ratio in RATIOS for strategy in ("random", "dissect-warmup")]
        out += [Run(f"{BENCHMARK}-dissect-warmup-r0.3-tw{tw}-s{seed}", data, "dissect-warmup", 0.3, seed,
                    warmup_epochs=tw) for tw in WARMUPS if tw != Run.warmup_epochs]
        base = Run(f"{BENCHMARK}-dissect-momentum-r0.3-s{seed}", data, "dissect-momentum", 0.3, seed)
        out += [base if beta == base.momentum else replace(base, name=f"{base.name}-beta{beta}", momentum=beta)
                for beta in BETAS]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each")
    args = parser.parse_args()
    data = make_benchmark(BENCHMARK, args.ledger.parent / "benchmark-data")
    train_all(args.ledger, runs(data), args.jobs)
    columns, rows = ledger.query(args.ledger, (HERE / "ablations.sql").read_text(),
                                 variables={"pattern": f"{BENCHMARK}-%"})
    print_table(columns, rows, title=f"{BENCHMARK}: ablations, final R@Sum (mean ± std over seeds)")


if __name__ == "__main__":
    main()
