from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli
from dissect.engine import demo, models
from dissect.engine.config import DemoSettings


def test_demo_trains_five_strategies_and_the_pool_recipe_and_writes_its_report(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--epochs", "2", "--n", "120", "--test-n", "30"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for strategy in ("full", "random", "small-loss", "dissect-warmup", "running-mean", "pool-random"):
        assert strategy in result.output
    _, rows = ledger.query(out / "ledger", "SELECT name, status FROM runs ORDER BY name")
    assert rows == [("dissect-warmup", "completed"), ("full", "completed"), ("pool-random", "completed"),
                    ("random", "completed"), ("running-mean", "completed"), ("small-loss", "completed")]
    # the pool: the full run's history up to round(0.6 x 2) - 1 = epoch 0, 84 pairs, random at 0.3 / 0.7 inside
    _, rows = ledger.query(out / "ledger", "SELECT subset->>'run', (subset->>'until_epoch')::INT, "
                                           "(subset->>'n')::INT, strategy, ratio FROM runs WHERE name = 'pool-random'")
    assert rows == [("full", 0, 84, "random", 0.43)]
    # the scoring pass the machine was given (auto), recorded in each run's config
    _, rows = ledger.query(out / "ledger", "SELECT DISTINCT config->>'score_precision' FROM runs")
    assert rows == [(demo.scoring_precision(DemoSettings(), "cpu") or "fp32",)]
    for name in ("fig3b", "fig3c", "fig4a", "fig4d", "table1"):
        assert (out / "report" / f"{name}.png").exists()
    assert str(out / "report" / "index.html") in result.output.replace("\n", "")
    assert "keeps 84 of 120 train pairs by mean-clipscore" in result.output.replace("\n", " ")
    assert (out / "subset.parquet").exists()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_the_demo_scores_in_bf16_only_on_a_cpu_with_bf16_instructions(monkeypatch):
    auto, exact = DemoSettings(), DemoSettings(score_precision="fp32")
    monkeypatch.setattr(models, "cpu_multiplies_bf16", lambda: True)
    assert demo.scoring_precision(auto, "cpu") == "amp_bf16" and demo.scoring_precision(auto, "cuda") is None
    assert demo.scoring_precision(exact, "cpu") == "fp32"
    monkeypatch.setattr(models, "cpu_multiplies_bf16", lambda: False)
    assert demo.scoring_precision(auto, "cpu") is None
