"""Why DISSect's delta does not separate here, decided (issue 23, item 6).

    .venv/bin/python benchmarks/memorisation.py --ledger L [--curve-seeds 0] [--seeds 0,1,2] [--noise shuffle,partial]

The paper's premise: once a model memorises, the noisy pairs' CLIPScores climb, so the
current score stops telling clean from noisy while delta (the score at the end of the
warm-up minus the current one) starts to. dissect-tiny did not memorise enough on the
grid's 1,500 pairs and 10 epochs to test it. Here a model with more capacity,
`dissect-tiny-plus` (4 layers, width 128), trains on 2,000 shapes pairs with 40 %
noise (shuffled captions; one attribute wrong) for 60 epochs on full data, and then:
  - per epoch, the AUROC of the current CLIPScore, of its running mean and of delta
    against warm-up points T_w (memorisation.sql), from the full runs of --curve-seeds
    (default: seed 0; each is about 10 minutes here);
  - the plateau those curves show: the first epoch whose CLIPScore AUROC is within 0.01
    of the run's highest (memorisation_plateau.sql);
  - DISSect-Warmup with T_w at that plateau against random, r = 0.3, same model and epochs,
    for each of --seeds (default 0, 1, 2).
"""
import argparse
from pathlib import Path

from selection_quality import HERE, SEEDS, Run, make_benchmark, train_all
from table import print_table

from dissect import ledger

MODEL, N, EPOCHS, RATIO = "dissect-tiny-plus", 2000, 60, 0.3
WARMUP_POINTS = [5, 10, 20, 30, 40]
PLATEAU_TOLERANCE = 0.01
NOISES = ("shuffle", "partial")
CURVE_SEEDS = (0,)


def full_runs(data: Path, noise: str, seeds) -> list[Run]:
    return [Run(f"memorise-{noise}-full-s{s}", data, "full", 1.0, s, EPOCHS, EPOCHS // 4,
                settings=(("model", MODEL),)) for s in seeds]


def plateau(ledger_dir: Path, noise: str) -> int:
    columns, rows = ledger.query(ledger_dir, (HERE / "memorisation_plateau.sql").read_text(),
                                 variables={"runs": f"memorise-{noise}-full-s%", "tolerance": PLATEAU_TOLERANCE})
    print_table(columns, rows, title=f"{noise}: where the current CLIPScore stops separating better")
    return rows[0][0]


def measure(ledger_dir: Path, curve_seeds, seeds, noises, jobs: int) -> None:
    data = {noise: make_benchmark(f"shapes-{noise}", ledger_dir.parent / "benchmark-data", N) for noise in noises}
    train_all(ledger_dir, [run for noise in noises for run in full_runs(data[noise], noise, curve_seeds)], jobs)
    selection = []
    for noise in noises:
        columns, rows = ledger.query(ledger_dir, (HERE / "memorisation.sql").read_text(),
                                     variables={"runs": f"memorise-{noise}-full-s%", "warmup_points": WARMUP_POINTS,
                                                "every": 5})
        print_table(columns, rows, title=f"{noise}: AUROC (clean vs noisy) by epoch, {MODEL}, {N} pairs, full data")
        tw = plateau(ledger_dir, noise)
        for s in seeds:
            selection += [Run(f"memorise-{noise}-random-r{RATIO}-s{s}", data[noise], "random", RATIO, s, EPOCHS,
                              EPOCHS // 4, settings=(("model", MODEL),)),
                          Run(f"memorise-{noise}-dissect-warmup-tw{tw}-r{RATIO}-s{s}", data[noise], "dissect-warmup",
                              RATIO, s, EPOCHS, tw, settings=(("model", MODEL),))]
    train_all(ledger_dir, selection, jobs)
    for noise in noises:
        columns, rows = ledger.query(ledger_dir, (HERE / "online_history.sql").read_text(),
                                     variables={"prefix": f"memorise-{noise}-", "metric": "rsum4"})
        print_table(columns, rows, title=f"{noise}: final rsum4 at r = {RATIO}, {MODEL}, {EPOCHS} epochs "
                                         "(mean ± std over seeds)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--curve-seeds", type=lambda v: tuple(map(int, v.split(","))), default=CURVE_SEEDS,
                        help="seeds of the full runs whose curves set the plateau; default: 0")
    parser.add_argument("--seeds", type=lambda v: tuple(map(int, v.split(","))), default=SEEDS,
                        help="seeds of DISSect-Warmup and random; default: 0,1,2")
    parser.add_argument("--noise", type=lambda v: tuple(v.split(",")), default=NOISES)
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each")
    args = parser.parse_args()
    if set(args.noise) - set(NOISES):
        parser.error(f"--noise {','.join(args.noise)}: choose from {', '.join(NOISES)}")
    measure(args.ledger, args.curve_seeds, args.seeds, args.noise, args.jobs)


if __name__ == "__main__":
    main()
