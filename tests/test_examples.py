"""The recipes of examples/ run as they stand, on small stand-ins."""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli
from conftest import image_bytes

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[1] / "examples"


def run_script(script, *args, **env):
    """bash SCRIPT ARGS with this environment's `dissect` first on the PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    proc = subprocess.run(["bash", str(EXAMPLES / script), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PATH": path, **env}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart")
    return out, run_script("quickstart/run.sh", out, N="200", EPOCHS="2")


def test_quickstart_trains_reports_and_answers_its_three_questions(quickstart):
    out, printed = quickstart
    assert (out / "report" / "index.html").exists()
    _, runs = ledger.query(out / "ledger", "SELECT name, status FROM runs ORDER BY name")
    assert runs == [("dissect", "completed"), ("full", "completed")]
    assert "run,epoch,clean_share_of_picks\ndissect,0," in printed
    assert "is_noisy,mean_delta,n\nFalse," in printed
    assert "run,rsum4,trained_fraction\ndissect," in printed and "\nfull," in printed


@pytest.mark.parametrize("name, params, columns", [
    ("sample_history", ["run=dissect", "sample_id=7"],
     "epoch,step,clipscore,hist,delta,loss,selected,correct,key,caption,is_noisy"),
    ("memorised_late", ["run=full"], "sample_id,learned_from,is_noisy,key,caption"),
    ("delta_vs_small_loss", ["run=dissect", "ratio=0.3"],
     "epoch,both,delta_only,small_loss_only,clean_share_delta_only,clean_share_small_loss_only"),
    ("ids_to_drop", ["run=full", "fraction=0.2"], "sample_id,key,uid,mean_centred_clipscore"),
])
def test_the_sql_cookbook_runs_on_a_ledger(quickstart, name, params, columns):
    out, _ = quickstart
    args = ["query", "--file", str(EXAMPLES / "sql" / f"{name}.sql"), "--ledger", str(out / "ledger"),
            "--format", "csv"]
    result = CliRunner().invoke(cli, [*args, *(a for p in params for a in ("--param", p))])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == columns
    if name == "sample_history":
        assert [line.split(",")[0] for line in lines[1:]] == ["0", "1"]   # one row per epoch
    if name == "ids_to_drop":
        assert len(lines) - 1 == pytest.approx(0.2 * 200, abs=2)
    if name == "delta_vs_small_loss":
        assert len(lines) > 1   # the epochs after the first, where delta exists


def test_curate_then_train(tmp_path):
    printed = run_script("curate/run.sh", tmp_path, N="200", EPOCHS="2")
    assert "run,trained_on,pairs,rsum4\nfull,all pairs,," in printed
    assert "\non-mean-clipscore,mean-clipscore,100," in printed and "\non-random,random,100," in printed


def karpathy_files(root: Path) -> Path:
    """Karpathy split files in the real format: COCO's with filepath/filename and six sentences
    (five are kept), a train image (left out); Flickr's with filename only and a missing image."""
    (root / "coco" / "val2014").mkdir(parents=True)
    (root / "flickr").mkdir()
    coco, flickr = [], []
    for i in range(4):
        (root / "coco" / "val2014" / f"COCO_val2014_{i:012d}.jpg").write_bytes(image_bytes(i, "JPEG"))
        coco.append({"filepath": "val2014", "filename": f"COCO_val2014_{i:012d}.jpg", "imgid": i,
                     "split": "train" if i == 3 else "test",
                     "sentences": [{"raw": f"coco picture {i} caption {j}", "tokens": []} for j in range(6)]})
    for i in range(3):
        if i != 2:
            (root / "flickr" / f"{1000 + i}.jpg").write_bytes(image_bytes(10 + i, "JPEG"))
        flickr.append({"filename": f"{1000 + i}.jpg", "imgid": i, "split": "test",
                       "sentences": [{"raw": f"flickr picture {i} caption {j}"} for j in range(5)]})
    splits = root / "karpathy"
    splits.mkdir()
    (splits / "dataset_coco.json").write_text(json.dumps({"images": coco, "dataset": "coco"}))
    (splits / "dataset_flickr30k.json").write_text(json.dumps({"images": flickr, "dataset": "flickr30k"}))
    return splits


