"""A run in the ledger, as sqlite-utils' Table is a table in its database: `Run` owns every
path a run has (its record, lock, parts and checkpoint), its life cycle (lock, record,
epochs committed before the checkpoint, what --resume removes) and `dissect drop`.
Nothing outside ledger/ builds or parses one of these paths.

    runs/RUN.json                        the run record (schema.RunRecord)
    runs/.RUN.lock                       held by the training process (rank 0) while it lives
    TABLE/run=RUN/epoch=E/part-*.parquet its parts, committed as the unit run=RUN/epoch=E
    checkpoints/RUN/checkpoint.pt        its checkpoint, or in `train --out` (the record says where)

The lock is an flock, so the operating system lets it go when the process ends, however it
ends: a record that says `running` without a holder belongs to a run that died.
"""
import json
import shutil
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from dissect.ledger import commits
from dissect.ledger.files import FileLock, LockHeld, atomic_path, is_held, remove_unfinished, write_text_atomic
from dissect.ledger.schema import RUNS_DIR, TABLES, RunRecord, hive_values
from dissect.ledger.store import LedgerError, check_name, check_root, named_query
from dissect.ledger.writer import LedgerWriter

CHECKPOINT = "checkpoint.pt"
CHECKPOINTS_DIR = "checkpoints"
RUN_TABLES = [t for t in TABLES.values() if t.partitions[0][0] == "run"]


