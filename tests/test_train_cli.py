"""`dissect train` end to end through click's CliRunner, on a 100-pair dataset."""
import math
from pathlib import Path

import open_clip
import pytest
import torch
from click.testing import CliRunner

from conftest import run_record
from dissect import ledger
from dissect.cli.main import cli
from dissect.engine import strategies
from dissect.engine import train as engine_train
from dissect.engine.config import TrainConfig

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
    assert [m for (m,) in rows] == ["ir_r1", "ir_r10", "ir_r5", "rsum", "rsum4", "tr_r1", "tr_r10", "tr_r5"]
    _, rows = ledger.query(trained, "SELECT name, strategy, ratio, status, world_size, config->>'warmup_epochs' "
                                    "FROM runs ORDER BY name")
    assert rows == [("all", "full", 1.0, "completed", 1, "1"), ("warm", "dissect-warmup", 0.3, "completed", 1, "1")]
    _, rows = ledger.query(trained, "SELECT min(lr) > 0, min(t_train) > 0, min(logit_scale) > 1 FROM steps")
    assert rows == [(True, True, True)]
    result = run_cli("runs", "--ledger", trained, "--format", "csv")
    assert result.exit_code == 0 and "warm,dissect-warmup,0.3,dissect-tiny,0,completed,3/3," in result.output


def test_a_trained_ledger_checks_whole(trained):
    result = run_cli("check", "--ledger", trained)
    assert result.exit_code == 0 and "is whole" in result.output, result.output


def test_checkpoint_loads_in_open_clip(trained):
    model, _, _ = open_clip.create_model_and_transforms(
        "dissect-tiny", pretrained=str(ledger.Run(trained, "warm").checkpoint_path))
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
    (["--strategy", "infobatch", "--infobatch-anneal", "1.5"], "--infobatch-anneal 1.5 is outside [0, 1)"),
    (["--strategy", "scan", "--scan-t-cos", "0"], "--scan-t-cos 0 must be at least 1"),
    (["--strategy", "scan", "--scan-prune-td", "1"], "--scan-prune-td 1.0 is outside [0, 1)"),
    (["--strategy", "ncr", "--ncr-warmup-epoch", "-1"], "--ncr-warmup-epoch -1 must be 0 or more"),
    (["--strategy", "ncr", "--ncr-p-threshold", "1.5"], "--ncr-p-threshold 1.5 is outside [0, 1]"),
    (["--strategy", "gsc", "--gsc-beta", "2"], "--gsc-beta 2.0 is outside [0, 1]"),
    (["--strategy", "mid-loss", "--mid-loss-spread", "-0.1"], "--mid-loss-spread -0.1 is outside [0, 1)"),
    (["--strategy", "mid-loss", "--mid-loss-low-share", "2"], "--mid-loss-low-share 2.0 is outside [0, 1]"),
    (["--run", "a=b"], "--run name 'a=b' is not usable: use letters, digits"),
    (["--run", "x" * 129], "--run name 'xxx"),
    (["--run", ".hidden"], "--run name '.hidden' is not usable"),
    (["--epochs", "1"], "dissect-warmup needs --epochs 2 or more"),
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
    def data_files():   # the run's lock file is not data: it notes who holds the run
        return sorted(p.stat().st_mtime_ns for p in trained.rglob("*") if p.is_file() and not p.name.endswith(".lock"))

    before = data_files()
    result = run_cli(*train_args(tiny_dataset, trained, "warm"))
    assert result.exit_code == 2 and "already in" in result.output and len(result.output.splitlines()) == 1
    assert data_files() == before


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
    assert ledger.Run(ledger_dir, "cut").record()["status"] == "stopped"
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
    assert ledger.Run(ledger_dir, "cut").record()["status"] == "completed"
    assert [p.stat().st_mtime_ns for p in first_epoch] == first_epoch_written   # epoch 0 was not redone


SCORE_COLUMNS = "epoch, step, sample_id, clipscore, hist, delta, loss, selected"


