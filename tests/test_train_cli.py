"""`dissect train` end to end through click's CliRunner, on a 100-pair dataset."""
import math

import open_clip
import pytest
from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli
from dissect.engine import train as engine_train

BATCH = 20
RATIO = 0.3


def run_cli(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


def train_args(data, ledger_dir, run, strategy="dissect-warmup", epochs=3, *extra):
    return ["train", data, "--strategy", strategy, "--ratio", RATIO, "--epochs", epochs, "--batch-size", BATCH,
            "--warmup-epochs", 1, "--ledger", ledger_dir, "--run", run, "--workers", 0, "--quiet", *extra]


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    ledger_dir = tmp_path_factory.mktemp("ledger")
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "warm"))
    assert result.exit_code == 0, result.output
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "all", "full", 2))
    assert result.exit_code == 0, result.output
    return ledger_dir


def test_every_train_sample_has_one_row_per_epoch(trained):
    _, rows = ledger.query(trained, "SELECT run, epoch, count(*), count(DISTINCT sample_id) FROM scores "
                                    "GROUP BY ALL ORDER BY ALL")
    assert rows == [("all", 0, 100, 100), ("all", 1, 100, 100),
                    ("warm", 0, 100, 100), ("warm", 1, 100, 100), ("warm", 2, 100, 100)]
    _, rows = ledger.query(trained, "SELECT count(*) FROM scores s JOIN samples m USING (sample_id) "
                                    "WHERE m.split <> 'train'")
    assert rows == [(0,)]


def test_selection_budget_on_every_full_batch(trained):
    _, rows = ledger.query(trained, "SELECT DISTINCT run, n_selected FROM steps WHERE batch_size = ? ORDER BY run",
                           [BATCH])
    assert rows == [("all", BATCH), ("warm", math.floor(RATIO * BATCH))]
    _, rows = ledger.query(trained, "SELECT count(*) FROM steps s JOIN (SELECT run, step, count(*) FILTER "
                                    "(WHERE selected) AS k FROM scores GROUP BY ALL) c USING (run, step) "
                                    "WHERE c.k <> s.n_selected")
    assert rows == [(0,)]


def test_delta_is_hist_minus_clipscore(trained):
    _, rows = ledger.query(trained, """
        SELECT epoch, count(hist), count(*) FILTER (WHERE abs(delta - (hist - clipscore)) > 1e-4)
        FROM scores WHERE run = 'warm' GROUP BY epoch ORDER BY epoch""")
    assert rows == [(0, 0, 0), (1, 100, 0), (2, 100, 0)]   # no history before the first visit
    _, rows = ledger.query(trained, "SELECT count(hist), count(delta), min(clipscore) >= 0, "
                                    "max(clipscore) <= 100 FROM scores WHERE run = 'all'")
    assert rows == [(0, 0, True, True)]


def test_evals_runs_and_steps_are_recorded(trained):
    _, rows = ledger.query(trained, "SELECT run, epoch, value FROM evals WHERE metric = 'rsum' ORDER BY ALL")
    assert [(r, e) for r, e, _ in rows] == [("all", 0), ("all", 1), ("warm", 0), ("warm", 1), ("warm", 2)]
    assert all(0 <= v <= 600 for *_, v in rows)
    _, rows = ledger.query(trained, "SELECT DISTINCT metric FROM evals ORDER BY 1")
    assert [m for (m,) in rows] == ["ir_r1", "ir_r10", "ir_r5", "rsum", "tr_r1", "tr_r10", "tr_r5"]
    _, rows = ledger.query(trained, "SELECT name, strategy, ratio, status, world_size, config->>'warmup_epochs' "
                                    "FROM runs ORDER BY name")
    assert rows == [("all", "full", 1.0, "completed", 1, "1"), ("warm", "dissect-warmup", 0.3, "completed", 1, "1")]
    _, rows = ledger.query(trained, "SELECT min(lr) > 0, min(t_train) > 0, min(logit_scale) > 1 FROM steps")
    assert rows == [(True, True, True)]
    result = run_cli("runs", "--ledger", trained, "--format", "csv")
    assert result.exit_code == 0 and "warm,dissect-warmup,0.3" in result.output


