"""Every analysis of `dissect report` and every rule of `dissect curate` on both engines over one
ledger: seconds on DuckDB and on Spark SQL (local mode on this machine's cores), side by side,
and whether Spark's rows are DuckDB's, row for row.

    .venv/bin/python benchmarks/engines.py --ledger L --run R [--oracle O] [--keep 0.5]

Spark's start is timed apart (once per process); each Spark query's seconds include what a
user waits for: the views registered over the committed parts, the translation and the run.
A rule reads --run (the history rules), --oracle (the oracle rules) or the run's dataset (random).
"""
import argparse
import math
import time
from dataclasses import replace

from table import print_table

from dissect.ledger import LedgerError, curation, query, report, spark


def same(left: list[tuple], right: list[tuple]) -> bool:
    """Row for row, floats to 1e-9 relative (the engines sum in other orders)."""
    def close(x, y):
        if isinstance(x, float) or isinstance(y, float):
            return (x is None) == (y is None) and (x is None or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12))
        return x == y
    return len(left) == len(right) and all(len(a) == len(b) and all(map(close, a, b)) for a, b in zip(left, right))


def rows_of(table) -> list[tuple]:
    return [tuple(row.values()) for row in table.to_pylist()]


def subset_difference(on_spark, duck) -> str:
    """'the same', or how two subsets differ: the kept set, or only ranks swapped between
    scores equal to 1e-9 (the engines sum a mean in other orders, so last-bit ties fall apart)."""
    if same(rows_of(on_spark.table), rows_of(duck.table)):
        return "the same"
    ids = [on_spark.table["sample_id"].to_pylist(), duck.table["sample_id"].to_pylist()]
    if set(ids[0]) != set(ids[1]):
        return f"DIFFERENT: {len(set(ids[0]) ^ set(ids[1])) // 2} other samples kept"
    scores = [on_spark.table["score"].to_pylist(), duck.table["score"].to_pylist()]
    if not same([tuple(scores[0])], [tuple(scores[1])]):
        return "DIFFERENT scores"
    swapped = sum(a != b for a, b in zip(*ids))
    return f"the same set and scores; {swapped} ranks swapped between scores equal to 1e-9"


def timed(fn):
    t0 = time.perf_counter()
    try:
        return fn(), time.perf_counter() - t0, None
    except LedgerError as e:
        return None, time.perf_counter() - t0, str(e)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--run", required=True, help="the run the analyses are about; the history rules read it")
    parser.add_argument("--oracle", default=None, help="for 4a, 4c and the oracle rules")
    parser.add_argument("--keep", type=float, default=0.5)
    args = parser.parse_args()

    t0 = time.perf_counter()
    spark.session()
    print(f"Spark {spark.session().version} started in {time.perf_counter() - t0:.1f} s")

    rows = []
    for key, analysis in report.ANALYSES.items():
        req = report.Request(ledger=args.ledger, run=args.run, oracle=args.oracle if analysis.needs_oracle or
                             key == "4a" else None)
        duck, duck_s, error = timed(lambda: report.run_analysis(key, req))
        if error:
            rows.append((key, None, None, None, f"not on this ledger: {error[:80]}"))
            continue
        on_spark, spark_s, error = timed(lambda: report.run_analysis(key, replace(req, engine="spark")))
        rows.append((key, round(duck_s, 2), round(spark_s, 2), round(spark_s / duck_s, 1),
                     error[:100] if error else f"{len(duck.rows)} rows, " +
                     ("the same" if same(on_spark.rows, duck.rows) else "DIFFERENT")))
    print_table(["analysis", "DuckDB s", "Spark s", "Spark / DuckDB", "Spark's rows"], rows,
                title=f"every analysis of run {args.run}, {args.ledger}")

    dataset = query(args.ledger, "SELECT dataset FROM runs WHERE name = ?", [args.run])[1][0][0]
    rows = []
    for rule, rule_spec in curation.RULES.items():
        source = {"run": args.run} if rule_spec.needs == "run" else {"oracle": args.oracle} \
            if rule_spec.needs == "oracle" else {"dataset": dataset}
        if rule_spec.needs == "oracle" and not args.oracle:
            rows.append((rule, None, None, None, "no --oracle"))
            continue
        duck, duck_s, error = timed(lambda: curation.curate(args.ledger, rule, keep=args.keep, **source))
        if error:
            rows.append((rule, None, None, None, f"not on this ledger: {error[:80]}"))
            continue
        on_spark, spark_s, error = timed(lambda: curation.curate(args.ledger, rule, keep=args.keep, engine="spark",
                                                                 **source))
        rows.append((rule, round(duck_s, 2), round(spark_s, 2), round(spark_s / duck_s, 1),
                     error[:100] if error else f"{duck.meta.n} kept, " + subset_difference(on_spark, duck)))
    print_table(["rule", "DuckDB s", "Spark s", "Spark / DuckDB", "Spark's subset"], rows,
                title=f"every curation rule, keep {args.keep}")


if __name__ == "__main__":
    main()