def run_rows(ledger_dir, run):
    _, scores = ledger.query(ledger_dir, f"SELECT {SCORE_COLUMNS} FROM scores WHERE run = ? ORDER BY step, sample_id",
                             [run])
    _, steps = ledger.query(ledger_dir, "SELECT epoch, step, batch_size, n_selected, lr, loss, logit_scale "
                                        "FROM steps WHERE run = ? ORDER BY step", [run])
    _, evals = ledger.query(ledger_dir, "SELECT epoch, step, metric, value FROM evals WHERE run = ? ORDER BY ALL",
                            [run])
    return scores, steps, evals


def test_batches_are_the_same_for_any_number_of_loader_workers(tiny_dataset, tmp_path):
    """100 pairs, batch 30: four steps an epoch (30, 30, 30, 10), whatever --workers (of the shard loader)."""
    ledger_dir = tmp_path / "ledger"
    for workers in (0, 1, 2):
        args = train_args(tiny_dataset, ledger_dir, f"w{workers}", "dissect-warmup", 2, "--no-cache")
        args[args.index("--workers") + 1] = workers
        args[args.index("--batch-size") + 1] = 30
        assert run_cli(*args).exit_code == 0
    reference = run_rows(ledger_dir, "w0")
    assert [(e, b) for e, _, b, *_ in reference[1]] == [(e, b) for e in (0, 1) for b in (30, 30, 30, 10)]
    assert len(reference[0]) == 200 and reference[2]
    assert run_rows(ledger_dir, "w1") == reference and run_rows(ledger_dir, "w2") == reference


def test_a_resume_with_other_workers_continues_exactly(tiny_dataset, tmp_path):
    ledger_dir = tmp_path / "ledger"   # the shard loader: its workers read whole batches
    assert run_cli(*train_args(tiny_dataset, ledger_dir, "whole", "random", 2, "--no-cache")).exit_code == 0

    def interrupt_after_first_epoch(trainer):
        if trainer.epoch == 1:
            raise KeyboardInterrupt

    cfg = engine_train.TrainConfig(data=str(tiny_dataset), ledger=str(ledger_dir), run="cut", strategy="random",
                                   ratio=RATIO, epochs=2, batch_size=BATCH, warmup_epochs=1, workers=2, cache="off",
                                   quiet=True)
    with pytest.raises(KeyboardInterrupt):
        engine_train.train(cfg, on_epoch_end=interrupt_after_first_epoch)
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "cut", "random", 2, "--no-cache", "--resume"))
    assert result.exit_code == 0, result.output
    assert run_rows(ledger_dir, "cut") == run_rows(ledger_dir, "whole")


def test_random_and_full_run_no_scoring_pass_unless_asked(tiny_dataset, tmp_path):
    ledger_dir = tmp_path / "ledger"
    for run, strategy, extra in [("rand", "random", ()), ("rand-all", "random", ("--score-all",)),
                                 ("all", "full", ())]:
        assert run_cli(*train_args(tiny_dataset, ledger_dir, run, strategy, 2, *extra)).exit_code == 0
    _, rows = ledger.query(ledger_dir, "SELECT run, count(*), count(clipscore), count(loss), "
                                       "count(*) FILTER (WHERE selected), count(*) FILTER (WHERE selected AND "
                                       "clipscore IS NOT NULL) FROM scores GROUP BY run ORDER BY run")
    # random scores exactly what it trains (from the training forward); --score-all scores everything
    assert rows == [("all", 200, 200, 200, 200, 200), ("rand", 200, 60, 60, 60, 60),
                    ("rand-all", 200, 200, 200, 60, 60)]
    # t_score of random and full is the pick alone; the median, as a busy machine may pause any one step
    _, rows = ledger.query(ledger_dir, "SELECT run, median(t_score) FROM steps GROUP BY run ORDER BY run")
    assert dict(rows)["rand"] < 2e-3 and dict(rows)["all"] < 2e-3 and dict(rows)["rand-all"] > 2e-3
    # the scoring pass does not change which samples random picks
    _, rows = ledger.query(ledger_dir, "SELECT count(*) FROM scores a JOIN scores b USING (epoch, sample_id) "
                                       "WHERE a.run = 'rand' AND b.run = 'rand-all' AND a.selected <> b.selected")
    assert rows == [(0,)]
    assert ledger.Run(ledger_dir, "rand-all").record()["config"]["score_all"] is True


