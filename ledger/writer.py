"""Write side of the ledger: a background thread that turns rows into Parquet parts.

The training loop hands over numpy columns and goes on; it waits on disk only when
it calls flush() or commit() (at the end of an epoch, for that epoch's parts) or when
the queue of 256 unwritten steps is full. Rows are buffered per partition and written
as one part at flush() or when a buffer grows past `max_rows`. Each part is written
under a hidden temporary name and renamed into place, so a reader, or a crash, never
sees half a file; readers see a part once commit() has committed it (commits.py).
A writer that fails deletes the parts it wrote and did not commit.
"""
import queue
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dissect.ledger import commits, summaries
from dissect.ledger.files import atomic_path
from dissect.ledger.schema import TABLES

_FLUSH = object()
_STOP = object()


class LedgerWriter:
    """COMMITS=False for a writer whose parts another process commits (ranks > 0 under torchrun).
    A partition's rows go to disk as a part every MAX_ROWS rows, so the writer's memory stays
    bounded whatever the epoch's size."""
    PART_ROWS = 1_000_000   # one Parquet row group of DuckDB's liking per part

    def __init__(self, root, *, rank: int = 0, max_rows: int = PART_ROWS, commits: bool = True):
        self.root = Path(root)
        self.rank = rank
        self.max_rows = max_rows
        self.commits = commits
        self._written: list[tuple[str, Path]] = []   # (unit, part) written and not yet committed
        self._queue: queue.Queue = queue.Queue(maxsize=256)
        self._buffers: dict[tuple, list[dict]] = defaultdict(list)
        self._rows: dict[tuple, int] = defaultdict(int)
        self._next_part: dict[str, int] = defaultdict(int)
        self._error: BaseException | None = None
        self._summariser = summaries.Summariser(self.root)
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    # --- called from the training loop ---------------------------------------

    def add(self, table: str, partition: dict, columns: dict[str, np.ndarray]) -> None:
        """Queue rows for `table` in `partition` (e.g. run=..., epoch=...)."""
        self._raise_if_failed()
        key = (table, tuple(sorted(partition.items())))
        self._queue.put((key, columns))

    def flush(self) -> None:
        """Block until every queued row is in a Parquet part on disk."""
        self._raise_if_failed()
        done = threading.Event()
        self._queue.put((_FLUSH, done))
        done.wait()
        self._raise_if_failed()

    def commit(self, unit: str | None = None, *, replace: bool = False) -> None:
        """Flush, then commit what this writer wrote since its last commit: all of it into UNIT
        (with every other rank's parts of an epoch unit), or without UNIT each part into its own
        table's unit. REPLACE: instead of what the unit held. A part leaves the writer's list of
        uncommitted parts only once its commit is written, so a failed commit deletes it too."""
        self.flush()
        if unit is not None:
            ours = [p for _, p in self._written]
            self._commit(unit, list({p: None for p in [*ours, *commits.epoch_parts(self.root, unit)]}), replace)
            self._written = []
            return
        by_unit: dict[str, list[Path]] = defaultdict(list)
        for part_unit, part in self._written:
            by_unit[part_unit].append(part)
        # datasets and oracles first: an epoch's summaries read the splits they define
        for part_unit in sorted(by_unit, key=commits.is_epoch_unit):
            self._commit(part_unit, by_unit[part_unit], replace)
            self._written = [(u, p) for u, p in self._written if u != part_unit]

    def _commit(self, unit: str, parts: list[Path], replace: bool) -> None:
        summaries_written = []
        try:
            if commits.is_epoch_unit(unit):   # an epoch: its summaries by class go in with it
                before = None if replace else commits.read_record(self.root, unit)
                known = [self.root / rel for rel in (before or {}).get("parts", {})]
                summaries_written = self._summariser.epoch(unit, [*known, *parts])
            commits.commit(self.root, unit, [*parts, *summaries_written], replace=replace)
        except BaseException:
            for part in summaries_written:
                part.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        """Write and commit what is still buffered, then stop the thread."""
        if self._thread.is_alive():
            if self.commits:
                self.commit()
            else:
                self.flush()
            self._queue.put((_STOP, None))
            self._thread.join()
        self._summariser.close()
        self._raise_if_failed()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            # Unflushed rows stay unwritten and written parts are deleted: a resumed run rewrites that epoch.
            self._queue.put((_STOP, None))
            self._thread.join()
            self._summariser.close()
            for _, part in self._written:
                part.unlink(missing_ok=True)

    # --- the writer thread ---------------------------------------------------

    def _raise_if_failed(self):
        if isinstance(self._error, OSError):   # a full disk, a read-only ledger: the machine's own words
            raise self._error
        if self._error is not None:
            raise RuntimeError(f"ledger writer failed: {self._error}") from self._error

    def _run(self):
        while True:
            key, payload = self._queue.get()
            if key is _STOP:
                return
            try:
                if key is _FLUSH:
                    if self._error is None:
                        for buffered in list(self._buffers):
                            self._write_part(buffered)
                    payload.set()
                    continue
                if self._error is None:
                    self._buffers[key].append(payload)
                    self._rows[key] += len(next(iter(payload.values())))
                    if self._rows[key] >= self.max_rows:
                        self._write_part(key)
            except BaseException as e:  # surfaced to the training loop on its next call
                self._error = e
                if key is _FLUSH:
                    payload.set()

    def _write_part(self, key):
        table_name, partition = key
        chunks = self._buffers.pop(key)
        self._rows.pop(key)
        table = TABLES[table_name]
        schema = table.columns
        arrays = [
            pa.array(np.concatenate([np.asarray(c[f.name]) for c in chunks]), type=f.type, from_pandas=True)
            for f in schema
        ]
        part_dir = self.root / table.partition_dir(**dict(partition))
        part_dir.mkdir(parents=True, exist_ok=True)
        # The next free part number: another writer (a later `dissect eval`) may have added parts here.
        n = self._next_part[str(part_dir)]
        while (part_dir / f"part-{self.rank}-{n:05d}.parquet").exists():
            n += 1
        self._next_part[str(part_dir)] = n + 1
        part = pa.Table.from_arrays(arrays, schema=schema)
        if "sample_id" in schema.names:
            # Sorted parts make a sample's history a row-group lookup and joins on sample_id cheaper.
            part = part.sort_by("sample_id")
        path = part_dir / f"part-{self.rank}-{n:05d}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(part, tmp, write_page_checksum=True)   # `dissect check` verifies every page
        if self.commits:
            self._written.append((commits.unit_of(table_name, dict(partition)), path))
