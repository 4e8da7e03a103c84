"""The ledger's SQL on Spark SQL: `dissect query --engine spark`, `dissect curate --engine spark`.

The same files, the same views and the same SQL as the DuckDB side (store.py): the views
read the committed parts only (commits.py) and the runs view is DuckDB's own (the records
are one small JSON file per run). A query in DuckDB's dialect is made Spark's in three
moves: every getvariable('x') becomes the value's literal, every macro of sql/macros.sql is
expanded in place (Spark has no macros; sql/spark_macros.sql replaces the few whose DuckDB
form Spark lacks an equal of), and sqlglot writes the rest in Spark's dialect. What has no
equal in Spark is refused by name (Untranslatable), never run with another meaning.

pyspark and a Java runtime are needed (`pip install 'dissect[spark]'`); the session is the
active SparkSession, else a new one as spark-defaults or the environment configure it
(local mode on every core with half the machine's memory where nothing does).
"""
import functools
import json
import logging
import os
import re
import tempfile

import pyarrow as pa

from dissect.ledger import commits
from dissect.ledger.schema import TABLES, duckdb_columns
from dissect.ledger.store import LedgerError, check_root, connect, sql_text

# Session settings that make Spark compute what DuckDB does: x / 0 and bad casts are NULL, not
# an error; timestamps in UTC, as the run records' offsets are read. The parts are named one by
# one (the commit records list them), so their sizes are looked up by the driver rather than by
# a Spark job per table and query.
SESSION_SETTINGS = {"spark.sql.ansi.enabled": "false", "spark.sql.session.timeZone": "UTC",
                    "spark.sql.sources.parallelPartitionDiscovery.threshold": str(2 ** 30)}


WAREHOUSE = os.path.join(tempfile.gettempdir(), "dissect-spark-warehouse")
LOG_CONFIG = os.path.join(os.path.dirname(__file__), "spark_conf", "log4j2.properties")


class Untranslatable(LedgerError):
    """A query with something Spark has no equal of; the message names it and why."""


def _sqlglot():
    try:
        import sqlglot
    except ImportError as e:
        raise LedgerError("--engine spark needs sqlglot and pyspark: pip install 'dissect[spark]' "
                          "(and a Java 17+ runtime)") from e
    return sqlglot


def session():
    """The active SparkSession, else one as Spark's own configuration says (local where none)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise LedgerError("--engine spark needs pyspark: pip install 'dissect[spark]' (and a Java 17+ runtime, "
                          "e.g. Debian's default-jre-headless)") from e
    spark = SparkSession.getActiveSession()
    if spark is None:
        # no progress bars: dissect's commands print results on stdout and one line per failure
        builder = SparkSession.builder.appName("dissect").config("spark.ui.showConsoleProgress", "false")
        if not _configured():
            # local mode's default heap (1 GB) runs out on a 20 M-row ledger's per-epoch figures
            builder = builder.master("local[*]").config("spark.driver.memory", f"{_half_the_memory_gb()}g")
            # dissect reads temp views only; Spark's default warehouse is a spark-warehouse/ in the cwd
            builder = builder.config("spark.sql.warehouse.dir", WAREHOUSE).config(
                "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG_CONFIG}")
        try:
            spark = builder.getOrCreate()
        except Exception as e:   # pyspark raises its own kinds (no Java, no gateway)
            raise LedgerError(f"Spark did not start ({str(e).splitlines()[0]}): --engine spark needs a Java 17+ "
                              "runtime (JAVA_HOME or java on PATH)") from e
        spark.sparkContext.setLogLevel("FATAL")   # what fails is said once, in the LedgerError
        _quiet_query_context_loggers()
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)
    return spark


def _quiet_query_context_loggers():
    """pyspark logs a failed query's whole Java stack as JSON on stderr before raising it."""
    from pyspark.logger import PySparkLogger   # its loggers take keyword context a plain Logger refuses

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


