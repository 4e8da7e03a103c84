"""Run under torchrun by test_distributed.py: train, saving every rank's strategy state
after each epoch, and (mode interrupt) send SIGTERM to rank 1 alone after the first epoch:
every rank must stop at the same step."""
import os
import signal
import sys

import torch

from dissect.engine import stopping, train

mode, data, ledger_dir, run, out, scope = sys.argv[1:7]


def after_epoch(trainer):
    torch.save(trainer.strategy.state_dict(), f"{out}/state-rank{trainer.world.rank}-epoch{trainer.epoch}.pt")
    if mode == "interrupt" and trainer.epoch == 1 and trainer.world.rank == 1:
        os.kill(os.getpid(), signal.SIGTERM)


# the local-scope run also takes open_clip's other ClipLoss path: local loss, gather with grad
cfg = train.TrainConfig(data=data, ledger=ledger_dir, run=run, strategy="dissect-momentum", ratio=0.3, epochs=3,
                        batch_size=10, workers=0, quiet=True, select_scope=scope,
                        local_loss=scope == "local", gather_with_grad=scope == "local")
try:
    train.train(cfg, on_epoch_end=after_epoch)
except stopping.Stopped as e:
    print(f"rank {os.environ['RANK']}: {e}", file=sys.stderr)
    sys.exit(e.exit_code)
