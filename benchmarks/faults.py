"""Kill or stop training at random moments, resume, and compare the ledger with an uninterrupted
run's; then plant damage in a ledger and see whether `dissect check` finds every piece.

    .venv/bin/python benchmarks/faults.py [--trials 15] [--seed 0] [--n 200] [--epochs 3] [--out DIR]

Each trial starts `dissect train` as its own process (every other one with two loader
workers) and sends it SIGKILL: at a random time, as the first part of a random epoch
appears on disk (while the writer puts that epoch's parts in place), or a few
milliseconds after an epoch's commit record appears (while the checkpoint is written);
or it stops it at a random time with SIGTERM, or with SIGINT to its whole process group
(a terminal's Ctrl-C), which must end it with status `stopped`, exit 143 / 130 and a
line naming --resume. Two seconds after the process ends it counts the process's
children still alive (loader workers must die with their run). It then runs the same
command with --resume and compares the run's scores, steps and evals row for row with
the reference run's. Prints, per trial, what it did and what that left behind; then
trials run, trials identical to the reference, rows lost and rows duplicated, children
surviving (goal: N of N, 0, 0, 0), and the planted damage `dissect check` found. Exits 1
if a trial differs, a child survives or a stopped run did not end as it should.
"""
import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dissect import ledger
from dissect.cli.main import cli
from dissect.engine.data import synthetic

COMPARED = {
    "scores": "epoch, step, sample_id, clipscore, hist, delta, loss, selected, correct",
    "steps": "epoch, step, batch_size, n_selected, lr, loss, logit_scale",
    "evals": "epoch, step, metric, value",
}


def train_command(data, ledger_dir, run, epochs, *extra, workers=0):
    return ["train", str(data), "--strategy", "dissect-momentum",
            "--ratio", "0.3", "--epochs", str(epochs), "--batch-size", "20", "--warmup-epochs", "1",
            "--no-cache", "--workers", str(workers), "--ledger", str(ledger_dir), "--run", run, "--quiet", *extra]


def in_a_process(command: list[str]) -> list[str]:
    return [sys.executable, "-m", "dissect.cli", *command]


def in_this_process(command: list[str]) -> tuple[int, str]:
    """`dissect COMMAND` called here: its exit status and the last line it printed."""
    printed = io.StringIO()
    status = 0
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            cli.main(command, prog_name="dissect", standalone_mode=False)
        except SystemExit as e:
            status = e.code or 0
        except Exception as e:   # click's own usage errors, which dissect's handler leaves to click
            status, printed = 2, io.StringIO(str(e))
    return status, (printed.getvalue().strip().splitlines() or [""])[-1]


def alive_after(pids: list[int], seconds: float) -> int:
    """How many of PIDS are still alive SECONDS from now (sooner, 0, once none is)."""
    deadline = time.perf_counter() + seconds
    while any(map(alive, pids)) and time.perf_counter() < deadline:
        time.sleep(0.01)
    return sum(map(alive, pids))


def appears(path_glob_root: Path, pattern: str) -> bool:
    return next(path_glob_root.glob(pattern), None) is not None


def descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        try:
            kids = [int(c) for c in Path(f"/proc/{queue[-1]}/task/{queue[-1]}/children").read_text().split()]
        except FileNotFoundError:
            kids = []
        queue.pop()
        found += kids
        queue += kids
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def end_when(proc, ledger_dir: Path, run: str, moment: str, epoch: int, delay: float,
             deadline: float) -> tuple[str, int]:
    """Wait for the moment, then send its signal; returns what happened and how many of the
    process's children were alive 2 s after it ended."""
    start = time.perf_counter()
    if moment.startswith("SIG"):   # a signal is timed from the run's start of training (its record written)
        while proc.poll() is None and not (ledger_dir / "runs" / f"{run}.json").exists():
            time.sleep(0.0005)
        start = time.perf_counter()
    while proc.poll() is None and time.perf_counter() - start < deadline:
        if moment in ("random", "SIGTERM", "SIGINT") and time.perf_counter() - start >= delay:
            break
        if moment == "part write" and appears(ledger_dir / "scores" / f"run={run}" / f"epoch={epoch}", "*"):
            break
        if moment == "checkpoint write" and (ledger_dir / "commits" / f"run={run}" / f"epoch={epoch}.json").exists():
            time.sleep(delay)
            break
        time.sleep(0.0005)
    if proc.poll() is not None:
        return "not stopped: it finished first", 0
    children = descendants(proc.pid)
    if moment == "SIGINT":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM if moment == "SIGTERM" else signal.SIGKILL)
    proc.wait()
    what = f"{'sent' if moment.startswith('SIG') else 'killed at a'} {moment}" + \
           ("" if moment.startswith("SIG") else " moment") + f" {time.perf_counter() - start:.2f} s in"
    return what, alive_after(children, 2)


