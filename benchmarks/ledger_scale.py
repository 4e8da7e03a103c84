"""Write a CC3M-sized ledger through the real writer, then time every figure query
and every curation rule; or measure the writer's peak memory over one epoch of CC12M's size.

    .venv/bin/python benchmarks/ledger_scale.py [--samples 3000000] [--epochs 40] [--ranks 1] [--compact] [--out DIR] [--keep]
    .venv/bin/python benchmarks/ledger_scale.py --writer-memory [--epoch-rows 12400000]

One dissect-warmup run of SAMPLES x EPOCHS score rows (written in steps of
--batch-size rows, as training writes them), its steps and evals, the samples
table with ground-truth noise flags, an oracle, and small full and random runs
(steps and evals only) that figures 2, 5a and tables 1 and 6 compare against.
With --ranks W the scores are written by W writers, as W ranks write them (W parts per epoch);
with --compact the ledger is then compacted (`dissect compact`) and every query timed again.
Prints rows/s written, the seconds of each analysis of `dissect report` and of each rule of
`dissect curate` (keep 0.3 of the dataset's train samples, read from the dissect run or the oracle).
"""
import argparse
import multiprocessing
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from table import print_table

from dissect import ledger
from dissect.ledger import commits, curation, report


def record(name, strategy, ratio, epochs, batch_size) -> ledger.RunRecord:
    return ledger.RunRecord(name=name, strategy=strategy, ratio=ratio, model="RN50", epochs=epochs,
                            batch_size=batch_size, seed=0, dataset="scale", dataset_path="/scale",
                            dataset_fingerprint="0" * 64, world_size=1, start="2026-01-01T00:00:00+00:00",
                            end="2026-01-02T00:00:00+00:00", status="completed")


