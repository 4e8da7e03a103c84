"""Every flag of `dissect train` is exercised by some test; the ones no other test covers here."""
import ast
import re
from pathlib import Path

import torch
from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli
from dissect.engine import distributed
from dissect.engine import train as engine_train

TESTS = Path(__file__).parent


def train_args(data, ledger_dir, run, *extra):
    return ["train", str(data), "--strategy", "dissect-warmup", "--epochs", "3", "--warmup-epochs", "1",
            "--batch-size", "20", "--ledger", str(ledger_dir), "--run", run, "--workers", "0", "--quiet", *extra]


def train(data, ledger_dir, run, *extra):
    result = CliRunner().invoke(cli, train_args(data, ledger_dir, run, *extra))
    assert result.exit_code == 0, result.output
    return result


def passed_flags() -> set[str]:
    """The train flags the tests pass: a '--flag' string in an argument list (a list or tuple
    literal, or a call's arguments: a command line), or a keyword of a TrainConfig(...) or
    replace(...) call (the library twin). A flag only named in an assertion or a message is not one."""
    found = set()
    for path in TESTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.List, ast.Tuple)):
                found |= {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
                          and re.fullmatch(r"--[a-z][a-z0-9-]*", e.value)}
            if isinstance(node, ast.Call):
                found |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
                          and re.fullmatch(r"--[a-z][a-z0-9-]*", a.value)}
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in ("TrainConfig", "replace"):
                    found |= {"--" + k.arg.replace("_", "-") for k in node.keywords if k.arg}
    return found


def test_every_train_flag_is_passed_by_a_test():
    flags = {opt for param in cli.commands["train"].params for opt in param.opts if opt.startswith("--")} - {"--help"}
    assert flags - passed_flags() == set(), f"train flags no test passes: {sorted(flags - passed_flags())}"


def test_eval_every_evaluates_every_nth_epoch_and_the_last(tiny_dataset, tmp_path):
    train(tiny_dataset, tmp_path, "sparse", "--eval-every", "2")
    _, epochs = ledger.query(tmp_path, "SELECT DISTINCT epoch FROM evals WHERE run = 'sparse' ORDER BY 1")
    assert epochs == [(1,), (2,)]


def test_logit_scale_lr_mult_zero_freezes_the_temperature(tiny_dataset, tmp_path):
    train(tiny_dataset, tmp_path, "frozen", "--logit-scale-lr-mult", "0")
    train(tiny_dataset, tmp_path, "free")
    _, rows = ledger.query(tmp_path, "SELECT run, count(DISTINCT logit_scale) FROM steps GROUP BY run ORDER BY run")
    assert rows[0][0] == "free" and rows[0][1] > 1 and rows[1] == ("frozen", 1)


def test_the_clip_loss_flags_define_the_run_and_resume_refuses_a_change(tiny_dataset, tmp_path):
    """--local-loss and --gather-with-grad change open_clip's ClipLoss under torchrun (test_distributed.py's
    local-scope run); here they are recorded as part of what defines the run."""
    train(tiny_dataset, tmp_path, "local", "--local-loss", "--gather-with-grad")
    config = ledger.Run(tmp_path, "local").record()["config"]
    assert config["local_loss"] is True and config["gather_with_grad"] is True
    result = CliRunner().invoke(cli, train_args(tiny_dataset, tmp_path, "local", "--local-loss", "--resume"))
    assert result.exit_code == 2 and "--gather-with-grad True -> False" in result.output, result.output


def test_score_mode_train_scores_with_the_model_in_train_mode(tiny_dataset, tmp_path):
    modes = {}
    for mode in ("eval", "train"):
        cfg = engine_train.TrainConfig(data=str(tiny_dataset), ledger=str(tmp_path), run=f"m-{mode}", epochs=2,
                                       batch_size=20, warmup_epochs=1, workers=0, score_mode=mode, quiet=True)
        cfg = cfg.resolved(device="cpu", is_resnet=False)
        trainer = engine_train.Trainer(cfg, engine_train.run_of(cfg), engine_train.open_sources(cfg.validated()), distributed.init("cpu"))
        seen = []
        trainer.model.register_forward_pre_hook(
            lambda module, args: seen.append(module.training) if torch.is_inference_mode_enabled() else None)
        ids, images, tokens = next(iter(engine_train.data.loader(
            trainer.dataset, "train", transform=trainer.preprocess_train, tokenizer=trainer.tokenizer,
            batch_size=20, shuffle=True)))
        trainer.train_step(ids, images, tokens)
        modes[mode] = seen
    assert modes == {"eval": [False], "train": [True]}


