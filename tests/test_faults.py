"""benchmarks/faults.py end to end with 5 trials (three kinds of kill, SIGTERM, SIGINT) and planted damage."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

FAULTS = Path(__file__).parents[1] / "benchmarks" / "faults.py"


@pytest.mark.slow
def test_killed_runs_resume_to_the_reference_rows_and_check_finds_all_planted_damage(tmp_path):
    proc = subprocess.run([sys.executable, str(FAULTS), "--trials", "5", "--n", "100", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary == {"trials": 5, "identical": 5, "rows_lost": 0, "rows_extra": 0, "survivors": 0,
                       "ended_wrongly": 0, "planted": 7, "found": 7}, \
        proc.stdout
