"""Which curation rule finds the clean pairs, and does training on its coreset pay?

    .venv/bin/python benchmarks/curation.py --ledger L [--seeds 0,1,2] [--settings ...] [--keep 0.3,0.5] [--jobs 2]

Settings (40 % caption noise): shapes with shuffled captions, shapes with one attribute
wrong, Fashion-MNIST with another class's caption (1,500 pairs, 10 epochs each), and the
memorising corner of the regime map (shapes, shuffled captions, 500 pairs, 30 epochs), and
the emoji benchmark (`dissect make-emoji`'s defaults, about 2,860 pairs, 10 epochs; its
oracle trains on the same train emoji drawn in Noto's style with their true captions).
For each seed:
  - a proxy run (`full`: every sample trained every epoch) whose history the oracle-free
    rules read; it is also the full-data baseline;
  - an oracle trained honestly: the same model on a separate clean sample of the same
    generator (other synthetic scenes; other Fashion-MNIST images), for the same epochs,
    then `dissect score` of the noisy data (CLIPScore and negCLIPLoss);
  - the online strategies at the same ratio (random, dissect-warmup, oracle-clean);
  - every rule's coreset at each --keep (default 0.3), trained with `full` for the same epochs
    (so keep x the steps) and, with --step-budget, for the proxy's number of steps (epochs / keep);
  - with --pools K,...: mean-clipscore's pool at keep K trained with random and mid-loss
    inside it at r = 0.3 / K, so 0.3 of full data is trained but more than 30 % of the pairs seen
    (with --pool-until-epoch E, curated from the proxy's epochs 0..E only: a cheaper proxy);
  - with --proxies, cheaper proxies: the tiny proxy read up to 0.2 / 0.4 / 0.6 of its epochs
    (`curate --until-epoch`), and full runs of dissect-micro (a smaller model) and dissect-tiny-16
    (tiny at 16 px); each one's AUROC and what it cost, and its mean-clipscore and final-clipscore
    coresets at keep 0.5 trained with dissect-tiny;
  - with --transfer MODEL, MODEL trained on full data and on the mean-clipscore, oracle-clipscore
    and random coresets curated from dissect-tiny's proxy, at each --keep.
Prints per setting: each rule's precision (clean fraction) at keep 0.3 / 0.5 / 0.7 and the
AUROC of its ranking; the AUROC of the oracle-free rules as if the proxy had stopped at each
epoch; the final metric (R@Sum rsum4, or zero-shot top-1 for Fashion-MNIST) of every method,
mean ± std over seeds; and what each method cost in samples forwarded and back-propagated,
proxy and oracle included, against full training.
"""
import argparse
import itertools
from pathlib import Path

import pyarrow as pa

from selection_quality import Run, make_benchmark, make_emoji, train_all
from table import print_table

from dissect import ledger
from dissect.engine import oracle as oracle_scoring
from dissect.engine.config import EmojiConfig
from dissect.engine.data import fashion_mnist, synthetic
from dissect.ledger import curation

HERE = Path(__file__).parent
SETTINGS = {  # name: (benchmark, train pairs, epochs)
    "shapes-shuffle": ("shapes-shuffle", 1500, 10),
    "shapes-partial": ("shapes-partial", 1500, 10),
    "fashion-mnist": ("fashion-mnist", 1500, 10),
    "memorising": ("shapes-shuffle", 500, 30),
    "emoji": ("emoji", None, 10),    # make-emoji's defaults: every emoji, Twemoji train, Noto test
}
ONLINE = ("random", "dissect-warmup", "oracle-clean")


def oracle_data(benchmark: str, root: Path, n: int) -> Path:
    """A clean sample of the benchmark's generator that shares no pair with its data (emoji:
    the same train emoji drawn in the other art style, Noto, with their true captions)."""
    if benchmark == "emoji":
        return make_emoji(root / "emoji-oracle", EmojiConfig(train_style="noto", noise_ratio=0.0))
    out = root / f"{benchmark}-n{n}-oracle"
    if (out / "samples.parquet").exists():
        return out
    if benchmark == "fashion-mnist":
        fashion_mnist.make_fashion_mnist(out, noise_ratio=0.0, seed=1, n=n, test_n=500, skip=n)
    else:
        synthetic.make_synthetic(out, n=n, test_n=500, noise_ratio=0.0,
                                 noise_type=benchmark.removeprefix("shapes-"), seed=1000)
    return out


