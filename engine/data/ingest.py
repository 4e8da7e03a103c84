"""Turning a user's image-text data into a dataset: a manifest with dense sample ids.

Sources: webdataset tar shards as img2dataset writes them (referenced in place),
open_clip's CSV/TSV of image paths and captions, and folders of images with
sidecar .txt captions (both copied into shards). Every sample is checked on the
way in; what cannot be used is skipped, counted by reason, and kept in
skipped.parquet (source, key, reason), never silently dropped. Where a source
knows which pairs are noisy (an is_noisy field in the shards' json, an is_noisy
column in the CSV: an audit, a benchmark), the manifest keeps it as ground truth.
"""
import csv
import glob
import hashlib
import io
import json
import os
import re
import tarfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from braceexpand import braceexpand
from PIL import Image
from tqdm import tqdm

from dissect import ledger
from dissect.engine import data
from dissect.engine.config import CSV_CAPTION_KEY, CSV_IMG_KEY, CSV_SEPARATOR
from dissect.engine.data import IMAGE_EXTS, DatasetError, Sample
from dissect.ledger.schema import TABLES

SKIPPED_SCHEMA = TABLES["skipped"].columns
FETCHED_DATASET = "dataset"   # where `dissect fetch --out DIR` and `dissect make-emoji DIR` put their ingest


@dataclass
class CsvFormat:
    """open_clip's --csv-img-key / --csv-caption-key / --csv-separator, with its defaults."""
    img_key: str = CSV_IMG_KEY
    caption_key: str = CSV_CAPTION_KEY
    separator: str = CSV_SEPARATOR
    uid_key: str = "uid"        # kept as the sample's uid where the file has this column
    noisy_key: str = "is_noisy"  # kept as the sample's ground truth where the file has this column


@dataclass
class Ingested:
    dataset: data.Dataset
    skipped: Counter        # reason -> count

    def summary(self) -> str:
        kept = self.dataset.n_samples
        if not self.skipped:
            return f"{kept} samples, none skipped"
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        return f"{kept} samples; skipped {sum(self.skipped.values())}: {reasons}"


# --- what a source is --------------------------------------------------------

def shard_list(source: str) -> list[str]:
    """Tar paths of a brace pattern ({00000..00009}.tar), a glob, one tar, or a folder of tars."""
    path = Path(source)
    if path.is_dir():
        return sorted(str(p) for p in path.glob("*.tar"))
    return sorted({match for pattern in braceexpand(source) for match in glob.glob(pattern)} |
                  {p for p in braceexpand(source) if Path(p).is_file()})


def kind_of(source: str) -> str:
    path = Path(source)
    if (path / data.MANIFEST).is_file():
        return "dataset"
    if path.is_file() and path.suffix.lower() in (".csv", ".tsv"):
        return "csv"
    if path.is_dir() and not any(path.glob("*.tar")):
        return "folder"
    if shard_list(source):
        return "webdataset"
    raise DatasetError(f"no dataset at {source}: give a dataset folder, a .csv/.tsv file, a folder of images "
                       "with .txt captions, or webdataset shards (a folder, shards/{00000..00009}.tar, a glob)")


# --- checks --------------------------------------------------------------------

def image_problem(raw: bytes) -> str | None:
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
    except Exception:
        return "corrupt or truncated image"
    return None


# Longer is no caption but a document (or a broken quote that swallowed the rows after it);
# it is Python's csv field limit, which the reader is lifted past so that such a row is skipped alone.
MAX_CAPTION_CHARS = 131_072


def caption_of(raw: bytes | None) -> tuple[str | None, str | None]:
    """(caption, None) or (None, reason)."""
    if raw is None:
        return None, "missing caption"
    if len(raw) > 4 * MAX_CAPTION_CHARS:
        return None, f"caption over {MAX_CAPTION_CHARS:,} characters"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "caption is not UTF-8"
    if not text.strip():
        return None, "empty caption"
    if len(text) > MAX_CAPTION_CHARS:
        return None, f"caption over {MAX_CAPTION_CHARS:,} characters"
    return text.strip(), None


# --- webdataset shards, in place ------------------------------------------------

