"""Datasets on disk and the loader that reads them into training by sample id.

A dataset is a folder with webdataset tar shards in img2dataset's layout
(KEY.png / KEY.txt / KEY.json) and a manifest `samples.parquet` that gives every
sample a dense `sample_id` (0..N-1) next to the source's own `key`. Dense ids
let the training state be plain tensors indexed by id, and members.parquet (where
each sample's bytes sit in its shard) lets the loader read any sample directly, so
the batches are a function of (seed, epoch, world size) and nothing else.
"""
import contextlib
import ctypes
import functools
import hashlib
import io
import json
import os
import shutil
import signal
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
import webdataset as wds
from PIL import Image
from tqdm import tqdm

from dissect import ledger
from dissect.engine.errors import InputError
from dissect.ledger.schema import SAMPLES

MANIFEST = "samples.parquet"
CLASSNAMES = "classnames.txt"
SKIPPED = "skipped.parquet"
MEMBERS = "members.parquet"
SHARD_SIZE = 1000
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
# Where a sample's bytes sit in its shard, row i for sample id i (offsets -1: not found).
MEMBERS_SCHEMA = pa.schema([("sample_id", pa.int64()), ("image_offset", pa.int64()), ("image_size", pa.int64()),
                            ("text_offset", pa.int64()), ("text_size", pa.int64()), ("image_ext", pa.string())])


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

    @functools.cached_property
    def members(self) -> pa.Table:
        """The member index (MEMBERS_SCHEMA) that lets the loader read samples by id: read from
        members.parquet, or built from the shards' tar headers and saved there where we may."""
        path = self.root / MEMBERS
        if path.exists():
            index = pq.read_table(path)
            if (index.schema.metadata or {}).get(b"fingerprint") == self.fingerprint.encode() \
                    and index.schema.names == MEMBERS_SCHEMA.names:
                return index
        index = build_member_index(self.root, self.manifest)
        with contextlib.suppress(OSError), ledger.atomic_path(path) as tmp:
            pq.write_table(index.replace_schema_metadata({"fingerprint": self.fingerprint}), tmp)
        return index

    def labels(self, ids: torch.Tensor) -> torch.Tensor | None:
        """The class label of each sample id, or None where the samples have none."""
        labels = self.manifest["label"].take(pa.array(ids.numpy()))  # dense ids are row numbers
        return None if labels.null_count else torch.tensor(labels.to_numpy())


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
    image_path: str | None = None   # the source's own path of the image (CSV/TSV, folders)
    url: str | None = None          # where it was downloaded from (fetch)
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


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged(out):
    """A hidden folder beside OUT that becomes OUT when the block succeeds, and vanishes if not."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} exists and is not empty: choose a new folder")
    created = [p for p in reversed(out.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o777 & ~current_umask())   # mkdtemp's 0700 would hide the dataset from the user's colleagues
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
        known = {name: value for name, value in (("uid", s.uid), ("image_path", s.image_path), ("url", s.url),
                                                  ("is_noisy", s.is_noisy), ("label", s.label))
                 if value is not None}   # the ingest reads these back, so the shards alone keep the truth
        meta = {**s.meta, "key": key, **known}
        writer.write({"__key__": key, s.image_ext: s.image, "txt": s.caption, "json": json.dumps(meta).encode()})
        rows.append(dict(sample_id=sample_id, key=key, caption=s.caption, split=s.split, is_noisy=s.is_noisy,
                         shard=shard_name, label=s.label, uid=s.uid, image_path=s.image_path, url=s.url))
    if writer:
        writer.close()
    return rows


# --- reading ---------------------------------------------------------------

def captions(text: str) -> list[str]:
    """A sample's captions: one per line of its .txt (several for COCO-style test sets)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def scan_members(url: str) -> dict[str, dict[str, tuple[int, int]]]:
    """key -> {extension: (offset, size)} of a tar's members, from its headers alone."""
    members: dict[str, dict[str, tuple[int, int]]] = {}
    with tarfile.open(url) as tar:
        for member in tar:
            name = Path(member.name).name
            if member.isfile() and "." in name:
                key, ext = member.name.split(".", 1)
                members.setdefault(key, {})[ext.lower()] = (member.offset_data, member.size)
    return members