def stopped_as_it_should(proc, moment: str, ledger_dir: Path, run: str) -> str | None:
    """What is wrong with how a signalled run ended (None: nothing)."""
    if not moment.startswith("SIG") or ledger.Run(ledger_dir, run).record()["status"] == "completed":
        return None   # a kill, or a signal that came as the process ended after its last epoch
    signum = getattr(signal, moment)
    last = (proc.stderr.read().strip().splitlines() or [""])[-1]
    status = ledger.Run(ledger_dir, run).record()["status"]
    if proc.returncode != 128 + signum or status != "stopped" or "--resume continues" not in last:
        return f"exit {proc.returncode}, status {status}, last line {last!r}"
    return None
def left_behind(ledger_dir: Path, run: str) -> str:
    """What the kill left: half-written files, uncommitted parts, the last checkpointed epoch."""
    tmp = [p for p in ledger_dir.rglob(".*.tmp") if f"run={run}" in p.parts or run in p.parts]
    uncommitted = [line for line in ledger.check(ledger_dir).interrupted
                   if line.split(":", 1)[0].endswith(".parquet") and f"run={run}/" in line]
    checkpoint = ledger_dir / "checkpoints" / run / "checkpoint.pt"
    parts = []
    if tmp:
        parts.append(f"{len(tmp)} .tmp ({', '.join(sorted({p.name.split('.')[1] for p in tmp}))})")
    if uncommitted:
        parts.append(f"{len(uncommitted)} uncommitted parts")
    parts.append("a checkpoint" if checkpoint.exists() else "no checkpoint")
    return ", ".join(parts)


def compare(ledger_dir: Path, run: str, reference: str) -> tuple[int, int, int]:
    """(rows compared, rows of the reference missing from RUN, rows of RUN beyond the reference's)."""
    total = lost = extra = 0
    for table, columns in COMPARED.items():
        sql = f"SELECT {columns} FROM {table} WHERE run = $a EXCEPT ALL SELECT {columns} FROM {table} WHERE run = $b"
        lost += len(ledger.query(ledger_dir, sql, {"a": reference, "b": run})[1])
        extra += len(ledger.query(ledger_dir, sql, {"a": run, "b": reference})[1])
        total += ledger.query(ledger_dir, f"SELECT count(*) FROM {table} WHERE run = ?", [reference])[1][0][0]
    return total, lost, extra


