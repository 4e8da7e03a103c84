"""`dissect compact`: fewer, larger parts, the same rows, and a crash at any point loses nothing."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli
from dissect.ledger import compaction
from conftest import run_record

RANKS, FLUSHES, ROWS = 3, 2, 4   # each rank flushes twice an epoch: 6 scores parts per epoch
TABLES_READ = {"scores": "SELECT * FROM scores ORDER BY ALL", "steps": "SELECT * FROM steps ORDER BY ALL",
               "evals": "SELECT * FROM evals ORDER BY ALL", "summaries": "SELECT * FROM summaries ORDER BY ALL"}


def write_epoch(root, writers, epoch):
    for rank, writer in enumerate(writers):
        for flush in range(FLUSHES):
            ids = np.arange(ROWS) + ROWS * (FLUSHES * rank + flush)
            writer.add("scores", {"run": "r", "epoch": epoch}, {
                "step": np.full(ROWS, epoch * FLUSHES + flush), "sample_id": ids[::-1],
                "clipscore": (ids + epoch).astype(np.float32), "hist": ids.astype(np.float32),
                "loss": np.ones(ROWS, np.float32), "selected": ids % 3 == 0, "correct": ids % 2 == 0})
            writer.flush()
    writers[0].add("steps", {"run": "r", "epoch": epoch}, {
        "step": [epoch], "batch_size": [ROWS * RANKS], "n_selected": [3], "lr": [1e-3], "loss": [1.0],
        "logit_scale": [14.0], "t_data": [0.0], "t_score": [0.0], "t_train": [0.0], "n_pruned": [0]})
    writers[0].add("evals", {"run": "r", "epoch": epoch}, {"step": [epoch], "metric": ["rsum4"], "value": [1.0]})
    ledger.Run(root, "r").commit_epoch(writers[0], epoch)


@pytest.fixture
def many_parts(tmp_path):
    """Two epochs of a run on three ranks, each rank's rows in two parts; ground truth to summarise."""
    n = ROWS * FLUSHES * RANKS
    ledger.add_samples(tmp_path, "d", "f" * 64, pa.table({
        "sample_id": np.arange(n), "key": [str(i) for i in range(n)], "caption": ["c"] * n, "split": ["train"] * n,
        "is_noisy": np.arange(n) % 4 == 0}))
    ledger.Run(tmp_path, "r").write_record(run_record("r", "dissect-warmup", world_size=RANKS))
    writers = [ledger.LedgerWriter(tmp_path, rank=rank, commits=rank == 0) for rank in range(RANKS)]
    for epoch in range(2):
        write_epoch(tmp_path, writers, epoch)
    for writer in writers:
        writer.close()
    return tmp_path


def contents(root):
    return {name: ledger.query(root, sql)[1] for name, sql in TABLES_READ.items()}


def parts(root, table="scores"):
    return sorted(p.relative_to(root).as_posix() for p in (root / table).rglob("*.parquet"))


def check(root):
    return CliRunner().invoke(cli, ["check", "--ledger", str(root)])


def test_compact_rewrites_each_epochs_parts_as_one_with_the_same_rows(many_parts):
    before = contents(many_parts)
    assert len(parts(many_parts)) == 2 * RANKS * FLUSHES
    result = CliRunner().invoke(cli, ["compact", "--ledger", str(many_parts)])
    assert result.exit_code == 0, result.output
    # per epoch: the 6 scores parts become one (steps and evals had one part each: left alone)
    assert result.output.strip() == f"compacted 2 epochs in {many_parts}: 12 parts -> 2, {2 * ROWS * FLUSHES * RANKS} rows"
    assert parts(many_parts) == ["scores/run=r/epoch=0/compact-00000.parquet",
                                 "scores/run=r/epoch=1/compact-00000.parquet"]
    assert contents(many_parts) == before
    ids = pq.read_table(many_parts / parts(many_parts)[0])["sample_id"].to_pylist()
    assert ids == sorted(ids)   # sorted by sample id, as the writer sorts each part
    assert check(many_parts).output.strip().endswith("rows read back")
    assert check(many_parts).exit_code == 0
    again = CliRunner().invoke(cli, ["compact", "--ledger", str(many_parts), "--run", "r"])
    assert again.output.strip() == f"compacted 0 epochs in {many_parts}: 0 parts -> 0, 0 rows"


