"""Real data in: webdataset shards, open_clip CSV, image folders; bad input skipped and counted."""
import io
import json
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import image_bytes
from dissect import ledger
from dissect.cli.main import cli
from dissect.engine import data, train as engine_train
from dissect.engine.data import ingest


def write_tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, raw in members:
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def good(key, i, ext="jpg", fmt="JPEG"):
    return [(f"{key}.{ext}", image_bytes(i, fmt)), (f"{key}.txt", f"caption number {i}".encode()),
            (f"{key}.json", json.dumps({"uid": f"uid{i}", "key": key}).encode())]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two img2dataset-style shards with every kind of bad sample, and an unreadable third."""
    root = tmp_path_factory.mktemp("shards")
    members = []
    for i in range(12):
        members += good(f"0000{i:04d}", i, *(("png", "PNG") if i % 3 == 0 else ("webp", "WEBP") if i % 3 == 1
                                              else ("jpg", "JPEG")))
    members += [("00000100.jpg", b"not an image at all"), ("00000100.txt", b"corrupt image")]
    members += [("00000101.png", image_bytes(101)[:60]), ("00000101.txt", b"truncated image")]
    members += [("00000102.png", image_bytes(102)), ("00000102.txt", b"   ")]
    members += [("00000103.png", image_bytes(103))]
    members += [("00000104.png", image_bytes(104)), ("00000104.txt", "caf\xe9".encode("latin-1"))]
    write_tar(root / "00000.tar", members)
    write_tar(root / "00001.tar", good("00010000", 50) + good("00010001", 51) + good("00000003", 3))
    (root / "00002.tar").write_bytes(b"this is not a tar file" * 10)
    return root


EXPECTED_SKIPS = {"corrupt or truncated image": 2, "empty caption": 1, "missing caption": 1,
                  "caption is not UTF-8": 1, "duplicate key": 1, "unreadable shard (ReadError)": 1}


def test_webdataset_shards_are_ingested_in_place_with_every_skip_counted(shards, tmp_path):
    result = ingest.ingest(str(shards / "{00000..00002}.tar"), tmp_path / "ds")
    assert result.dataset.n_samples == 14 and dict(result.skipped) == EXPECTED_SKIPS
    manifest = result.dataset.manifest.to_pylist()
    assert [r["sample_id"] for r in manifest] == list(range(14))
    assert manifest[0]["uid"] == "uid0" and manifest[0]["shard"] == str(shards / "00000.tar")
    skipped = pq.read_table(tmp_path / "ds" / data.SKIPPED).to_pylist()
    assert {(r["key"], r["reason"]) for r in skipped} >= {("00000103", "missing caption"),
                                                          ("00000003", "duplicate key")}
    assert "skipped 7" in result.summary()
    # the same shards by glob and by folder give the same manifest
    again = ingest.ingest(str(shards / "0000*.tar"), tmp_path / "ds2")
    assert again.dataset.manifest.equals(result.dataset.manifest)


def test_a_held_out_source_becomes_the_test_split_and_known_noise_is_kept(tmp_path):
    noisy = {1, 3}
    members = []
    for i in range(4):
        key = f"k{i}"
        members += [(f"{key}.png", image_bytes(i)), (f"{key}.txt", f"pair {i}".encode()),
                    (f"{key}.json", json.dumps({"key": key, "is_noisy": i in noisy, "label": i % 2}).encode())]
    (tmp_path / "train").mkdir()
    write_tar(tmp_path / "train" / "00000.tar", members)
    (tmp_path / "held").mkdir()
    for i in range(3):
        (tmp_path / "held" / f"t{i}.png").write_bytes(image_bytes(10 + i))
    (tmp_path / "test.tsv").write_text("filepath\ttitle\tis_noisy\n" +
                                       "".join(f"held/t{i}.png\theld out {i}\t{['false', '1', 'maybe'][i]}\n"
                                               for i in range(3)))
    out = tmp_path / "ds"
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "train"), "--test", str(tmp_path / "test.tsv"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out / data.MANIFEST).to_pylist()
    assert [r["split"] for r in rows] == ["train"] * 4 + ["test"] * 3
    assert [r["sample_id"] for r in rows] == list(range(7))
    assert [r["is_noisy"] for r in rows] == [False, True, False, True, False, True, None]
    assert [r["label"] for r in rows[:4]] == [0, 1, 0, 1]
    # the test pairs were copied into the dataset's own shards, the train shards read in place
    assert rows[4]["shard"] == "test/00000.tar" and rows[0]["shard"].endswith("train/00000.tar")
    refused = CliRunner().invoke(cli, ["ingest", str(tmp_path / "train"), "--test", str(tmp_path / "test.tsv"),
                                       "--split", "test", "--out", str(tmp_path / "ds2")])
    assert refused.exit_code == 2 and "--split test with --test" in refused.output
    assert not (tmp_path / "ds2").exists()


def test_csv_and_folder_sources(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        (images / f"img{i}.jpg").write_bytes(image_bytes(i, "JPEG"))
        (images / f"img{i}.txt").write_text(f"a photo {i}")
    (images / "img4.png").write_bytes(image_bytes(4))                 # no sidecar caption
    (images / "img5.png").write_bytes(b"\x89PNG broken")
    (images / "img5.txt").write_text("broken")
    lines = [b"filepath\ttitle", b"images/img0.jpg\tfirst", b"images/img1.jpg\tsecond", b"images/gone.jpg\tmissing",
             b"images/img2.jpg\t", b"images/img3.jpg\tna\xefve latin-1", b"images/img5.png\tcorrupt"]
    (tmp_path / "train.tsv").write_bytes(b"\n".join(lines) + b"\n")

    from_csv = ingest.ingest(str(tmp_path / "train.tsv"), tmp_path / "csv_ds")
    assert from_csv.dataset.n_samples == 2
    assert dict(from_csv.skipped) == {"missing image file": 1, "empty caption": 1, "caption is not UTF-8": 1,
                                      "corrupt or truncated image": 1}
    assert from_csv.dataset.manifest["caption"].to_pylist() == ["first", "second"]

    assert from_csv.dataset.manifest["image_path"].to_pylist() == ["images/img0.jpg", "images/img1.jpg"]

    from_folder = ingest.ingest(str(images), tmp_path / "folder_ds")
    assert from_folder.dataset.n_samples == 4
    assert from_folder.dataset.manifest["image_path"].to_pylist() == [f"img{i}.jpg" for i in range(4)]
    assert dict(from_folder.skipped) == {"missing caption": 1, "corrupt or truncated image": 1}

    comma = tmp_path / "c.csv"
    comma.write_text("path,text\nimages/img0.jpg,hello\n")
    with pytest.raises(data.DatasetError, match="no column filepath, title"):
        ingest.ingest(str(comma), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    result = CliRunner().invoke(cli, ["ingest", str(comma), "--out", str(tmp_path / "c_ds"), "--csv-img-key",
                                      "path", "--csv-caption-key", "text", "--csv-separator", ","])
    assert result.exit_code == 0 and "1 samples, none skipped" in result.output


def test_a_sample_keeps_its_source_path_and_uid_into_the_ledger_and_a_reshard(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rows = ["filepath\ttitle\tuid"]
    for i in range(6):
        (images / f"img{i}.png").write_bytes(image_bytes(i))
        rows.append(f"images/img{i}.png\tpicture {i}\t{i:032x}")
    (tmp_path / "pairs.tsv").write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "pairs.tsv"), "--strategy", "random", "--epochs", "1",
                                      "--batch-size", "3", "--ledger", str(tmp_path / "ledger"), "--run", "r",
                                      "--workers", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    _, found = ledger.query(tmp_path / "ledger", "SELECT image_path, uid FROM samples ORDER BY sample_id")
    assert found == [(f"images/img{i}.png", f"{i:032x}") for i in range(6)]
    dataset = data.open_dataset(ledger.Run(tmp_path / "ledger", "r").record()["dataset_path"])
    again = data.reshard(dataset, np.array([1, 4]), tmp_path / "subset")
    assert again.manifest.select(["image_path", "uid"]).to_pylist() == [
        {"image_path": f"images/img{i}.png", "uid": f"{i:032x}"} for i in (1, 4)]
    # the shards alone (as open_clip_train or another tool gets them) carry the uid in each json
    assert ingest.ingest(str(tmp_path / "subset" / "train"), tmp_path / "re").dataset.manifest["uid"].to_pylist() == [
        f"{i:032x}" for i in (1, 4)]


def test_train_on_shards_directly_with_csv_test_data(shards, tmp_path):
    images = tmp_path / "test_images"
    images.mkdir()
    rows = ["filepath\ttitle"]
    for i in range(8):
        (images / f"t{i}.png").write_bytes(image_bytes(200 + i))
        rows.append(f"test_images/t{i}.png\theld out {i}")
    (tmp_path / "test.tsv").write_text("\n".join(rows) + "\n")
    ledger_dir = tmp_path / "ledger"
    args = ["train", str(shards), "--test-data", str(tmp_path / "test.tsv"), "--strategy", "dissect-momentum",
            "--epochs", "2", "--batch-size", "5", "--ledger", str(ledger_dir), "--run", "r", "--workers", "2",
            "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "ingested" in result.output and "skipped: " in result.output
    _, rows = ledger.query(ledger_dir, "SELECT epoch, count(*), count(DISTINCT sample_id), min(sample_id), "
                                       "max(sample_id) FROM scores GROUP BY epoch ORDER BY epoch")
    assert rows == [(0, 14, 14, 0, 13), (1, 14, 14, 0, 13)]
    _, rows = ledger.query(ledger_dir, "SELECT reason, count(*) FROM skipped GROUP BY ALL ORDER BY 1")
    assert dict(rows) == EXPECTED_SKIPS
    _, rows = ledger.query(ledger_dir, "SELECT count(*) FROM evals WHERE metric = 'test/rsum4'")
    assert rows == [(2,)]   # the test set's metrics are named after its file
    # a second run on the same, unchanged source reuses its ingest
    result = CliRunner().invoke(cli, [*args[:-4], "r2", "--workers", "0", "--quiet"])
    assert result.exit_code == 0 and "reusing the ingest" in result.output


def test_a_shard_that_disappears_during_training_does_not_kill_the_run(tmp_path, tiny_dataset):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(tiny_dataset, copy)
    shard = copy / "train" / "00001.tar"

    def remove_a_shard(trainer):
        if trainer.epoch == 1:
            shard.unlink()

    cfg = engine_train.TrainConfig(data=str(copy), ledger=str(tmp_path / "ledger"), run="r", strategy="random",
                                   epochs=3, batch_size=20, workers=0, cache="off", quiet=True)
    record = engine_train.train(cfg, on_epoch_end=remove_a_shard)
    assert record.status == "completed"
    _, rows = ledger.query(tmp_path / "ledger", "SELECT epoch, count(*) FROM scores GROUP BY 1 ORDER BY 1")
    assert rows == [(0, 100), (1, 60), (2, 60)]
    _, rows = ledger.query(tmp_path / "ledger", "SELECT source, reason, run FROM skipped")
    assert rows == [(str(shard), "shard missing during training (epoch 1)", "r")]


def test_resume_against_a_changed_dataset_is_refused(tmp_path, tiny_dataset):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(tiny_dataset, copy)
    ledger_dir = tmp_path / "ledger"
    args = ["train", str(copy), "--strategy", "random", "--epochs", "2", "--batch-size", "50", "--ledger",
            str(ledger_dir), "--run", "r", "--workers", "0", "--quiet"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    manifest = pq.read_table(copy / data.MANIFEST)
    pq.write_table(manifest.slice(0, 99), copy / data.MANIFEST)
    result = CliRunner().invoke(cli, [*args, "--resume"])
    assert result.exit_code == 2 and "was trained on another dataset" in result.output
