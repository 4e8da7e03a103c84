"""The ledger's SQL on Spark (`--engine spark`): every figure query and every curation rule gives
DuckDB's rows, row for row, over the same small ledger; what Spark cannot run is refused by name."""
import math
import os
import shutil

import pytest
from click.testing import CliRunner

from dissect.cli.main import cli
from dissect.ledger import curation, report, store

pytest.importorskip("pyspark", reason="pyspark is not installed (make test installs it with '.[spark]')")
pytest.importorskip("sqlglot", reason="sqlglot is not installed (make test installs it with '.[spark]')")
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
    pytest.skip("no Java runtime: make test installs Debian's default-jre-headless where it may",
                allow_module_level=True)

from dissect.ledger import spark as ledger_spark  # noqa: E402

pytestmark = pytest.mark.e2e   # a Java process and a query plan per test: long, so handed out first

# What each analysis is asked on hand_ledger: run "dis" (dissect-warmup) and the others of dataset d.
REQUESTS = {
    "2": {}, "3a": {}, "3b": {}, "3c": {}, "4a": {"oracle": "o"}, "4b": {}, "4c": {"oracle": "o"},
    "4d": {}, "5a": {"vs": ("full",)}, "5b": {}, "table1": {}, "tabletime": {},
    "table6": {"vs": ("full", "flat")},
}
RULES = {"random": {"dataset": "d"}, "oracle-clipscore": {"oracle": "o"}, "oracle-cliploss": {"oracle": "o"},
         "forgetting": {"run": "dis"}, "final-clipscore": {"run": "perfect"}, "mean-clipscore": {"run": "dis"},
         "delta": {"run": "dis", "hist_epoch": 0}}
# What Spark has no equal of, and the words its refusal names it with.
REFUSED_RULES = {"random": "hash()"}


# A JVM that starts and compiles cheaply (the client compiler, one GC thread): the test queries are
# many and small, and the JIT's and GC's threads would otherwise take the other test worker's core.
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[1]").appName("dissect-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.extraJavaOptions", QUICK_JVM)
               .getOrCreate())
    session.sparkContext.setLogLevel("FATAL")
    yield session
    session.stop()


def same_rows(left, right):
    """Row for row, floats to 1e-9 relative (the engines sum in other orders)."""
    assert len(left) == len(right)
    for a, b in zip(left, right):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            if isinstance(x, float) or isinstance(y, float):
                assert (x is None) == (y is None) and (x is None or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)), (a, b)
            else:
                assert x == y, (a, b)


def test_the_analyses_cover_every_figure_and_table():
    assert set(REQUESTS) == set(report.ANALYSES)
    assert set(RULES) == set(curation.RULES)


@pytest.mark.parametrize("key, summarised", [(key, None) for key in sorted(REQUESTS)]
                         + [(key, False) for key in ("3b", "3c", "4d")])
def test_every_figure_query_gives_duckdbs_rows(hand_ledger, spark, key, summarised):
    """summarised False: 3b, 3c and 4d from the scores themselves, not the per-epoch summaries."""
    analysis = report.ANALYSES[key]
    con = store.connect(hand_ledger)
    try:
        params = report.resolve(con, analysis, report.Request(ledger=str(hand_ledger), run="dis", **REQUESTS[key]))
    finally:
        con.close()
    if summarised is not None:
        assert params["summarised"], "the hand ledger's summaries should cover these runs"
        params["summarised"] = summarised
    columns, rows = store.query(hand_ledger, analysis.sql(), variables=params)
    assert rows, f"figure {key} has no rows to compare on this ledger"
    spark_columns, spark_rows = ledger_spark.query(hand_ledger, analysis.sql(), variables=params, spark=spark)
    assert spark_columns == columns
    same_rows(spark_rows, rows)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_curation_rule_keeps_what_duckdb_keeps(hand_ledger, spark, rule):
    duck = curation.curate(hand_ledger, rule, keep=0.5, **RULES[rule])
    if rule in REFUSED_RULES:
        with pytest.raises(ledger_spark.Untranslatable, match=REFUSED_RULES[rule]):
            curation.curate(hand_ledger, rule, keep=0.5, engine="spark", **RULES[rule])
        return
    on_spark = curation.curate(hand_ledger, rule, keep=0.5, engine="spark", **RULES[rule])
    assert on_spark.meta == duck.meta
    same_rows([tuple(r.values()) for r in on_spark.table.to_pylist()], [tuple(r.values()) for r in duck.table.to_pylist()])