def build_member_index(root: Path, manifest: pa.Table) -> pa.Table:
    """Where each sample's image and caption bytes sit in its shard (MEMBERS_SCHEMA, one row
    per sample id). A sample whose shard or members cannot be found gets offset -1."""
    columns = {name: np.full(manifest.num_rows, -1, dtype=np.int64) for name in MEMBERS_SCHEMA.names}
    columns["sample_id"] = manifest["sample_id"].to_numpy()
    columns["image_ext"] = np.full(manifest.num_rows, None, dtype=object)
    shards, keys = manifest["shard"].to_pylist(), manifest["key"].to_pylist()
    by_shard: dict[str, list[int]] = {}
    for row, shard in enumerate(shards):
        by_shard.setdefault(shard, []).append(row)
    for shard, rows in by_shard.items():
        try:
            members = scan_members(str(root / shard))
        except (OSError, tarfile.TarError):
            continue
        for row in rows:
            found = members.get(keys[row], {})
            ext = next((e for e in IMAGE_EXTS if e in found), None)
            if ext is None or "txt" not in found:
                continue
            columns["image_offset"][row], columns["image_size"][row] = found[ext]
            columns["image_ext"][row] = ext
            columns["text_offset"][row], columns["text_size"][row] = found["txt"]
    return pa.table(columns, schema=MEMBERS_SCHEMA)


def epoch_seed(seed: int, epoch: int) -> int:
    """One seed per (run seed, epoch): the epoch's data order and every draw made from it."""
    return seed * 1_000_003 + epoch


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """One seed per (run seed, epoch, rank): what each rank draws on its own in an epoch."""
    return epoch_seed(seed, epoch) * 1_009 + rank


class SampleReader(torch.utils.data.Dataset):
    """A split's samples read by sample id: one positioned read per member, no tar streaming.

    Item i is (sample_id, image tensor, captions). The image's random augmentation draws
    from an RNG seeded by (seed, epoch, sample_id), so it is the same whichever process
    (loader worker or main) reads the sample."""

    def __init__(self, dataset: Dataset, transform, *, seed: int = 0, epoch: int = 0):
        self.root = dataset.root
        self.transform = transform
        self.rng_base = epoch_seed(seed, epoch) * 1_000_000_007
        members = dataset.members
        self.shard_names = sorted(set(dataset.manifest["shard"].to_pylist()))
        shard_of = {name: i for i, name in enumerate(self.shard_names)}
        self.shard = np.array([shard_of[s] for s in dataset.manifest["shard"].to_pylist()], dtype=np.int32)
        self.image = np.stack([members["image_offset"].to_numpy(), members["image_size"].to_numpy()], 1)
        self.text = np.stack([members["text_offset"].to_numpy(), members["text_size"].to_numpy()], 1)
        self._files: dict[int, int] = {}

    def _read(self, shard: int, offset: int, size: int) -> bytes:
        fd = self._files.get(shard)
        if fd is None:
            fd = self._files[shard] = os.open(self.root / self.shard_names[shard], os.O_RDONLY)
        return os.pread(fd, int(size), int(offset))

    def raw(self, sample_id: int) -> tuple[bytes, bytes]:
        """A sample's image and caption bytes as its shard holds them."""
        shard = self.shard[sample_id]
        return self._read(shard, *self.image[sample_id]), self._read(shard, *self.text[sample_id])

    def __getitem__(self, sample_id: int):
        """None where the sample cannot be read (its shard vanished, its bytes are damaged)."""
        try:
            image_bytes, text_bytes = self.raw(sample_id)
            image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
            text = text_bytes.decode("utf-8")
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.rng_base + sample_id) % 2**63)
            return sample_id, self.transform(image), captions(text)

    def __len__(self) -> int:
        return len(self.shard)

    def __del__(self):
        for fd in self._files.values():
            os.close(fd)


def reshard(dataset: Dataset, ids: np.ndarray, out, shard_size: int = SHARD_SIZE, quiet: bool = True) -> Dataset:
    """The samples IDS of DATASET as a new dataset at OUT: webdataset shards in img2dataset's
    layout (open_clip_train reads them with nothing of dissect installed) and a manifest,
    keys, uids, captions and ground truth kept; all or nothing."""
    reader = SampleReader(dataset, transform=None)
    manifest = dataset.manifest.take(pa.array(ids))   # dense ids are row numbers
    exts = dataset.members["image_ext"].take(pa.array(ids)).to_pylist()

    def samples():
        for row, ext in zip(manifest.to_pylist(), exts):
            image, text = reader.raw(row["sample_id"])
            yield Sample("train", image, ext, text.decode("utf-8"), is_noisy=row["is_noisy"], label=row["label"],
                         key=row["key"], uid=row["uid"], image_path=row.get("image_path"), url=row.get("url"),
                         meta={"source_sample_id": row["sample_id"]})

    return write_dataset(out, tqdm(samples(), total=len(ids), desc="resharding", unit="pair", disable=quiet),
                         shard_size)


