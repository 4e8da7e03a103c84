"""`dissect fetch`: download image-text pairs with img2dataset, then ingest the shards.

img2dataset writes webdataset shards (KEY.jpg, KEY.txt, KEY.json) and, per shard,
a parquet of every URL's status. The pairs it could not download or decode are
added to the dataset's skipped.parquet, so the count of what was lost is complete.
"""
import contextlib
import csv
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dissect.engine.data import ingest
from dissect.engine.data import SKIPPED, DatasetError

INPUT_FORMATS = {".parquet": "parquet", ".csv": "csv", ".tsv": "tsv", ".txt": "txt"}


def fetch(urls: str, out: str, *, image_size: int = 256, processes: int = 1, threads: int = 16,
          url_col: str = "url", caption_col: str = "caption", resize_mode: str = "center_crop",
          timeout: int = 10, retries: int = 0, samples_per_shard: int = 10000,
          quiet: bool = True) -> ingest.Ingested:
    """Download URLS (parquet, csv, tsv or txt with url and caption columns) into OUT/shards,
    then ingest them into the dataset OUT/dataset. img2dataset reports its own progress (per
    shard, with its rate); QUIET silences it and the ingest's."""
    source = Path(urls)
    if not source.is_file():
        raise DatasetError(f"no URL list at {urls}")
    input_format = INPUT_FORMATS.get(source.suffix.lower())
    if input_format is None:
        raise DatasetError(f"{urls}: give a .parquet, .csv, .tsv or .txt list of URLs")
    try:
        columns = list_columns(source, input_format)
    except (OSError, UnicodeDecodeError, pa.ArrowInvalid) as e:
        raise DatasetError(f"{urls} cannot be read as {input_format}: {str(e).splitlines()[0]}") from None
    if input_format == "txt" and not columns:
        raise DatasetError(f"{urls} is not a list of URLs, one a line: its first line holds no ://")
    wanted = {"--url-col": url_col} if input_format == "txt" else {"--url-col": url_col, "--caption-col": caption_col}
    for flag, column in wanted.items():
        if column not in columns:
            raise DatasetError(f"{urls} has no column {column!r} (it has {', '.join(map(repr, columns)) or 'none'}): "
                               f"name the right one with {flag}")
    out = Path(out)
    shards, dataset = out / "shards", out / ingest.FETCHED_DATASET
    if dataset.exists():
        raise DatasetError(f"{dataset} exists: choose a new --out")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check at import
    from img2dataset import download

    extra = [c for c in ("uid",) if c in columns]   # DataComp-style ids round-trip
    with silenced(quiet):
        download(url_list=str(source), output_folder=str(shards), output_format="webdataset",
                 save_additional_columns=extra or None,
                 input_format=input_format, url_col=url_col, caption_col=caption_col, image_size=image_size,
                 resize_mode=resize_mode, processes_count=processes, thread_count=threads, timeout=timeout,
                 retries=retries, number_sample_per_shard=samples_per_shard, enable_wandb=False,
                 disallowed_header_directives=[], compute_hash=None)
    if not ingest.shard_list(str(shards)):
        raise DatasetError(f"img2dataset wrote no shard to {shards}: see its output above")
    result = ingest.ingest(str(shards), dataset, quiet=quiet)
    failed = download_failures(shards)
    if failed.num_rows:
        skipped_path = dataset / SKIPPED
        known = pq.read_table(skipped_path) if skipped_path.exists() else failed.schema.empty_table()
        pq.write_table(pa.concat_tables([known, failed]), skipped_path)
        for reason in failed["reason"].to_pylist():
            result.skipped[reason] += 1
    return result


@contextlib.contextmanager
def silenced(quiet: bool):
    """Standard output and error of this process and the ones it starts (img2dataset's
    workers write to the inherited descriptors) to /dev/null while QUIET."""
    if not quiet:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def list_columns(source: Path, input_format: str) -> list[str]:
    if input_format == "parquet":
        return pq.read_schema(source).names
    if input_format == "txt":   # one URL a line: a file whose first line is no URL is not such a list
        with source.open(errors="replace") as lines:   # the first line only: a URL list may be millions long
            first = next((line for line in lines if line.strip()), "")
        return ["url"] if "://" in first else []
    with source.open(newline="") as f:
        return next(csv.reader(f, delimiter="\t" if input_format == "tsv" else ","), [])


def download_failures(shards: Path) -> pa.Table:
    """img2dataset's failed rows as skipped rows: source = the URL, reason = download: error."""
    tables = [pq.read_table(p, columns=["key", "url", "status", "error_message"]) for p in sorted(shards.glob("*.parquet"))]
    if not tables:
        return ingest.SKIPPED_SCHEMA.empty_table()
    stats = pa.concat_tables(tables)
    failed = stats.filter(pc.not_equal(stats["status"], "success"))
    reasons = [f"download failed: {(e or 'unknown error').splitlines()[0][:80]}" for e in failed["error_message"].to_pylist()]
    return pa.table({"source": failed["url"], "key": failed["key"], "reason": pa.array(reasons, pa.string()),
                     "run": pa.nulls(failed.num_rows, pa.string())}, schema=ingest.SKIPPED_SCHEMA)
