"""Per-epoch summaries by clean / noisy class, written with each epoch.

Figures 3b, 3c and 4d aggregate every epoch's scores by class: 120 M rows at CC3M scale.
When an epoch is committed, the writer also writes, for every split the ledger knows for
the run's dataset (its ground truth, each oracle's top half), one row per class: rows,
scored rows, the sum of their CLIPScores and picks (sql/summarise_epoch.sql). The figures
then read two rows per epoch (the class_stats macro). `dissect score` adds a new oracle's
rows to the epochs already committed.
"""
from pathlib import Path

from dissect.ledger import commits
from dissect.ledger.files import write_parquet_atomic
from dissect.ledger.schema import SUMMARIES, hive_values
from dissect.ledger.store import connect, set_variables, sql_text


def part_name(oracle: str | None) -> str:
    return "truth.parquet" if oracle is None else f"oracle-{oracle}.parquet"


class Summariser:
    """Summarises epochs over one ledger connection, opened again only when what the splits
    read has changed since (a dataset's samples, an oracle committed or replaced): a run's
    writer summarises every epoch it commits, and opening a ledger costs a tenth of a second."""

    def __init__(self, root):
        self.root = Path(root)
        self._con = None
        self._splits = None

    def connection(self):
        splits = sorted((path.relative_to(self.root).as_posix(), path.stat().st_mtime_ns, path.stat().st_size)
                        for kind in ("samples", "oracle")
                        for path in (self.root / commits.COMMITS / kind).glob("*.json"))
        if self._con is None or splits != self._splits:
            self.close()
            self._con, self._splits = connect(self.root, skip_damaged=True), splits
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def epoch(self, unit: str, parts: list[Path], oracles=None) -> list[Path]:
        """Summaries of the epoch UNIT from its scores PARTS (committed or not) under each split
        (ORACLES: these oracles only; None: the ground truth, where the dataset has it, and every
        oracle of the dataset); returns the summary parts written beside them."""
        run, epoch = hive_values(unit)["run"], hive_values(unit)["epoch"]
        scores = [str(p) for p in parts if Path(p).relative_to(self.root).parts[0] == "scores"]
        if not scores:
            return []
        con = self.connection()
        found = con.execute("SELECT dataset FROM runs WHERE name = ?", [run]).fetchall()
        if not found:
            return []
        dataset = found[0]
        if oracles is None:
            has_truth = con.execute("SELECT count(is_noisy) > 0 FROM samples WHERE dataset = ?", dataset).fetchall()[0][0]
            oracles = [None] * has_truth + [name for (name,) in con.execute(
                "SELECT DISTINCT name FROM oracle WHERE dataset = ? ORDER BY name", dataset).fetchall()]
        written = []
        for oracle in oracles:
            set_variables(con, {"files": scores, "run": run, "oracle": oracle})
            table = con.sql(sql_text("summarise_epoch.sql")).to_arrow_table()
            if not table.num_rows:
                continue
            path = self.root / SUMMARIES.partition_dir(run=run, epoch=epoch) / part_name(oracle)
            write_parquet_atomic(table.cast(SUMMARIES.columns), path)
            written.append(path)
        return written


def add_oracle(root, oracle: str, dataset: str) -> int:
    """Summaries under ORACLE's split for every committed epoch of every run of DATASET;
    returns the number of epochs summarised."""
    summariser = Summariser(root)
    try:
        runs = [name for (name,) in summariser.connection().execute(
            "SELECT name FROM runs WHERE dataset = ?", [dataset]).fetchall()]
        done = 0
        for run in runs:
            for _, unit in commits.run_units(root, run):
                parts = [Path(root) / rel for rel in commits.read_record(root, unit)["parts"]]
                written = summariser.epoch(unit, parts, oracles=[oracle])
                if written:
                    commits.commit(root, unit, written)
                    done += 1
        return done
    finally:
        summariser.close()
