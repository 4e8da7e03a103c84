"""Damage to a ledger is found and named: commit records, `dissect check`, --skip-damaged."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli
from conftest import run_record

ROWS_PER_EPOCH = 10


def write_epoch(writer, run, epoch):
    ids = np.arange(ROWS_PER_EPOCH)
    writer.add("scores", {"run": run, "epoch": epoch}, {
        "step": np.full(10, epoch), "sample_id": ids, "clipscore": ids.astype(np.float32),
        "hist": ids.astype(np.float32), "delta": np.zeros(10, np.float32), "loss": np.ones(10, np.float32),
        "selected": ids < 3, "correct": ids < 5})
    writer.add("steps", {"run": run, "epoch": epoch}, {
        "step": [epoch], "batch_size": [10], "n_selected": [3], "lr": [1e-3], "loss": [1.0], "logit_scale": [14.0],
        "t_data": [0.0], "t_score": [0.0], "t_train": [0.0], "n_pruned": [0]})
    ledger.Run(writer.root, run).commit_epoch(writer, epoch)


@pytest.fixture
def two_epochs(tmp_path):
    with ledger.LedgerWriter(tmp_path) as writer:
        for epoch in range(2):
            write_epoch(writer, "r", epoch)
    return tmp_path


def check(root):
    return CliRunner().invoke(cli, ["check", "--ledger", str(root)])


def part(root, table, epoch):
    return next((root / table / "run=r" / f"epoch={epoch}").glob("*.parquet"))


def test_each_epoch_is_committed_with_its_files_and_rows(two_epochs):
    record = json.loads((two_epochs / "commits" / "run=r" / "epoch=1.json").read_text())
    assert {k: v["rows"] for k, v in record["parts"].items()} == {
        "scores/run=r/epoch=1/part-0-00000.parquet": ROWS_PER_EPOCH, "steps/run=r/epoch=1/part-0-00000.parquet": 1}
    result = check(two_epochs)
    assert result.exit_code == 0 and "is whole: 4 committed parts, 22 rows read back" in result.output


def test_a_stray_file_is_never_read_and_check_names_it(two_epochs):
    (two_epochs / "scores" / "run=r" / "epoch=0" / "part-9-00000.parquet").write_bytes(b"garbage")
    (two_epochs / "scores" / "run=r" / "epoch=1" / "empty.parquet").write_bytes(b"")
    assert ledger.query(two_epochs, "SELECT count(*) FROM steps")[1] == [(2,)]
    assert ledger.query(two_epochs, "SELECT count(*) FROM scores")[1] == [(2 * ROWS_PER_EPOCH,)]
    result = check(two_epochs)
    assert result.exit_code == 1
    assert "scores/run=r/epoch=0/part-9-00000.parquet: not committed: run r died in that epoch" in result.output
    assert "scores/run=r/epoch=1/empty.parquet: not committed" in result.output
    assert result.output.strip().splitlines()[-1] == "2 damaged; affected: run r: epochs 0, 1"


def test_a_missing_part_is_refused_by_name_or_skipped_when_asked(two_epochs):
    gone = part(two_epochs, "steps", 1)
    gone.unlink()
    with pytest.raises(ledger.LedgerError, match="steps/run=r/epoch=1/part-0-00000.parquet: missing"):
        ledger.query(two_epochs, "SELECT count(*) FROM scores")
    result = CliRunner().invoke(cli, ["query", "SELECT count(*) AS n FROM steps", "--ledger", str(two_epochs),
                                      "--format", "csv"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "damaged ledger: steps/run=r/epoch=1/part-0-00000.parquet: missing (committed with 1 rows) " \
           "(run r epoch 1)" in result.output
    result = CliRunner().invoke(cli, ["query", "SELECT count(*) AS n FROM steps", "--ledger", str(two_epochs),
                                      "--format", "csv", "--skip-damaged"])
    assert result.exit_code == 0 and result.stdout == "n\n1\n"
    assert "skipping damaged steps/run=r/epoch=1/part-0-00000.parquet: missing" in result.stderr
    result = check(two_epochs)
    assert result.exit_code == 1 and "affected: run r: epoch 1" in result.output


def test_a_part_cut_short_or_overwritten_is_found(two_epochs):
    cut = part(two_epochs, "scores", 0)
    cut.write_bytes(cut.read_bytes()[:-20])
    result = CliRunner().invoke(cli, ["report", "--table", "time", "--run", "r", "--ledger", str(two_epochs)])
    assert result.exit_code == 2 and "scores/run=r/epoch=0/part-0-00000.parquet" in result.output
    assert "changed or cut short" in result.output
    overwritten = part(two_epochs, "scores", 1)
    data = bytearray(overwritten.read_bytes())
    data[100:110] = bytes(10)   # same size, a data page damaged
    overwritten.write_bytes(bytes(data))
    result = check(two_epochs)
    assert result.exit_code == 1
    assert "scores/run=r/epoch=1/part-0-00000.parquet: cannot be read as Parquet (could not verify page " \
           "integrity" in result.output
    assert "affected: run r: epochs 0, 1" in result.output


def test_an_unfinished_write_and_an_unreadable_commit_record_are_damage(two_epochs):
    (two_epochs / "steps" / "run=r" / "epoch=1" / ".part-0-00001.parquet.123.tmp").write_bytes(b"half")
    (two_epochs / "commits" / "run=r" / "epoch=0.json").write_text("{")
    result = check(two_epochs)
    assert result.exit_code == 1
    assert "steps/run=r/epoch=1/.part-0-00001.parquet.123.tmp: a write that did not finish" in result.output
    assert "commits/run=r/epoch=0.json: commit record cannot be read (run r epoch 0)" in result.output
    with pytest.raises(ledger.LedgerError, match="commit record cannot be read"):
        ledger.query(two_epochs, "SELECT 1")


def test_a_failed_writer_leaves_no_part_and_a_live_run_is_in_progress(tmp_path):
    with pytest.raises(ValueError):
        with ledger.LedgerWriter(tmp_path, max_rows=5) as writer:
            write_epoch(writer, "r", 0)
            writer.add("scores", {"run": "r", "epoch": 1}, {
                "step": np.zeros(10), "sample_id": np.arange(10), "clipscore": np.zeros(10, np.float32),
                "hist": np.zeros(10, np.float32), "delta": np.zeros(10, np.float32), "loss": np.zeros(10, np.float32),
                "selected": np.ones(10, bool), "correct": np.ones(10, bool)})
            writer.flush()
            assert part(tmp_path, "scores", 1).exists()
            with ledger.Run(tmp_path, "r").lock():
                result = check(tmp_path)
                assert result.exit_code == 0 and "in progress  scores/run=r/epoch=1/" in result.output
            raise ValueError
    assert not list((tmp_path / "scores" / "run=r" / "epoch=1").glob("*"))
    assert check(tmp_path).exit_code == 0


def no_space(*args, **kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("failing", ["part", "commit record"])
def test_a_writer_on_a_full_disk_leaves_nothing_uncommitted(tmp_path, monkeypatch, failing):
    with ledger.LedgerWriter(tmp_path) as writer:
        write_epoch(writer, "r", 0)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    with pytest.raises(OSError, match="No space left") as raised:
        with ledger.LedgerWriter(tmp_path, max_rows=5) as writer:
            if failing == "part":
                monkeypatch.setattr("dissect.ledger.writer.pq.write_table", no_space)
            else:
                monkeypatch.setattr("dissect.ledger.commits.write_text_atomic", no_space)
            write_epoch(writer, "r", 1)
    if failing == "part":
        assert "scores/run=r/epoch=1/part-0-00000.parquet" in raised.value.filename   # the message names the file
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert after == before
    assert check(tmp_path).exit_code == 0


def test_an_epoch_a_dead_run_never_committed_is_interrupted_not_damage(two_epochs):
    ledger.Run(two_epochs, "r").write_record(run_record("r", "random"))
    with ledger.LedgerWriter(two_epochs, commits=False) as writer:   # epoch 2 written, never committed
        writer.add("scores", {"run": "r", "epoch": 2}, {
            "step": np.zeros(10), "sample_id": np.arange(10), "clipscore": np.zeros(10, np.float32),
            "hist": np.zeros(10, np.float32), "delta": np.zeros(10, np.float32), "loss": np.zeros(10, np.float32),
            "selected": np.ones(10, bool), "correct": np.ones(10, bool)})
    (two_epochs / "steps" / "run=r" / "epoch=2").mkdir(parents=True)
    (two_epochs / "steps" / "run=r" / "epoch=2" / ".part-0-00000.parquet.77.tmp").write_bytes(b"half")
    result = check(two_epochs)
    assert result.exit_code == 0, result.output
    assert "interrupted  scores/run=r/epoch=2/part-0-00000.parquet: run r stopped in epoch 2" in result.output
    assert "interrupted  steps/run=r/epoch=2/.part-0-00000.parquet.77.tmp" in result.output
    assert "`dissect train --resume` removes it" in result.output and "2 files of interrupted epochs or compactions" in result.output
    strict = CliRunner().invoke(cli, ["check", "--ledger", str(two_epochs), "--strict"])
    assert strict.exit_code == 1
    assert ledger.query(two_epochs, "SELECT count(*) FROM scores")[1] == [(2 * ROWS_PER_EPOCH,)]
    ledger.Run(two_epochs, "r").drop_epochs(2)   # what --resume does first
    assert "interrupted" not in check(two_epochs).output
