"""Read side of the ledger: a DuckDB connection with one view per table.

A ledger is a folder of Parquet parts and JSON run records (see schema.py).
Nothing here imports torch: analysing a ledger needs duckdb and pyarrow only.
"""
import contextlib
import glob as globlib
import json
import os
import re
import shutil
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dissect.ledger.schema import RUN_COLUMNS, TABLES, duckdb_columns


class LedgerError(Exception):
    """A ledger that cannot serve the request; the message says what to do."""


NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
# Characters DuckDB's globs would read as patterns or escapes in a ledger's path.
GLOB_CHARACTERS = set("[]*?{}\\")
# What `dissect query` runs: reading statements, and in-memory definitions (the database
# lives in memory: a CREATE there writes nothing). Nothing that writes files or loads code.
READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN, duckdb.StatementType.SET,
             duckdb.StatementType.MULTI, duckdb.StatementType.CREATE}


def check_name(kind: str, name: str) -> str:
    """A run's or an oracle's name: it names folders and hive partitions, so only letters,
    digits, '-', '_' and '.' (not first), at most 128 characters."""
    if not isinstance(name, str) or not NAME.match(name):
        raise LedgerError(f"{kind} name {name!r} is not usable: use letters, digits, '-', '_' and '.' "
                          "(not first), at most 128 characters")
    return name


def check_root(root) -> Path:
    """A ledger folder whose path DuckDB's globs read literally."""
    bad = sorted(set(str(root)) & GLOB_CHARACTERS)
    if bad:
        raise LedgerError(f"ledger path {str(root)!r} contains {' '.join(bad)}, which DuckDB's file globs would "
                          "read as a pattern: use a folder without them")
    return Path(root)


def sql_text(name: str) -> str:
    return resources.files("dissect.ledger").joinpath("sql", name).read_text()


def _quote(path: str) -> str:
    return path.replace("'", "''")


def _has_files(pattern: str) -> bool:
    return next(globlib.iglob(pattern), None) is not None


def _typed_nulls(columns) -> str:
    return ", ".join(f'CAST(NULL AS {typ}) AS "{col}"' for col, typ in columns)