def test_checkpoint_loads_in_open_clip(trained):
    model, _, _ = open_clip.create_model_and_transforms(
        "dissect-tiny", pretrained=str(trained / "checkpoints" / "warm" / engine_train.CHECKPOINT))
    assert model.visual.image_size in (32, (32, 32))


def test_query_formats(trained):
    result = run_cli("query", "SELECT count(*) AS n FROM scores", "--ledger", trained, "--format", "json")
    assert result.exit_code == 0 and result.output.strip() == '[{"n": 500}]'
    result = run_cli("query", "SELECT 1 AS one", "--ledger", trained, "--format", "csv")
    assert result.output == "one\n1\n"


@pytest.mark.parametrize("args,message", [
    (["--strategy", "bogus"], "unknown strategy 'bogus'"),
    (["--ratio", "1.5"], "--ratio 1.5 is outside (0, 1]"),
    (["--ratio", "0"], "--ratio 0.0 is outside (0, 1]"),
    (["--model", "NoSuchNet"], "unknown model 'NoSuchNet'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tiny_dataset, tmp_path, args, message):
    ledger_dir = tmp_path / "ledger"
    result = run_cli("train", tiny_dataset, "--ledger", ledger_dir, "--quiet", *args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}")
    assert not ledger_dir.exists()


def test_missing_or_empty_dataset_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    for data in (tmp_path / "missing", tmp_path / "empty"):
        result = run_cli("train", data, "--ledger", tmp_path / "ledger", "--quiet")
        assert result.exit_code == 2 and ("no dataset at" in result.output or "no usable sample" in result.output)
    assert not (tmp_path / "ledger").exists()


def test_existing_run_is_refused_without_resume(trained, tiny_dataset):
    before = sorted(p.stat().st_mtime_ns for p in trained.rglob("*") if p.is_file())
    result = run_cli(*train_args(tiny_dataset, trained, "warm"))
    assert result.exit_code == 2 and "already in" in result.output and len(result.output.splitlines()) == 1
    assert sorted(p.stat().st_mtime_ns for p in trained.rglob("*") if p.is_file()) == before


def test_interrupted_then_resumed_run_writes_the_same_rows(tiny_dataset, tmp_path):
    ledger_dir = tmp_path / "ledger"
    assert run_cli(*train_args(tiny_dataset, ledger_dir, "whole", "dissect-momentum")).exit_code == 0

    def interrupt_after_first_epoch(trainer):
        if trainer.epoch == 1:
            raise KeyboardInterrupt

    cfg = engine_train.TrainConfig(data=str(tiny_dataset), ledger=str(ledger_dir), run="cut",
                                   strategy="dissect-momentum", ratio=RATIO, epochs=3, batch_size=BATCH,
                                   warmup_epochs=1, workers=0, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        engine_train.train(cfg, on_epoch_end=interrupt_after_first_epoch)
    assert ledger.read_run(ledger_dir, "cut")["status"] == "interrupted"
    first_epoch = sorted((ledger_dir / "scores" / "run=cut" / "epoch=0").glob("*.parquet"))
    first_epoch_written = [p.stat().st_mtime_ns for p in first_epoch]
    assert len(first_epoch) == 1 and not (ledger_dir / "scores" / "run=cut" / "epoch=1").exists()
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "cut", "dissect-momentum", 3, "--resume"))
    assert result.exit_code == 0, result.output

    columns = "epoch, step, sample_id, clipscore, hist, delta, loss, selected"
    _, whole = ledger.query(ledger_dir, f"SELECT {columns} FROM scores WHERE run = 'whole' ORDER BY step, sample_id")
    _, cut = ledger.query(ledger_dir, f"SELECT {columns} FROM scores WHERE run = 'cut' ORDER BY step, sample_id")
    assert len(whole) == 300 and cut == whole
    evals = "SELECT epoch, step, metric, value FROM evals WHERE run = ? ORDER BY ALL"
    assert ledger.query(ledger_dir, evals, ["cut"])[1] == ledger.query(ledger_dir, evals, ["whole"])[1]
    assert ledger.read_run(ledger_dir, "cut")["status"] == "completed"
    assert [p.stat().st_mtime_ns for p in first_epoch] == first_epoch_written   # epoch 0 was not redone
