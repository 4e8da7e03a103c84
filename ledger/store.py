"""Read side of the ledger: a DuckDB connection with one view per table.

A ledger is a folder of Parquet parts and JSON run records (see schema.py).
Nothing here imports torch: analysing a ledger needs duckdb and pyarrow only.
"""
import contextlib
import os
import re
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dissect.ledger import commits
from dissect.ledger.files import write_parquet_atomic
from dissect.ledger.schema import RUN_COLUMNS, RUNS_DIR, TABLES, duckdb_columns


class LedgerError(Exception):
    """A ledger that cannot serve the request; the message says what to do."""


# The engines the ledger's SQL runs on: DuckDB here, Spark SQL (spark.py) over the same files.
ENGINES = ("duckdb", "spark")
NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
# Characters DuckDB's globs would read as patterns or escapes in a ledger's path.
GLOB_CHARACTERS = set("[]*?{}\\")
# What `dissect query` runs: reading statements, and in-memory definitions (the database
# lives in memory: a CREATE there writes nothing). Nothing that writes files or loads code.
READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN, duckdb.StatementType.SET,
             duckdb.StatementType.MULTI, duckdb.StatementType.CREATE}
# Set on a query's connection once its views and macros are there, then locked: no setting can
# write a file (log_query_path, profiling_output), fetch an extension or keep a secret on disk.
QUERY_LOCKDOWN = ("SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false",
                  "SET allow_persistent_secrets = false", "SET lock_configuration = true")


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


def _typed_nulls(columns) -> str:
    return ", ".join(f'CAST(NULL AS {typ}) AS "{col}"' for col, typ in columns)


