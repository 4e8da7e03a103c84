"""Bad input tried as a user would: issue 25's cases and the guard's generated ones.

    .venv/bin/python benchmarks/bad_inputs.py [--out DIR] [--only generated|listed]

The generated cases walk every option and argument of every command (from click) and
give each, one at a time in an otherwise valid command, the bad values of its type:
numbers -1, nan, inf, empty and not a number (0 too where the option's range leaves it
out); a choice empty or unknown; text empty or not UTF-8; an input path missing, a
folder where a file goes, a file of the wrong format or of bytes that are not UTF-8; an
output file that is a folder or lies in a folder that is not there, an output folder
that is a file. The listed
cases are the issue's: SQL that tries to write or reach out, the tracebacks it found, the
friction points, a full disk (a 2 MB tmpfs, where this user may mount one). Each runs
`python -m dissect.cli` in its own process and counts as one-line (a non-zero exit and
one line on stderr, Usage lines and progress bars aside), traceback, exit 0, or wrote
something (any file in the workspace added, changed or removed; a run's lock file aside). Prints the counts and every case that is not
one-line; exits 1 if there is one. tests/test_bad_inputs.py runs the generated cases
in-process through click's CliRunner.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

# A valid command per command: its positional arguments and its options. {x} are the workspace's paths.
BASE = {
    "make-synthetic": (["{tmp}/new"], {"--n": "20", "--test-n": "5"}),
    "make-fashion-mnist": (["{tmp}/new"], {"--n": "20", "--test-n": "5"}),
    "make-emoji": (["{tmp}/new"], {"--max-groups": "2"}),
    "ingest": (["{pairs}"], {"--out": "{tmp}/new"}),
    "fetch": (["{urls}"], {"--out": "{tmp}/new", "--timeout": "1"}),
    "cache": (["{data}"], {}),
    "train": (["{data}"], {"--ledger": "{ledger}", "--run": "new", "--epochs": "1", "--batch-size": "50",
                           "--workers": "0", "--quiet": None}),
    "query": (["SELECT 1"], {"--ledger": "{ledger}"}),
    "runs": ([], {"--ledger": "{ledger}"}),
    "check": ([], {"--ledger": "{ledger}"}),
    "compact": ([], {"--ledger": "{ledger}"}),
    "drop": (["no-such-run"], {"--ledger": "{ledger}"}),
    "score": (["{data}"], {"--ckpt": "{ckpt}", "--name": "o", "--ledger": "{ledger}", "--workers": "0"}),
    "eval": ([], {"--ckpt": "{ckpt}", "--data": "{data}"}),
    "curate": ([], {"--ledger": "{ledger}", "--by": "mean-clipscore", "--keep": "0.5", "--out": "{tmp}/new.parquet"}),
    "report": ([], {"--figure": "3c", "--ledger": "{ledger}"}),
    "demo": ([], {"--out": "{tmp}/new", "--epochs": "2", "--n": "50", "--test-n": "10"}),
}
# Paths a command writes to; every other path is one it reads.
OUTPUTS = {"out", "reshard", "preview", "ledger_dir"}
NOT_UTF8 = os.fsdecode(b"\xff\xfe")   # what Python makes of argv bytes that are not UTF-8


@dataclass(frozen=True)
class Case:
    command: str
    args: tuple[str, ...]
    what: str
    ledger: str | None = None   # may write this ledger, which `dissect check --strict` must then call whole


@dataclass
class Outcome:
    case: Case
    exit_code: int
    lines: list[str]
    traceback: bool
    wrote: list[str]

    @property
    def kind(self) -> str:
        if self.traceback:
            return "traceback"
        if self.wrote:
            return "wrote something"
        if self.exit_code == 0:
            return "exit 0"
        return "one-line" if len(self.lines) == 1 else f"{len(self.lines)} lines"


def workspace(root: Path) -> dict[str, str]:
    """A tiny dataset, a ledger with one trained run, and the files bad values are made of."""
    from click.testing import CliRunner

    from dissect.cli.main import cli
    from dissect.engine.data import synthetic

    root.mkdir(parents=True, exist_ok=True)
    synthetic.make_synthetic(root / "data", n=100, test_n=30, noise_ratio=0.25, noise_type="shuffle", seed=3,
                             shard_size=50)
    result = CliRunner().invoke(cli, ["train", str(root / "data"), "--ledger", str(root / "ledger"), "--run", "r",
                                      "--strategy", "random", "--epochs", "2", "--batch-size", "50", "--workers", "0",
                                      "--no-cache", "--quiet"])
    assert result.exit_code == 0, result.output
    images = root / "images"
    images.mkdir()
    lines = ["filepath\ttitle"]
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(images / f"{i}.png")
        lines.append(f"{images / f'{i}.png'}\ta square of shade {i}")
    (root / "pairs.tsv").write_text("\n".join(lines) + "\n")
    pq.write_table(pa.table({"url": ["file:///nonexistent.png"], "caption": ["x"]}), root / "urls.parquet")
    (root / "empty-folder").mkdir()
    (root / "text.txt").write_text("not the format this option reads\n")
    (root / "bytes.bin").write_bytes(b"\xff\xfe\x00\x81 not UTF-8 either\n")
    return {"tmp": str(root), "data": str(root / "data"), "ledger": str(root / "ledger"),
            "ckpt": str(root / "ledger" / "checkpoints" / "r" / "checkpoint.pt"), "pairs": str(root / "pairs.tsv"),
            "urls": str(root / "urls.parquet"), "folder": str(root / "empty-folder"), "text": str(root / "text.txt"),
            "bytes": str(root / "bytes.bin"), "missing": str(root / "no-such-thing")}


def excludes_zero(kind: click.ParamType) -> bool:
    if not isinstance(kind, (click.IntRange, click.FloatRange)):
        return False
    low = kind.min is not None and (kind.min > 0 or (kind.min == 0 and kind.min_open))
    high = kind.max is not None and (kind.max < 0 or (kind.max == 0 and kind.max_open))
    return low or high


def bad_values(param: click.Parameter) -> list[tuple[str, str]]:
    """(value, what it is) for PARAM's type."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return [("", "an empty choice"), ("no-such-choice", "an unknown choice")]
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        values = [("-1", "a negative number"), ("", "an empty number"), ("x", "not a number")]
        if isinstance(kind, click.types.FloatParamType):
            values += [("nan", "nan"), ("inf", "infinity")]
        return values + ([("0", "0, out of its range")] if excludes_zero(kind) else [])
    if isinstance(kind, click.Path):
        if param.name in OUTPUTS:   # a new output folder is made with its parents; a file's folder must be there
            if not kind.dir_okay:
                return [("{missing}/inside/x", "an output file in a missing folder"),
                        ("{folder}", "a folder where an output file goes")]
            return [("{text}", "a file where an output folder goes")] if not kind.file_okay else []
        values = [("{missing}", "a missing path"), ("{text}", "a file of the wrong format"),
                  ("{bytes}", "a file of bytes that are not UTF-8")]
        if not kind.dir_okay or kind.file_okay:
            values.append(("{folder}", "a folder (an empty one)"))
        return values
    return [("", "empty text"), (NOT_UTF8, "text that is not UTF-8")]