def scan_shard(url: str):
    """(rows without sample ids, skips) of one tar: every key with an image and a usable caption."""
    rows, skips, groups = [], [], {}
    try:
        with tarfile.open(url) as tar:
            for member in tar:
                if not member.isfile() or "." not in Path(member.name).name:
                    continue
                key, ext = member.name.split(".", 1)
                groups.setdefault(key, {})[ext.lower()] = tar.extractfile(member).read()
    except (OSError, tarfile.TarError) as e:
        skips.append((url, None, f"unreadable shard ({type(e).__name__})"))
    for key, parts in groups.items():
        ext = next((e for e in IMAGE_EXTS if e in parts), None)
        if ext is None:
            skips.append((url, key, "missing image"))
            continue
        problem = image_problem(parts[ext])
        caption, caption_problem = caption_of(parts.get("txt"))
        if problem or caption_problem:
            skips.append((url, key, problem or caption_problem))
            continue
        meta = {}
        if "json" in parts:
            try:
                meta = json.loads(parts["json"])
            except ValueError:
                pass
        meta = meta if isinstance(meta, dict) else {}
        origin = {name: None if meta.get(name) is None else str(meta[name])
                  for name in ("uid", "image_path", "url")}   # img2dataset's json has the url (and uid, kept)
        truth = {"is_noisy": truth_of(meta.get("is_noisy")),
                 "label": meta["label"] if type(meta.get("label")) is int else None}
        rows.append({"key": key, "caption": caption, "shard": url, **origin, **truth})
    return rows, skips


def truth_of(value) -> bool | None:
    """An is_noisy field as a source writes it (true / false, 1 / 0), None where absent or unclear."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    return {"true": True, "1": True, "false": False, "0": False}.get(text)


def shard_path(shard: str, out: Path) -> str:
    """Where the manifest says a shard is: relative to the dataset when both sit under one
    folder (so the pair can be moved together), else absolute."""
    shard, out = Path(shard).resolve(), Path(out).resolve()
    return os.path.relpath(shard, out) if shard.is_relative_to(out.parent) else str(shard)


def ingest_shards(urls: list[str], out: Path, split: str, processes: int,
                  quiet: bool = True) -> tuple[list[dict], list]:
    rows, skips, seen = [], [], set()
    with ProcessPoolExecutor(max_workers=processes) as pool:
        for shard_rows, shard_skips in tqdm(pool.map(scan_shard, urls), total=len(urls), desc="checking shards",
                                            unit="shard", disable=quiet):
            skips += shard_skips
            for row in shard_rows:
                if row["key"] in seen:
                    skips.append((row["shard"], row["key"], "duplicate key"))
                    continue
                seen.add(row["key"])
                rows.append(row)
    for sample_id, row in enumerate(rows):
        row.update(sample_id=sample_id, split=split, shard=shard_path(row["shard"], out))
    return rows, skips


# --- CSV and folders, copied into shards ----------------------------------------

def count_rows(source: Path, kind: str) -> int:
    """How many pairs a CSV/TSV or a folder offers (its progress bar's total)."""
    if kind == "csv":
        with source.open("rb") as f:
            return max(sum(1 for _ in f) - 1, 0)
    return sum(1 for p in source.rglob("*") if p.suffix.lower().lstrip(".") in IMAGE_EXTS)


def csv_samples(path: Path, fmt: CsvFormat, split: str, skips: list):
    csv.field_size_limit(max(csv.field_size_limit(), 4 * MAX_CAPTION_CHARS + 1))
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as f:
        reader = csv.DictReader(f, delimiter=fmt.separator)
        missing = {fmt.img_key, fmt.caption_key} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path} has no column {', '.join(sorted(missing))} (columns: "
                               f"{', '.join(reader.fieldnames or ())}): pass --csv-img-key / --csv-caption-key")
        try:
            yield from _csv_rows(path, fmt, split, skips, reader)
        except csv.Error as e:
            raise DatasetError(f"{path} line {reader.line_num}: {e}: fix the row, or check --csv-separator") from e


def _csv_rows(path: Path, fmt: CsvFormat, split: str, skips: list, reader: csv.DictReader):
    """The Samples and skips of a CSV/TSV's rows; a row repeating an earlier one's image and
    caption is a duplicate pair (the same key twice, as a shard's duplicate key is)."""
    seen = set()
    for line, row in enumerate(reader, start=2):
        image_path = (row.get(fmt.img_key) or "").strip()
        key = f"{path.name}:{line}"
        raw_caption = row.get(fmt.caption_key)
        pair = (image_path, raw_caption)
        if pair in seen:
            skips.append((str(path), key, "duplicate pair"))
            continue
        seen.add(pair)
        encoded = None if raw_caption is None else raw_caption.encode("utf-8", errors="surrogateescape")
        uid = (row.get(fmt.uid_key) or "").strip() or None
        yield from _checked_file(path.parent / image_path if image_path else None, encoded, key,
                                 str(path), split, skips, uid=uid, origin=image_path or None,
                                 is_noisy=truth_of(row.get(fmt.noisy_key)))


