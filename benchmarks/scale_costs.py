"""What one rank holds and moves at the paper's scale and beyond, from dissect's own parts.

    .venv/bin/python benchmarks/scale_costs.py [--samples 1000000] [--caption-chars 60]

Measured on --samples samples, per sample:
  - every strategy's state: the tensors of size N that `strategies.create` allocates and
    the checkpoint keeps (state_dict), identical on every rank;
  - the loader's index: the dataset's manifest as `Dataset` holds it (samples.parquet's
    columns, keys as img2dataset writes them, captions of --caption-chars characters:
    about ten words, CC3M's order), the member index (members.parquet) and the sample
    reader's arrays, and the epoch's seeded permutation of the ids;
and per step, the rows that change rank when the picks are shared out
(`distributed.moves` over the ranks' pick counts of a global top-k, the batches' order being
random), beside the collectives whose size the code fixes: the ids' and the scoring
features' all-gather, ClipLoss's feature gather, DDP's gradient all-reduce (parameters
counted from open_clip's model).
Then projects both onto CC3M, CC12M, LAION-400M and DataComp xlarge as docs/scale.md sets them.
"""
import argparse
import logging
from pathlib import Path

import numpy as np
import open_clip
import pyarrow as pa
import torch

from table import print_table

from dissect.engine import distributed, strategies
from dissect.engine.data import MANIFEST_SCHEMA, MEMBERS_SCHEMA, Dataset, SampleReader
from dissect.engine.strategy_settings import STRATEGY_SETTINGS

# name, pairs, epochs, ranks, model, batch per rank, image size: the paper's CC3M and CC12M
# set-up (RN50, 1,024 per GPU on 8), open_clip's LAION-400M ViT-B/32 (32 epochs, global batch
# 32,768: 128 per rank on 256), DataComp xlarge (ViT-L/14, 12.8 B samples seen once, global
# batch 90,112: 176 per rank on 512).
SCALES = [("CC3M", 3_300_000, 40, 8, "RN50", 1024, 224),
          ("CC12M", 12_400_000, 20, 8, "RN50", 1024, 224),
          ("LAION-400M", 400_000_000, 32, 256, "ViT-B-32", 128, 224),
          ("DataComp xlarge", 12_800_000_000, 1, 512, "ViT-L-14", 176, 224)]
RATIO = 0.3
CONTEXT_LENGTH = 77
LEDGER_BYTES_PER_ROW = 2.9e9 / 120e6   # benchmarks/ledger_scale.py: 120 M score rows, 2.9 GB of Parquet


def state_bytes(state) -> int:
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_bytes(v) for v in state.values())
    return 0


def strategy_state(name: str, n: int) -> int:
    settings = {s.name: s.default for s in STRATEGY_SETTINGS.get(name, ())}
    strategy = strategies.create(name, n_samples=n, ratio=RATIO, seed=0, epochs=40,
                                 clean=torch.ones(n, dtype=torch.bool), **settings)
    return state_bytes(strategy.state_dict()) + state_bytes(getattr(strategy, "clean", None))


def strategy_state_per_sample(n: int) -> dict[str, float]:
    """Bytes per sample: the growth from N to 2N samples (the generator's few kB do not grow)."""
    return {name: (strategy_state(name, 2 * n) - strategy_state(name, n)) / n for name in strategies.REGISTRY}


def loader_index_per_sample(n: int, caption_chars: int) -> dict[str, float]:
    keys = pa.array([f"{i:09d}" for i in range(n)])
    captions = pa.array([f"{i:09d}".ljust(caption_chars, "x") for i in range(n)])
    shard_of_row = np.arange(n) // 10_000
    manifest = pa.table({
        "sample_id": pa.array(np.arange(n)), "key": keys, "caption": captions,
        "split": pa.array(["train"] * n), "is_noisy": pa.nulls(n, pa.bool_()),
        "shard": pa.array([f"{s:05d}.tar" for s in shard_of_row]), "label": pa.nulls(n, pa.int64()),
        "uid": pa.nulls(n, pa.string()), "image_path": pa.nulls(n, pa.string()), "url": pa.nulls(n, pa.string())},
        schema=MANIFEST_SCHEMA)
    members = pa.table({"sample_id": np.arange(n), "image_offset": np.arange(n) * 8192,
                        "image_size": np.full(n, 8000), "text_offset": np.arange(n) * 8192 + 8000,
                        "text_size": np.full(n, caption_chars), "image_ext": pa.array(["jpg"] * n)},
                       schema=MEMBERS_SCHEMA)
    dataset = Dataset(Path("."), "scale", manifest, "0" * 64)
    dataset.__dict__["members"] = members      # the cached member index, as members.parquet gives it
    reader = SampleReader(dataset, transform=None)
    ids = np.arange(n)
    order = ids[torch.randperm(n).numpy()]     # data.epoch_batches: the epoch's seeded permutation of the ids
    return {"manifest": manifest.nbytes / n, "member index": members.nbytes / n,
            "sample reader": (reader.shard.nbytes + reader.image.nbytes + reader.text.nbytes) / n,
            "epoch permutation": (ids.nbytes + order.nbytes) / n}


