"""dissect.ledger needs duckdb, pyarrow, matplotlib and rich, never torch or dissect.engine;
the CLI's report and query commands need no torch either."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys

    class Blocker:
        '''Refuses, and remembers, every import of the blocked packages.'''
        def __init__(self, *prefixes):
            self.prefixes, self.attempted = prefixes, []

        def find_spec(self, name, path=None, target=None):
            if any(name == p or name.startswith(p + ".") for p in self.prefixes):
                self.attempted.append(name)
                raise ImportError(f"blocked: {name}")
            return None

    blocker = Blocker("torch", "torchvision", "open_clip", "dissect.engine")
    sys.meta_path.insert(0, blocker)
    from pathlib import Path
    from dissect.ledger import figures, query, report, schema, store, writer

    root = sys.argv[1]
    print(query(root, "SELECT count(*) FROM scores")[1][0][0])
    result = report.run_analysis("4d", report.Request(ledger=root, run="dis", vs=("perfect",)))
    figures.draw(result, Path(sys.argv[2]) / "f.png")
    assert not blocker.attempted, f"the ledger imported {blocker.attempted}"

    blocker.prefixes = ("torch", "torchvision", "open_clip")   # the CLI may import dissect.engine's config
    from click.testing import CliRunner
    from dissect.cli.main import cli
    out = CliRunner().invoke(cli, ["report", "--figure", "3c", "--ledger", root, "--run", "dis", "--format", "csv"])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(cli, ["query", "SELECT count(*) FROM steps", "--ledger", root, "--format", "csv"])
    assert out.exit_code == 0, out.output
    assert not blocker.attempted, f"report or query imported {blocker.attempted}"
    print("ok")
""")


def test_ledger_query_and_report_run_where_torch_cannot_be_imported(hand_ledger, tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(hand_ledger), str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["40", "ok"]
    assert (tmp_path / "f.png").exists()


def test_the_guard_catches_an_import_of_the_engine(hand_ledger, tmp_path):
    """The test above can fail: the same guard refuses a ledger module that imports the engine."""
    bad = SCRIPT.replace("from dissect.ledger import figures", "import dissect.engine.config\n"
                                                               "from dissect.ledger import figures")
    proc = subprocess.run([sys.executable, "-c", bad, str(hand_ledger), str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "blocked: dissect.engine" in proc.stderr