def _configured() -> bool:
    """Whether the environment or spark-defaults.conf says how to run Spark (else dissect does)."""
    if any(os.environ.get(name) for name in ("PYSPARK_SUBMIT_ARGS", "SPARK_REMOTE", "MASTER")):
        return True
    conf_dir = os.environ.get("SPARK_CONF_DIR") or os.path.join(os.environ.get("SPARK_HOME", ""), "conf")
    return os.path.isfile(os.path.join(conf_dir, "spark-defaults.conf"))


def _half_the_memory_gb() -> int:
    return max(1, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2 ** 31)


# --- translation --------------------------------------------------------------

@functools.cache
def macros() -> dict:
    """{name: (parameters, body)} of sql/macros.sql, with sql/spark_macros.sql's in place of theirs."""
    sqlglot = _sqlglot()
    from sqlglot import exp

    found = {}
    for text in (sql_text("macros.sql"), sql_text("spark_macros.sql")):
        for statement in sqlglot.parse(text, read="duckdb"):
            if isinstance(statement, exp.Create) and statement.args.get("kind") == "MACRO":
                udf = statement.this
                found[udf.this.name.lower()] = ([p.name for p in udf.expressions], statement.expression)
    return found


def _literal(value):
    from sqlglot import exp

    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[_literal(v) for v in value])
    return exp.convert(value)


def _expand(tree, variables: dict):
    """TREE with getvariable('x') as literals and every macro call replaced by its body."""
    from sqlglot import exp

    def variable(node):
        if isinstance(node, exp.Placeholder):   # $name, bound as query's --param binds it on DuckDB
            if not node.this or node.name not in variables:
                raise Untranslatable(f"parameter {node.sql()} has no value: pass --param NAME=VALUE for $NAME")
            return _literal(variables[node.name])
        if isinstance(node, exp.Anonymous) and node.name.lower() == "getvariable":
            name = node.expressions[0]
            if not isinstance(name, exp.Literal) or not name.is_string:
                raise Untranslatable("getvariable() takes a quoted name on Spark")
            return _literal(variables.get(name.this))
        return node

    defined = macros()

    def body_of(name, args):
        params, body = defined[name]
        if len(args) != len(params):
            raise LedgerError(f"macro {name} takes {len(params)} arguments ({', '.join(params)}), not {len(args)}")
        bound = dict(zip(params, args))
        return body.copy().transform(
            lambda n: bound[n.name].copy() if isinstance(n, exp.Column) and not n.table and n.name in bound else n)

    def macro(node):
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Anonymous) and node.this.name.lower() in defined:
            name = node.this.name.lower()
            alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(name))
            return exp.Subquery(this=body_of(name, node.this.expressions), alias=alias.copy())
        if isinstance(node, exp.Anonymous) and node.name.lower() in defined:
            return exp.Paren(this=body_of(node.name.lower(), node.expressions))
        return node

    tree = tree.transform(variable)
    for _ in range(32):    # macros call macros (and read variables): expand until none is left
        expanded = tree.transform(macro).transform(variable)
        if expanded == tree:
            return expanded
        tree = expanded
    raise Untranslatable("macros nest deeper than 32 calls")


def _spark_forms(tree):
    """Rewrite what sqlglot writes for Spark with another meaning than DuckDB's, or refuse it."""
    from sqlglot import exp

    def rewrite(node):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower() \
            if isinstance(node, exp.Func) else None
        if name in DUCKDB_ONLY:
            raise Untranslatable(f"{name}(): {DUCKDB_ONLY[name]}")
        if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
            node = node.this
        if isinstance(node, exp.AnyValue):
            # DuckDB's any_value skips NULLs; Spark's does where its second argument says so
            return exp.Anonymous(this="any_value", expressions=[node.this.copy(), exp.true()])
        if isinstance(node, exp.JSONExtractScalar) and not isinstance(node.expression, exp.JSONPath):
            # a key read from a column: Spark's get_json_object takes a JSON path
            return exp.Anonymous(this="get_json_object", expressions=[
                node.this.copy(), exp.func("concat", exp.Literal.string("$."), node.expression.copy())])
        if isinstance(node, exp.Window) and node.args.get("partition_by"):
            # PARTITION BY (a, b), a row in DuckDB, is the columns a and b
            node.set("partition_by", [e.copy() for p in node.args["partition_by"]
                                       for e in (p.expressions if isinstance(p, exp.Tuple) else [p])])
        return node

    return tree.transform(rewrite)


