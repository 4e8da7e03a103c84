"""A run's loader workers die with it, SIGKILL of the parent included, and the run looks dead at once."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dissect.cli.main import cli


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_loader_workers_die_within_2_s_of_a_sigkilled_run(tiny_dataset, tmp_path):
    ledger_dir = tmp_path / "ledger"
    proc = subprocess.Popen([sys.executable, "-m", "dissect.cli", "train", str(tiny_dataset), "--strategy", "random",
                             "--epochs", "200", "--batch-size", "10", "--no-cache", "--workers", "2",
                             "--ledger", str(ledger_dir), "--run", "k", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, workers = time.time() + 120, []
        while time.time() < deadline and len(workers) < 2:
            workers = children(proc.pid)
            time.sleep(0.05)
        assert len(workers) >= 2, "no loader workers appeared"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(2)
        assert [w for w in workers if alive(w)] == []
    finally:
        proc.kill()
    result = CliRunner().invoke(cli, ["runs", "--ledger", str(ledger_dir), "--format", "csv"])
    assert result.exit_code == 0 and "died (last write" in result.output