def generated_cases(cli: click.Group) -> list[Case]:
    cases = []
    for name, command in sorted(cli.commands.items()):
        positional, options = BASE[name]
        arguments = [p for p in command.params if isinstance(p, click.Argument)]
        for param in command.params:
            if isinstance(param, click.Option) and (param.is_flag or param.name == "help"):
                continue
            for value, what in bad_values(param):
                if isinstance(param, click.Argument):
                    args = list(positional)
                    args[arguments.index(param)] = value
                    opts = dict(options)
                    label = param.human_readable_name
                else:
                    args = list(positional)
                    flag = max(param.opts, key=len)
                    opts = {k: v for k, v in options.items() if k not in param.opts}
                    opts[flag] = value
                    label = flag
                cases.append(Case(name, tuple([name, *args, *flatten(opts)]), f"{label}: {what}"))
    return cases


def flatten(options: dict[str, str | None]) -> list[str]:
    return [x for k, v in options.items() for x in ([k] if v is None else [k, v])]


def listed_cases() -> list[Case]:
    """The issue's cases beyond what the generator makes."""
    sql = ["SET log_query_path = '{ledger}/scores/run=r/epoch=0/part-0-00000.parquet'; SELECT 1",
           "SET log_query_path = '{ledger}/runs/zz.json'; SELECT 1",
           "SET enable_profiling = 'json'; SET profiling_output = '{tmp}/profile.json'; SELECT 1",
           "RESET lock_configuration; SET log_query_path = '{tmp}/log'; SELECT 1",
           "CREATE PERSISTENT SECRET s (TYPE S3, KEY_ID 'a', SECRET 'b')",
           "SELECT * FROM read_parquet('https://example.com/x.parquet')",
           "INSTALL httpfs", "LOAD httpfs", "PRAGMA enable_profiling", "EXPORT DATABASE '{tmp}/export'",
           "COPY (SELECT 1) TO '{tmp}/copy.csv'", "ATTACH '{tmp}/x.db'",
           "-- only a comment", ""]
    cases = [Case("query", ("query", s, "--ledger", "{ledger}"), f"SQL: {s[:40] or 'empty'}") for s in sql]
    cases += [
        Case("drop", ("drop", "../../victim", "--ledger", "{ledger}"), "drop a path outside the ledger"),
        Case("query", ("query", "--file", "{bytes}", "--ledger", "{ledger}"), "query --file of bytes not UTF-8"),
        Case("query", ("query", "--file", "{tmp}/unset.sql", "--ledger", "{ledger}"),
             "query --file reading a variable nothing sets"),
        Case("train", ("train", "{data}", "--ledger", "{ledger}", "--run", "r", "--epochs", "2", "--quiet"),
             "train a run that is already in the ledger"),
        Case("train", ("train", "{data}", "--ledger", "{ledger}", "--run", "r", "--resume", "--strategy", "full",
                       "--quiet"), "resume with another strategy"),
        Case("train", ("train", "{data}", "--ledger", "{ledger}", "--run", "n", "--ratio", "1.5"), "a ratio of 1.5"),
        Case("train", ("train", "{data}", "--ledger", "{ledger}", "--run", "n", "--strategy", "nope"),
             "an unknown strategy"),
        Case("train", ("train", "{data}", "--ledger", "{ledger}", "--run", "n", "--device", "tpu9"), "--device tpu9"),
        Case("train", ("train", "{data}", "--ledger", "{ledger}", "--run", "n", "--subset", "{tmp}/nosid.parquet"),
             "a subset without sample_id"),
        Case("train", ("train", "{tmp}/long.tsv", "--ledger", "{ledger}", "--run", "n"),
             "a TSV whose one caption is over 131,072 characters and nothing else"),
        Case("score", ("score", "{data}", "--ckpt", "{ckpt}", "--name", "o/x", "--ledger", "{ledger}"),
             "score --name o/x"),
        Case("curate", ("curate", "--ledger", "{ledger}", "--by", "delta", "--hist-epoch", "99",
                        "--out", "{tmp}/s.parquet"), "curate --hist-epoch 99"),
        Case("fetch", ("fetch", "{tmp}/nocols.parquet", "--out", "{tmp}/fetched"), "fetch a list without url column"),
        Case("eval", ("eval", "--ckpt", "{text}", "--data", "{data}"), "eval of a checkpoint that is a text file"),
        Case("train", ("train", "{data}", "--ledger", "{full}/ledger", "--run", "n", "--epochs", "2", "--no-cache",
                       "--workers", "0", "--quiet"), "train into a full disk", ledger="{full}/ledger"),
    ]
    return cases