def _pivots(tree, distinct_values):
    """DuckDB's PIVOT src ON col USING agg GROUP BY g as Spark's, which lists the values (FOR col
    IN (...)): DISTINCT_VALUES(sql) finds them first, sorted, as DuckDB orders the new columns."""
    sqlglot = _sqlglot()
    from sqlglot import exp

    ctes = tree.args.get("with_")

    def rewrite(node):
        if not isinstance(node, exp.Pivot) or node.args.get("fields") or node.args.get("using") is None:
            return node
        if distinct_values is None or len(node.expressions) != 1:
            raise Untranslatable("PIVOT ... ON several columns (or with no session to find the values in): "
                                 "Spark's PIVOT lists the values of one (FOR col IN (...))")
        on = node.expressions[0].sql(dialect="spark")
        source = node.this.sql(dialect="spark")
        prefix = f"{ctes.sql(dialect='spark')} " if ctes else ""
        values = distinct_values(f"{prefix}SELECT DISTINCT {on} FROM {source} WHERE {on} IS NOT NULL ORDER BY 1")
        aggregates = node.args["using"]
        group = node.args["group"].expressions if node.args.get("group") else []
        read = list(dict.fromkeys(c.sql(dialect="spark") for a in aggregates for c in a.find_all(exp.Column)))
        kept = ", ".join(dict.fromkeys([*(g.sql(dialect="spark") for g in group), on, *read]))
        return sqlglot.parse_one(
            f"SELECT * FROM (SELECT {kept} FROM {source}) PIVOT ({', '.join(a.sql(dialect='spark') for a in aggregates)} "
            f"FOR {on} IN ({', '.join(exp.convert(v).sql(dialect='spark') for v in values)}))", read="spark")

    return tree.transform(rewrite)


# DuckDB functions whose Spark namesake or nearest translation computes something else.
DUCKDB_ONLY = {
    "hash": "DuckDB's hash() is not Spark's (Murmur3): the same seed would rank other samples",
    "getbit": "Spark has no BIT strings (its getbit reads an integer's bits)",
    "json_merge_patch": "Spark has no JSON merge",
}


def translate(sql: str, variables: dict | None = None, distinct_values=None) -> str:
    """The last statement of SQL (DuckDB's dialect, over the ledger's views and macros) in
    Spark's dialect, VARIABLES in place of getvariable('name'); a PIVOT's values come from
    DISTINCT_VALUES(spark_sql) (the Spark session's answer). Untranslatable says what not."""
    sqlglot = _sqlglot()
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as e:
        raise Untranslatable(f"the SQL cannot be read as DuckDB's ({str(e).splitlines()[0]})") from e
    if not statements:
        raise LedgerError("the SQL holds no statement (only comments or blanks): pass one, e.g. \"SELECT * FROM runs\"")
    for statement in statements:
        if not isinstance(statement, exp.Query):
            raise Untranslatable(f"{statement.key.upper()} statements: on Spark only queries run "
                                 "(SELECT, WITH); set variables with --param")
    tree = _pivots(_spark_forms(_expand(statements[-1], variables or {})), distinct_values)
    try:
        return tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.UnsupportedError as e:
        raise Untranslatable(f"Spark has no equal of {str(e).splitlines()[0]}") from e


# --- the views ----------------------------------------------------------------

