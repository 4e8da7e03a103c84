"""The diagnosis queries of docs/queries run on a real (tiny) ledger and say sensible things."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from dissect.cli.main import cli
from dissect.ledger import connect

QUERIES = Path(__file__).parents[1] / "docs" / "queries"


@pytest.fixture(scope="module")
def runs(tiny_dataset, tmp_path_factory):
    ledger_dir = tmp_path_factory.mktemp("docs") / "ledger"
    for strategy in ("random", "dissect-warmup"):
        result = CliRunner().invoke(cli, ["train", str(tiny_dataset), "--strategy", strategy, "--epochs", "3",
                                          "--warmup-epochs", "1", "--batch-size", "20", "--ledger", str(ledger_dir),
                                          "--run", strategy, "--workers", "0", "--quiet"])
        assert result.exit_code == 0, result.output
    return ledger_dir


def run_query(ledger_dir, name, **variables):
    con = connect(ledger_dir)
    for key, value in variables.items():
        con.execute(f"SET VARIABLE {key} = ?", [value])
    return con.execute((QUERIES / name).read_text()).fetchall()


def sticky_by_hand(ledger_dir, from_epoch):
    """stickiness.sql's answer counted in Python from the raw rows: per run, the share picked
    again among the samples picked at their previous visit, and among those left out."""
    rows = connect(ledger_dir).execute("SELECT run, sample_id, epoch, selected FROM scores ORDER BY ALL").fetchall()
    counts = {}
    previous = {}
    for run, sample_id, epoch, selected in rows:
        before = previous.get((run, sample_id))
        previous[(run, sample_id)] = selected
        if epoch >= from_epoch and before is not None:
            picked, total = counts.setdefault(run, {True: [0, 0], False: [0, 0]})[before]
            counts[run][before] = [picked + selected, total + 1]
    return {run: tuple(round(c[was][0] / c[was][1], 3) if c[was][1] else None for was in (True, False))
            for run, c in counts.items()}


def test_diagnosis_queries(runs):
    rows = run_query(runs, "clean_picks_per_epoch.sql", pattern="%")
    assert len(rows) == 6 and all(0 <= r[2] <= 1 and r[3] == 30 for r in rows)   # 5 batches of 20 -> 6 x 5
    rows = run_query(runs, "feedback_loop.sql", pattern="dissect%", from_epoch=1)
    assert {(r[1], r[2]) for r in rows} <= {("clean", "trained"), ("clean", "left out"), ("noisy", "trained"),
                                            ("noisy", "left out")}
    assert sum(r[3] for r in rows) == 200                                         # epochs 1, 2 x 100 samples
    rows = run_query(runs, "delta_auroc_per_epoch.sql", pattern="dissect%")
    assert [r[1] for r in rows] == [0, 1, 2] and rows[0][2] is None and all(0 <= r[3] <= 1 for r in rows)
    rows = dict((r[0], r[1:]) for r in run_query(runs, "stickiness.sql", pattern="%", from_epoch=1))
    assert rows == sticky_by_hand(runs, from_epoch=1) and set(rows) == {"random", "dissect-warmup"}
    rows = run_query(runs, "picks_by_strategy.sql", pattern="%")
    by = {r[0]: r for r in rows}
    assert set(by) == {"random", "dissect-warmup"} and all(r[-1] == 1 for r in rows)
    random = by["random"]
    assert 0 <= random[2] <= 1 and random[4] == pytest.approx(0.3, abs=0.01)   # trained fraction = r
    assert 0 <= random[5] <= 1                                                   # its trained samples' loss AUROC
