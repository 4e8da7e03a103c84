"""dissect.ledger needs duckdb, pyarrow, matplotlib and rich, never torch."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["torch"] = None          # any `import torch` now raises ImportError
    from pathlib import Path
    from dissect.ledger import query, report, figures
    from click.testing import CliRunner
    from dissect.cli.main import cli

    root = sys.argv[1]
    print(query(root, "SELECT count(*) FROM scores")[1][0][0])
    result = report.run_analysis("4d", report.Request(ledger=root, run="dis", vs=("perfect",)))
    figures.draw(result, Path(sys.argv[2]) / "f.png")
    out = CliRunner().invoke(cli, ["report", "--figure", "3c", "--ledger", root, "--run", "dis", "--format", "csv"])
    assert out.exit_code == 0, out.output
    assert "torch" not in sys.modules or sys.modules["torch"] is None
    print("ok")
""")


def test_ledger_query_and_report_run_where_torch_cannot_be_imported(hand_ledger, tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(hand_ledger), str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["40", "ok"]
    assert (tmp_path / "f.png").exists()
