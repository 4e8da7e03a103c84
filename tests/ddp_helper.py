"""Run under torchrun by test_distributed.py: train the runs RUNS names, one after the other in the
same processes and process group (set up here, as a script that embeds dissect's training would),
saving every rank's strategy state after each epoch; mode interrupt sends SIGTERM to rank 1 alone
after the first epoch: every rank must stop at the same step.

    ddp_helper.py MODE DATA LEDGER OUT RUNS
RUNS: JSON, a list of TrainConfig settings, each with its run name ("run") and what differs from
dissect-momentum at r = 0.3, 3 epochs of batch 10."""
import json
import os
import signal
import sys

import torch
import torch.distributed as dist

from dissect.engine import stopping, train

mode, data, ledger_dir, out, runs = sys.argv[1:]


def after_epoch(trainer):
    torch.save(trainer.strategy.state_dict(),
               f"{out}/state-{trainer.cfg.run}-rank{trainer.world.rank}-epoch{trainer.epoch}.pt")
    if mode == "interrupt" and trainer.epoch == 1 and trainer.world.rank == 1:
        os.kill(os.getpid(), signal.SIGTERM)


dist.init_process_group(backend="gloo")
for settings in json.loads(runs):
    cfg = train.TrainConfig(**{"data": data, "ledger": ledger_dir, "strategy": "dissect-momentum", "ratio": 0.3,
                               "epochs": 3, "batch_size": 10, "workers": 0, "quiet": True, **settings})
    try:
        train.train(cfg, on_epoch_end=after_epoch)
    except stopping.Stopped as e:
        print(f"rank {os.environ['RANK']}: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
assert dist.is_initialized(), "train() tore down a process group it did not set up"
dist.destroy_process_group()