def connect(root: str | os.PathLike, *, must_exist: bool = True,
            skip_damaged: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views scores, steps, evals, samples, oracle, runs,
    and the macros of sql/macros.sql. The views read committed parts only (commits.py);
    a damaged one is refused, naming it, or with SKIP_DAMAGED left out."""
    root = check_root(root)
    if must_exist and not root.is_dir():
        raise LedgerError(f"no ledger at {root}: pass --ledger with the folder `dissect train` wrote")
    parts, damage, recorded, uniform = commits.committed(root)
    if damage and not skip_damaged:
        more = f" and {len(damage) - 1} more" if len(damage) > 1 else ""
        raise LedgerError(f"damaged ledger: {damage[0].line()}{more}; `dissect check --ledger {root}` lists "
                          "what is damaged, --skip-damaged reads the rest")
    con = duckdb.connect()
    for table in TABLES.values():
        columns = duckdb_columns(table)
        if parts[table.name]:
            # a column no part has yet (added after they were written) reads as NULL
            held = recorded[table.name]
            stored = {col for col, _ in table.partitions} | (held if held is not None else
                                                             _stored_columns(root, parts[table.name]))
            derived = {name: expression for name, _, expression, _ in table.derived}
            sql = sql_text("parquet_view.sql").format(
                name=table.name,
                columns=", ".join(f'{derived[col]} AS "{col}"' if col in derived else
                                  f'"{col}"' if col in stored else f'CAST(NULL AS {typ}) AS "{col}"'
                                  for col, typ in columns),
                files=", ".join(f"'{_quote(str(p))}'" for p in parts[table.name]),
                hive_types=", ".join(f"'{col}': {typ}" for col, typ in table.partitions),
                # matching by name reads every part's footer each time a query names the view
                union_by_name="false" if uniform[table.name] else "true",
            )
        else:
            sql = sql_text("empty_view.sql").format(name=table.name, typed_nulls=_typed_nulls(columns))
        try:
            con.execute(sql)
        except duckdb.Error as e:
            con.close()
            raise LedgerError(f"damaged ledger: the {table.name} table cannot be read ({str(e).splitlines()[0]}); "
                              f"`dissect check --ledger {root}` lists what is damaged") from e
    runs_glob = str(root / RUNS_DIR / "*.json")
    if any((root / RUNS_DIR).glob("*.json")):
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


def _stored_columns(root: Path, parts: list[Path]) -> set[str]:
    """The columns the parts hold, from their footers."""
    found = set()
    for part in parts:
        try:
            found.update(pq.read_schema(part).names)
        except (OSError, pa.ArrowInvalid) as e:
            raise LedgerError(f"damaged ledger: {part.relative_to(root)} cannot be read as Parquet "
                              f"({str(e).splitlines()[0]}); `dissect check --ledger {root}` lists what is damaged") from e
    return found


def query(root, sql: str, params=None, *, variables: dict | None = None,
          skip_damaged: bool = False) -> tuple[list[str], list[tuple]]:
    """Run SQL against the ledger's views: (column names, rows) of its last statement.
    Read-only: a statement that could write (COPY, EXPORT, ATTACH, INSERT, INSTALL, LOAD, ...)
    is refused, so nothing in the ledger's folder changes. variables: DuckDB variables the SQL
    reads with getvariable('name') (the convention of every .sql file here); params: a list
    for ?, or a dict for $name."""
    with _read_only(root, sql, skip_damaged, variables) as (con, statements):
        cur = con.execute(sql, _named_in(statements, params) or [])
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()


def query_table(root, sql: str, params=None, *, variables: dict | None = None,
                skip_damaged: bool = False) -> pa.Table:
    """The same as query, as an Arrow table (for Parquet)."""
    with _read_only(root, sql, skip_damaged, variables) as (con, statements):
        relation = con.sql(sql, params=_named_in(statements, params))
        return pa.table({}) if relation is None else relation.to_arrow_table()


@contextlib.contextmanager
def _read_only(root, sql: str, skip_damaged: bool, variables: dict | None):
    """The ledger's connection and SQL's statements, once every one is a statement that cannot
    write, with VARIABLES set (bound, never pasted into SQL)."""
    con = connect(root, skip_damaged=skip_damaged)
    try:
        for setting in QUERY_LOCKDOWN:
            con.execute(setting)
        statements = con.extract_statements(sql)
        if not statements:
            raise LedgerError("the SQL holds no statement (only comments or blanks): pass one, "
                              "e.g. \"SELECT * FROM runs\"")
        for statement in statements:
            if statement.type not in READ_ONLY:
                raise LedgerError(f"dissect query is read-only: {statement.type.name} statements are refused "
                                  "(SELECT, WITH, PIVOT, DESCRIBE, SUMMARIZE, EXPLAIN, SET VARIABLE and in-memory "
                                  "CREATE VIEW / MACRO run; results leave through --format and --out)")
        set_variables(con, variables or {})
        yield con, statements
    except duckdb.Error as e:
        raise LedgerError(str(e).splitlines()[0]) from e
    finally:
        con.close()


def named_query(root, name: str, variables: dict | None = None) -> tuple[list[str], list[tuple]]:
    """Run one of the package's .sql files (ledger/sql/NAME.sql) with these variables."""
    return query(root, sql_text(f"{name}.sql"), variables=variables)


def _named_in(statements, params):
    """PARAMS, a dict of them cut to the $names the STATEMENTS use (the rest are their variables)."""
    if not isinstance(params, dict):
        return params
    used = set().union(*(statement.named_parameters for statement in statements))
    return {name: value for name, value in params.items() if name in used} or None


def unbound_variables(sql: str, variables: dict) -> list[str]:
    """The names SQL reads with getvariable('name') that neither VARIABLES nor its own SET
    VARIABLE give: DuckDB reads them as NULL, which silently matches nothing."""
    read = re.findall(r"getvariable\(\s*'(\w+)'\s*\)", sql, flags=re.IGNORECASE)
    set_here = set(re.findall(r"SET\s+VARIABLE\s+\"?(\w+)", sql, flags=re.IGNORECASE))
    return sorted(set(read) - set(variables) - set_here)


def set_variables(con, variables: dict) -> None:
    for name, value in variables.items():
        if not NAME.match(name) or "." in name:
            raise LedgerError(f"{name!r} is not a variable name: use letters, digits and '_'")
        con.execute(f'SET VARIABLE "{name}" = ?', [value])


# --- what the ledger holds ----------------------------------------------------

def damaged(root) -> list[commits.Damage]:
    """The damage a look at the files shows (commits.committed): what connect refuses or skips."""
    return commits.committed(check_root(root))[1]


def oracle_exists(root, name: str) -> bool:
    return commits.read_record(root, commits.unit_of("oracle", {"name": name})) is not None


def dataset_path(root, dataset: str) -> str:
    """Where the ledger's runs found a dataset's folder."""
    row = query(root, "SELECT any_value(dataset_path) FROM runs WHERE dataset = ?", [dataset])[1]
    if not row or row[0][0] is None:
        raise LedgerError(f"no run of {dataset} in ledger {root} says where its folder is: pass --data")
    return row[0][0]


# --- the samples table -------------------------------------------------------

def dataset_fingerprint_in_ledger(root, dataset: str) -> str | None:
    record = commits.read_record(root, commits.unit_of("samples", {"dataset": dataset}))
    return record["meta"]["fingerprint"] if record else None


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
    columns = TABLES["samples"].columns
    for f in columns:  # a manifest written before a column existed gets it as NULL
        if f.name not in manifest.column_names:
            manifest = manifest.append_column(f.name, pa.nulls(manifest.num_rows, f.type))
    if skipped is not None and skipped.num_rows:
        part = Path(root) / TABLES["skipped"].partition_dir(dataset=dataset) / "part-ingest.parquet"
        write_parquet_atomic(skipped.cast(TABLES["skipped"].columns), part)
        commits.commit(root, commits.unit_of("skipped", {"dataset": dataset}), [part], replace=True)
    # The samples' commit comes last: it is what says the dataset is in the ledger.
    part = Path(root) / TABLES["samples"].partition_dir(dataset=dataset) / "part-0.parquet"
    write_parquet_atomic(manifest.select(columns.names).cast(columns), part)
    commits.commit(root, commits.unit_of("samples", {"dataset": dataset}), [part], replace=True,
                   meta={"fingerprint": fingerprint})
