#!/bin/sh
# The GPU check (benchmarks/gpu_check.py): run it from the repository root on a machine with a GPU,
#   sh benchmarks/gpu_check.sh
# with the project installed (`make install`), or PYTHON set to a python that has it.
set -e
cd "$(dirname "$0")"
exec timeout 480 "${PYTHON:-../.venv/bin/python}" gpu_check.py
