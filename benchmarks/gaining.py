"""Issue 23 in one command: every way tried of turning what the ledger knows about noise into
a better model per training step, on the four settings of docs/curation.md and the emoji
benchmark.

    .venv/bin/python benchmarks/gaining.py --ledger L [--settings ...] [--seeds 0,1,2] [--jobs 2]

Per setting, curation.py with every part on: the coresets of each rule at keep 0.3 / 0.5 /
0.7 trained for the proxy's epochs and (--step-budget) for its steps, beside full data,
online random / DISSect-Warmup / oracle-clean at the same ratio (item 1); mean-clipscore
pools at keep 0.5 and 0.7 with random and mid-loss inside at a trained budget of 0.3, from
the whole proxy and from the proxy stopped at 0.6 of its epochs (item 2); cheaper proxies,
stopped early, smaller, at lower resolution (--proxies, item 3); the coresets trained by
dissect-tiny-plus (--transfer, item 4). Then online_history.py: running-mean against
random, full data and oracle-clean at r = 0.3 (item 5); then memorisation.py: delta,
CLIPScore and running mean in runs that memorise, and DISSect-Warmup at the plateau
(item 6). Runs already in L are not trained again, so an interrupted run continues. On
this machine (2 cores) the whole of it takes about 12 hours; one setting of curation.py
about 50 minutes to 2 hours, memorisation.py about 40 minutes per seed.
"""
import argparse
from pathlib import Path

import curation
import memorisation
import online_history
from selection_quality import SEEDS

KEEPS = (0.3, 0.5, 0.7)
POOLS = (0.5, 0.7)
TRANSFER_MODEL = "dissect-tiny-plus"
POOL_PROXY_STOP = 0.6   # pools also curated from the proxy stopped at this share of its epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--settings", type=lambda v: tuple(v.split(",")), default=tuple(curation.SETTINGS))
    parser.add_argument("--seeds", type=lambda v: tuple(map(int, v.split(","))), default=SEEDS)
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each")
    args = parser.parse_args()
    unknown = set(args.settings) - set(curation.SETTINGS)
    if unknown:
        parser.error(f"unknown settings {', '.join(sorted(unknown))}: choose from {', '.join(curation.SETTINGS)}")
    for setting in args.settings:
        stop = round(POOL_PROXY_STOP * curation.SETTINGS[setting][2]) - 1
        curation.run_setting(args.ledger, setting, args.seeds, KEEPS, args.jobs, step_budget=True, pools=POOLS,
                             pool_untils=(None, stop), proxies=True, transfer=TRANSFER_MODEL)
    online_history.run_settings(args.ledger, args.settings, args.seeds, args.jobs)
    memorisation.measure(args.ledger, memorisation.CURVE_SEEDS, args.seeds, memorisation.NOISES, args.jobs)


if __name__ == "__main__":
    main()
