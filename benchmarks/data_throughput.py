"""Is training bound by data loading or by compute? Both rates, measured in one run.

    .venv/bin/python benchmarks/data_throughput.py [--n 2560] [--batch-size 128] [--model dissect-tiny]

Images/s through the real loader (webdataset shards -> decode -> open_clip's train
transform -> tokenizer -> batches) with 0, 1 and 2 DataLoader workers, beside
the samples/s of the model's training step on ready tensors: a full step, and an
online-selection step at r = 0.3 (a no-grad scoring forward of the whole batch
plus a training step on 30 % of it). Where the loader is slower than the step,
loading bounds training.
"""
import argparse
import tempfile
import time
from pathlib import Path

import torch
from open_clip.loss import ClipLoss

from dissect.cli.output import emit
from dissect.engine import data, models, synthetic, train


def loader_rate(dataset, bundle, batch_size, workers) -> float:
    start, n = time.perf_counter(), 0
    batches = data.loader(dataset, "train", transform=bundle.preprocess_train, tokenizer=bundle.tokenizer,
                          batch_size=batch_size, shuffle=True, workers=workers)
    for ids, _, _ in batches:
        n += len(ids)
    return n / (time.perf_counter() - start)


def step_rate(bundle, batch_size, ratio, steps=12) -> float:
    model, loss_fn = bundle.model, ClipLoss()
    optimizer = torch.optim.AdamW(train.param_groups(model, 0.1, 1.0), lr=1e-4, fused=True)
    size = bundle.image_size
    images = torch.randn(batch_size, 3, size, size)
    tokens = bundle.tokenizer([f"a small red circle number {i}" for i in range(batch_size)])
    k = max(1, int(ratio * batch_size))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        if ratio < 1:
            with torch.inference_mode():
                model.eval()
                model(images, tokens)
            model.train()
        image_features, text_features, scale = model(images[:k], tokens[:k])
        loss = loss_fn(image_features, text_features, scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    return batch_size / (sum(times[2:]) / len(times[2:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2560)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--model", default="dissect-tiny")
    args = parser.parse_args()
    bundle = models.create(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dataset = synthetic.make_synthetic(Path(tmp) / "data", n=args.n, test_n=0, noise_ratio=0.4,
                                           noise_type="shuffle", seed=0)
        for workers in (0, 1, 2):
            rows.append((f"loader, {workers} workers", round(loader_rate(dataset, bundle, args.batch_size, workers))))
    full = step_rate(bundle, args.batch_size, 1.0)
    selected = step_rate(bundle, args.batch_size, 0.3)
    rows += [("train step, full", round(full)), ("train step, r = 0.3 (score all, train 30 %)", round(selected))]
    emit(["stage", "samples/s"], [(name, rate) for name, rate in rows],
         title=f"{args.model}, batch {args.batch_size}, {torch.get_num_threads()} torch threads")


if __name__ == "__main__":
    main()
