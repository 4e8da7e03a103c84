"""The score ledger: hive-partitioned Parquet that DuckDB reads as tables.

Usable without torch: `from dissect.ledger import query` needs duckdb and pyarrow.
"""
from dissect.ledger.schema import TABLES, RunRecord
from dissect.ledger.store import (
    LedgerError,
    add_samples,
    check_name,
    check_root,
    connect,
    damaged,
    dataset_path,
    drop_epochs,
    drop_run,
    named_query,
    oracle_exists,
    query,
    query_table,
    read_run,
    set_variables,
    unbound_variables,
    write_run,
)
from dissect.ledger.commits import epoch_unit
from dissect.ledger.check import check
from dissect.ledger.files import FileLock, atomic_path, remove_unfinished, write_text_atomic
from dissect.ledger.runs import RunLock, is_live, list_runs, recorded_path
from dissect.ledger.summaries import add_oracle as summarise_oracle
from dissect.ledger.writer import LedgerWriter

__all__ = [
    "TABLES",
    "RunRecord",
    "LedgerError",
    "LedgerWriter",
    "FileLock",
    "RunLock",
    "is_live",
    "list_runs",
    "add_samples",
    "atomic_path",
    "remove_unfinished",
    "check_name",
    "check",
    "check_root",
    "connect",
    "damaged",
    "dataset_path",
    "drop_epochs",
    "drop_run",
    "epoch_unit",
    "named_query",
    "oracle_exists",
    "query",
    "query_table",
    "read_run",
    "recorded_path",
    "set_variables",
    "unbound_variables",
    "summarise_oracle",
    "write_run",
    "write_text_atomic",
]
