"""Writing files so that a reader, or a crash, never sees half of one; and the one lock
helper, which lets one process at a time do what it guards."""
import contextlib
import fcntl
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq


UNFINISHED = ".tmp"   # the suffix of atomic_path's temporary files


@contextlib.contextmanager
def atomic_path(path):
    """A hidden temporary path beside PATH to write to; renamed into place when the block
    succeeds, removed when it fails, so a reader (or a crash) never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{UNFINISHED}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None:   # pyarrow's and torch's errors do not say which file: a full disk names it
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    finally:
        tmp.unlink(missing_ok=True)


def is_unfinished(path) -> bool:
    """Whether PATH is an atomic write that never finished (its process was killed)."""
    return Path(path).name.endswith(UNFINISHED)


def remove_unfinished(path) -> None:
    """Delete what killed processes left of their atomic writes to PATH."""
    path = Path(path)
    for tmp in path.parent.glob(f".{path.name}.*{UNFINISHED}"):
        tmp.unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_parquet_atomic(table, path, **options) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, write_page_checksum=True, **options)


class LockHeld(Exception):
    """A lock taken with wait=False that another process holds; `holder` is its note."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


class FileLock:
    """An flock on PATH: one process at a time does what it guards. Waited for, or with
    wait=False refused at once (LockHeld, with the note of the process that holds it). The
    operating system lets it go when the process ends, however it ends."""

    def __init__(self, path, *, wait: bool = True):
        self.path, self.wait, self.fd = Path(path), wait, None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockHeld(holder) from None
        os.ftruncate(fd, 0)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()} since {now}".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def is_held(path) -> bool:
    """Whether a process holds the FileLock on PATH now."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)   # closing releases a lock taken here
    return False
