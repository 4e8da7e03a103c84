import pytest
from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli
from dissect.engine import demo, models
from dissect.engine.config import DemoSettings

pytestmark = pytest.mark.e2e


def test_demo_trains_five_strategies_and_the_curation_recipe_and_writes_its_report(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--epochs", "2", "--n", "120", "--test-n", "30"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for strategy in ("full", "random", "small-loss", "dissect-warmup", "running-mean", "micro-proxy", "curated"):
        assert strategy in result.output
    _, rows = ledger.query(out / "ledger", "SELECT name, status FROM runs ORDER BY name")
    assert rows == [("curated", "completed"), ("dissect-warmup", "completed"), ("full", "completed"),
                    ("micro-proxy", "completed"), ("random", "completed"), ("running-mean", "completed"),
                    ("small-loss", "completed")]
    # the recipe: a dissect-micro proxy's history ranks the pairs, dissect-tiny trains on the top 60 of 120
    _, rows = ledger.query(out / "ledger", "SELECT name, config->>'model', subset->>'run', subset->>'rule', "
                                           "(subset->>'n')::INT, strategy FROM runs "
                                           "WHERE name IN ('micro-proxy', 'curated') ORDER BY name")
    assert rows == [("curated", "dissect-tiny", "micro-proxy", "final-clipscore", 60, "full"),
                    ("micro-proxy", "dissect-micro", None, None, None, "full")]
    # the summary places the curated run at the share of the data it trained, not at its ratio 1
    _, rows = ledger.named_query(out / "ledger", "run_summary", {"runs": ["curated"]})
    assert rows[0][2] == 0.5 and rows[0][4] == 0.5
    # the scoring pass the machine was given (auto), recorded in each run's config
    _, rows = ledger.query(out / "ledger", "SELECT DISTINCT config->>'score_precision' FROM runs")
    assert rows == [(demo.scoring_precision(DemoSettings(), "cpu") or "fp32",)]
    for name in ("fig3b", "fig3c", "fig4a", "fig4d", "table1"):
        assert (out / "report" / f"{name}.png").exists()
    assert str(out / "report" / "index.html") in result.output.replace("\n", "")
    assert "keeps 60 of 120 train pairs by final-clipscore" in result.output.replace("\n", " ")
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