SPARK_TYPES = {"BIGINT": "BIGINT", "INTEGER": "INT", "FLOAT": "FLOAT", "DOUBLE": "DOUBLE",
               "BOOLEAN": "BOOLEAN", "VARCHAR": "STRING", "TIMESTAMP": "TIMESTAMP", "JSON": "STRING"}


def register(spark, root, tables=TABLES, *, skip_damaged: bool = False) -> None:
    """Temp views of TABLES (scores, steps, ...) and runs on SPARK over ROOT's committed parts
    (the same refusal of a damaged ledger as store.connect)."""
    root = check_root(root)
    con = connect(root, skip_damaged=skip_damaged)   # refuses a missing or damaged ledger, names it
    try:
        runs = con.sql(sql_text("spark_runs.sql")).to_arrow_table()
    finally:
        con.close()
    parts, *_ = commits.committed(root)
    for table in (TABLES[name] for name in tables):
        derived = {name: expression for name, _, expression, _ in table.derived}
        stored = [(col, typ) for col, typ in duckdb_columns(table) if col not in derived]
        schema = ", ".join(f"`{col}` {SPARK_TYPES[typ]}" for col, typ in stored)
        if parts[table.name]:
            frame = (spark.read.schema(schema).option("basePath", str(root / table.name))
                     .parquet(*[str(p) for p in parts[table.name]]))
        else:
            frame = spark.createDataFrame([], schema)
        columns = [f"{_sqlglot().transpile(derived[col], read='duckdb', write='spark')[0]} AS `{col}`"
                   if col in derived else f"`{col}`" for col, _ in duckdb_columns(table)]
        frame.selectExpr(*columns).createOrReplaceTempView(table.name)
    _from_arrow(spark, runs).createOrReplaceTempView("runs")


def _from_arrow(spark, table: pa.Table):
    """A DataFrame of an Arrow table whose JSON columns DuckDB gave as text."""
    rows = [tuple(json.dumps(v) if isinstance(v, (dict, list)) else v for v in row.values())
            for row in table.to_pylist()]
    schema = ", ".join(f"`{f.name}` {_spark_type(f.type)}" for f in table.schema)
    return spark.createDataFrame(rows, schema)


def _spark_type(arrow_type) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    return {pa.int64(): "BIGINT", pa.int32(): "INT", pa.float32(): "FLOAT", pa.float64(): "DOUBLE",
            pa.bool_(): "BOOLEAN"}.get(arrow_type, "STRING")


# --- queries --------------------------------------------------------------------

def query(root, sql: str, *, variables: dict | None = None, skip_damaged: bool = False,
          spark=None) -> tuple[list[str], list[tuple]]:
    """store.query's twin on Spark: (column names, rows) of SQL's last statement."""
    frame = _frame(root, sql, variables, skip_damaged, spark)
    return frame.columns, [tuple(row) for row in _collect(frame)]


def query_table(root, sql: str, *, variables: dict | None = None, skip_damaged: bool = False,
                spark=None) -> pa.Table:
    """The same as query, as an Arrow table."""
    return _frame(root, sql, variables, skip_damaged, spark).toArrow()


def _frame(root, sql, variables, skip_damaged, spark):
    spark = spark or session()
    from sqlglot import exp

    def run(text):
        read = {t.name for t in _sqlglot().parse_one(text, read="spark").find_all(exp.Table)}
        register(spark, root, [name for name in TABLES if name in read], skip_damaged=skip_damaged)
        try:
            return spark.sql(text)
        except Exception as e:   # Spark's analysis errors: what it could not resolve or type
            raise Untranslatable(f"Spark refused the translated SQL: {_first_line(e)}") from e

    return run(translate(sql, variables, lambda text: [row[0] for row in _collect(run(text))]))


def _collect(frame):
    try:
        return frame.collect()
    except Exception as e:
        raise LedgerError(f"Spark failed running the query: {_first_line(e)}") from e


def _first_line(error) -> str:
    return re.sub(r"\s+", " ", str(error).strip().splitlines()[0])[:300]