def prepare_listed(root: Path) -> bool:
    """The files the listed cases read; returns whether a full disk (tmpfs) could be mounted."""
    (root / "unset.sql").write_text("SELECT count(*) FROM scores WHERE run = getvariable('who')")
    pq.write_table(pa.table({"x": [1]}), root / "nosid.parquet")
    pq.write_table(pa.table({"link": ["u"], "text": ["c"]}), root / "nocols.parquet")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "a.png")
    (root / "long.tsv").write_text(f"filepath\ttitle\n{root / 'a.png'}\t{'x' * 200_000}\n")
    full = root / "full"
    full.mkdir()
    return os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(full)],
                                                capture_output=True).returncode == 0


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every data file's size and time (a run's lock file is not data: it notes who last held the run)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock")}


def changes(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


PROGRESS = re.compile(r"\d+%\|")   # a tqdm bar: what the command did before it found the problem


def judge(case: Case, exit_code: int, stderr: str, traceback: bool, wrote: list[str]) -> Outcome:
    """STDERR: where errors go (what a command reports on stdout before it fails is not an error line)."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines()
             if line.strip() and not line.startswith(("Usage:", "Try ")) and not PROGRESS.search(line)]
    return Outcome(case, exit_code, lines, traceback or "Traceback (most recent call last)" in stderr, wrote)


def run_in_process(case: Case, paths: dict[str, str], root: Path) -> Outcome:
    """CASE through click's CliRunner (the test's way: no process start per case)."""
    from click.testing import CliRunner

    from dissect.cli.main import cli

    before = snapshot(root)
    result = CliRunner().invoke(cli, [a.format(**paths) for a in case.args])
    raised = result.exception is not None and not isinstance(result.exception, SystemExit)
    return judge(case, result.exit_code, result.stderr, raised, changes(before, snapshot(root)))


def run_as_user(case: Case, paths: dict[str, str], root: Path) -> Outcome:
    def dissect(*args):
        return subprocess.run([sys.executable, "-m", "dissect.cli", *(a.format(**paths) for a in args)],
                              capture_output=True, text=True, errors="backslashreplace", timeout=600)

    before = snapshot(root)
    proc = dissect(*case.args)
    wrote = changes(before, snapshot(root))
    if case.ledger is not None:   # what it wrote must be whole
        check = dissect("check", "--ledger", case.ledger, "--strict")
        wrote = [] if check.returncode == 0 else check.stdout.strip().splitlines()
    return judge(case, proc.returncode, proc.stderr, False, wrote)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="workspace to keep [default: a temporary one]")
    parser.add_argument("--only", choices=["generated", "listed"], default=None)
    args = parser.parse_args()
    from dissect.cli.main import cli

    root = args.out or Path(tempfile.mkdtemp(prefix="dissect-bad-inputs-"))
    paths = workspace(root)
    full_disk = prepare_listed(root)
    paths["full"] = str(root / "full")
    cases = [] if args.only == "listed" else generated_cases(cli)
    if args.only != "generated":
        cases += [c for c in listed_cases() if full_disk or "full" not in c.what]
        if not full_disk:
            print("full disk case left out: this user may not mount a tmpfs")
    outcomes = []
    for case in cases:
        outcome = run_as_user(case, paths, root)
        outcomes.append(outcome)
        if outcome.kind != "one-line":
            print(f"{outcome.kind:>16}  {case.what}  ({' '.join(case.args)})\n{'':>18}" +
                  "\n                  ".join(outcome.lines[-3:] + outcome.wrote[:3]))
    counts = {kind: sum(o.kind == kind for o in outcomes) for kind in ("one-line", "traceback", "exit 0",
                                                                       "wrote something")}
    other = len(outcomes) - sum(counts.values())
    print(f"tried {len(outcomes)}: one-line {counts['one-line']}, traceback {counts['traceback']}, "
          f"exit 0 {counts['exit 0']}, wrote something {counts['wrote something']}, more than one line {other}")
    if full_disk:
        subprocess.run(["umount", str(root / "full")])
    if args.out is None:
        shutil.rmtree(root)
    if counts["one-line"] != len(outcomes):
        sys.exit(1)


if __name__ == "__main__":
    main()