def write_curve(writer, run, epochs, steps_per_epoch, batch_size, ratio, rng, gain):
    for epoch in range(epochs):
        step0 = epoch * steps_per_epoch
        writer.add("steps", {"run": run, "epoch": epoch}, {
            "step": np.arange(step0, step0 + steps_per_epoch), "batch_size": np.full(steps_per_epoch, batch_size),
            "n_selected": np.full(steps_per_epoch, int(ratio * batch_size)), "lr": np.full(steps_per_epoch, 5e-4),
            "loss": rng.random(steps_per_epoch, dtype=np.float32), "logit_scale": np.full(steps_per_epoch, 50.0),
            "t_data": np.full(steps_per_epoch, 0.01), "t_score": np.full(steps_per_epoch, 0.05),
            "t_train": np.full(steps_per_epoch, 0.15 * ratio), "n_pruned": np.zeros(steps_per_epoch)})
        rsum4 = gain * 200 * (1 - np.exp(-epoch / 8))
        metrics = {"rsum4": rsum4, "ir_r1": rsum4 / 8, "ir_r10": rsum4 * 3 / 8, "tr_r1": rsum4 / 8,
                   "tr_r10": rsum4 * 3 / 8}
        writer.add("evals", {"run": run, "epoch": epoch}, {
            "step": [step0 + steps_per_epoch] * len(metrics), "metric": list(metrics), "value": list(metrics.values())})


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_one_epoch(root, rows: int, batch: int, max_rows: int, result) -> None:
    """In a fresh process: the writer's peak memory above what the process held before it wrote."""
    rng = np.random.default_rng(0)
    columns = {"step": np.zeros(batch, dtype=np.int64), "sample_id": np.arange(batch),
               "clipscore": rng.random(batch, dtype=np.float32), "hist": rng.random(batch, dtype=np.float32),
               "loss": rng.random(batch, dtype=np.float32),
               "selected": rng.random(batch) < 0.3, "correct": rng.random(batch) < 0.5}
    before = peak_rss_mb()
    start = time.perf_counter()
    with ledger.LedgerWriter(root, max_rows=max_rows) as writer:
        for step in range(rows // batch):
            writer.add("scores", {"run": "cc12m", "epoch": 0}, {**columns, "step": np.full(batch, step)})
        ledger.Run(root, "cc12m").commit_epoch(writer, 0)
    result.put((peak_rss_mb() - before, time.perf_counter() - start,
                len(list(Path(root).glob("scores/run=cc12m/epoch=0/*.parquet")))))


def writer_memory(epoch_rows: int, batch: int) -> None:
    rows = []
    for max_rows in (ledger.LedgerWriter.PART_ROWS, epoch_rows):
        with tempfile.TemporaryDirectory() as tmp:
            result = multiprocessing.get_context("spawn").Queue()
            proc = multiprocessing.get_context("spawn").Process(target=write_one_epoch,
                                                                 args=(tmp, epoch_rows, batch, max_rows, result))
            proc.start()
            mb, seconds, parts = result.get()
            proc.join()
        label = f"{max_rows:,} rows" + (" (the writer's default)" if max_rows == ledger.LedgerWriter.PART_ROWS
                                        else " (one part per epoch)")
        rows.append((label, round(mb), parts, round(seconds, 1)))
    print_table(["parts written every", "peak memory above the process before, MB", "parts", "seconds"], rows,
                title=f"one epoch of {epoch_rows:,} score rows (CC12M on one rank) through the writer, "
                      f"in steps of {batch:,}")


def parts(root) -> int:
    return len(commits.entries(root)[0])


def time_queries(root, label: str) -> None:
    """Seconds of every analysis of `dissect report` and of every curation rule (keep 0.3)."""
    timings = []
    for key in report.ANALYSES:
        req = report.Request(ledger=str(root), run="dissect", oracle="oracle" if key == "4c" else None)
        t0 = time.perf_counter()
        report.run_analysis(key, req)
        timings.append((key, round(time.perf_counter() - t0, 2)))
    print_table([key for key, _ in timings], [[seconds for _, seconds in timings]],
                title=f"{label}: seconds per analysis")
    rule_timings = []
    for rule, spec in curation.RULES.items():
        t0 = time.perf_counter()
        curation.curate(root, rule, keep=0.3, run="dissect" if spec.needs == "run" else None,
                        oracle="oracle" if spec.needs == "oracle" else None, dataset="scale")
        rule_timings.append((rule, round(time.perf_counter() - t0, 2)))
    print_table([rule for rule, _ in rule_timings], [[seconds for _, seconds in rule_timings]],
                title=f"{label}: seconds per curation rule, keep 0.3")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=3_000_000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=None, help="ledger folder [default: a temporary one]")
    parser.add_argument("--keep", action="store_true", help="keep the ledger")
    parser.add_argument("--writer-memory", action="store_true",
                        help="instead: the writer's peak memory over one epoch of --epoch-rows rows")
    parser.add_argument("--epoch-rows", type=int, default=12_400_000)
    parser.add_argument("--ranks", type=int, default=1, help="write the scores as this many ranks do, a writer each")
    parser.add_argument("--compact", action="store_true",
                        help="then `dissect compact` the ledger and time every query again")
    args = parser.parse_args()
    if args.writer_memory:
        writer_memory(args.epoch_rows, args.batch_size)
        return
    root = args.out or Path(tempfile.mkdtemp(prefix="dissect-scale-"))
    n, epochs, batch = args.samples, args.epochs, args.batch_size
    rng = np.random.default_rng(0)
    noisy = rng.random(n) < 0.3
    ledger.add_samples(root, "scale", "0" * 64, pa.table({
        "sample_id": np.arange(n), "key": pa.array(np.arange(n).astype(str)), "caption": pa.nulls(n, pa.string()),
        "split": pa.array(["train"] * n), "is_noisy": noisy, "shard": pa.nulls(n, pa.string()),
        "label": pa.nulls(n, pa.int64())}))
    for name, strategy, ratio in [("dissect", "dissect-warmup", 0.3), ("full", "full", 1.0), ("random", "random", 0.3)]:
        ledger.Run(root, name).write_record(record(name, strategy, ratio, epochs, batch))

    steps_per_epoch = -(-n // batch)
    k = int(0.3 * batch)
    hist = np.full(n, np.nan, dtype=np.float32)
    base = np.where(noisy, 20.0, 30.0).astype(np.float32)
    rows, commit_s = 0, 0.0
    start = time.perf_counter()
    # one writer per rank, as torchrun's ranks write: rank r the r-th slice of each global batch, rank 0 commits
    writers = [ledger.LedgerWriter(root, rank=r, commits=r == 0) for r in range(args.ranks)]
    writer = writers[0]
    for epoch in range(epochs):
        order = rng.permutation(n)
        clipscore = base + epoch * np.where(noisy, 0.8, 0.3).astype(np.float32) \
            + rng.normal(0, 4, n).astype(np.float32)
        for s in range(steps_per_epoch):
            ids = order[s * batch:(s + 1) * batch]
            selected = np.zeros(len(ids), dtype=bool)
            selected[rng.choice(len(ids), size=min(k, len(ids)), replace=False)] = True
            h, loss, correct = hist[ids], rng.random(len(ids), dtype=np.float32), rng.random(len(ids)) < 0.5
            for rank, rows_of_rank in enumerate(np.array_split(np.arange(len(ids)), args.ranks)):
                writers[rank].add("scores", {"run": "dissect", "epoch": epoch}, {
                    "step": np.full(len(rows_of_rank), epoch * steps_per_epoch + s), "sample_id": ids[rows_of_rank],
                    "clipscore": clipscore[ids[rows_of_rank]], "hist": h[rows_of_rank], "loss": loss[rows_of_rank],
                    "selected": selected[rows_of_rank], "correct": correct[rows_of_rank]})
        if epoch < epochs // 4:
            hist = clipscore.copy()
        for other in writers[1:]:
            other.flush()
        t0 = time.perf_counter()
        ledger.Run(root, "dissect").commit_epoch(writer, epoch)   # as rank 0 does: the epoch's summaries too
        commit_s += time.perf_counter() - t0
        rows += n
    write_curve(writer, "dissect", epochs, steps_per_epoch, batch, 0.3, rng, 1.05)
    write_curve(writer, "full", epochs, steps_per_epoch, batch, 1.0, rng, 1.0)
    write_curve(writer, "random", epochs, steps_per_epoch, batch, 0.3, rng, 0.95)
    writer.add("oracle", {"name": "oracle"}, {
        "dataset": pa.array(["scale"] * n), "sample_id": np.arange(n),
        "clipscore": (base + rng.normal(0, 3, n)).astype(np.float32), "loss": rng.random(n, dtype=np.float32),
        "negcliploss": rng.random(n, dtype=np.float32)})
    for w in writers:
        w.close()
    write_s = time.perf_counter() - start
    size_gb = sum(p.stat().st_size for p in root.rglob("*.parquet")) / 1e9
    print(f"{n:,} samples x {epochs} epochs = {rows:,} score rows on {args.ranks} rank(s), {size_gb:.1f} GB: "
          f"written in {write_s:.0f} s ({rows / write_s:,.0f} rows/s), committing an epoch (its summaries "
          f"included) {commit_s / epochs:.2f} s")

    time_queries(root, f"{parts(root)} committed parts")
    if args.compact:
        t0 = time.perf_counter()
        result = ledger.compact(root)
        print(f"\ndissect compact: {result.parts_before} parts -> {result.parts_after} in "
              f"{time.perf_counter() - t0:.0f} s")
        time_queries(root, f"after compaction, {parts(root)} committed parts")
    if not args.keep:
        shutil.rmtree(root)
    else:
        print(f"ledger kept at {root}")


if __name__ == "__main__":
    main()
