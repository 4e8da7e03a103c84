"""The score ledger: hive-partitioned Parquet that DuckDB reads as tables.

Usable without torch: `from dissect.ledger import query` needs duckdb and pyarrow.
"""
from dissect.ledger.schema import TABLES, RunRecord
from dissect.ledger.store import (
    ENGINES,
    LedgerError,
    add_samples,
    check_name,
    check_root,
    connect,
    damaged,
    dataset_path,
    named_query,
    oracle_exists,
    query,
    query_table,
    set_variables,
    unbound_variables,
)
from dissect.ledger.check import check
from dissect.ledger.compaction import compact
from dissect.ledger.files import FileLock, atomic_path, write_text_atomic
from dissect.ledger.runs import Run, datasets_dir, list_runs
from dissect.ledger.summaries import add_oracle as summarise_oracle
from dissect.ledger.writer import LedgerWriter

__all__ = [
    "ENGINES",
    "TABLES",
    "RunRecord",
    "LedgerError",
    "LedgerWriter",
    "Run",
    "datasets_dir",
    "FileLock",
    "list_runs",
    "add_samples",
    "atomic_path",
    "check_name",
    "check",
    "check_root",
    "compact",
    "connect",
    "damaged",
    "dataset_path",
    "named_query",
    "oracle_exists",
    "query",
    "query_table",
    "set_variables",
    "unbound_variables",
    "summarise_oracle",
    "write_text_atomic",
]
