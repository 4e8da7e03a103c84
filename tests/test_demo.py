from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli


def test_demo_trains_four_strategies_and_writes_its_report(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--epochs", "2", "--n", "120", "--test-n", "30"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for strategy in ("full", "random", "small-loss", "dissect-warmup"):
        assert strategy in result.output
    _, rows = ledger.query(out / "ledger", "SELECT name, status FROM runs ORDER BY name")
    assert rows == [("dissect-warmup", "completed"), ("full", "completed"), ("random", "completed"),
                    ("small-loss", "completed")]
    for name in ("fig3b", "fig3c", "fig4a", "fig4d", "table1"):
        assert (out / "report" / f"{name}.png").exists()
    assert str(out / "report" / "index.html") in result.output.replace("\n", "")
    assert "keeps 60 of 120 train pairs by mean-clipscore" in result.output.replace("\n", " ")
    assert (out / "subset.parquet").exists()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