def test_every_test_set_is_evaluated_under_its_own_name(tiny_dataset, tmp_path):
    ledger_dir = tmp_path / "ledger"
    args = train_args(tiny_dataset, ledger_dir, "two", "random", 2, "--test-data", f"coco={tiny_dataset}",
                      "--test-data", f"flickr={tiny_dataset}")
    assert run_cli(*args).exit_code == 0
    _, rows = ledger.query(ledger_dir, "SELECT metric, count(*) FROM evals WHERE metric LIKE '%rsum4' GROUP BY 1 "
                                       "ORDER BY 1")
    assert rows == [("coco/rsum4", 2), ("flickr/rsum4", 2)]
    result = run_cli("report", "--table", "1", "--ledger", ledger_dir, "--run", "two", "--format", "csv")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line and not line.startswith("sql:")]
    assert lines[0].startswith("test_set,method,setting,r=0.3 IR@1,")
    assert [line.split(",")[0] for line in lines[1:]] == ["coco", "flickr"]
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "dup", "random", 2, "--test-data", tiny_dataset,
                                 "--test-data", tiny_dataset))
    assert result.exit_code == 2 and "two --test-data sets are named" in result.output


def test_adamw_defaults_follow_open_clip_train_per_model(trained, tiny_dataset, tmp_path):
    config = ledger.Run(trained, "warm").record()["config"]
    assert (config["beta1"], config["beta2"], config["eps"]) == (0.9, 0.98, 1e-6)     # dissect-tiny is a ViT
    resnet = TrainConfig(data="d", ledger="l", run="r", model="RN50").resolved(device="cpu", is_resnet=True)
    assert (resnet.beta1, resnet.beta2, resnet.eps) == (0.9, 0.999, 1e-8)
    ledger_dir = tmp_path / "ledger"
    assert run_cli(*train_args(tiny_dataset, ledger_dir, "b", "random", 2, "--beta2", "0.95", "--eps", "1e-7")
                   ).exit_code == 0
    config = ledger.Run(ledger_dir, "b").record()["config"]
    assert (config["beta1"], config["beta2"], config["eps"]) == (0.9, 0.95, 1e-7)


def test_the_cli_takes_its_defaults_from_the_library():
    command = cli.commands["train"]
    for param in command.params:
        if param.name in TrainConfig.__dataclass_fields__ and param.name not in ("data", "ledger", "run"):
            default = TrainConfig.__dataclass_fields__[param.name].default
            if param.is_flag:
                assert default is False, param.name
            elif param.multiple:
                assert default == (), param.name
            else:
                assert param.default == default, param.name
    help_text = run_cli("train", "--help").output
    for name in strategies.REGISTRY:
        assert name in help_text