def test_query_report_and_curate_take_engine_spark(hand_ledger, spark, tmp_path):
    sql = ("SELECT run, epoch, count(*) AS n, max(c) AS c FROM (SELECT run, epoch, centred(clipscore, run, epoch) AS c "
           "FROM scores) GROUP BY ALL ORDER BY ALL")
    duck = CliRunner().invoke(cli, ["query", "--ledger", str(hand_ledger), "--format", "csv", sql])
    on_spark = CliRunner().invoke(cli, ["query", "--ledger", str(hand_ledger), "--format", "csv", "--engine", "spark", sql])
    assert duck.exit_code == 0 and on_spark.exit_code == 0, on_spark.output
    assert on_spark.output == duck.output
    figure = ["report", "--figure", "4d", "--ledger", str(hand_ledger), "--run", "dis", "--format", "csv"]
    duck = CliRunner().invoke(cli, figure)
    on_spark = CliRunner().invoke(cli, [*figure, "--engine", "spark"])
    assert duck.exit_code == 0 and on_spark.exit_code == 0, on_spark.output
    assert on_spark.output == duck.output
    out = tmp_path / "kept.parquet"
    result = CliRunner().invoke(cli, ["curate", "--ledger", str(hand_ledger), "--by", "mean-clipscore", "--run", "dis",
                                      "--keep", "0.5", "--out", str(out), "--engine", "spark"])
    assert result.exit_code == 0, result.output
    ids, meta, _ = curation.read_subset(out)
    assert list(ids) == sorted(r["sample_id"] for r in curation.curate(hand_ledger, "mean-clipscore", keep=0.5,
                                                                       run="dis").table.to_pylist())


def test_what_spark_cannot_run_is_refused_by_name(hand_ledger, spark, tmp_path):
    result = CliRunner().invoke(cli, ["query", "--ledger", str(hand_ledger), "--engine", "spark",
                                      "SELECT hash(sample_id) FROM samples"])
    assert result.exit_code != 0 and "hash()" in result.output and "Spark" in result.output
    result = CliRunner().invoke(cli, ["query", "--ledger", str(hand_ledger), "--engine", "spark",
                                      "CREATE TABLE t AS SELECT 1"])
    assert result.exit_code != 0 and "only queries run" in result.output
    result = CliRunner().invoke(cli, ["curate", "--ledger", str(hand_ledger), "--by", "random", "--keep", "0.5",
                                      "--dataset", "d", "--out", str(tmp_path / "no.parquet"), "--engine", "spark"])
    assert result.exit_code != 0 and "hash()" in result.output
    assert not (tmp_path / "no.parquet").exists()


def test_a_session_dissect_starts_runs_local_quietly_with_half_the_memory_and_no_warehouse_in_the_cwd(
        hand_ledger, tmp_path):
    """In a process of its own: the module's session would be the active one here. An unknown table
    makes Spark look in its catalog (creating a warehouse) and log the failure before raising it."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_SUBMIT_ARGS", "SPARK_REMOTE", "MASTER",
                                                             "SPARK_CONF_DIR", "SPARK_HOME")}
    env["SPARK_SUBMIT_OPTS"] = QUICK_JVM   # the driver's JVM options, which dissect's session leaves alone
    script = ("from dissect.ledger import spark\n"
              "s = spark.session()\n"
              f"print(spark.query({str(hand_ledger)!r}, 'SELECT count(*) FROM runs')[1][0][0])\n"
              "print(s.conf.get('spark.master'), s.conf.get('spark.driver.memory'))\n"
              "try:\n"
              f"    spark.query({str(hand_ledger)!r}, 'SELECT * FROM nosuch')\n"
              "except spark.Untranslatable as e:\n"
              "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    runs, settings, refused = out.stdout.split("\n")[:3]
    assert int(runs) == store.query(hand_ledger, "SELECT count(*) FROM runs")[1][0][0]
    assert settings == f"local[*] {ledger_spark._half_the_memory_gb()}g"
    assert "TABLE_OR_VIEW_NOT_FOUND" in refused
    assert not (tmp_path / "spark-warehouse").exists()
    # the JVM's own notice of the vector module Spark adds is the one line that stays
    assert [line for line in out.stderr.splitlines() if not line.startswith("WARNING: Using incubator")] == []
