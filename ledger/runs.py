"""A run's life in the ledger: the OS lock its training process holds, whether that
process is alive, the listing `dissect runs` prints, and removing a run.

The lock is an flock on LEDGER/runs/.RUN.lock, held for as long as the training process
lives (rank 0 under torchrun): the operating system lets it go when the process ends,
however it ends, so a record that says `running` without a holder belongs to a run that died.
"""
import fcntl
import os
import shutil
import socket
from datetime import datetime, timezone
from pathlib import Path

from dissect.ledger.commits import COMMITS
from dissect.ledger.files import remove_unfinished
from dissect.ledger.schema import TABLES
from dissect.ledger.store import LedgerError, check_name, drop_run, named_query, read_run, run_record_path


def lock_path(root, run: str) -> Path:
    return Path(root) / "runs" / f".{run}.lock"


class RunLock:
    """Held while a process trains RUN; a second one is refused, naming the holder."""

    def __init__(self, root, run: str):
        self.path, self.run, self.fd = lock_path(root, run), run, None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LedgerError(f"run {self.run!r} is being trained by {holder}: wait for it to end, "
                              "or pick another --run") from None
        os.ftruncate(fd, 0)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()} since {now}".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def is_live(root, run: str) -> bool:
    """Whether a process holds RUN's lock now."""
    path = lock_path(root, run)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)   # closing releases a lock taken here
    return False


def last_write(root, run: str) -> str:
    """When the run last wrote anything to the ledger (its newest part or record)."""
    files = [run_record_path(root, run), *(p for table in TABLES.values() if ("run", "VARCHAR") in table.partitions
                                           for p in (Path(root) / table.name / f"run={run}").rglob("*.parquet"))]
    newest = max((f.stat().st_mtime for f in files if f.exists()), default=None)
    return "?" if newest is None else datetime.fromtimestamp(newest, timezone.utc).isoformat(timespec="seconds")


def list_runs(root) -> tuple[list[str], list[tuple]]:
    """sql/runs_list.sql, with `died (last write ...)` for a run whose record says running
    but whose process is gone."""
    columns, rows = named_query(root, "runs_list")
    status = columns.index("status")
    fixed = []
    for row in rows:
        if row[status] == "running" and not is_live(root, row[0]):
            row = (*row[:status], f"died (last write {last_write(root, row[0])})", *row[status + 1:])
        fixed.append(row)
    return columns, fixed


def recorded_path(root, path) -> str:
    """PATH as a run record keeps it: relative to the ledger where it lies inside (a copied or
    moved ledger still names its own files), absolute where the user put it elsewhere."""
    resolved, root = Path(path).resolve(), Path(root).resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)


def checkpoint_dir(root, run: str, record: dict | None) -> Path:
    """Where RUN's checkpoint is: its record's `out` (relative to the ledger, or absolute:
    train --out elsewhere), else LEDGER/checkpoints/RUN."""
    out = (record or {}).get("config", {}).get("out")
    return Path(root) / out if out and not Path(out).is_absolute() else Path(out or Path(root) / "checkpoints" / run)


def _inside(root, path: Path) -> bool:
    return path.resolve().is_relative_to(Path(root).resolve())


def drop(root, run: str) -> list[str]:
    """Remove a run's record, its parts in every table, its lock and its checkpoint where it is
    inside the ledger; refuses a run whose process is alive. Returns what it removed (see `doomed`)."""
    gone = doomed(root, run)
    record = read_run(root, run)
    drop_run(root, run)
    folder = checkpoint_dir(root, run, record)
    if _inside(root, folder):
        (folder / "checkpoint.pt").unlink(missing_ok=True)
        remove_unfinished(folder / "checkpoint.pt")
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    lock_path(root, run).unlink(missing_ok=True)
    for table in TABLES.values():
        run_dir = Path(root) / table.name / f"run={run}"
        if run_dir.is_dir():
            shutil.rmtree(run_dir)
    return gone


def doomed(root, run: str) -> list[str]:
    """Every file `drop` would remove: inside the ledger only. Refuses a name `train` would not
    take and a run whose process is alive."""
    check_name("run", run)
    record = read_run(root, run)
    if record is None and not any((Path(root) / t.name / f"run={run}").exists() for t in TABLES.values()):
        raise LedgerError(f"run {run!r} is not in ledger {root}: `dissect runs --ledger {root}` lists them")
    if is_live(root, run):
        raise LedgerError(f"run {run!r} is being trained right now: stop it before dropping it")
    files = [run_record_path(root, run)] if record else []
    files += sorted((Path(root) / COMMITS / f"run={run}").glob("*.json"))
    for table in TABLES.values():
        files += sorted((Path(root) / table.name / f"run={run}").rglob("*.parquet"))
    checkpoint = checkpoint_dir(root, run, record) / "checkpoint.pt"
    files += [checkpoint] if checkpoint.exists() and _inside(root, checkpoint) else []
    return [str(f) for f in files]


def checkpoint_outside(root, run: str) -> Path | None:
    """RUN's checkpoint where it lies outside the ledger (train --out elsewhere): drop leaves it."""
    checkpoint = checkpoint_dir(root, run, read_run(root, run)) / "checkpoint.pt"
    return checkpoint if checkpoint.exists() and not _inside(root, checkpoint) else None
