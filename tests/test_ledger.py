
from dataclasses import asdict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_record
from dissect import ledger


def score_rows(ids, epoch, step):
    n = len(ids)
    hist = np.where(np.arange(n) % 2 == 0, np.nan, 10.0).astype(np.float32)
    clipscore = np.linspace(0, 20, n, dtype=np.float32)
    return {
        "step": np.full(n, step), "sample_id": np.asarray(ids), "clipscore": clipscore, "hist": hist,
        "loss": np.ones(n, dtype=np.float32), "selected": np.arange(n) < 3,
        "correct": np.arange(n) < 5,
    }


def test_writer_round_trip_through_duckdb(tmp_path):
    with ledger.LedgerWriter(tmp_path) as writer:
        for epoch in range(2):
            for step, ids in enumerate([range(0, 6), range(6, 10)]):
                writer.add("scores", {"run": "r1", "epoch": epoch}, score_rows(list(ids), epoch, step))
            writer.flush()
            assert len(list(tmp_path.glob(f"scores/run=r1/epoch={epoch}/part-0-*.parquet"))) == 1
    cols, rows = ledger.query(tmp_path, "SELECT run, epoch, count(*), count(hist), sum(selected::int) "
                                        "FROM scores GROUP BY ALL ORDER BY epoch")
    assert cols == ["run", "epoch", "count_star()", "count(hist)", "sum(CAST(selected AS INTEGER))"]
    assert rows == [("r1", 0, 10, 5, 6), ("r1", 1, 10, 5, 6)]   # NaN history is stored as NULL
    _, rows = ledger.query(tmp_path, "SELECT count(*) FROM scores WHERE abs(delta - (hist - clipscore)) > 1e-5")
    assert rows == [(0,)]
    _, typed = ledger.query(tmp_path, "SELECT typeof(sample_id), typeof(clipscore), typeof(epoch) FROM scores LIMIT 1")
    assert typed == [("BIGINT", "FLOAT", "INTEGER")]
    assert not list(tmp_path.rglob("*.tmp"))


def test_views_of_an_empty_ledger_have_columns_and_no_rows(tmp_path):
    for table in ("scores", "steps", "evals", "samples", "runs"):
        cols, rows = ledger.query(tmp_path, f"SELECT * FROM {table}")
        assert rows == [] and cols
    cols, _ = ledger.query(tmp_path, "SELECT * FROM scores")
    assert cols == ["run", "epoch", "step", "sample_id", "clipscore", "hist", "delta", "loss", "selected", "correct"]


def test_missing_ledger_and_bad_sql_are_ledger_errors(tmp_path):
    with pytest.raises(ledger.LedgerError, match="no ledger at"):
        ledger.query(tmp_path / "nope", "SELECT 1")
    with pytest.raises(ledger.LedgerError):
        ledger.query(tmp_path, "SELECT * FROM no_such_table")


def test_run_records_drop_epochs_and_samples(tmp_path):
    record = run_record("r1", "random", epochs=3, batch_size=8, dataset_path="/x", start="2026-01-01T00:00:00+00:00",
                        end=None, status="running", config={"lr": 0.1}, versions={"torch": "x"})
    ledger.Run(tmp_path, record.name).write_record(record)
    assert ledger.Run(tmp_path, "r1").record() == asdict(record)
    _, rows = ledger.query(tmp_path, "SELECT name, ratio, status, \"end\", (config->>'lr')::DOUBLE FROM runs")
    assert rows == [("r1", 0.3, "running", None, 0.1)]

    with ledger.LedgerWriter(tmp_path) as writer:
        for epoch in range(3):
            writer.add("scores", {"run": "r1", "epoch": epoch}, score_rows([0, 1, 2], epoch, epoch))
            writer.add("evals", {"run": "r1", "epoch": epoch}, {"step": [epoch], "metric": ["rsum"], "value": [1.0]})
        writer.flush()
    ledger.Run(tmp_path, "r1").drop_epochs(1)
    _, rows = ledger.query(tmp_path, "SELECT DISTINCT epoch FROM scores UNION ALL SELECT DISTINCT epoch FROM evals")
    assert rows == [(0,), (0,)]
    ledger.Run(tmp_path, "r1").drop()
    assert ledger.Run(tmp_path, "r1").record() is None
    _, rows = ledger.query(tmp_path, "SELECT count(*) FROM scores")
    assert rows == [(0,)]

    manifest = pa.table({"sample_id": [0, 1], "key": ["a", "b"], "caption": ["x", "y"], "split": ["train", "test"],
                         "is_noisy": [True, False], "shard": ["s.tar", "s.tar"], "label": [None, None]})
    ledger.add_samples(tmp_path, "d", "f" * 64, manifest)
    ledger.add_samples(tmp_path, "d", "f" * 64, manifest)   # the same dataset again: nothing to do
    with pytest.raises(ledger.LedgerError, match="different dataset"):
        ledger.add_samples(tmp_path, "d", "e" * 64, manifest)
    _, rows = ledger.query(tmp_path, "SELECT dataset, count(*), sum(is_noisy::int) FROM samples GROUP BY ALL")
    assert rows == [("d", 2, 1)]


def test_writer_error_surfaces_in_the_training_loop(tmp_path):
    writer = ledger.LedgerWriter(tmp_path)
    writer.add("scores", {"run": "r", "epoch": 0}, {"step": [0]})   # missing columns
    with pytest.raises(RuntimeError, match="ledger writer failed"):
        writer.flush()
    assert not list(tmp_path.rglob("*.parquet"))


def test_a_part_written_before_a_column_existed_reads_it_as_null(tmp_path):
    from dissect.ledger import commits

    older = pa.table({"sample_id": [0], "key": ["a"], "caption": ["c"], "split": ["train"], "is_noisy": [False],
                      "shard": ["s.tar"], "label": pa.array([None], pa.int64())})   # before uid, image_path, url
    part = tmp_path / "samples" / "dataset=d" / "part-0.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(older, part)
    commits.commit(tmp_path, "samples/dataset=d", [part], meta={"fingerprint": "f" * 64})
    assert ledger.query(tmp_path, "SELECT dataset, sample_id, uid, image_path, url FROM samples")[1] == [
        ("d", 0, None, None, None)]


def test_parts_of_two_layouts_read_by_name_and_one_layout_without(tmp_path):
    from dissect.ledger import commits

    with ledger.LedgerWriter(tmp_path) as writer:
        writer.add("scores", {"run": "r1", "epoch": 0}, score_rows([0, 1, 2], 0, 0))
        writer.flush()

    def view_sql():
        con = ledger.connect(tmp_path)
        try:
            return con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'scores'").fetchone()[0]
        finally:
            con.close()

    # one layout: matching columns by name would read every part's footer at each query
    assert "union_by_name = false" in view_sql()
    older = {k: v for k, v in score_rows([5, 6], 1, 1).items() if k != "correct"}   # before `correct`
    part = tmp_path / "scores" / "run=r1" / "epoch=1" / "part-0.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(pa.table(older), part)
    commits.commit(tmp_path, "scores/run=r1/epoch=1", [part])
    assert "union_by_name = true" in view_sql()
    assert ledger.query(tmp_path, "SELECT epoch, sample_id, correct FROM scores ORDER BY sample_id")[1] == [
        (0, 0, True), (0, 1, True), (0, 2, True), (1, 5, None), (1, 6, None)]
