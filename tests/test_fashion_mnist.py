"""Fashion-MNIST from idx files the test writes itself (the Debian package is not needed)."""
import gzip
import struct

import numpy as np
import pyarrow.parquet as pq
from click.testing import CliRunner

from dissect import ledger
from dissect.cli.main import cli
from dissect.engine.data import fashion_mnist


def write_idx(path, array, gz):
    raw = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def idx_fixture(folder, n_train=40, n_test=20):
    rng = np.random.default_rng(0)
    folder.mkdir()
    for stem, n, gz in (("train", n_train, True), ("t10k", n_test, False)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = (rng.integers(0, 40, (n, 28, 28)) + labels[:, None, None] * 20).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{stem}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(folder / f"{stem}-labels-idx1-ubyte{suffix}", labels, gz)
    return folder


def test_idx_round_trip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array, True)
    assert np.array_equal(fashion_mnist.read_idx(tmp_path / "a.gz"), array)


def test_make_fashion_mnist_captions_noise_and_labels(tmp_path):
    source = idx_fixture(tmp_path / "idx")
    out = tmp_path / "fm"
    result = CliRunner().invoke(cli, ["make-fashion-mnist", str(out), "--noise-ratio", "0.25", "--from", str(source)])
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out / "samples.parquet").to_pylist()
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    assert len(train) == 40 and len(test) == 20 and sum(r["is_noisy"] for r in train) == 10
    assert not any(r["is_noisy"] for r in test)
    for r in rows:
        own = fashion_mnist.CLASSNAMES[r["label"]]
        mentions_own = f" {own}." in r["caption"] or f" {own} " in r["caption"]
        assert mentions_own != r["is_noisy"]
    assert len({r["caption"] for r in train}) > 10        # varied templates
    assert (out / "classnames.txt").read_text().split("\n")[0] == "t-shirt"

    ledger_dir = tmp_path / "ledger"
    result = CliRunner().invoke(cli, ["train", str(out), "--strategy", "small-loss", "--epochs", "2",
                                      "--batch-size", "20", "--ledger", str(ledger_dir), "--run", "fm",
                                      "--workers", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    _, metrics = ledger.query(ledger_dir, "SELECT DISTINCT metric FROM evals ORDER BY 1")
    assert ("zeroshot_top1",) in metrics and ("zeroshot_top5",) in metrics


def test_missing_idx_files_say_where_to_get_them(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["make-fashion-mnist", str(tmp_path / "out"), "--from", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "dataset-fashion-mnist" in result.output
    assert not (tmp_path / "out").exists()
