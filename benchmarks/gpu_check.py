"""What only a GPU shows, in one short run (benchmarks/gpu_check.sh calls this; under 8 minutes on one GPU).

1. RN50 at 224 px, batch 256, --precision amp, 3,072 synthetic pairs, 2 epochs: samples/s of
   `full` and `dissect-warmup` at r = 0.3 (epoch 1, after the warm-up epoch; loader wait
   included), the scoring pass's share of dissect-warmup's step, and each run's peak GPU memory.
2. torchrun with 2 processes on this one GPU (nccl, the processes sharing the device); where
   nccl refuses two ranks on one GPU, 2 CPU processes (gloo), said so; then the ledger checked
   as tests/test_distributed.py does: every train sample once per epoch, the world size recorded.
"""
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from table import print_table

from dissect import ledger
from dissect.engine import train
from dissect.engine.data import synthetic

HERE = Path(__file__).parent
N, BATCH, MODEL = 3072, 256, "RN50"


def throughput(data: Path, ledger_dir: Path) -> None:
    peaks = {}
    for strategy in ("full", "dissect-warmup"):
        torch.cuda.reset_peak_memory_stats()
        train.train(train.TrainConfig(data=str(data), ledger=str(ledger_dir), run=strategy, strategy=strategy,
                                      model=MODEL, batch_size=BATCH, epochs=2, warmup_epochs=1, precision="amp",
                                      eval_every=2, quiet=True))
        peaks[strategy] = torch.cuda.max_memory_allocated() / 2**30
    columns, rows = ledger.query(ledger_dir, (HERE / "gpu_check.sql").read_text())
    columns.append("peak_gpu_gib")
    rows = [(*row, round(peaks[row[0]], 2)) for row in rows]
    print_table(columns, rows, title=f"{MODEL} 224 px, batch {BATCH}, amp, {N} pairs, on {torch.cuda.get_device_name()}")


def two_processes(data: Path, ledger_dir: Path) -> None:
    for device in ("cuda", "cpu"):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "dissect.cli", "--", "train", str(data), "--ledger", str(ledger_dir / device), "--run", "ddp",
               "--strategy", "dissect-warmup", "--epochs", "2", "--warmup-epochs", "1", "--batch-size", "64",
               "--device", device, "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        print(f"\n2 processes, --device {device} ({'nccl' if device == 'cuda' else 'gloo'}): "
              f"exit {proc.returncode} in {time.perf_counter() - t0:.0f} s")
        if proc.returncode == 0:
            break
        print("\n".join(proc.stderr.strip().splitlines()[-5:]))
    else:
        raise SystemExit("no 2-process run completed")
    _, rows = ledger.query(ledger_dir / device, """
        SELECT s.epoch, count(*) AS rows, count(DISTINCT s.sample_id) AS samples, any_value(r.world_size)
        FROM scores s JOIN runs r ON r.name = s.run GROUP BY s.epoch ORDER BY s.epoch""")
    print_table(["epoch", "rows", "distinct samples", "world size"], rows)
    whole = all(n == distinct == N for _, n, distinct, _ in rows) and all(w == 2 for *_, w in rows) and len(rows) == 2
    print(f"ledger {'whole: every train sample once per epoch' if whole else 'NOT whole'}")
    if not whole:
        raise SystemExit(1)


def main():
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check is for a machine with a GPU")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        synthetic.make_synthetic(data, n=N, test_n=256, noise_ratio=0.4, noise_type="shuffle", image_size=224)
        throughput(data, Path(tmp) / "ledger")
        two_processes(data, Path(tmp) / "ddp")


if __name__ == "__main__":
    main()
