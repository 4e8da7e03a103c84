import ast
import functools
import io
import os
from dataclasses import replace
from pathlib import Path

# Under pytest-xdist (make test) each worker is one of as many processes as cores: one thread
# each, for it and the trainings it starts, beats their threads contending for the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from dissect import ledger

from dissect.engine.data import synthetic


def pytest_collection_modifyitems(items):
    """The end-to-end trainings first, so that pytest-xdist hands out the longest tests while the
    short ones can still fill the gaps."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


@functools.cache
def module_fixture_of_tests(path: Path) -> dict[str, str]:
    """{test function: the module-scoped fixture of PATH it needs, directly or through other fixtures}."""
    def is_fixture(d):
        return "fixture" in ast.unparse(d.func if isinstance(d, ast.Call) else d)

    def is_module_scoped(d):
        return isinstance(d, ast.Call) and any(k.arg == "scope" and ast.literal_eval(k.value) == "module"
                                               for k in d.keywords)

    functions = [node for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)]
    needs = {f.name: [a.arg for a in f.args.args] for f in functions}
    fixtures = {f.name: f for f in functions if any(map(is_fixture, f.decorator_list))}
    module_scoped = {name for name, f in fixtures.items() if any(map(is_module_scoped, f.decorator_list))}

    def module_fixture(name, seen=()):
        for arg in needs.get(name, []):
            if arg in module_scoped:
                return arg
            if arg in fixtures and arg not in seen and (found := module_fixture(arg, (*seen, arg))):
                return found
        return None

    return {name: found for name in needs if name.startswith("test") and (found := module_fixture(name))}


def pytest_xdist_make_scheduler(config, log):
    """make test's --dist loadscope with a scope of its own: the tests that share a module-scoped
    fixture (a training, a torchrun) run on one worker, so it is built once rather than once per
    worker; every other test is a scope of its own, handed to whichever worker is free."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path, _, test = nodeid.partition("::")
            fixture = module_fixture_of_tests(config.rootpath / path).get(test.split("[")[0])
            return f"{path}::{fixture}" if fixture else nodeid

    return SharedFixtureScheduling(config, log)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """100 train pairs (a quarter noisy) and 30 clean test pairs, 32 px."""
    out = tmp_path_factory.mktemp("data") / "tiny"
    synthetic.make_synthetic(out, n=100, test_n=30, noise_ratio=0.25, noise_type="shuffle", seed=3, shard_size=40)
    return out


def image_bytes(i, fmt="PNG"):
    """A 32 px image of seeded noise, encoded as FMT."""
    rng = np.random.default_rng(i)
    img = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


# --- a hand-built ledger whose analyses have known answers (test_report.py) ---

N = 8
NOISY = {6, 7}          # ids 0-5 clean, 6-7 noisy


def manifest(test_n=0):
    """The samples of dataset "d": N train pairs (NOISY ones noisy), then test_n clean test pairs."""
    n = N + test_n
    return pa.table({"sample_id": list(range(n)), "key": [str(i) for i in range(n)], "caption": ["c"] * n,
                     "split": ["train"] * N + ["test"] * test_n, "is_noisy": [i in NOISY for i in range(n)],
                     "shard": ["s"] * n, "label": [None] * n})


def run_record(name, strategy, ratio=0.3, seed=0, dataset="d", **fields) -> ledger.RunRecord:
    """A completed run's record; FIELDS replace any of its values."""
    record = ledger.RunRecord(
        name=name, strategy=strategy, ratio=ratio, model="m", epochs=2, batch_size=N, seed=seed, dataset=dataset,
        dataset_path="/d", dataset_fingerprint="f" * 64, world_size=1,
        start=f"2026-01-01T00:00:0{len(name) % 10}+00:00", end="2026-01-01T01:00:00+00:00", status="completed",
        config={"strategy": strategy, "ratio": ratio, "seed": seed, "warmup_epochs": 1})
    return replace(record, **fields)


def add_scores(writer, run, epoch, clipscore, delta, selected, correct=()):
    """correct: the ids learned in their batch that epoch (the others not)."""
    clipscore = np.asarray(clipscore, dtype=np.float32)
    delta = np.asarray(delta, dtype=np.float32)
    writer.add("scores", {"run": run, "epoch": epoch}, {
        "step": np.full(N, epoch), "sample_id": np.arange(N), "clipscore": clipscore, "hist": delta + clipscore,
        "loss": np.ones(N, dtype=np.float32), "selected": np.isin(np.arange(N), selected),
        "correct": np.isin(np.arange(N), correct)})


