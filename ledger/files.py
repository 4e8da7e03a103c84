"""Writing files so that a reader, or a crash, never sees half of one; and a lock that
lets one process at a time do what it guards."""
import contextlib
import fcntl
import os
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


def write_parquet_atomic(table, path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, write_page_checksum=True)


class FileLock:
    """An flock on PATH, waited for: one process at a time does what it guards."""

    def __init__(self, path):
        self.path, self.fd = Path(path), None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
