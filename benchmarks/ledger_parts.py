"""What a ledger of many runs costs to open: DuckDB's views over its committed parts read with
and without `union_by_name`, side by side, then `dissect query`'s connection and one curation.

    .venv/bin/python benchmarks/ledger_parts.py --ledger L [--run RUN]

L is any ledger, best one of many runs (benchmarks/curation.py writes one of about 120 runs
and 27,000 parts per setting and seed grid). For each table: the seconds to create its view
over every committed part and to count one run's rows, in a fresh connection each, matching
the parts' columns by name (what every view did before) and by the first part's layout (what
store.connect does where the commit records say all parts hold the same columns). Then the
seconds of store.connect itself, and of `dissect curate --by mean-clipscore --keep 0.5` of RUN
(default: the ledger's first completed full-data run on the whole dataset).
"""
import argparse
import time
from pathlib import Path

import duckdb

from table import print_table

from dissect import ledger
from dissect.ledger import commits, curation


def view_seconds(files: list[Path], run: str, union_by_name: bool) -> tuple[float, float]:
    con = duckdb.connect()
    listed = ", ".join(f"'{f}'" for f in files)
    t0 = time.perf_counter()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet([{listed}], hive_partitioning = true, "
                f"union_by_name = {str(union_by_name).lower()})")
    t1 = time.perf_counter()
    con.execute("SELECT count(*) FROM t WHERE run = ?", [run]).fetchone()
    t2 = time.perf_counter()
    con.close()
    return t1 - t0, t2 - t1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--run", default=None, help="a full-data run whose history to curate")
    args = parser.parse_args()
    run = args.run or ledger.query(args.ledger, "SELECT name FROM runs WHERE strategy = 'full' AND subset IS NULL "
                                                "AND status = 'completed' ORDER BY name LIMIT 1")[1][0][0]
    parts, _, _, uniform = commits.committed(args.ledger)
    rows = []
    for table, files in parts.items():
        if len(files) < 2 or table not in {"scores", "steps", "epochs", "summaries", "evals"}:
            continue
        by_name = view_seconds(files, run, True)
        by_layout = view_seconds(files, run, False)
        rows.append([table, len(files), uniform[table], round(by_name[0], 2), round(by_layout[0], 2),
                     round(by_name[1], 2), round(by_layout[1], 2)])
    print_table(["table", "parts", "one layout", "view by name s", "view by layout s", "query by name s",
                 "query by layout s"], rows, title=f"{args.ledger}: {len(ledger.query(args.ledger, 'SELECT name FROM runs')[1])} runs")
    t0 = time.perf_counter()
    ledger.connect(args.ledger).close()
    t1 = time.perf_counter()
    curation.curate(args.ledger, "mean-clipscore", keep=0.5, run=run)
    t2 = time.perf_counter()
    print_table(["store.connect s", f"curate mean-clipscore of {run} s"], [[round(t1 - t0, 2), round(t2 - t1, 2)]])


if __name__ == "__main__":
    main()