@pytest.mark.parametrize("strategy", ["infobatch", "scan", "mid-loss", "divbs", "ncr", "gsc"])
def test_the_online_baselines_train_and_say_what_they_trained(tiny_dataset, tmp_path, strategy):
    ledger_dir = tmp_path / "ledger"
    # scan: pre-training ends after epoch 1 (the first with a loss before it to compare), epoch 2 collects
    result = run_cli(*train_args(tiny_dataset, ledger_dir, strategy, strategy, 4, "--infobatch-anneal", "0.25",
                                 "--scan-prune-td", "0.99", "--ratio", "0.8"))
    assert result.exit_code == 0, result.output
    _, rows = ledger.query(ledger_dir, "SELECT epoch, sum(n_selected), count(*), sum(batch_size), sum(n_pruned) "
                                       "FROM steps GROUP BY 1 ORDER BY 1")
    trained = [n for _, n, _, _, _ in rows]
    if strategy in ("infobatch", "scan"):   # prune before loading: fewer steps, full batches, all trained
        assert [(b, p) for _, _, _, b, p in rows] == [(n, 100 - n) for n in trained]
        assert [c for _, _, c, _, _ in rows] == [math.ceil(n / BATCH) for n in trained]
        _, per_epoch = ledger.query(ledger_dir, "SELECT DISTINCT count(*) FROM scores GROUP BY epoch")
        assert per_epoch == [(100,)]        # a row for every sample every epoch, pruned ones too
    if strategy == "infobatch":      # trains all of epoch 0 (nothing recorded yet) and of the annealed last epoch
        assert trained[0] == 100 and trained[-1] == 100 and min(trained) < 100
    elif strategy == "scan":         # full twice, collecting, then a quarter of the candidates dropped
        assert trained[:3] == [100, 100, 100] and trained[3] < 100
    elif strategy == "mid-loss":     # prunes more as training goes on
        assert trained == sorted(trained, reverse=True) and trained[0] > trained[-1]
    else:
        assert trained == [100 // BATCH * math.floor(0.8 * BATCH)] * 4
    fraction = sum(trained) / 400
    assert f"trained {fraction:.3f} of its train samples per epoch" in result.output
    result = run_cli("runs", "--ledger", ledger_dir, "--format", "csv")
    assert f",{round(fraction, 3)}," in result.output
    config = ledger.Run(ledger_dir, strategy).record()["config"]
    assert {"infobatch_anneal", "scan_t_cos", "scan_prune_td", "mid_loss_spread", "divbs_features", "ncr_warmup_epoch",
            "ncr_p_threshold", "gsc_beta"} <= set(config)


def test_ncr_trains_its_peer_network_in_the_same_run_and_resumes_it(tiny_dataset, tmp_path):
    ledger_dir = tmp_path / "ledger"
    assert run_cli(*train_args(tiny_dataset, ledger_dir, "ncr", "ncr", 2)).exit_code == 0
    state = torch.load(ledger_dir / "checkpoints" / "ncr" / "checkpoint.pt", weights_only=True)
    model, peer = state["state_dict"], state["peer"]["state_dict"]
    assert model.keys() == peer.keys() and not torch.equal(model["text_projection"], peer["text_projection"])
    assert state["peer"]["optimizer"]["state"]      # the peer was trained, not only scored
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "ncr", "ncr", 3, "--resume"))
    assert result.exit_code == 0, result.output
    resumed = torch.load(ledger_dir / "checkpoints" / "ncr" / "checkpoint.pt", weights_only=True)
    assert resumed["epoch"] == 3 and not torch.equal(resumed["peer"]["state_dict"]["text_projection"],
                                                     peer["text_projection"])
    result = run_cli(*train_args(tiny_dataset, tmp_path / "l2", "x", "ncr", 2, "--select-scope", "local"))
    assert result.exit_code != 0 and "ncr picks over the global batch" in result.output


def test_query_is_read_only_and_odd_ledger_paths_are_refused(trained, tmp_path):
    target = trained / "scores" / "stolen.csv"
    result = run_cli("query", f"COPY (SELECT 1) TO '{target}'", "--ledger", trained)
    assert result.exit_code == 2 and "read-only: COPY statements are refused" in result.output
    assert not target.exists()
    result = run_cli("query", f"ATTACH '{trained / 'x.db'}'", "--ledger", trained)
    assert result.exit_code == 2 and not (trained / "x.db").exists()
    result = run_cli("query", "SET VARIABLE r = 'warm'; SELECT count(*) FROM scores WHERE run = getvariable('r')",
                     "--ledger", trained, "--format", "csv")
    assert result.exit_code == 0 and result.output.splitlines()[-1] == "300"
    result = run_cli("query", "SELECT 1", "--ledger", tmp_path / "le[dg]er")
    assert result.exit_code == 2 and "would read as a pattern" in result.output