def folder_samples(root: Path, split: str, skips: list):
    for image_path in sorted(p for p in root.rglob("*") if p.suffix.lower().lstrip(".") in IMAGE_EXTS):
        key = image_path.relative_to(root).with_suffix("").as_posix()
        sidecar = image_path.with_suffix(".txt")
        yield from _checked_file(image_path, sidecar.read_bytes() if sidecar.exists() else None, key,
                                 str(root), split, skips, origin=image_path.relative_to(root).as_posix())


def _checked_file(image_path: Path | None, raw_caption: bytes | None, key: str, source: str, split: str, skips,
                  *, uid: str | None = None, origin: str | None = None, is_noisy: bool | None = None):
    """A Sample of the image file, or a skip. origin: its path as the source gave it."""
    caption, problem = caption_of(raw_caption)
    if problem is None and (image_path is None or not image_path.is_file()):
        problem = "missing image file"
    raw = None
    if problem is None:
        raw = image_path.read_bytes()
        problem = image_problem(raw)
    if problem:
        skips.append((source, key, problem))
        return
    ext = image_path.suffix.lower().lstrip(".")
    yield Sample(split, raw, ext, caption, key=key.replace("/", "_").replace(".", "_").replace(":", "_"),
                 uid=uid, image_path=origin, is_noisy=is_noisy, meta={"source_key": key})


# --- the entry point -------------------------------------------------------------

def ingest(source: str, out: str | os.PathLike, *, split: str = "train", test: str | None = None,
           csv_format: CsvFormat = CsvFormat(), processes: int = 2, quiet: bool = True) -> Ingested:
    """Build the dataset at OUT from SOURCE (its samples in SPLIT) and, where given, the
    held-out source TEST (its samples in the test split), all or nothing; returns it with the
    skip counts (a progress bar with an ETA unless QUIET)."""
    if test is not None and split == "test":
        raise DatasetError("--split test with --test: SOURCE would share the test split with TEST; give --split train")
    sources = [(source, split)] + ([(test, "test")] if test is not None else [])
    for path, _ in sources:
        if kind_of(path) == "dataset":
            raise DatasetError(f"{path} is already a dataset: train on it directly")
    out = Path(out)
    rows, skips = [], []
    with data.staged(out) as staging:
        for path, part in sources:
            part_rows = source_rows(path, part, out, staging, skips, csv_format, processes, quiet)
            if not part_rows:
                raise DatasetError(f"no usable sample in {path} ({len(skips)} skipped)")
            rows += part_rows
        for sample_id, row in enumerate(rows):   # the test source's ids follow SOURCE's
            row["sample_id"] = sample_id
        data.write_manifest(staging, rows, skipped=_skipped_table(skips))
    return Ingested(data.open_dataset(out, require_train=False), Counter(reason for _, _, reason in skips))


def source_rows(source: str, split: str, out: Path, staging: Path, skips: list, csv_format: CsvFormat,
                processes: int, quiet: bool) -> list[dict]:
    """The manifest rows of one source: shards referenced in place, other kinds copied into
    STAGING's SPLIT/ shards."""
    kind = kind_of(source)
    if kind == "webdataset":
        rows, shard_skips = ingest_shards(shard_list(source), out, split, processes, quiet)
        skips += shard_skips
        return rows
    samples = csv_samples(Path(source), csv_format, split, skips) if kind == "csv" else \
        folder_samples(Path(source), split, skips)
    return data.write_shards(staging, tqdm(samples, total=count_rows(Path(source), kind),
                                           desc=f"ingesting {Path(source).name}", unit="pair", disable=quiet),
                             data.SHARD_SIZE)


KARPATHY_CAPTIONS = 5   # captions per image in COCO 5K / Flickr 1K, as CLIP_benchmark evaluates them


def karpathy_entries(split_file: Path, split: str) -> list[dict]:
    """The images of SPLIT in a Karpathy split file (dataset_coco.json, dataset_flickr30k.json:
    {"images": [{"filepath"?, "filename", "split", "sentences": [{"raw"}]}]})."""
    expected = '{"images": [{"filename", "split", "sentences": [{"raw"}]}]}'
    try:
        chosen = [e for e in json.loads(split_file.read_text())["images"] if e.get("split") == split]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise DatasetError(f"{split_file} is not a Karpathy split file ({type(e).__name__}): expected {expected}") from e
    if any(not isinstance(e.get("filename"), str) or not isinstance(e.get("sentences"), list) for e in chosen):
        raise DatasetError(f"{split_file} is not a Karpathy split file (an image without filename or sentences): "
                           f"expected {expected}")
    return chosen