def test_coco_and_flickr_test_sets_from_karpathy_split_files(tmp_path, tiny_dataset):
    splits = karpathy_files(tmp_path)
    printed = run_script("coco-flickr/build.sh", splits, tmp_path / "coco", tmp_path / "flickr", tmp_path / "sets")
    assert "coco-5k: 3 samples, none skipped" in printed
    assert "flickr-1k: 2 samples; skipped 1: 1 missing image file" in printed
    coco = pq.read_table(tmp_path / "sets" / "coco-5k" / "samples.parquet").to_pylist()
    assert [r["image_path"] for r in coco] == [f"val2014/COCO_val2014_{i:012d}.jpg" for i in range(3)]
    assert {r["split"] for r in coco} == {"test"}
    shard = tmp_path / "sets" / "coco-5k" / coco[0]["shard"]
    with tarfile.open(shard) as tar:
        text = tar.extractfile(next(m for m in tar if m.name.endswith(".txt"))).read().decode()
    assert text.splitlines() == [f"coco picture 0 caption {j}" for j in range(5)]   # five captions, one per line
    # evaluated every epoch of a run, each set under its own name, five captions per image
    result = CliRunner().invoke(cli, ["train", str(tiny_dataset), "--strategy", "random", "--epochs", "1",
                                      "--batch-size", "20", "--ledger", str(tmp_path / "ledger"), "--run", "r",
                                      "--workers", "0", "--quiet",
                                      "--test-data", f"coco={tmp_path / 'sets' / 'coco-5k'}",
                                      "--test-data", f"flickr={tmp_path / 'sets' / 'flickr-1k'}"])
    assert result.exit_code == 0, result.output
    _, metrics = ledger.query(tmp_path / "ledger", "SELECT metric FROM evals WHERE metric LIKE '%/tr_r10' ORDER BY 1")
    assert metrics == [("coco/tr_r10",), ("flickr/tr_r10",)]


def test_karpathy_ingest_refuses_what_it_cannot_use(tmp_path):
    (tmp_path / "bad.json").write_text("[1, 2]")
    result = CliRunner().invoke(cli, ["ingest", "--karpathy", str(tmp_path / "bad.json"), "--images", str(tmp_path),
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "is not a Karpathy split file" in result.output
    assert not (tmp_path / "o").exists()
    result = CliRunner().invoke(cli, ["ingest", "--karpathy", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--karpathy needs --images DIR" in result.output


def test_the_cc3m_recipe_runs_end_to_end_in_smoke_mode(tmp_path):
    # one of the recipe's three strategies: each is a torchrun of three processes, and the loop is the same
    # (other strategies under torchrun: test_distributed.py)
    printed = run_script("cc3m/run.sh", tmp_path, SMOKE="1", STRATEGIES="dissect-warmup")
    assert "Table 1" in printed and "coco" in printed and "flickr" in printed
    _, runs = ledger.query(tmp_path / "ledger", "SELECT name, world_size, status FROM runs ORDER BY name")
    assert runs == [("dissect-warmup", 2, "completed")]
    _, oracle = ledger.query(tmp_path / "ledger", "SELECT count(*) FROM oracle WHERE name = 'oracle'")
    assert oracle == [(48,)]
    assert (tmp_path / "report" / "index.html").exists()


def test_the_emoji_recipe_builds_trains_curates_and_draws_its_contact_sheet(tmp_path):
    from dissect.engine.config import EmojiConfig
    from dissect.engine.data import DatasetError, emoji

    try:
        emoji.find_sources(EmojiConfig())
    except DatasetError as e:
        pytest.skip(f"emoji sources missing: {e}")
    printed = run_script("emoji/run.sh", tmp_path, EPOCHS="2", MAX_GROUPS="80")
    assert "what,clean_share\nkept by mean-clipscore," in printed and "\nall train pairs,0.6" in printed
    assert "run,rsum4,chance\ndissect," in printed and "\nfull," in printed
    assert (tmp_path / "ends.png").stat().st_size > 10_000 and (tmp_path / "data" / "ATTRIBUTION.md").exists()
    _, runs = ledger.query(tmp_path / "ledger", "SELECT name, status FROM runs ORDER BY name")
    assert runs == [("dissect", "completed"), ("full", "completed")]
