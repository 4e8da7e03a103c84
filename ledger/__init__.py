"""The score ledger: hive-partitioned Parquet that DuckDB reads as tables.

Usable without torch: `from dissect.ledger import query` needs duckdb and pyarrow.
"""
from dissect.ledger.schema import TABLES
from dissect.ledger.store import (
    LedgerError,
    add_samples,
    check_name,
    check_root,
    connect,
    dataset_path,
    drop_epochs,
    drop_run,
    named_query,
    query,
    read_run,
    write_run,
)
from dissect.ledger.runs import RunLock, is_live, list_runs
from dissect.ledger.writer import LedgerWriter

__all__ = [
    "TABLES",
    "LedgerError",
    "LedgerWriter",
    "RunLock",
    "is_live",
    "list_runs",
    "add_samples",
    "check_name",
    "check_root",
    "connect",
    "dataset_path",
    "drop_epochs",
    "drop_run",
    "named_query",
    "query",
    "read_run",
    "write_run",
]