def karpathy_samples(entries: list[dict], split_file: Path, images: Path, skips: list):
    """Each entry's image under IMAGES (filepath/filename) with its first five captions, one per line."""
    for entry in entries:
        relative = Path(entry.get("filepath", "")) / entry["filename"]
        captions = [s.get("raw", "").strip() for s in entry["sentences"]][:KARPATHY_CAPTIONS]
        raw_caption = "\n".join(c for c in captions if c).encode()
        yield from _checked_file(images / relative, raw_caption, relative.as_posix(), str(split_file), "test",
                                 skips, origin=relative.as_posix())


def ingest_karpathy(split_file: str, images: str, out: str | os.PathLike, *, split: str = "test",
                    quiet: bool = True) -> Ingested:
    """A multi-caption test set (COCO 5K, Flickr 1K) from a Karpathy split file and the user's
    image folder, all or nothing; its samples' split is test."""
    split_file, images, out, skips = Path(split_file), Path(images), Path(out), []
    if not split_file.is_file():
        raise DatasetError(f"no Karpathy split file at {split_file}")
    if not images.is_dir():
        raise DatasetError(f"no image folder at {images}: pass --images with the folder the split file's paths "
                           "are relative to")
    entries = karpathy_entries(split_file, split)
    with data.staged(out) as staging:
        samples = tqdm(karpathy_samples(entries, split_file, images, skips), total=len(entries),
                       desc=f"ingesting {split_file.name}", unit="image", disable=quiet)
        rows = data.write_shards(staging, samples, data.SHARD_SIZE)
        if not rows:
            raise DatasetError(f"no usable {split} image in {split_file} under {images} ({len(skips)} skipped)")
        data.write_manifest(staging, rows, skipped=_skipped_table(skips))
    return Ingested(data.open_dataset(out, require_train=False), Counter(reason for _, _, reason in skips))


def _skipped_table(skips) -> pa.Table:
    return pa.Table.from_pylist([dict(source=s, key=k, reason=r, run=None) for s, k, r in skips],
                                schema=SKIPPED_SCHEMA)


def source_signature(source: str) -> str:
    """A cheap fingerprint of a source's files (paths, sizes, mtimes), to reuse an ingest of it."""
    kind = kind_of(source)
    files = shard_list(source) if kind == "webdataset" else [source] if kind == "csv" else \
        sorted(str(p) for p in Path(source).rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for f in files:
        st = os.stat(f)
        digest.update(f"{Path(f).resolve()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def is_wrapped(path) -> bool:
    """Whether PATH is a folder that holds its dataset at PATH/dataset (fetch, make-emoji)."""
    return (Path(path) / FETCHED_DATASET / data.MANIFEST).is_file() and not (Path(path) / data.MANIFEST).is_file()


def dataset_at(path, require_train: bool = False) -> data.Dataset:
    """The dataset folder PATH, or the one `dissect fetch` / `dissect make-emoji` wrote at PATH/dataset."""
    return data.open_dataset(Path(path) / FETCHED_DATASET if is_wrapped(path) else path, require_train=require_train)


def open_source(source: str, workdir: Path, *, csv_format: CsvFormat = CsvFormat(),
                processes: int = 2, quiet: bool = True) -> tuple[data.Dataset, str | None]:
    """A dataset for SOURCE: itself where it is one, else its ingest under WORKDIR, reused
    while the source's files are unchanged. The second value says what was done, if anything."""
    if is_wrapped(source):
        return (dataset_at(source),
                f"using the dataset {Path(source) / FETCHED_DATASET} (as `dissect fetch` and `dissect make-emoji` "
                "write it)")
    if kind_of(source) == "dataset":
        return data.open_dataset(source, require_train=False), None
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(source).stem).strip("_") or "source"
    out = Path(workdir) / f"{stem}-{source_signature(source)[:8]}"
    lock = out.with_name(f".{out.name}.lock")
    created = [p for p in reversed(out.parents) if not p.exists()]
    try:
        with ledger.FileLock(lock):   # two runs ingesting one source at once: one ingests, the other reuses it
            if (out / data.MANIFEST).is_file():
                return data.open_dataset(out, require_train=False), f"reusing the ingest of {source} at {out}"
            ingested = ingest(source, out, csv_format=csv_format, processes=processes, quiet=quiet)
    except BaseException:
        lock.unlink(missing_ok=True)   # a refused source leaves nothing behind in the ledger
        for folder in reversed(created):
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return ingested.dataset, f"ingested {source} into {out}: {ingested.summary()}"