def rows_moved(world_size: int, per_rank: int, ratio: float, steps: int = 200) -> float:
    """Mean rows that change rank per step when a global top-k is shared out equally."""
    generator = torch.Generator().manual_seed(0)
    batch = world_size * per_rank
    k = strategies.budget(ratio, batch)
    k -= k % world_size
    total = 0
    for _ in range(steps):
        picked = torch.zeros(batch, dtype=torch.bool)
        picked[torch.rand(batch, generator=generator).topk(k).indices] = True
        counts = [int(c) for c in picked.view(world_size, per_rank).sum(1)]
        total += sum(n for *_, n in distributed.moves(counts, k // world_size))
    return total / steps


def model_sizes(name: str) -> tuple[int, int]:
    logging.getLogger().setLevel(logging.ERROR)   # open_clip's note that no pretrained weights were loaded
    model = open_clip.create_model(name)
    return sum(p.numel() for p in model.parameters() if p.requires_grad), model.text_projection.shape[1]


def gb(x: float) -> str:
    return f"{x / 1e9:,.2f}" if x < 1e11 else f"{x / 1e9:,.0f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--caption-chars", type=int, default=60)
    args = parser.parse_args()

    state = strategy_state_per_sample(args.samples)
    index = loader_index_per_sample(args.samples, args.caption_chars)
    index_total = sum(index.values())
    print_table(["strategy", "state, bytes per sample", *[f"{s[0]}, GB per rank" for s in SCALES]],
                [[name, round(b, 2), *[gb(b * s[1]) for s in SCALES]] for name, b in state.items()],
                title=f"Strategy state (measured on {args.samples:,} samples), replicated on every rank")
    print_table(["loader index", "bytes per sample", *[f"{s[0]}, GB per rank" for s in SCALES]],
                [*[[part, round(b, 1), *[gb(b * s[1]) for s in SCALES]] for part, b in index.items()],
                 ["total", round(index_total, 1), *[gb(index_total * s[1]) for s in SCALES]]],
                title=f"The loader's index in memory, per rank (captions of {args.caption_chars} characters)")

    rows = []
    for name, n, epochs, world, model_name, per_rank, size in SCALES:
        params, dim = model_sizes(model_name)
        batch = world * per_rank
        k = strategies.budget(RATIO, batch) // world * world
        moved = rows_moved(world, per_rank, RATIO)
        row_bytes = 3 * size * size * 4 + CONTEXT_LENGTH * 8    # fp32 image, int64 tokens
        received = (world - 1) / world
        rows.append([name, model_name, f"{world} x {per_rank}", f"{params / 1e6:.0f} M", dim,
                     round(batch * 8 * received / 1e6, 3),
                     round(2 * batch * dim * 4 * received / 1e6, 1),
                     f"{moved:.1f} ({moved / k:.2%})", round(moved * row_bytes / world / 1e6, 1),
                     round(2 * k * dim * 4 * received / 1e6, 1),
                     round(2 * received * params * 4 / 1e6, 0),
                     f"{n * epochs:.3g}", gb(n * epochs * LEDGER_BYTES_PER_ROW), gb(n * LEDGER_BYTES_PER_ROW)])
    print_table(["scale", "model", "ranks x batch", "parameters", "embed dim", "ids all-gather MB",
                 "scoring features all-gather MB", "pick rows moved per step", "their bytes MB per rank",
                 "ClipLoss features gather MB", "DDP gradient all-reduce MB", "ledger rows", "ledger GB",
                 "ledger GB per epoch"], rows,
                title=f"Per step and rank (received), r = {RATIO}, fp32 features and gradients; the ledger over the run")


if __name__ == "__main__":
    main()
