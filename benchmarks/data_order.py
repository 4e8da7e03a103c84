"""Reading the shards by sample id (the loader's order: a seeded permutation, one positioned read
per member) against reading them in file order, on a cold page cache, in samples/s beside the
model's training step; measured side by side in one run.

    .venv/bin/python benchmarks/data_order.py [--n 60000] [--side 256] [--data DIR]

The data: N pairs of JPEGs of SIDE px (smooth noise, about 20 KB each, as img2dataset's 256 px
resize gives for web images) in webdataset shards of 1,000, written to DIR (kept there and
reused; default: a temporary folder). Before each pass the page cache is dropped
(/proc/sys/vm/drop_caches, which needs root; elsewhere the table says the cache was warm).
Passes: the members' bytes read by id in the epoch's shuffled order; by id in file order;
webdataset streaming the shards in order; and the loader as `dissect train --no-cache`
runs it (decode + open_clip's train transform for dissect-tiny and for RN50 at 224 px, the
CLI's 2 workers) shuffled and in file order. The step is dissect-tiny's full step at batch 128.
"""
import argparse
import io
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from open_clip.loss import ClipLoss
from PIL import Image

from table import print_table

from dissect.engine import data, models
from dissect.engine.config import TrainConfig

DROP_CACHES = Path("/proc/sys/vm/drop_caches")
BATCH = 128


def jpeg(rng: np.random.Generator, side: int) -> bytes:
    small = Image.fromarray(rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8))
    out = io.BytesIO()
    small.resize((side, side), Image.BICUBIC).save(out, "JPEG", quality=90)
    return out.getvalue()


def make(out: Path, n: int, side: int) -> data.Dataset:
    if out.exists():   # written by an earlier run
        dataset = data.open_dataset(out)
        if dataset.n_samples != n:
            raise SystemExit(f"{out} holds {dataset.n_samples} pairs, not {n}: give another --data")
        return dataset
    rng = np.random.default_rng(0)
    words = "a photo of the red blue dog cat man woman city street tree sky beach at night in with".split()
    samples = (data.Sample("train", jpeg(rng, side), "jpg", " ".join(rng.choice(words, 10))) for _ in range(n))
    return data.write_dataset(out, samples)


def drop_page_cache() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        DROP_CACHES.write_text("3\n")
        return True
    except OSError:
        return False


def timed(read) -> tuple[float, int, bool]:
    """(seconds, bytes, cold) of READ() after dropping the page cache."""
    cold = drop_page_cache()
    start = time.perf_counter()
    n_bytes = read()
    return time.perf_counter() - start, n_bytes, cold


def by_id(dataset: data.Dataset, ids: np.ndarray) -> int:
    reader = data.SampleReader(dataset, transform=None)
    return sum(len(image) + len(text) for image, text in map(reader.raw, ids))


def streamed(dataset: data.Dataset) -> int:
    pipeline = wds.WebDataset(dataset.shard_urls("train"), shardshuffle=False, empty_check=False)
    return sum(len(sample["jpg"]) + len(sample["txt"]) for sample in pipeline)


def loaded(dataset: data.Dataset, model: str, shuffle: bool) -> int:
    bundle = models.create(model)
    batches = data.loader(dataset, "train", transform=bundle.preprocess_train, tokenizer=bundle.tokenizer,
                          batch_size=BATCH, shuffle=shuffle, workers=TrainConfig.workers)
    return sum(len(batch[0]) for batch in batches)


def full_step_rate(repeats: int = 10) -> float:
    bundle = models.create("dissect-tiny")
    model, loss_fn = bundle.model.train(), ClipLoss()
    optimizer = torch.optim.AdamW(model.parameters())
    images = torch.randn(BATCH, 3, bundle.image_size, bundle.image_size)
    tokens = bundle.tokenizer(["a photo of a red dog in the city at night"] * BATCH)
    def step():
        loss = loss_fn(*model(images, tokens))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    step()   # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return repeats * BATCH / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60_000)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--data", type=Path, default=None, help="where the shards are written and kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dataset = make(args.data or Path(tmp) / "data", args.n, args.side)
        size = sum(os.path.getsize(url) for url in dataset.shard_urls("train"))
        ids = dataset.split("train")["sample_id"].to_numpy()
        shuffled = data.epoch_batches(ids, BATCH, shuffle=True)
        n = len(ids)
        passes = [
            ("bytes by id, shuffled (the loader's order)", lambda: by_id(dataset, np.concatenate(shuffled)), n),
            ("bytes by id, file order", lambda: by_id(dataset, np.sort(ids)), n),
            ("webdataset streaming, shards in order", lambda: streamed(dataset), n),
            ("loader dissect-tiny 32 px, 2 workers, shuffled", lambda: loaded(dataset, "dissect-tiny", True), n),
            ("loader dissect-tiny 32 px, 2 workers, file order", lambda: loaded(dataset, "dissect-tiny", False), n),
            ("loader RN50 224 px, 2 workers, shuffled", lambda: loaded(dataset, "RN50", True), n),
            ("loader RN50 224 px, 2 workers, file order", lambda: loaded(dataset, "RN50", False), n),
        ]
        step = full_step_rate()
        rows = []
        for name, read, count in passes:
            seconds, _, cold = timed(read)
            rows.append((name, "cold" if cold else "warm", round(count / seconds), round(size / 1e6 / seconds),
                         round(count / seconds / step, 2)))
    print_table(["pass", "page cache", "samples/s", "MB/s of shards", "x dissect-tiny's full step"], rows,
                title=f"{n:,} pairs, {size / 1e9:.2f} GB of shards, {args.side} px JPEG; dissect-tiny full step "
                      f"{step:,.0f} samples/s at batch {BATCH}")


if __name__ == "__main__":
    main()