def epoch_batches(ids: np.ndarray, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0,
                  rank: int = 0, world_size: int = 1) -> list[np.ndarray]:
    """This rank's batches of sample ids for one epoch, a function of (seed, epoch, world size).

    The epoch's order is a seeded permutation of IDS; step s takes the s-th global batch
    of batch_size x world_size ids, and rank r its r-th slice. The last global batch, if
    short, is shared out as evenly as the ranks allow: at most one partial batch per rank
    and epoch, and every rank has the same number of steps (a batch may be empty)."""
    if shuffle:
        generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        ids = ids[torch.randperm(len(ids), generator=generator).numpy()]
    per_step = batch_size * world_size
    batches = []
    for start in range(0, len(ids), per_step):
        step_ids = ids[start:start + per_step]
        if len(step_ids) == per_step:
            batches.append(step_ids[rank * batch_size:(rank + 1) * batch_size])
        else:
            batches.append(np.array_split(step_ids, world_size)[rank])
    return batches


def loader(dataset: Dataset, split: str, *, transform, tokenizer, batch_size: int,
           shuffle: bool, seed: int = 0, epoch: int = 0, workers: int = 0, rank: int = 0, world_size: int = 1,
           all_captions: bool = False, only: np.ndarray | None = None) -> torch.utils.data.DataLoader:
    """Batches of (sample_id, image, tokens) of the split (of its ids in ONLY, a sorted
    subset, where given), in epoch_batches' order.

    Training takes a sample's first caption. With all_captions (retrieval eval)
    a batch is (sample_id, image, tokens, owner): every caption of every image,
    owner[j] being the batch row of caption j's image.

    Samples whose shard is gone are left out of the epoch's order (the trainer records
    the shard in `skipped`); a sample that cannot be read is dropped from its batch.
    Loader workers read whole batches, so the batches do not depend on their number."""
    part = dataset.split(split)
    present = {s for s in set(part["shard"].to_pylist()) if (dataset.root / s).exists()}
    ids = part.filter(pc.is_in(part["shard"], pa.array(sorted(present), pa.string())))["sample_id"].to_numpy()
    if only is not None:
        ids = ids[np.isin(ids, only, assume_unique=True)]
    batches = epoch_batches(ids, batch_size, shuffle=shuffle, seed=seed, epoch=epoch, rank=rank,
                            world_size=world_size)
    reader = SampleReader(dataset, transform, seed=seed, epoch=epoch)
    return torch.utils.data.DataLoader(reader, batch_sampler=[b.tolist() for b in batches], num_workers=workers,
                                       generator=torch.Generator().manual_seed(seed), worker_init_fn=start_worker,
                                       collate_fn=functools.partial(collate, tokenizer=tokenizer,
                                                                    all_captions=all_captions))


PR_SET_PDEATHSIG = 1   # linux/prctl.h


def start_worker(worker_id: int) -> None:
    """A loader worker is killed the moment its parent dies, however it dies (SIGKILL too):
    torch's own watchdog notices only seconds later, and until then the orphan holds what it
    inherited, the run's lock among them, so `dissect runs` would call a dead run running.
    It ignores Ctrl-C, which a terminal sends to every process of the run: the run itself stops
    at its next step and shuts its workers down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:   # the parent died before prctl took hold
            os._exit(1)


def collate(samples, *, tokenizer, all_captions: bool = False):
    samples = [s for s in samples if s is not None]
    if not samples:
        return None
    ids, images, texts = zip(*samples)
    ids, images = torch.tensor(ids, dtype=torch.long), torch.stack(images)
    if not all_captions:
        return ids, images, tokenizer([t[0] for t in texts])
    owner = torch.repeat_interleave(torch.arange(len(ids)), torch.tensor([len(t) for t in texts]))
    return ids, images, tokenizer([c for t in texts for c in t]), owner
