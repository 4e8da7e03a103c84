"""What cutting the text tower's input to the batch's longest caption saves (models.trim_text_padding),
measured side by side in one run: open_clip's encode_text over the whole context against the cut one,
on the same weights, tokens and images.

    .venv/bin/python benchmarks/text_padding.py [--repeats 20] [--batch-size 128]

Rows: a training step of dissect-tiny (forward, ClipLoss, backward, AdamW) on the demo's captions
and on captions of CC3M-like length (word counts drawn around CC3M's mean of 10.3 words), and
RN50's text tower (context 77, as every open_clip model's) forward and backward on the CC3M-like
captions (its image tower at 224 px is too slow to time on this CPU; its text tower takes
seconds, so it gets --tower-repeats). Median of the repeats after two warm-up ones.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import MethodType

import numpy as np
import open_clip
import torch
from open_clip.loss import ClipLoss
from open_clip.model import CLIP

from table import print_table

from dissect.engine import data, models
from dissect.engine.data import synthetic

CC3M_MEAN_WORDS, CC3M_SD_WORDS = 10.3, 4.0
WORDS = ("a man woman child dog cat car house tree street city river beach mountain sky cloud sun night day "
         "red blue green white black old young small large beautiful view of the in on at with and for near "
         "walking sitting standing playing holding looking people group family team game ball field road "
         "building bridge window door table chair food plate cup water snow rain winter summer spring light "
         "dark portrait illustration vector icon background abstract pattern flower garden park wedding party "
         "stage concert music guitar player fans celebrates during match against season").split()


def cc3m_like(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.rint(rng.normal(CC3M_MEAN_WORDS, CC3M_SD_WORDS, n)), 3, 40).astype(int)
    return [" ".join(rng.choice(WORDS, k)) for k in lengths]


def demo_captions(n: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        synthetic.make_synthetic(Path(tmp) / "d", n=n, test_n=0, noise_ratio=0.4, noise_type="shuffle", seed=0)
        return data.open_dataset(Path(tmp) / "d").manifest["caption"].to_pylist()


def median_ms(work, repeats: int) -> float:
    times = []
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        work()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def as_open_clip(model) -> None:
    model.encode_text = MethodType(CLIP.encode_text, model)


def step_ms(name: str, captions: list[str], batch_size: int, repeats: int) -> tuple[float, float, float]:
    """(whole context ms, cut ms, mean caption tokens) of a training step of NAME."""
    bundle = models.create(name)
    model, loss_fn = bundle.model.train(), ClipLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = bundle.tokenizer(captions[:batch_size])
    images = torch.randn(len(tokens), 3, bundle.image_size, bundle.image_size)

    def step():
        loss = loss_fn(*model(images, tokens))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    cut = median_ms(step, repeats)
    as_open_clip(model)
    return median_ms(step, repeats), cut, lengths(tokens)


def lengths(tokens: torch.Tensor) -> tuple[float, int]:
    """Mean and longest caption in tokens (up to the end-of-text)."""
    length = tokens.argmax(-1) + 1
    return float(length.float().mean()), int(length.max())


def text_tower_ms(name: str, captions: list[str], batch_size: int, repeats: int) -> tuple[float, float, float]:
    """(whole context ms, cut ms, mean caption tokens) of NAME's text tower, forward and backward."""
    model = open_clip.create_model(name)
    models.trim_text_padding(model)
    tokens = open_clip.get_tokenizer(name)(captions[:batch_size])

    def tower():
        model.zero_grad()
        model.encode_text(tokens).sum().backward()
    cut = median_ms(tower, repeats)
    as_open_clip(model)
    return median_ms(tower, repeats), cut, lengths(tokens)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tower-repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    cc3m = cc3m_like(args.batch_size)
    measured = [
        ("dissect-tiny step, demo captions", step_ms("dissect-tiny", demo_captions(args.batch_size), args.batch_size,
                                                      args.repeats), 32),
        ("dissect-tiny step, CC3M-like captions", step_ms("dissect-tiny", cc3m, args.batch_size, args.repeats), 32),
        ("RN50 text tower, CC3M-like captions", text_tower_ms("RN50", cc3m, args.batch_size, args.tower_repeats), 77),
    ]
    rows = [(what, context, round(mean, 1), longest, round(whole, 1), round(cut, 1), round(cut / whole, 3))
            for what, (whole, cut, (mean, longest)), context in measured]
    print_table(["measured", "context", "mean caption tokens", "longest", "whole context ms", "cut to longest ms",
                 "ratio"],
                rows, title=f"text tower cut to the batch's longest caption, batch {args.batch_size}, "
                            f"median of {args.repeats}")


if __name__ == "__main__":
    main()