def plant_damage(ledger_dir: Path, rng: random.Random) -> list[str]:
    """Damage of every kind, each in another place; returns the paths damaged (relative)."""
    committed = sorted(p for p in ledger_dir.rglob("part-*.parquet") if "/scores/" in str(p) or "/steps/" in str(p))
    victims = rng.sample(committed, 4)
    planted = []
    victims[0].unlink()                                               # missing
    victims[1].write_bytes(victims[1].read_bytes()[:-100])            # cut short
    data = bytearray(victims[2].read_bytes())                         # same size, a page damaged
    data[200:216] = bytes(16)
    victims[2].write_bytes(bytes(data))
    victims[3].write_bytes(victims[3].read_bytes() + b"\0" * 64)      # grown
    planted += [p.relative_to(ledger_dir).as_posix() for p in victims]
    stray = victims[3].parent / "part-7-99999.parquet"                 # a stray file in a table
    stray.write_bytes(b"PAR1 not really")
    half = victims[3].parent / ".part-0-00077.parquet.4242.tmp"       # a write that did not finish
    half.write_bytes(b"half")
    hit = {"/".join(p.relative_to(ledger_dir).parts[1:3]) for p in victims}
    record = next(p for p in sorted((ledger_dir / "commits").rglob("epoch=*.json"))   # an unreadable commit record
                  if p.relative_to(ledger_dir / "commits").with_suffix("").as_posix() not in hit)
    record.write_text(record.read_text()[:20])
    planted += [p.relative_to(ledger_dir).as_posix() for p in (stray, half, record)]
    return planted


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=200, help="train pairs of the synthetic dataset")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="folder to keep [default: a temporary one]")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = args.out or Path(tempfile.mkdtemp(prefix="dissect-faults-"))
    data, ledger_dir = root / "data", root / "ledger"
    synthetic.make_synthetic(data, n=args.n, test_n=40, noise_ratio=0.3, noise_type="shuffle", seed=1,
                             shard_size=50)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    t0 = time.perf_counter()
    subprocess.run(in_a_process(train_command(data, ledger_dir, "reference", args.epochs)), check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reference_wall = time.perf_counter() - t0
    print(f"reference run: {reference_wall:.1f} s")
    moments = ["random", "part write", "checkpoint write", "SIGTERM", "SIGINT"]
    results, survivors, wrong_ends = [], 0, []
    for trial in range(args.trials):
        run = f"trial-{trial}"
        moment = moments[trial % len(moments)]
        epoch = rng.randrange(args.epochs)
        delay = rng.uniform(0.5, 0.9 * reference_wall) if moment == "random" else \
            rng.uniform(0, 0.4 * reference_wall) if moment.startswith("SIG") else rng.uniform(0, 0.02)
        command = train_command(data, ledger_dir, run, args.epochs, workers=2 * (trial % 2))
        proc = subprocess.Popen(in_a_process(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        when, surviving = end_when(proc, ledger_dir, run, moment, epoch, delay, deadline=4 * reference_wall)
        survivors += surviving
        wrong = None if when.startswith("not stopped") else stopped_as_it_should(proc, moment, ledger_dir, run)
        if wrong:
            wrong_ends.append(f"{run}: {wrong}")
        debris = left_behind(ledger_dir, run)
        ended = (ledger.Run(ledger_dir, run).record() or {}).get("status", "no record")
        status, last = in_this_process(train_command(data, ledger_dir, run, args.epochs, "--resume"))
        if status != 0:
            print(f"{run}: resume failed (exit {status}): {last}")
            results.append((False, 0, 0))
            continue
        total, lost, extra = compare(ledger_dir, run, "reference")
        identical = lost == 0 and extra == 0
        results.append((identical, lost, extra))
        print(f"{run}: {when} (epoch {epoch}, {2 * (trial % 2)} workers); status {ended}; left {debris}; "
              f"{surviving} children alive 2 s later" + (f"; ended wrongly: {wrong}" if wrong else "") +
              f"; after --resume {total} rows compared, {lost} lost, {extra} duplicated or different")
    check = ledger.check(ledger_dir)
    print(f"\ntrials run: {len(results)}; identical to the reference: {sum(r[0] for r in results)} of {len(results)}; "
          f"rows lost: {sum(r[1] for r in results)}; rows duplicated or different: {sum(r[2] for r in results)}; "
          f"children surviving their run: {survivors}; stopped runs that ended wrongly: {len(wrong_ends)}")
    print(f"dissect check after all trials: {len(check.damage)} damaged, {check.parts} parts, {check.rows} rows")

    damaged = root / "damaged"
    shutil.copytree(ledger_dir, damaged)
    planted = plant_damage(damaged, rng)
    found = {d.path for d in ledger.check(damaged).damage}
    missed = [p for p in planted if p not in found]
    print(f"planted damage: {len(planted)}; found by dissect check: {len(planted) - len(missed)} of {len(planted)}"
          + (f"; missed: {', '.join(missed)}" if missed else ""))
    print(json.dumps({"trials": len(results), "identical": sum(r[0] for r in results),
                      "rows_lost": sum(r[1] for r in results), "rows_extra": sum(r[2] for r in results),
                      "survivors": survivors, "ended_wrongly": len(wrong_ends),
                      "planted": len(planted), "found": len(planted) - len(missed)}))
    if args.out is None:
        shutil.rmtree(root)
    if survivors or wrong_ends or missed or not all(r[0] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