def connect(root: str | os.PathLike, *, must_exist: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views scores, steps, evals, samples, oracle, runs,
    and the macros of sql/macros.sql."""
    root = check_root(root)
    if must_exist and not root.is_dir():
        raise LedgerError(f"no ledger at {root}: pass --ledger with the folder `dissect train` wrote")
    con = duckdb.connect()
    for table in TABLES.values():
        columns = duckdb_columns(table)
        pattern = str(root / table.glob)
        if _has_files(pattern):
            hive_types = ", ".join(f"'{col}': {typ}" for col, typ in table.partitions)
            sql = sql_text("parquet_view.sql").format(
                name=table.name,
                columns=", ".join(f'"{col}"' for col, _ in columns),
                glob=_quote(pattern),
                hive_types=hive_types,
            )
        else:
            sql = sql_text("empty_view.sql").format(name=table.name, typed_nulls=_typed_nulls(columns))
        con.execute(sql)
    runs_glob = str(root / "runs" / "*.json")
    if _has_files(runs_glob):
        columns = ", ".join(f'CAST("{col}" AS {typ}) AS "{col}"' for col, typ in RUN_COLUMNS)
        # timestamps are read as text and cast: the records hold ISO times with an offset
        json_columns = ", ".join(f"'{col}': '{'VARCHAR' if typ == 'TIMESTAMP' else typ}'" for col, typ in RUN_COLUMNS)
        con.execute(sql_text("runs_view.sql").format(columns=columns, json_columns=json_columns,
                                                     glob=_quote(runs_glob)))
    else:
        empty = [*RUN_COLUMNS, ("config", "JSON"), ("versions", "JSON")]
        con.execute(sql_text("empty_view.sql").format(name="runs", typed_nulls=_typed_nulls(empty)))
    con.execute(sql_text("macros.sql"))
    return con


def query(root, sql: str, params=None) -> tuple[list[str], list[tuple]]:
    """Run SQL against the ledger's views: (column names, rows) of its last statement.
    Read-only: a statement that could write (COPY, EXPORT, ATTACH, INSERT, INSTALL, LOAD, ...)
    is refused, so nothing in the ledger's folder changes. params: a list for ?, or a dict
    for $name."""
    with _read_only(root, sql) as con:
        cur = con.execute(sql, params or [])
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()


def query_table(root, sql: str, params=None) -> pa.Table:
    """The same as query, as an Arrow table (for Parquet)."""
    with _read_only(root, sql) as con:
        relation = con.sql(sql, params=params)
        return pa.table({}) if relation is None else relation.to_arrow_table()


@contextlib.contextmanager
def _read_only(root, sql: str):
    """The ledger's connection, once every statement of SQL is one that cannot write."""
    con = connect(root)
    try:
        for statement in con.extract_statements(sql):
            if statement.type not in READ_ONLY:
                raise LedgerError(f"dissect query is read-only: {statement.type.name} statements are refused "
                                  "(SELECT, WITH, PIVOT, DESCRIBE, SUMMARIZE, EXPLAIN, SET VARIABLE and in-memory "
                                  "CREATE VIEW / MACRO run; results leave through --format and --out)")
        yield con
    except duckdb.Error as e:
        raise LedgerError(str(e).splitlines()[0]) from e
    finally:
        con.close()


def named_query(root, name: str, params=None) -> tuple[list[str], list[tuple]]:
    """Run one of the package's .sql files (ledger/sql/NAME.sql)."""
    return query(root, sql_text(f"{name}.sql"), params)


# --- run records -----------------------------------------------------------

def run_record_path(root, run: str) -> Path:
    return Path(root) / "runs" / f"{run}.json"


def read_run(root, run: str) -> dict | None:
    path = run_record_path(root, run)
    if not path.exists():
        return None
    return json.loads(path.read_text())


@contextlib.contextmanager
def atomic_path(path):
    """A hidden temporary path beside PATH to write to; renamed into place when the block
    succeeds, removed when it fails, so a reader (or a crash) never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_run(root, record: dict) -> None:
    """Write runs/<name>.json atomically, so a reader never sees half a record."""
    write_text_atomic(run_record_path(root, record["name"]), json.dumps(record, indent=2, default=str))


def drop_epochs(root, run: str, from_epoch: int) -> None:
    """Remove every partition of `run` at epoch >= from_epoch (a resumed run rewrites them)."""
    for table in TABLES.values():
        if ("epoch", "INTEGER") not in table.partitions:
            continue
        run_dir = Path(root) / table.name / f"run={run}"
        for epoch_dir in run_dir.glob("epoch=*"):
            if int(epoch_dir.name.split("=", 1)[1]) >= from_epoch:
                shutil.rmtree(epoch_dir)


def drop_run(root, run: str) -> None:
    """Remove a run's record and every partition it wrote (to train it again from scratch)."""
    drop_epochs(root, run, 0)
    run_record_path(root, run).unlink(missing_ok=True)


def dataset_path(root, dataset: str) -> str:
    """Where the ledger's runs found a dataset's folder."""
    row = query(root, "SELECT any_value(dataset_path) FROM runs WHERE dataset = ?", [dataset])[1]
    if not row or row[0][0] is None:
        raise LedgerError(f"no run of {dataset} in ledger {root} says where its folder is: pass --data")
    return row[0][0]


# --- the samples table -------------------------------------------------------

def dataset_fingerprint_in_ledger(root, dataset: str) -> str | None:
    marker = Path(root) / TABLES["samples"].partition_dir(dataset=dataset) / "_fingerprint"
    return marker.read_text().strip() if marker.exists() else None


def add_samples(root, dataset: str, fingerprint: str, manifest, skipped=None) -> None:
    """Copy a dataset's manifest (and the samples its ingest skipped) into samples/dataset=NAME
    (skipped/dataset=NAME) once; refuse another dataset under the same name."""
    known = dataset_fingerprint_in_ledger(root, dataset)
    if known == fingerprint:
        return
    if known is not None:
        raise LedgerError(
            f"ledger already holds a different dataset named {dataset!r} (fingerprint {known[:12]}, "
            f"this one {fingerprint[:12]}): use another --ledger"
        )
    part_dir = Path(root) / TABLES["samples"].partition_dir(dataset=dataset)
    part_dir.mkdir(parents=True, exist_ok=True)
    columns = TABLES["samples"].columns
    for f in columns:  # a manifest written before a column existed gets it as NULL
        if f.name not in manifest.column_names:
            manifest = manifest.append_column(f.name, pa.nulls(manifest.num_rows, f.type))
    _write_atomic(manifest.select(columns.names).cast(columns), part_dir / "part-0.parquet")
    if skipped is not None and skipped.num_rows:
        skip_dir = Path(root) / TABLES["skipped"].partition_dir(dataset=dataset)
        skip_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(skipped.cast(TABLES["skipped"].columns), skip_dir / "part-ingest.parquet")
    (part_dir / "_fingerprint").write_text(fingerprint)


def _write_atomic(table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
