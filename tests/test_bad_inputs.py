"""Bad input from issue 25's probe: one line naming what is wrong, a non-zero exit, nothing written."""

import importlib.util
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import image_bytes
from dissect.cli.main import cli


@pytest.mark.parametrize("args, says", [
    (["make-synthetic", "{tmp}/out", "--image-size", "0"], "'--image-size': 0 is not in the range x>=8"),
    (["query", "", "--ledger", "{tmp}/out"], "no SQL given"),
    (["query", "--file", "{tmp}/bad.sql", "--ledger", "{tmp}/out"], "is not UTF-8 text"),
    (["query", "-- only a comment", "--ledger", "{tmp}"], "the SQL holds no statement"),
    (["eval", "--ckpt", "x.pt", "--data", "{data}", "--batch-size", "0"], "'--batch-size': 0 is not in the range"),
    (["train", "{data}", "--ledger", "{tmp}/out", "--device", "tpu9"], "--device tpu9: this machine has cpu"),
    (["train", "{data}", "--ledger", "{tmp}/out", "--device", "cuda"], "--device cuda: this machine has cpu"),
    (["train", "{data}", "--ledger", "{tmp}/out", "--csv-separator", ""], "'' is not one character"),
    (["train", "{data}", "--ledger", "{tmp}/out", "--subset", "{tmp}/nosid.parquet"], "is not a subset written by"),
])
def test_bad_input_is_one_line_and_writes_nothing(args, says, tiny_dataset, tmp_path):
    (tmp_path / "bad.sql").write_bytes(b"\xff\xfe select 1")
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "nosid.parquet")
    args = [a.format(tmp=tmp_path, data=tiny_dataset) for a in args]
    result = CliRunner().invoke(cli, args)
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith(("Usage:", "Try "))]
    assert result.exit_code == 2 and len(lines) == 1 and says in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_sql_that_opens_with_a_comment_is_sql_not_an_option(tmp_path):
    result = CliRunner().invoke(cli, ["query", "-- the answer\nSELECT 42 AS answer", "--ledger", str(tmp_path),
                                      "--format", "csv"])
    assert result.exit_code == 0 and result.output == "answer\n42\n", result.output


def test_an_over_long_caption_is_a_skipped_sample(tmp_path):
    (tmp_path / "a.png").write_bytes(image_bytes(1))
    (tmp_path / "b.png").write_bytes(image_bytes(2))
    (tmp_path / "pairs.tsv").write_text("filepath\ttitle\na.png\t" + "x" * 200_000 + "\nb.png\ta blue square\n")
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "pairs.tsv"), "--out", str(tmp_path / "ds"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1 samples; skipped 1: 1 caption over 131,072 characters" in result.output


def test_a_query_that_reads_an_unset_variable_says_which(tmp_path):
    (tmp_path / "q.sql").write_text("SELECT count(*) FROM scores WHERE run = getvariable('r')")
    result = CliRunner().invoke(cli, ["query", "--file", str(tmp_path / "q.sql"), "--ledger", str(tmp_path)])
    assert result.exit_code == 2 and "reads getvariable('r'), which nothing sets: pass --param r=VALUE" in result.output


def test_an_unusable_oracle_name_says_so(tiny_dataset, tmp_path):
    result = CliRunner().invoke(cli, ["score", str(tiny_dataset), "--ckpt", "x.pt", "--name", "o/x",
                                      "--ledger", str(tmp_path / "out")])
    assert result.exit_code == 2 and "error: oracle name 'o/x' is not usable" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["query", "SELECT 1"], ["curate", "--by", "random", "--keep", "0.5"],
                                     ["eval", "--ckpt", "x.pt", "--data", "d", "--format", "json"]])
def test_a_result_file_in_a_missing_folder_creates_nothing(command, tmp_path):
    result = CliRunner().invoke(cli, [*command, "--ledger", str(tmp_path), "--out", str(tmp_path / "no" / "such" / "f")]
                                if command[0] != "eval" else [*command, "--out", str(tmp_path / "no" / "such" / "f")])
    assert result.exit_code == 2 and "is not a folder: create it first" in result.output
    assert not (tmp_path / "no").exists()


def test_a_repeated_row_of_a_tsv_is_a_duplicate_pair(tmp_path):
    (tmp_path / "a.png").write_bytes(image_bytes(1))
    rows = ["filepath\ttitle", "a.png\ta red square", "a.png\ta red square", "a.png\tanother caption"]
    (tmp_path / "pairs.tsv").write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "pairs.tsv"), "--out", str(tmp_path / "ds"), "--quiet"])
    assert result.exit_code == 0 and "2 samples; skipped 1: 1 duplicate pair" in result.output, result.output


def load_probe():
    spec = importlib.util.spec_from_file_location("bad_inputs", Path(__file__).parents[1] / "benchmarks" / "bad_inputs.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    return probe


def test_the_guard_every_option_of_every_command_refuses_its_bad_values_in_one_line(tmp_path):
    """benchmarks/bad_inputs.py's generated cases, in-process: each bad value by its type, one option at a
    time in an otherwise valid command, must exit non-zero with one line and leave every file as it was."""
    probe = load_probe()
    paths = probe.workspace(tmp_path)
    cases = probe.generated_cases(cli)
    assert {c.command for c in cases} == set(cli.commands) and len(cases) > 400
    failures = [o for o in (probe.run_in_process(c, paths, tmp_path) for c in cases) if o.kind != "one-line"]
    assert failures == [], "\n".join(f"{o.kind}: {o.case.what}: {' '.join(o.case.args)}: {o.lines[-1:]} {o.wrote[:2]}"
                                     for o in failures)
