"""The score ledger: hive-partitioned Parquet that DuckDB reads as tables.

Usable without torch: `from dissect.ledger import query` needs duckdb and pyarrow.
"""
from dissect.ledger.schema import TABLES
from dissect.ledger.store import (
    LedgerError,
    add_samples,
    atomic_path,
    check_name,
    check_root,
    connect,
    dataset_path,
    drop_epochs,
    drop_run,
    named_query,
    query,
    query_table,
    read_run,
    write_run,
    write_text_atomic,
)
from dissect.ledger.runs import FileLock, RunLock, is_live, list_runs
from dissect.ledger.writer import LedgerWriter

__all__ = [
    "TABLES",
    "LedgerError",
    "LedgerWriter",
    "FileLock",
    "RunLock",
    "is_live",
    "list_runs",
    "add_samples",
    "atomic_path",
    "check_name",
    "check_root",
    "connect",
    "dataset_path",
    "drop_epochs",
    "drop_run",
    "named_query",
    "query",
    "query_table",
    "read_run",
    "write_run",
    "write_text_atomic",
]