@pytest.mark.parametrize("statement", [
    "SET log_query_path = '{part}'; SELECT 1",              # would overwrite a committed part
    "SET log_query_path = '{record}'; SELECT 1",            # would break the runs view
    "SET enable_profiling = 'json'; SET profiling_output = '{elsewhere}'; SELECT 1",
    "RESET lock_configuration; SET log_query_path = '{elsewhere}'; SELECT 1",
    "CREATE PERSISTENT SECRET s (TYPE S3, KEY_ID 'a', SECRET 'b')",
    "SELECT * FROM read_parquet('https://example.com/x.parquet')",   # would fetch an extension
    "INSTALL httpfs", "LOAD httpfs", "PRAGMA enable_profiling", "EXPORT DATABASE '{elsewhere}'",
])
def test_query_can_neither_write_nor_reach_out(trained, tmp_path, statement):
    part = sorted((trained / "scores").rglob("*.parquet"))[0]
    record = trained / "runs" / "warm.json"
    before = part.read_bytes(), record.read_bytes()
    sql = statement.format(part=part, record=record, elsewhere=tmp_path / "out")
    result = run_cli("query", sql, "--ledger", trained)
    assert result.exit_code == 2 and result.output.startswith("error: ") and len(result.output.splitlines()) == 1
    assert (part.read_bytes(), record.read_bytes()) == before and not (tmp_path / "out").exists()
    assert not (Path.home() / ".duckdb" / "stored_secrets").exists()


def test_one_process_per_run_and_a_dead_run_looks_dead(tiny_dataset, tmp_path):
    ledger_dir = tmp_path / "ledger"
    with ledger.Run(ledger_dir, "busy").lock():          # as a live training process holds it
        result = run_cli(*train_args(tiny_dataset, ledger_dir, "busy", "random", 2))
        assert result.exit_code == 2 and "is being trained by process" in result.output
        assert ledger.Run(ledger_dir, "busy").is_live()
    assert not ledger.Run(ledger_dir, "busy").is_live()
    # a run whose process died mid-way: its record still says running, nobody holds its lock
    ledger.Run(ledger_dir, "ghost").write_record(run_record("ghost", "random", end=None, status="running", config={}))
    result = run_cli("runs", "--ledger", ledger_dir, "--format", "csv")
    assert "ghost,random,0.3,m,0,died (last write " in result.output and ",0/2," in result.output
    result = run_cli("drop", "ghost", "--ledger", ledger_dir)
    assert result.exit_code == 0 and "removed" in result.output and "ghost.json" in result.output
    assert ledger.Run(ledger_dir, "ghost").record() is None
    with ledger.Run(ledger_dir, "busy").lock():          # a live run: refused before a word of removing
        ledger.Run(ledger_dir, "busy").write_record(run_record("busy", "random", end=None, status="running", config={}))
        result = run_cli("drop", "busy", "--ledger", ledger_dir)
    assert result.exit_code == 2 and result.output.startswith("error: run 'busy' is being trained")
    assert "removed" not in result.output and ledger.Run(ledger_dir, "busy").record() is not None


def test_drop_stays_inside_its_ledger(tiny_dataset, tmp_path):
    import shutil

    victim = tmp_path / "victim.json"
    victim.write_text("{}")
    ledger_dir = tmp_path / "a" / "ledger"
    result = run_cli("drop", "../../victim", "--ledger", ledger_dir)
    assert result.exit_code == 2 and "is not usable" in result.output and victim.exists()
    outside = tmp_path / "elsewhere"
    assert run_cli(*train_args(tiny_dataset, ledger_dir, "r", "random", 1)).exit_code == 0
    assert run_cli(*train_args(tiny_dataset, ledger_dir, "o", "random", 1, "--out", outside)).exit_code == 0
    assert ledger.Run(ledger_dir, "r").record()["config"]["out"] == "checkpoints/r"     # relative: the ledger's own
    assert ledger.Run(ledger_dir, "o").record()["config"]["out"] == str(outside.resolve())
    copy = tmp_path / "b" / "ledger"
    shutil.copytree(ledger_dir, copy)
    result = run_cli("drop", "r", "--ledger", copy)            # the copy's checkpoint, not the original's
    assert result.exit_code == 0 and str(copy / "checkpoints" / "r" / "checkpoint.pt") in result.output
    assert not (copy / "checkpoints" / "r").exists() and (ledger_dir / "checkpoints" / "r" / "checkpoint.pt").exists()
    result = run_cli("drop", "o", "--ledger", copy)            # a checkpoint outside the ledger is left
    assert result.exit_code == 0 and f"kept {outside / 'checkpoint.pt'}: it is outside the ledger" in result.output
    assert (outside / "checkpoint.pt").exists() and ledger.Run(copy, "o").record() is None


