"""Is training bound by data loading or by compute? Both rates, measured in one run.

    .venv/bin/python benchmarks/data_throughput.py [--n 2560] [--batch-size 128] [--model dissect-tiny] [--epochs 3]

Samples/s of the loaders `dissect train` uses: the shard loader (decode each image,
open_clip's train transform, tokenize each batch) with 0, 1 and 2 DataLoader workers,
and the decoded cache (`--cache`: memory-mapped uint8 squares cropped as a batch,
tokens stored). Beside them, samples/s of the training step itself, `full` and
`dissect-warmup` at r = 0.3, timed by `dissect train` (the steps table's t_score +
t_train) in runs on the cache. Where a loader is slower than the step, loading bounds training.
"""
import argparse
import tempfile
import time
from pathlib import Path

from table import print_table

from dissect import ledger
from dissect.engine import data, models, train
from dissect.engine.data import cache, synthetic

STEP_RATE_SQL = """
SELECT run, sum(batch_size) / sum(t_score + t_train) AS samples_per_s
FROM steps WHERE epoch > 0 GROUP BY run
"""


def rate(epoch_batches, epochs: int) -> float:
    """Samples per second over EPOCHS epochs of epoch_batches(epoch), each loader made as a run makes it."""
    start, n = time.perf_counter(), 0
    for epoch in range(epochs):
        for batch in epoch_batches(epoch):
            n += len(batch[0])
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2560)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--model", default="dissect-tiny")
    parser.add_argument("--epochs", type=int, default=3, help="Epochs each loader is timed over.")
    args = parser.parse_args()
    bundle = models.create(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dataset = synthetic.make_synthetic(Path(tmp) / "data", n=args.n, test_n=0, noise_ratio=0.4,
                                           noise_type="shuffle", seed=0)
        for workers in (0, 1, 2):
            rows.append((f"shard loader, {workers} workers", rate(lambda epoch: data.loader(
                dataset, "train", transform=bundle.preprocess_train, tokenizer=bundle.tokenizer,
                batch_size=args.batch_size, shuffle=True, epoch=epoch, workers=workers), args.epochs)))
        start = time.perf_counter()
        cache.build(dataset, args.model, bundle.preprocess_train, bundle.tokenizer)
        built = time.perf_counter() - start
        cached = cache.Cache(dataset, args.model, bundle.preprocess_train)
        rows.append(("cache loader", rate(lambda epoch: cached.batches(
            dataset, "train", batch_size=args.batch_size, seed=0, epoch=epoch), args.epochs)))
        for strategy in ("full", "dissect-warmup"):
            train.train(train.TrainConfig(data=str(dataset.root), ledger=str(Path(tmp) / "ledger"), run=strategy,
                                          strategy=strategy, model=args.model, epochs=args.epochs, warmup_epochs=1,
                                          batch_size=args.batch_size, workers=0, cache="on", quiet=True))
        _, steps = ledger.query(Path(tmp) / "ledger", STEP_RATE_SQL)
        rows += [(f"train step, {run}" + (" (r = 0.3)" if run != "full" else ""), r) for run, r in sorted(steps)]
    full_step = dict(steps)["full"]
    print_table(["stage", "samples/s", "x the full step"],
                [(name, round(samples_per_s), round(samples_per_s / full_step, 2)) for name, samples_per_s in rows],
                title=f"{args.model}, batch {args.batch_size}, {args.n} pairs, {args.epochs} epochs; "
                      f"cache built in {built:.1f} s")


if __name__ == "__main__":
    main()