def test_the_optimiser_and_schedule_flags_reach_adamw_and_the_lr_schedule(tiny_dataset, tmp_path):
    train(tiny_dataset, tmp_path, "opt", "--lr", "0.002", "--warmup-steps", "3", "--weight-decay", "0.2",
          "--beta1", "0.8")
    _, lrs = ledger.query(tmp_path, "SELECT lr FROM steps WHERE run = 'opt' ORDER BY step")
    lrs = [lr for (lr,) in lrs]
    assert lrs[:3] == [0.002 * (s + 1) / 3 for s in range(3)]   # linear warm-up over 3 steps to --lr
    assert lrs[3] == 0.002 and lrs[3:] == sorted(lrs[3:], reverse=True) and lrs[-1] < 0.0005   # then cosine down
    state = torch.load(ledger.Run(tmp_path, "opt").checkpoint_path, weights_only=True)
    groups = state["optimizer"]["param_groups"]
    assert {g["weight_decay"] for g in groups} == {0.0, 0.2}   # no decay on gains, biases, logit scale
    assert {g["betas"][0] for g in groups} == {0.8}


def test_running_mean_flags_reach_the_strategy_and_bad_values_are_refused(tiny_dataset, tmp_path):
    train(tiny_dataset, tmp_path, "rm", "--strategy", "running-mean", "--ratio", "0.3", "--running-mean-warmup", "1",
          "--running-mean-random-share", "0.5", "--running-mean-pool", "0.6")
    _, rows = ledger.query(tmp_path, "SELECT epoch, sum(n_selected) FROM steps WHERE run = 'rm' GROUP BY 1 ORDER BY 1")
    assert [n for _, n in rows] == [5 * 6] * 3       # k = 6 of every batch of 20, five batches an epoch
    state = torch.load(ledger.Run(tmp_path, "rm").checkpoint_path, weights_only=True)
    assert state["strategy"]["visits"].sum() == 3 * 100   # every train sample scored in each of the 3 epochs
    result = CliRunner().invoke(cli, ["train", str(tiny_dataset), "--strategy", "running-mean", "--ledger",
                                      str(tmp_path), "--run", "bad", "--running-mean-pool", "1.5"])
    assert result.exit_code == 2 and "--running-mean-pool 1.5 is outside (0, 1]" in result.output


def test_momentum_sets_the_beta_of_the_history_the_run_records(tiny_dataset, tmp_path):
    # dissect-momentum: hist at a visit = beta * hist + (1 - beta) * CLIPScore of the visit before
    # (the first visit's score itself), so with beta 0.5 the third visit's hist is the mean of the first two's.
    CliRunner().invoke(cli, ["train", str(tiny_dataset), "--strategy", "dissect-momentum", "--momentum", "0.5",
                             "--epochs", "3", "--batch-size", "20", "--ledger", str(tmp_path), "--run", "m",
                             "--workers", "0", "--quiet"], catch_exceptions=False)
    _, rows = ledger.query(tmp_path, """
        SELECT max(abs(s2.hist - (s0.clipscore + s1.clipscore) / 2)), count(*)
        FROM scores s0 JOIN scores s1 USING (sample_id) JOIN scores s2 USING (sample_id)
        WHERE s0.epoch = 0 AND s1.epoch = 1 AND s2.epoch = 2""")
    assert rows[0][1] == 100 and rows[0][0] < 1e-3


def test_divbs_features_choose_what_divbs_picks_by(tiny_dataset, tmp_path):
    for features in ("grad", "embedding"):
        CliRunner().invoke(cli, ["train", str(tiny_dataset), "--strategy", "divbs", "--divbs-features", features,
                                 "--epochs", "1", "--batch-size", "20", "--ledger", str(tmp_path), "--run", features,
                                 "--workers", "0", "--quiet"], catch_exceptions=False)
    _, rows = ledger.query(tmp_path, """
        SELECT g.selected = e.selected, count(*) FROM scores g JOIN scores e USING (sample_id, epoch)
        WHERE g.run = 'grad' AND e.run = 'embedding' GROUP BY ALL ORDER BY ALL""")
    # the two kinds of features rank the batches differently
    assert dict(rows).get(False, 0) > 0
    _, recorded = ledger.query(tmp_path, "SELECT name, config->>'divbs_features' FROM runs ORDER BY name")
    assert recorded == [("embedding", "embedding"), ("grad", "grad")]