def add_curve(writer, run, points, seconds_per_step=1.0, n_selected=2, score_seconds_per_step=0.0):
    """points: (step, R@Sum) evals, the four recalls (ir_r1, ir_r10, tr_r1, tr_r10) 0.1 / 0.3 / 0.2 / 0.4
    of it, so that a swap of the directions shows; every step before the last one trains n_selected of N samples and takes seconds_per_step."""
    last = max(s for s, _ in points)
    writer.add("steps", {"run": run, "epoch": 0}, {
        "step": np.arange(last), "batch_size": np.full(last, N), "n_selected": np.full(last, n_selected),
        "lr": np.full(last, 1e-3), "loss": np.ones(last, dtype=np.float32),
        "logit_scale": np.full(last, 14.0, dtype=np.float32), "t_data": np.zeros(last),
        "t_score": np.full(last, score_seconds_per_step), "t_train": np.full(last, seconds_per_step),
        "n_pruned": np.zeros(last)})
    for step, rsum in points:
        metrics = {"rsum4": rsum, "rsum": rsum, "ir_r1": rsum * 0.1, "ir_r10": rsum * 0.3,
                   "tr_r1": rsum * 0.2, "tr_r10": rsum * 0.4}
        writer.add("evals", {"run": run, "epoch": 0}, {"step": [step] * len(metrics), "metric": list(metrics),
                                                       "value": list(metrics.values())})


@pytest.fixture(scope="session")
def hand_ledger(tmp_path_factory):
    root = tmp_path_factory.mktemp("hand")
    ledger.add_samples(root, "d", "f" * 64, manifest(test_n=2))
    ledger.add_samples(root, "other", "e" * 64, pa.table({
        "sample_id": [0], "key": ["0"], "caption": ["c"], "split": ["train"], "is_noisy": [False],
        "shard": ["s"], "label": [None]}))
    clean = np.array([i not in NOISY for i in range(N)])
    with ledger.LedgerWriter(root) as writer:
        for name, strategy, ratio, seed in [("dis", "dissect-warmup", 0.3, 0), ("perfect", "dissect-warmup", 0.3, 1),
                                            ("reversed", "dissect-warmup", 0.5, 0), ("flat", "random", 0.3, 0),
                                            ("full", "full", 1.0, 0)]:
            ledger.Run(root, name).write_record(run_record(name, strategy, ratio, seed))
        # dis: picks 0, 1, 2 (clean) and 6 (noisy): TP accuracy 0.75 in both epochs.
        # epoch 0: clean score 10, noisy 20, mean 12.5; epoch 1: all 30.
        add_scores(writer, "dis", 0, np.where(clean, 10.0, 20.0), np.zeros(N), [0, 1, 2, 6])
        add_scores(writer, "dis", 1, np.full(N, 30.0), np.zeros(N), [0, 1, 2, 6])
        add_scores(writer, "perfect", 1, np.arange(N), np.where(clean, 10.0, 0.0) + np.arange(N), [0, 1])
        add_scores(writer, "reversed", 1, np.arange(N), np.where(clean, 0.0, 10.0) + np.arange(N), [6, 7])
        add_scores(writer, "flat", 1, np.full(N, 5.0), np.ones(N), [0, 7])
        # dis reaches R@sum 100 at step 100, full only at step 200: acceleration 2.
        add_curve(writer, "dis", [(50, 60.0), (100, 100.0)], seconds_per_step=1.0, score_seconds_per_step=0.5)
        add_curve(writer, "full", [(100, 80.0), (200, 100.0), (300, 120.0)], seconds_per_step=2.0, n_selected=N)
        add_curve(writer, "flat", [(100, 70.0), (200, 90.0)], seconds_per_step=1.0)
        add_curve(writer, "perfect", [(100, 110.0)], seconds_per_step=1.0)
        # an oracle that scores ids 4-7 above 0-3: clean by oracle = {4, 5, 6, 7}
        writer.add("oracle", {"name": "o"}, {"dataset": ["d"] * N, "sample_id": np.arange(N),
                                             "clipscore": np.arange(N, dtype=np.float32) * 10,
                                             "loss": np.ones(N, dtype=np.float32),
                                             "negcliploss": -np.arange(N, dtype=np.float32)})
    return root