def test_resume_checks_what_it_resumes(tiny_dataset, tmp_path):
    ledger_dir = tmp_path / "ledger"
    assert run_cli(*train_args(tiny_dataset, ledger_dir, "r", "random", 2)).exit_code == 0
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "r", "small-loss", 2, "--resume", "--seed", "3"))
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "--strategy 'random' -> 'small-loss'" in result.output and "--seed 0 -> 3" in result.output
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "r", "random", 1, "--resume"))
    assert result.exit_code == 2 and "it may only grow" in result.output
    half_written = ledger_dir / "checkpoints" / "r" / ".checkpoint.pt.999.tmp"   # a killed save
    half_written.write_bytes(b"half")
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "r", "random", 3, "--resume"))
    assert result.exit_code == 0, result.output                 # trains on to 3 epochs
    _, rows = ledger.query(ledger_dir, "SELECT max(epoch) FROM scores WHERE run = 'r'")
    assert rows == [(2,)] and not half_written.exists()
    half_written.write_bytes(b"half")
    assert run_cli("drop", "r", "--ledger", ledger_dir).exit_code == 0
    assert not (ledger_dir / "checkpoints" / "r").exists()


def test_a_run_killed_before_its_first_checkpoint_starts_again(tiny_dataset, tmp_path):
    ledger_dir = tmp_path / "ledger"

    def die_in_the_first_epoch(trainer):
        raise KeyboardInterrupt

    cfg = engine_train.TrainConfig(data=str(tiny_dataset), ledger=str(ledger_dir), run="early", strategy="random",
                                   epochs=2, batch_size=BATCH, workers=0, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        engine_train.train(cfg, on_epoch_end=die_in_the_first_epoch)
    ledger.Run(ledger_dir, "early").checkpoint_path.unlink()
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "early", "random", 2, "--resume"))
    assert result.exit_code == 0 and "starts again from epoch 0" in result.output
    _, rows = ledger.query(ledger_dir, "SELECT epoch, count(*) FROM scores GROUP BY 1 ORDER BY 1")
    assert rows == [(0, 100), (1, 100)]


def test_query_reads_files_binds_parameters_and_writes_parquet(trained, tmp_path):
    sql = tmp_path / "q.sql"
    sql.write_text("SELECT count(*) AS n FROM scores WHERE run = $run AND epoch = $epoch::INTEGER")
    result = run_cli("query", "--file", sql, "--param", "run=warm", "--param", "epoch=1", "--ledger", trained,
                     "--format", "csv")
    assert result.exit_code == 0 and result.output == "n\n100\n"
    # a value is bound, never pasted: quotes in it do not end the string
    result = run_cli("query", "SELECT count(*) AS n FROM scores WHERE run = $run", "--param", "run=x' OR '1'='1",
                     "--ledger", trained, "--format", "csv")
    assert result.output == "n\n0\n"
    out = tmp_path / "scores.parquet"
    result = run_cli("query", "SELECT * FROM scores WHERE run = 'warm'", "--ledger", trained, "--format", "parquet",
                     "--out", out)
    assert result.exit_code == 0 and "wrote 300 rows" in result.output
    import pyarrow.parquet as pq
    assert pq.read_table(out).num_rows == 300
    result = run_cli("query", "SELECT 1", "--ledger", trained, "--format", "parquet")
    assert result.exit_code == 2 and "--out" in result.output


