import hashlib
import json
import subprocess
import sys
import tarfile

import numpy as np
import pyarrow.parquet as pq
from click.testing import CliRunner

from dissect.cli.main import cli
from dissect.engine.data import synthetic


def make(tmp_path, name, *extra):
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["make-synthetic", str(out), "--n", "40", "--test-n", "10",
                                      "--noise-ratio", "0.25", "--seed", "5", *extra])
    assert result.exit_code == 0, result.output
    return out


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout_manifest_and_determinism(tmp_path):
    out = make(tmp_path, "a")
    manifest = pq.read_table(out / "samples.parquet").to_pylist()
    assert [r["sample_id"] for r in manifest] == list(range(50))
    assert [r["split"] for r in manifest] == ["train"] * 40 + ["test"] * 10
    assert sum(r["is_noisy"] for r in manifest) == 10
    assert not any(r["is_noisy"] for r in manifest if r["split"] == "test")
    with tarfile.open(out / manifest[0]["shard"]) as tar:
        names = tar.getnames()
        key = manifest[0]["key"]
        assert {f"{key}.png", f"{key}.txt", f"{key}.json"} <= set(names)
        assert tar.extractfile(f"{key}.txt").read().decode() == manifest[0]["caption"]
    assert digest(out) == digest(make(tmp_path, "b"))            # same seed, same bytes
    assert digest(out) != digest(make(tmp_path, "c", "--seed", "6"))


def test_shuffle_noise_takes_another_samples_caption(tmp_path):
    out = make(tmp_path, "s")
    manifest = pq.read_table(out / "samples.parquet").to_pylist()
    truth = {}
    for shard in {r["shard"] for r in manifest}:
        with tarfile.open(out / shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json"):
                    truth[(shard, member.name[:-5])] = json.loads(tar.extractfile(member).read())["true_caption"]
    true_train_captions = {truth[(r["shard"], r["key"])] for r in manifest if r["split"] == "train"}
    for r in manifest:
        own = truth[(r["shard"], r["key"])]
        if r["is_noisy"]:
            assert r["caption"] != own and r["caption"] in true_train_captions
        else:
            assert r["caption"] == own


def test_partial_noise_changes_exactly_one_attribute():
    rng = np.random.default_rng(0)
    for _ in range(200):
        scene = synthetic.random_scene(rng)
        changed = synthetic.perturb(scene, rng)
        diffs = [(a, attr) for a, b in zip(scene, changed) for attr in synthetic.ATTRIBUTES
                 if getattr(a, attr) != getattr(b, attr)]
        assert len(diffs) == 1
        assert len({o.position for o in changed}) == len(changed)   # no two objects in one place


def test_existing_output_and_bad_ratio_are_refused(tmp_path):
    out = make(tmp_path, "x")
    before = digest(out)
    result = CliRunner().invoke(cli, ["make-synthetic", str(out)])
    assert result.exit_code == 2 and "not empty" in result.output
    assert digest(out) == before
    result = CliRunner().invoke(cli, ["make-synthetic", str(tmp_path / "y"), "--noise-ratio", "1.5"])
    assert result.exit_code == 2 and "outside [0, 1)" in result.output and not (tmp_path / "y").exists()


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "dissect.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "make-synthetic" in result.stdout
