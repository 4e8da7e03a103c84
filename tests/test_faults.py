"""benchmarks/faults.py end to end: a trial of each kind of kill (at a random moment, while an epoch's
parts are written, while its checkpoint is written) and planted damage. SIGTERM and SIGINT, its
other two kinds of trial, are test_processes.py's signal tests (real signals, resumed row for row)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

FAULTS = Path(__file__).parents[1] / "benchmarks" / "faults.py"


def test_killed_runs_resume_to_the_reference_rows_and_check_finds_all_planted_damage(tmp_path):
    proc = subprocess.run([sys.executable, str(FAULTS), "--trials", "3", "--n", "60", "--epochs", "2",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary == {"trials": 3, "identical": 3, "rows_lost": 0, "rows_extra": 0, "survivors": 0,
                       "ended_wrongly": 0, "planted": 7, "found": 7}, \
        proc.stdout
