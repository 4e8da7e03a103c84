"""A run's loader workers die with it, SIGKILL of the parent included, and the run looks dead at once;
SIGINT and SIGTERM stop a run between two steps, and --resume continues it row for row."""
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli

pytestmark = pytest.mark.e2e


def faults_module():
    spec = importlib.util.spec_from_file_location("faults", Path(__file__).parents[1] / "benchmarks" / "faults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAULTS = faults_module()   # its count of a run's surviving processes is the one this file checks
children, alive, alive_after = FAULTS.descendants, FAULTS.alive, FAULTS.alive_after


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
        assert alive_after(workers, 2) == 0
    finally:
        proc.kill()
    result = CliRunner().invoke(cli, ["runs", "--ledger", str(ledger_dir), "--format", "csv"])
    assert result.exit_code == 0 and "died (last write" in result.output


def train_command(data, ledger_dir, run, *extra):
    return ["train", str(data), "--strategy", "dissect-momentum", "--ratio", "0.3", "--epochs", "3",
            "--batch-size", "10", "--no-cache", "--ledger", str(ledger_dir), "--run", run, "--quiet", *extra]


@pytest.fixture(scope="module")
def whole_run(tiny_dataset, tmp_path_factory):
    """A ledger with run whole, trained without a stop: what a stopped and resumed run must match."""
    ledger_dir = tmp_path_factory.mktemp("signals") / "ledger"
    assert CliRunner().invoke(cli, train_command(tiny_dataset, ledger_dir, "whole", "--workers", "0")).exit_code == 0
    return ledger_dir


@pytest.mark.parametrize("signum, to_group", [(signal.SIGTERM, False), (signal.SIGINT, True)])
def test_a_signal_stops_the_run_between_steps_and_resume_continues_it(whole_run, tiny_dataset, tmp_path, signum,
                                                                       to_group):
    """SIGINT goes to the whole process group, as a terminal's Ctrl-C does: the loader workers too."""
    ledger_dir = tmp_path / "ledger"
    shutil.copytree(whole_run, ledger_dir)
    proc = subprocess.Popen([sys.executable, "-m", "dissect.cli", *train_command(tiny_dataset, ledger_dir, "cut",
                                                                                 "--workers", "2")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (ledger_dir / "commits" / "run=cut" / "epoch=0.json").exists():
            time.sleep(0.01)
        workers = children(proc.pid)
        os.killpg(proc.pid, signum) if to_group else os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum
    assert stderr.strip().splitlines()[-1] == (f"run cut stopped by {signal.Signals(signum).name} in epoch 1: its "
                                               "epochs before 1 are whole in the ledger; the same command with "
                                               "--resume continues from epoch 1, row for row")
    assert ledger.Run(ledger_dir, "cut").record()["status"] == "stopped"
    assert [w for w in workers if alive(w)] == []
    assert CliRunner().invoke(cli, ["check", "--ledger", str(ledger_dir), "--strict"]).exit_code == 0
    resumed = CliRunner().invoke(cli, train_command(tiny_dataset, ledger_dir, "cut", "--workers", "0", "--resume"))
    assert resumed.exit_code == 0, resumed.output
    columns = "epoch, step, sample_id, clipscore, hist, delta, loss, selected"
    query = f"SELECT {columns} FROM scores WHERE run = ? ORDER BY epoch, step, sample_id"
    cut, whole = ledger.query(ledger_dir, query, ["cut"])[1], ledger.query(ledger_dir, query, ["whole"])[1]
    assert len(cut) == 300 and cut == whole