class Run:
    """RUN in the ledger at ROOT. CHECKPOINT_DIR: where its checkpoint goes (`train --out`);
    by default the folder its record names, else LEDGER/checkpoints/RUN."""

    def __init__(self, root, name: str, checkpoint_dir=None):
        self.root = check_root(root)
        self.name = check_name("run", name)
        self._checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)

    # --- where things are ------------------------------------------------------

    @property
    def record_path(self) -> Path:
        return self.root / RUNS_DIR / f"{self.name}.json"

    @property
    def lock_path(self) -> Path:
        return self.root / RUNS_DIR / f".{self.name}.lock"

    def folder(self, table: str) -> Path:
        """TABLE/run=RUN: every part of this run in TABLE lies below it."""
        return self.root / TABLES[table].partition_dir(run=self.name)

    @property
    def checkpoint_dir(self) -> Path:
        if self._checkpoint_dir is not None:
            return self._checkpoint_dir
        out = ((self.record() or {}).get("config") or {}).get("out")
        if out:   # relative to the ledger where it lies inside (recorded_checkpoint_dir), else absolute
            return Path(out) if Path(out).is_absolute() else self.root / out
        return self.root / CHECKPOINTS_DIR / self.name

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint_dir / CHECKPOINT

    def recorded_checkpoint_dir(self) -> str:
        """The checkpoint folder as the run record keeps it: relative to the ledger where it lies
        inside (a copied or moved ledger still names its own files), absolute elsewhere."""
        folder, root = self.checkpoint_dir.resolve(), self.root.resolve()
        return str(folder.relative_to(root)) if folder.is_relative_to(root) else str(folder)

    def _inside(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.root.resolve())

    # --- record and status -----------------------------------------------------

    def record(self) -> dict | None:
        return json.loads(self.record_path.read_text()) if self.record_path.exists() else None

    def write_record(self, record: RunRecord) -> None:
        """Atomically, so a reader never sees half a record."""
        if record.name != self.name:
            raise ValueError(f"the record of run {record.name!r} is not run {self.name!r}'s")
        write_text_atomic(self.record_path, json.dumps(asdict(record), indent=2, default=str))

    def exists(self) -> bool:
        return self.record_path.exists() or any(self.folder(t.name).exists() for t in RUN_TABLES)

    def is_live(self) -> bool:
        """Whether a process holds the run's lock now."""
        return is_held(self.lock_path)

    def lock(self) -> FileLock:
        """Held while a process trains the run (until it ends); a second one is refused, naming the holder."""
        return _RunLock(self)

    def last_write(self) -> str:
        """When the run last wrote anything to the ledger (its newest part or record)."""
        files = [self.record_path, *(p for t in RUN_TABLES for p in self.folder(t.name).rglob("*.parquet"))]
        newest = max((f.stat().st_mtime for f in files if f.exists()), default=None)
        return "?" if newest is None else datetime.fromtimestamp(newest, timezone.utc).isoformat(timespec="seconds")

    # --- training --------------------------------------------------------------

    def writer(self, *, rank: int = 0, commits: bool = True) -> LedgerWriter:
        return LedgerWriter(self.root, rank=rank, commits=commits)

    def add(self, writer: LedgerWriter, table: str, epoch: int, columns: dict) -> None:
        """Queue rows of TABLE in this run's EPOCH."""
        writer.add(table, {"run": self.name, "epoch": epoch}, columns)

    def commit_epoch(self, writer: LedgerWriter, epoch: int) -> None:
        """Commit every rank's parts of EPOCH. Called before save_checkpoint: a checkpoint's
        epochs are always whole in the ledger."""
        writer.commit(commits.epoch_unit(self.name, epoch))

    def save_checkpoint(self, save) -> None:
        """SAVE(path) writes the checkpoint to a temporary path, renamed into place once whole."""
        with atomic_path(self.checkpoint_path) as tmp:
            save(tmp)

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()

    def committed_epochs(self) -> list[int]:
        return [epoch for epoch, _ in commits.run_units(self.root, self.name)]

    def drop_epochs(self, from_epoch: int) -> None:
        """Remove every epoch >= FROM_EPOCH, committed or not."""
        for epoch, unit in commits.run_units(self.root, self.name):
            if epoch >= from_epoch:
                commits.uncommit(self.root, unit)
        for table in commits.EPOCH_TABLES:
            for epoch_dir in self.folder(table.name).glob("epoch=*"):
                if int(hive_values(epoch_dir.name)["epoch"]) >= from_epoch:
                    shutil.rmtree(epoch_dir)

    def resume_from(self, epoch: int) -> None:
        """What --resume removes before it trains EPOCH again from the checkpoint: the epochs from
        EPOCH on (an epoch a dead or stopped run never committed among them) and what a killed
        process left of a checkpoint write."""
        self.drop_epochs(epoch)
        remove_unfinished(self.checkpoint_path)

    # --- dropping --------------------------------------------------------------

    def doomed(self) -> list[str]:
        """Every file `drop` would remove: inside the ledger only. Refuses a run that is not in
        the ledger and one whose process is alive."""
        if not self.exists():
            raise LedgerError(f"run {self.name!r} is not in ledger {self.root}: "
                              f"`dissect runs --ledger {self.root}` lists them")
        if self.is_live():
            raise LedgerError(f"run {self.name!r} is being trained right now: stop it before dropping it")
        files = [self.record_path] if self.record_path.exists() else []
        files += sorted(commits.run_records_dir(self.root, self.name).glob("*.json"))
        for table in RUN_TABLES:
            files += sorted(self.folder(table.name).rglob("*.parquet"))
        files += [self.checkpoint_path] if self.has_checkpoint() and self._inside(self.checkpoint_path) else []
        return [str(f) for f in files]

    def checkpoint_outside(self) -> Path | None:
        """The checkpoint where it lies outside the ledger (train --out elsewhere): drop leaves it."""
        return self.checkpoint_path if self.has_checkpoint() and not self._inside(self.checkpoint_path) else None

    def drop(self) -> list[str]:
        """Remove the run's record, its parts in every table, its lock and its checkpoint where it
        is inside the ledger; refuses a run whose process is alive. Returns what it removed."""
        gone = self.doomed()
        folder = self.checkpoint_dir   # from the record, read before it goes
        self.drop_epochs(0)
        shutil.rmtree(commits.run_records_dir(self.root, self.name), ignore_errors=True)
        self.record_path.unlink(missing_ok=True)
        if self._inside(folder):
            (folder / CHECKPOINT).unlink(missing_ok=True)
            remove_unfinished(folder / CHECKPOINT)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        self.lock_path.unlink(missing_ok=True)
        for table in RUN_TABLES:
            shutil.rmtree(self.folder(table.name), ignore_errors=True)
        return gone


class _RunLock(FileLock):
    def __init__(self, run: Run):
        super().__init__(run.lock_path, wait=False)
        self.run = run

    def __enter__(self):
        try:
            return super().__enter__()
        except LockHeld as e:
            raise LedgerError(f"run {self.run.name!r} is being trained by {e.holder}: wait for it to end, "
                              "or pick another --run") from None


def list_runs(root) -> tuple[list[str], list[tuple]]:
    """sql/runs_list.sql, with `died (last write ...)` for a run whose record says running
    but whose process is gone."""
    columns, rows = named_query(root, "runs_list")
    status = columns.index("status")
    fixed = []
    for row in rows:
        run = Run(root, row[0])
        if row[status] == "running" and not run.is_live():
            row = (*row[:status], f"died (last write {run.last_write()})", *row[status + 1:])
        fixed.append(row)
    return columns, fixed


def datasets_dir(root) -> Path:
    """Where `train` ingests a source that is not yet a dataset (CSV, an img2dataset folder)."""
    return Path(root) / "datasets"