def test_a_crash_before_the_swap_leaves_the_old_parts_read_and_the_next_compact_undoes_it(many_parts, monkeypatch):
    before = contents(many_parts)

    def killed(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(compaction.commits, "swap", killed)
    with pytest.raises(KeyboardInterrupt):
        ledger.compact(many_parts)
    assert (many_parts / "scores/run=r/epoch=0/compact-00000.parquet").exists()
    assert contents(many_parts) == before
    result = check(many_parts)
    assert result.exit_code == 0, result.output
    assert "scores/run=r/epoch=0/compact-00000.parquet: left by an interrupted `dissect compact` of run r epoch 0" \
        in result.output
    # a later writer of that epoch (`dissect eval`) does not commit what the compaction left
    with ledger.LedgerWriter(many_parts) as writer:
        writer.add("evals", {"run": "r", "epoch": 0}, {"step": [0], "metric": ["zs_top1"], "value": [0.5]})
        ledger.Run(many_parts, "r").commit_epoch(writer, 0)
    record = json.loads((many_parts / "commits/run=r/epoch=0.json").read_text())
    assert not any("compact-" in rel for rel in record["parts"])
    monkeypatch.undo()
    result = ledger.compact(many_parts)
    assert result.finished == "undid an interrupted compaction of run r epoch 0"
    assert result.epochs == 2
    assert contents(many_parts)["scores"] == before["scores"]
    assert check(many_parts).exit_code == 0 and "interrupted" not in check(many_parts).output


def test_a_crash_after_the_swap_leaves_the_new_parts_read_and_the_next_compact_finishes_it(many_parts, monkeypatch):
    before = contents(many_parts)
    monkeypatch.setattr(compaction, "_remove", lambda root, rels: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        ledger.compact(many_parts)
    assert len(parts(many_parts)) == RANKS * FLUSHES * 2 + 1   # epoch 0's old parts beside its new one
    assert contents(many_parts) == before
    result = check(many_parts)
    assert result.exit_code == 0, result.output
    assert result.output.count("left by an interrupted `dissect compact`") == RANKS * FLUSHES
    monkeypatch.undo()
    result = ledger.compact(many_parts)
    assert result.finished == "finished an interrupted compaction of run r epoch 0"
    assert parts(many_parts) == ["scores/run=r/epoch=0/compact-00000.parquet",
                                 "scores/run=r/epoch=1/compact-00000.parquet"]
    assert contents(many_parts) == before
    assert check(many_parts).exit_code == 0 and "interrupted" not in check(many_parts).output


def test_compact_keeps_the_summaries_parts_a_later_score_replaces_by_name(many_parts):
    summaries = parts(many_parts, "summaries")
    ledger.compact(many_parts)
    assert parts(many_parts, "summaries") == summaries == ["summaries/run=r/epoch=0/truth.parquet",
                                                           "summaries/run=r/epoch=1/truth.parquet"]


def test_a_part_added_after_compaction_is_compacted_under_a_new_name(many_parts):
    ledger.compact(many_parts)
    with ledger.LedgerWriter(many_parts) as writer:
        writer.add("scores", {"run": "r", "epoch": 0}, {
            "step": [9], "sample_id": [100], "clipscore": [1.0], "hist": [1.0], "loss": [1.0], "selected": [True],
            "correct": [True]})
        ledger.Run(many_parts, "r").commit_epoch(writer, 0)
    before = contents(many_parts)
    result = ledger.compact(many_parts, run="r")
    assert (result.epochs, result.parts_before, result.parts_after) == (1, 2, 1)
    assert parts(many_parts)[0] == "scores/run=r/epoch=0/compact-00001.parquet"
    assert contents(many_parts) == before


def test_compact_of_an_unknown_run_says_so_in_one_line(many_parts):
    result = CliRunner().invoke(cli, ["compact", "--ledger", str(many_parts), "--run", "nope"])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: run 'nope' has no committed epoch in {many_parts}: "
                                     f"`dissect runs --ledger {many_parts}` lists the runs")


def test_parts_are_packed_up_to_the_compacted_size_one_pack_in_memory_at_a_time(many_parts, monkeypatch):
    before = contents(many_parts)
    monkeypatch.setattr(compaction, "COMPACT_ROWS", 2 * ROWS + 1)   # two of the 4-row parts fit, three do not
    result = ledger.compact(many_parts)
    assert (result.parts_before, result.parts_after) == (12, 6)
    assert [pq.read_metadata(many_parts / rel).num_rows for rel in parts(many_parts)] == [2 * ROWS] * 6
    assert contents(many_parts) == before


def test_check_during_a_compaction_lists_its_files_as_in_progress(many_parts, monkeypatch):
    seen = {}

    def check_then_swap(*args):
        if "check" not in seen:   # during epoch 0's
            seen["check"] = check(many_parts)
        return swap(*args)
    swap = compaction.commits.swap
    monkeypatch.setattr(compaction.commits, "swap", check_then_swap)
    ledger.compact(many_parts)
    assert seen["check"].exit_code == 0
    assert "in progress  scores/run=r/epoch=0/compact-00000.parquet: being rewritten by `dissect compact`" \
        in seen["check"].output