@pytest.mark.parametrize("precision", ["amp_bf16", "pure_bf16"])
def test_bf16_precisions_train_on_the_cpu_and_are_recorded(tiny_dataset, tmp_path, precision):
    ledger_dir = tmp_path / "ledger"
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "p", "dissect-warmup", 2, "--precision", precision))
    assert result.exit_code == 0, result.output
    assert ledger.Run(ledger_dir, "p").record()["config"]["precision"] == precision
    _, rows = ledger.query(ledger_dir, "SELECT count(clipscore), min(loss) > 0 FROM scores")
    assert rows == [(200, True)]
    _, rows = ledger.query(ledger_dir, "SELECT count(*) FROM evals WHERE metric = 'rsum4'")
    assert rows == [(2,)]


def test_fp32_is_the_cpu_default_and_amp_needs_a_gpu(tiny_dataset, trained, tmp_path):
    assert ledger.Run(trained, "warm").record()["config"]["precision"] == "fp32"
    result = run_cli(*train_args(tiny_dataset, tmp_path / "ledger", "a", "random", 2, "--precision", "amp",
                                 "--device", "cpu"))
    assert result.exit_code == 2 and "needs a GPU" in result.output
    assert not (tmp_path / "ledger").exists()


def test_where_the_time_goes_per_epoch(trained):
    result = run_cli("report", "--table", "time", "--ledger", trained, "--run", "warm", "--format", "json")
    assert result.exit_code == 0, result.output
    import json
    rows = json.loads(result.output[result.output.index("["):])
    assert [r["epoch"] for r in rows] == [0, 1, 2] and all(r["steps"] == 5 for r in rows)
    for r in rows:
        parts = r["data"] + r["scoring"] + r["training"] + r["step_other"] + r["eval"] + r["ledger"]
        assert r["training"] > 0 and r["eval"] > 0 and r["ledger"] >= 0
        assert parts == pytest.approx(r["total"], abs=0.05)


def test_a_damaged_checkpoint_and_an_unwritable_ledger_are_one_line_errors(tiny_dataset, tmp_path):
    ledger_dir = tmp_path / "ledger"
    assert run_cli(*train_args(tiny_dataset, ledger_dir, "r", "random", 2)).exit_code == 0
    ledger.Run(ledger_dir, "r").checkpoint_path.write_bytes(b"not a checkpoint")
    result = run_cli(*train_args(tiny_dataset, ledger_dir, "r", "random", 3, "--resume"))
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "cannot be resumed from" in result.output and "delete it" in result.output
    # a ledger the machine will not let us write to (a file where its runs/ folder goes: root too is refused)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "runs").write_text("")
    result = run_cli(*train_args(tiny_dataset, blocked, "other", "random", 2))
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("error: cannot write or read")


def test_two_runs_ingesting_one_source_at_once_share_one_ingest(tmp_path):
    import threading

    from dissect.engine.data import ingest, synthetic

    images = tmp_path / "images"
    images.mkdir()
    for i, sample in enumerate(synthetic.generate(6, 0, 0.0, "shuffle", 32, 0)):
        (images / f"{i}.png").write_bytes(sample.image)
        (images / f"{i}.txt").write_text(sample.caption)
    found = []

    def open_it():
        found.append(ingest.open_source(str(images), tmp_path / "datasets")[0].fingerprint)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 3 and len(set(found)) == 1
    assert len([p for p in (tmp_path / "datasets").iterdir() if not p.name.startswith(".")]) == 1


def test_the_default_run_name_says_the_ratio_the_record_keeps(tiny_dataset, tmp_path):
    result = run_cli("train", tiny_dataset, "--strategy", "full", "--ratio", "0.3", "--epochs", 1, "--batch-size",
                     BATCH, "--ledger", tmp_path, "--workers", 0, "--quiet")
    assert result.exit_code == 0, result.output
    assert ledger.Run(tmp_path, "full-r1.0-s0").record()["ratio"] == 1.0