POOL_RULE = "mean-clipscore"
POOL_BUDGET = 0.3                 # the trained fraction of a curated pool's runs
POOL_STRATEGIES = ("random", "mid-loss")
STEP_BUDGET_RULES = ("mean-clipscore", "final-clipscore", "oracle-clipscore", "oracle-cliploss", "random")
# Cheaper proxies: the tiny proxy stopped at these shares of its epochs, and whole runs of smaller models.
PROXY_STOPS = (0.2, 0.4, 0.6)
PROXY_MODELS = ("dissect-micro", "dissect-tiny-16")
PROXY_RULES = ("mean-clipscore", "final-clipscore")
PROXY_KEEP = 0.5
TRANSFER_RULES = ("mean-clipscore", "oracle-clipscore", "random")


def cheap_proxies(setting: str, epochs: int, seed: int) -> list[tuple[str, str, int | None]]:
    """(label, proxy run, last epoch read) of every proxy cheaper than the full tiny one."""
    stops = [(f"until{round(f * epochs) - 1}", f"{setting}-proxy-s{seed}", round(f * epochs) - 1) for f in PROXY_STOPS]
    return stops + [(model, f"{setting}-proxy-{model}-s{seed}", None) for model in PROXY_MODELS]


def run_setting(ledger_dir: Path, setting: str, seeds, keeps, jobs: int, step_budget: bool = False,
                pools: tuple = (), pool_untils: tuple = (None,), proxies: bool = False,
                transfer: str | None = None) -> None:
    benchmark, n, epochs = SETTINGS[setting]
    root = ledger_dir.parent / "benchmark-data"
    data = make_benchmark(benchmark, root, n)
    if data is None:
        return
    clean = oracle_data(benchmark, root, n)
    if clean is None:
        return
    tw = epochs // 2
    first = [Run(f"{setting}-proxy-s{s}", data, "full", 1.0, s, epochs, tw) for s in seeds]
    first += [Run(f"{setting}-oracle-s{s}", clean, "full", 1.0, s, epochs, tw) for s in seeds]
    first += [Run(f"{setting}-{strategy}-r{keep}-s{s}", data, strategy, keep, s, epochs, tw)
              for keep in keeps for s in seeds for strategy in ONLINE]
    if proxies:
        first += [Run(f"{setting}-proxy-{model}-s{s}", data, "full", 1.0, s, epochs, tw, settings=(("model", model),))
                  for model in PROXY_MODELS for s in seeds]
    if transfer:
        first += [Run(f"{setting}-transfer-{transfer}-full-s{s}", data, "full", 1.0, s, epochs, tw,
                      settings=(("model", transfer),)) for s in seeds]
    train_all(ledger_dir, first, jobs)
    dataset = ledger.query(ledger_dir, "SELECT dataset FROM runs WHERE name = ?", [first[0].name])[1][0][0]
    subsets = ledger_dir.parent / "subsets"
    coresets = []
    for s in seeds:
        oracle = f"{setting}-oracle-s{s}"
        if not ledger.query(ledger_dir, "SELECT 1 FROM oracle WHERE name = ? LIMIT 1", [oracle])[1]:
            oracle_scoring.score(str(data), checkpoint=str(ledger.Run(ledger_dir, oracle).checkpoint_path),
                                 model_name="dissect-tiny", name=oracle, ledger_dir=str(ledger_dir), workers=0, quiet=True)
        for keep in keeps:
            for rule in curation.RULES:
                path = subsets / f"{setting}-{rule}-k{keep}-s{s}.parquet"
                if not path.exists():
                    subset = curation.curate(ledger_dir, rule, keep=keep, run=f"{setting}-proxy-s{s}", oracle=oracle,
                                             dataset=dataset, seed=s)
                    curation.write_subset(subset, path)
                coresets.append(Run(f"{setting}-coreset-{rule}-k{keep}-s{s}", data, "full", 1.0, s, epochs, tw, path))
                if transfer and rule in TRANSFER_RULES:   # curated by tiny's history, trained by a bigger model
                    coresets.append(Run(f"{setting}-transfer-{transfer}-coreset-{rule}-k{keep}-s{s}", data, "full", 1.0, s,
                                        epochs, tw, path, settings=(("model", transfer),)))
                if step_budget and keep < 1 and rule in STEP_BUDGET_RULES:   # the proxy's steps: more epochs
                    coresets.append(Run(f"{setting}-coreset-{rule}-k{keep}-steps-s{s}", data, "full", 1.0, s,
                                        round(epochs / keep), round(epochs / keep) // 2, path))
        for keep, pool_until in itertools.product(pools, pool_untils):   # a pool bigger than the budget
            upto = "" if pool_until is None else f"-until{pool_until}"   # the proxy read up to that epoch
            path = subsets / f"{setting}-{POOL_RULE}-k{keep}{upto}-s{s}.parquet"
            if not path.exists():
                curation.write_subset(curation.curate(ledger_dir, POOL_RULE, keep=keep, run=f"{setting}-proxy-s{s}",
                                                      dataset=dataset, until_epoch=pool_until), path)
            coresets += [Run(f"{setting}-pool-{POOL_RULE}-k{keep}{upto}-{strategy}-s{s}", data, strategy,
                             round(POOL_BUDGET / keep, 3), s, epochs, tw, path) for strategy in POOL_STRATEGIES]
        for label, proxy, until in cheap_proxies(setting, epochs, s) if proxies else ():
            for rule in PROXY_RULES:
                path = subsets / f"{setting}-{rule}-k{PROXY_KEEP}-{label}-s{s}.parquet"
                if not path.exists():
                    curation.write_subset(curation.curate(ledger_dir, rule, keep=PROXY_KEEP, run=proxy, dataset=dataset,
                                                          until_epoch=until), path)
                coresets.append(Run(f"{setting}-coreset-{rule}-k{PROXY_KEEP}-{label}-s{s}", data, "full", 1.0, s,
                                    epochs, tw, path))
    train_all(ledger_dir, coresets, jobs)
    report(ledger_dir, setting, dataset, seeds, epochs, benchmark)
    if proxies:
        report_proxies(ledger_dir, setting, dataset, seeds, epochs)


def report(ledger_dir: Path, setting: str, dataset: str, seeds, epochs: int, benchmark: str) -> None:
    rankings = []
    for s in seeds:
        for rule in curation.RULES:
            ranked = curation.curate(ledger_dir, rule, keep=1.0, run=f"{setting}-proxy-s{s}",
                                     oracle=f"{setting}-oracle-s{s}", dataset=dataset, seed=s).table
            rankings.append(labelled(ranked, rule=rule, seed=s))
    print_rankings(ledger_dir, rankings, "curation.sql", dataset,
                   f"{setting}: precision of the kept set and AUROC of each rule's ranking (mean ± std, seeds)")
    columns, rows = ledger.query(ledger_dir, (HERE / "curation_by_epoch.sql").read_text(),
                                 variables={"proxy_runs": f"{setting}-proxy-s%", "hist_epoch": max(0, (epochs - 1) // 4),
                                            "seeds": list(seeds)})
    print_table(columns, rows, title=f"{setting}: AUROC of the oracle-free rules had the proxy stopped at each epoch")
    metric = "zeroshot_top1" if benchmark == "fashion-mnist" else "rsum4"
    columns, rows = ledger.query(ledger_dir, (HERE / "curation_results.sql").read_text(),
                                 variables={"setting_runs": f"{setting}-%", "metric": metric,
                                            "proxy_runs": f"{setting}-proxy-s%", "oracle_runs": f"{setting}-oracle-s%",
                                            "seeds": list(seeds)})
    print_table(columns, rows, title=f"{setting}: final {metric} and cost (samples, proxy and oracle included) "
                              "against full training")


def report_proxies(ledger_dir: Path, setting: str, dataset: str, seeds, epochs: int) -> None:
    """Each oracle-free rule's AUROC from every proxy, cheap ones and the full tiny one, beside
    what the proxy cost (curation_proxies.sql)."""
    rankings = []
    for s in seeds:
        for label, proxy, until in [("full", f"{setting}-proxy-s{s}", None), *cheap_proxies(setting, epochs, s)]:
            for rule in PROXY_RULES:
                ranked = curation.curate(ledger_dir, rule, keep=1.0, run=proxy, dataset=dataset,
                                         until_epoch=until).table
                rankings.append(labelled(ranked, proxy=label, run=proxy, until_epoch=until, rule=rule, seed=s))
    print_rankings(ledger_dir, rankings, "curation_proxies.sql", dataset,
                   f"{setting}: AUROC of each rule's ranking from cheaper proxies, and what the proxy cost")


LABEL_TYPES = {"until_epoch": pa.int32()}   # a label that may be None throughout one table


def labelled(ranked: pa.Table, **labels) -> pa.Table:
    """RANKED's sample_id and score, with one constant column per label."""
    table = ranked.select(["sample_id", "score"])
    for key, value in labels.items():
        table = table.append_column(key, pa.array([value] * ranked.num_rows, LABEL_TYPES.get(key)))
    return table


def print_rankings(ledger_dir: Path, rankings: list[pa.Table], sql_file: str, dataset: str, title: str) -> None:
    """SQL_FILE over the rankings (registered as `ranking`) and the ledger, printed."""
    con = ledger.connect(ledger_dir)
    try:
        con.register("ranking", pa.concat_tables(rankings))
        ledger.set_variables(con, {"dataset": dataset})
        cur = con.execute((HERE / sql_file).read_text())
        print_table([d[0] for d in cur.description], cur.fetchall(), title=title)
    finally:
        con.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--settings", type=lambda v: tuple(v.split(",")), default=tuple(SETTINGS))
    parser.add_argument("--seeds", type=lambda v: tuple(map(int, v.split(","))), default=(0, 1, 2))
    parser.add_argument("--keep", type=lambda v: tuple(map(float, v.split(","))), default=(0.3,),
                        help="kept fractions of the coresets trained (and ratios of the online runs), "
                             "comma-separated; default: 0.3")
    parser.add_argument("--step-budget", action="store_true",
                        help="also train the coresets of " + ", ".join(STEP_BUDGET_RULES) +
                             " for the proxy's number of steps (epochs / keep)")
    parser.add_argument("--pools", type=lambda v: tuple(map(float, v.split(","))), default=(),
                        help=f"kept fractions of {POOL_RULE} pools trained with {' and '.join(POOL_STRATEGIES)} "
                             f"inside at a trained budget of {POOL_BUDGET} (ratio {POOL_BUDGET} / keep), "
                             "comma-separated; default: none")
    parser.add_argument("--pool-until-epoch", type=int, default=None,
                        help="curate the pools from the proxy's epochs 0..E only (a proxy stopped at E)")
    parser.add_argument("--proxies", action="store_true",
                        help="also rank by cheaper proxies (the tiny proxy stopped at " +
                             ", ".join(f"{f:g}" for f in PROXY_STOPS) + " of its epochs; full runs of " +
                             " and ".join(PROXY_MODELS) + f") and train their {' and '.join(PROXY_RULES)} coresets "
                             f"at keep {PROXY_KEEP}")
    parser.add_argument("--transfer", metavar="MODEL", default=None,
                        help="also train MODEL on full data and on the coresets of " + ", ".join(TRANSFER_RULES) +
                             " curated from dissect-tiny's proxy (does a cheap model's history curate for another?)")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each")
    args = parser.parse_args()
    if not all(POOL_BUDGET <= keep <= 1 for keep in args.pools):
        parser.error(f"--pools {args.pools}: every fraction must be in [{POOL_BUDGET}, 1]")
    unknown = set(args.settings) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown settings {', '.join(sorted(unknown))}: choose from {', '.join(SETTINGS)}")
    if not all(0 < keep <= 1 for keep in args.keep):
        parser.error(f"--keep {args.keep}: every fraction must be in (0, 1]")
    for setting in args.settings:
        run_setting(args.ledger, setting, args.seeds, args.keep, args.jobs, args.step_budget, args.pools,
                    (args.pool_until_epoch,), args.proxies, args.transfer)


if __name__ == "__main__":
    main()
