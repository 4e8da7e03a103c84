"""Datasets on disk and the loader that streams them into training.

A dataset is a folder with webdataset tar shards in img2dataset's layout
(KEY.png / KEY.txt / KEY.json) and a manifest `samples.parquet` that gives every
sample a dense `sample_id` (0..N-1) next to the source's own `key`. Dense ids
let the training state be plain tensors indexed by id.
"""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
import webdataset as wds

from dissect.engine.errors import InputError
from dissect.ledger.schema import SAMPLES

MANIFEST = "samples.parquet"
CLASSNAMES = "classnames.txt"
SKIPPED = "skipped.parquet"
SHARD_SIZE = 1000


class DatasetError(InputError):
    pass


@dataclass
class Dataset:
    root: Path
    name: str
    manifest: pa.Table
    fingerprint: str

    @property
    def n_samples(self) -> int:
        return self.manifest.num_rows

    def split(self, split: str) -> pa.Table:
        return self.manifest.filter(pc.equal(self.manifest["split"], split))

    def shard_urls(self, split: str) -> list[str]:
        shards = sorted(set(self.split(split)["shard"].to_pylist()))
        return [str(self.root / s) for s in shards]

    @property
    def classnames(self) -> list[str]:
        """Class names for zero-shot classification, one per line of classnames.txt (label order)."""
        path = self.root / CLASSNAMES
        return [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

    def skipped(self) -> pa.Table | None:
        """What the ingest of this dataset passed over (source, key, reason), if anything."""
        path = self.root / SKIPPED
        return pq.read_table(path) if path.exists() else None

    def labels(self, ids: torch.Tensor) -> torch.Tensor | None:
        """The class label of each sample id, or None where the samples have none."""
        labels = self.manifest["label"].take(pa.array(ids.numpy()))  # dense ids are row numbers
        return None if labels.null_count else torch.tensor(labels.to_numpy())

    def ids_by_member(self, split: str) -> dict[tuple[str, str], int]:
        """(shard url, key) -> sample_id for the split: samples skipped at ingest are absent."""
        part = self.split(split)
        urls = [str(self.root / s) for s in part["shard"].to_pylist()]
        return dict(zip(zip(urls, part["key"].to_pylist()), part["sample_id"].to_pylist()))


def open_dataset(path: str | os.PathLike, require_train: bool = True) -> Dataset:
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise DatasetError(f"no dataset at {root}: expected {MANIFEST} there (make one with `dissect make-synthetic`)")
    manifest = pq.read_table(manifest_path)
    if manifest.num_rows == 0:
        raise DatasetError(f"dataset at {root} has no samples")
    if require_train and not pc.sum(pc.equal(manifest["split"], "train")).as_py():
        raise DatasetError(f"dataset at {root} has no train samples")
    fingerprint = hashlib.sha256(manifest_path.read_bytes()).hexdigest()
    return Dataset(root.resolve(), f"{root.resolve().name}-{fingerprint[:8]}", manifest, fingerprint)


# --- writing ---------------------------------------------------------------

@dataclass
class Sample:
    """One image-text pair on its way into a dataset's shards."""
    split: str
    image: bytes
    image_ext: str                  # png, jpg, jpeg or webp: the member's extension
    caption: str
    is_noisy: bool | None = None    # ground truth, where the source knows it
    label: int | None = None        # class index, for zero-shot classification
    key: str | None = None          # the source's own key; generated when None
    uid: str | None = None
    meta: dict = field(default_factory=dict)


# The manifest has the columns of the ledger's `samples` table, which copies it.
MANIFEST_SCHEMA = SAMPLES.columns


def write_dataset(out, samples, shard_size: int = SHARD_SIZE, classnames: list[str] | None = None) -> "Dataset":
    """Write Samples to OUT as shards + manifest (+ classnames.txt), all or nothing:
    OUT appears only when complete. Sample ids follow the order of `samples`."""
    with staged(out) as staging:
        rows = write_shards(staging, samples, shard_size)
        write_manifest(staging, rows, classnames=classnames)
    return open_dataset(out, require_train=False)


@contextlib.contextmanager
def staged(out):
    """A hidden folder beside OUT that becomes OUT when the block succeeds, and vanishes if not."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} exists and is not empty: choose a new folder")
    created = [p for p in reversed(out.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):  # leave no trace of a failed write
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def write_manifest(root: Path, rows: list[dict], *, classnames=None, skipped: pa.Table | None = None) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), root / MANIFEST)
    if classnames:
        (root / CLASSNAMES).write_text("\n".join(classnames) + "\n")
    if skipped is not None and skipped.num_rows:
        pq.write_table(skipped, root / SKIPPED)


def write_shards(root: Path, samples, shard_size: int) -> list[dict]:
    """Write Samples as img2dataset-style shards (split/NNNNN.tar); returns the manifest rows."""
    rows, writer, current = [], None, None
    counts: dict[str, int] = {}
    for sample_id, s in enumerate(samples):
        k = counts.get(s.split, 0)
        counts[s.split] = k + 1
        shard_name = f"{s.split}/{k // shard_size:05d}.tar"
        if shard_name != current:
            if writer:
                writer.close()
            (root / s.split).mkdir(exist_ok=True)
            writer, current = wds.TarWriter(str(root / shard_name), mtime=0), shard_name  # reproducible bytes
        key = s.key or f"{k // shard_size:05d}{k % shard_size:04d}"
        meta = {**s.meta, "key": key, **({"uid": s.uid} if s.uid else {})}
        writer.write({"__key__": key, s.image_ext: s.image, "txt": s.caption, "json": json.dumps(meta).encode()})
        rows.append(dict(sample_id=sample_id, key=key, caption=s.caption, split=s.split, is_noisy=s.is_noisy,
                         shard=shard_name, label=s.label, uid=s.uid))
    if writer:
        writer.close()
    return rows


# --- reading ---------------------------------------------------------------

def captions(text: str) -> list[str]:
    """A sample's captions: one per line of its .txt (several for COCO-style test sets)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def loader(dataset: Dataset, split: str, *, transform, tokenizer, batch_size: int,
           shuffle: bool, seed: int = 0, epoch: int = 0, workers: int = 0,
           all_captions: bool = False) -> torch.utils.data.DataLoader:
    """Batches of (sample_id, image, tokens) from the split's shards.

    Training takes a sample's first caption. With all_captions (retrieval eval)
    a batch is (sample_id, image, tokens, owner): every caption of every image,
    owner[j] being the batch row of caption j's image.

    The order is a function of (seed, epoch): shards and samples are shuffled by
    webdataset's deterministic shuffle, and worker RNGs come from a generator
    seeded the same way, so a resumed epoch sees exactly the batches it would have.
    """
    ids = dataset.ids_by_member(split)

    def in_manifest(sample):
        return (sample["__url__"], sample["__key__"]) in ids

    def to_sample(sample):
        url, key, image, text = sample
        texts = captions(text)
        tokens = tokenizer(texts) if all_captions else tokenizer(texts[:1])[0]
        return ids[url, key], transform(image), tokens

    stage_seed = seed * 1_000_003
    urls = dataset.shard_urls(split)
    stages = [wds.SimpleShardList(urls)]
    if shuffle:
        stages.append(wds.detshuffle(len(urls), len(urls), seed=stage_seed, epoch=epoch - 1))
    # A shard that cannot be read (gone, corrupt) is warned about and passed over; the
    # trainer records it in the ledger's `skipped` table after the epoch.
    stages += [wds.split_by_node, wds.split_by_worker, wds.tarfile_to_samples(handler=wds.warn_and_continue)]
    if shuffle:
        stages.append(wds.detshuffle(1000, 256, seed=stage_seed + 1, epoch=epoch - 1))
    stages += [
        wds.select(in_manifest),
        wds.decode("pil", handler=wds.warn_and_continue),
        wds.to_tuple("__url__", "__key__", "png;jpg;jpeg;webp", "txt"),
        wds.map(to_sample, handler=wds.warn_and_continue),
        wds.batched(batch_size, partial=True, collation_fn=_collate_all if all_captions else _collate),
    ]
    generator = torch.Generator().manual_seed(stage_seed + epoch)
    return torch.utils.data.DataLoader(
        wds.DataPipeline(*stages), batch_size=None, num_workers=workers, generator=generator,
        persistent_workers=False,
    )


def _collate(samples):
    ids, images, tokens = zip(*samples)
    return torch.tensor(ids, dtype=torch.long), torch.stack(images), torch.stack(tokens)


def _collate_all(samples):
    ids, images, tokens = zip(*samples)
    owner = torch.repeat_interleave(torch.arange(len(ids)), torch.tensor([len(t) for t in tokens]))
    return torch.tensor(ids, dtype=torch.long), torch.stack(images), torch.cat(tokens), owner
