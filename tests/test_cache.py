"""The decoded cache: what it stores, the batches it gives, and training on it."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms import functional as F

from dissect import ledger
from dissect.cli.main import cli
from dissect.engine import data, models
from dissect.engine.data import cache


@pytest.fixture(scope="module")
def cached(tiny_dataset):
    result = CliRunner().invoke(cli, ["cache", str(tiny_dataset), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "130 of 130 images readable, 34x34 px" in result.output   # 32 px / sqrt(0.9): the crop margin
    bundle = models.create("dissect-tiny")
    return data.open_dataset(tiny_dataset), bundle, cache.Cache(data.open_dataset(tiny_dataset), "dissect-tiny",
                                                                bundle.preprocess_train)


def test_the_cache_stores_each_image_resized_and_its_first_caption_tokenized(cached):
    dataset, bundle, found = cached
    reader = data.SampleReader(dataset, transform=None)
    image_bytes, text = reader.raw(7)
    expected = F.center_crop(F.resize(data.Image.open(data.io.BytesIO(image_bytes)).convert("RGB"), 34,
                                      interpolation=F.InterpolationMode.BICUBIC), 34)
    assert np.array_equal(found.images[7], np.asarray(expected))
    assert torch.equal(found.tokens[7], bundle.tokenizer([data.captions(text.decode())[0]])[0])


def test_batches_follow_the_epoch_order_and_crop_as_open_clip_does(cached):
    dataset, _, found = cached
    train_ids = dataset.split("train")["sample_id"].to_numpy()
    batches = list(found.batches(dataset, "train", batch_size=30, seed=1, epoch=2))
    expected = data.epoch_batches(train_ids, 30, shuffle=True, seed=1, epoch=2)
    assert [b[0].tolist() for b in batches] == [e.tolist() for e in expected]
    again = list(found.batches(dataset, "train", batch_size=30, seed=1, epoch=2))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again))          # seeded: the same crops
    other = next(found.batches(dataset, "train", batch_size=30, seed=1, epoch=3))
    assert not torch.equal(other[1][:1], batches[0][1][:1]) or other[0][0] != batches[0][0][0]
    # the batched resampling against torchvision's resized_crop of the same boxes
    squares = torch.from_numpy(np.array(found.images[:8])).permute(0, 3, 1, 2).float()
    boxes = found.crop_boxes(squares, torch.Generator().manual_seed(0))
    batched = found.resample(squares, boxes)
    for square, box, crop in zip(squares, boxes, batched):
        one = F.resized_crop(square, *box, [32, 32], interpolation=F.InterpolationMode.BICUBIC, antialias=False)
        assert (one.clamp(0, 255) - crop).abs().mean() < 4.0                     # of 255: interpolation detail
    # open_clip's scale (0.9, 1), up to the rounding of each side to whole pixels
    assert all(0.85 * 34 * 34 <= h * w and top + h <= 34 and left + w <= 34 for top, left, h, w in boxes.tolist())


def test_the_batched_crop_draw_has_torchvisions_distribution(cached):
    _, bundle, found = cached
    squares = torch.zeros(20_000, 3, 34, 34)
    batched = found.crop_boxes(squares, torch.Generator().manual_seed(0)).double()
    torch.manual_seed(0)
    crop = next(t for t in bundle.preprocess_train.transforms if isinstance(t, RandomResizedCrop))
    one_by_one = torch.tensor([crop.get_params(squares[0], crop.scale, crop.ratio) for _ in range(20_000)]).double()
    # top, left, height, width, area and the share of whole-square fallbacks agree in mean and spread
    for stat in (lambda b: b.mean(0), lambda b: b.std(0)):
        assert torch.allclose(stat(batched), stat(one_by_one), atol=0.05, rtol=0.01)
    area = [(b[:, 2] * b[:, 3]).mean() for b in (batched, one_by_one)]
    assert abs(area[0] - area[1]) < 2.0
    whole = [((b[:, 2] == 34) & (b[:, 3] == 34)).double().mean() for b in (batched, one_by_one)]
    assert abs(whole[0] - whole[1]) < 0.01 and whole[1] > 0.05


def uncached_copy(dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset, tmp_path / "data", ignore=shutil.ignore_patterns(cache.CACHE)))


def test_train_reads_the_cache_by_default_where_it_fits_says_why_and_resume_keeps_it(tiny_dataset, tmp_path):
    tiny_dataset, tmp_path = uncached_copy(tiny_dataset, tmp_path), tmp_path / "ledger"
    args = ["train", str(tiny_dataset), "--strategy", "random", "--batch-size", "20", "--ledger", str(tmp_path),
            "--workers", "0", "--quiet"]
    result = CliRunner().invoke(cli, [*args, "--run", "c", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"data: the decoded cache {tiny_dataset / 'cache' / 'dissect-tiny'}: its decoded form")
    assert "fits the budget" in first
    _, rows = ledger.query(tmp_path, "SELECT cache_used, cache_reason, config->>'cache' FROM runs")
    assert rows == [(True, first.split(": ", 2)[2], "auto")]
    result = CliRunner().invoke(cli, [*args, "--run", "c", "--epochs", "2", "--resume", "--no-cache"])
    assert result.exit_code == 2 and "--no-cache, but the run read the cache" in result.output
    result = CliRunner().invoke(cli, [*args, "--run", "c", "--epochs", "2", "--resume"])   # auto: as the run it resumes
    assert result.exit_code == 0, result.output
    assert "data: the decoded cache" in result.output and "the run it resumes read the cache" in result.output
    _, rows = ledger.query(tmp_path, "SELECT epoch, count(*), count(DISTINCT sample_id) FROM scores GROUP BY 1 "
                                     "ORDER BY 1")
    assert rows == [(0, 100, 100), (1, 100, 100)]


def test_a_cache_over_the_budget_reads_the_shards_and_no_cache_refuses_it(tiny_dataset, tmp_path):
    tiny_dataset, tmp_path = uncached_copy(tiny_dataset, tmp_path), tmp_path / "ledger"
    args = ["train", str(tiny_dataset), "--strategy", "random", "--epochs", "1", "--batch-size", "50",
            "--ledger", str(tmp_path), "--workers", "0", "--quiet"]
    result = CliRunner().invoke(cli, [*args, "--run", "small", "--cache-max-gb", "0.0001"])
    assert result.exit_code == 0, result.output
    assert "data: the shards: its decoded form (0.000" in result.output and "--cache forces the cache" in result.output
    assert not (tiny_dataset / "cache" / "dissect-tiny").exists()
    result = CliRunner().invoke(cli, [*args, "--run", "off", "--no-cache"])
    assert result.exit_code == 0 and "data: the shards: --no-cache" in result.output
    _, rows = ledger.query(tmp_path, "SELECT name, cache_used FROM runs ORDER BY name")
    assert rows == [("off", False), ("small", False)]
    result = CliRunner().invoke(cli, [*args, "--run", "both", "--cache", "--no-cache"])
    assert result.exit_code == 2 and "--cache and --no-cache contradict each other" in result.output
    assert ledger.Run(tmp_path, "both").record() is None


def test_auto_reads_the_shards_where_no_cache_can_be_written(tiny_dataset, tmp_path, monkeypatch):
    dataset = data.open_dataset(uncached_copy(tiny_dataset, tmp_path))
    bundle = models.create("dissect-tiny")
    monkeypatch.setattr(cache.os, "access", lambda path, mode: False)   # as a read-only DATA (root may write anywhere)
    choice = cache.choose(dataset, "dissect-tiny", bundle.preprocess_train, bundle.model.context_length, "auto")
    assert not choice.used and choice.reason.startswith(f"no cache can be written in {dataset.root}")


def test_a_stale_cache_is_rebuilt_and_an_unreadable_image_left_out(tmp_path):
    from dissect.engine.data import synthetic

    root = tmp_path / "d"
    synthetic.make_synthetic(root, n=20, test_n=0, noise_ratio=0.0, noise_type="shuffle", seed=0, shard_size=20)
    dataset = data.open_dataset(root)
    bundle = models.create("dissect-tiny")
    cache.build(dataset, "dissect-tiny", bundle.preprocess_train, bundle.tokenizer)
    members = dataset.members
    shard = root / dataset.manifest["shard"][3].as_py()
    with open(shard, "r+b") as f:   # damage sample 3's image bytes in place
        f.seek(members["image_offset"][3].as_py())
        f.write(b"\0" * members["image_size"][3].as_py())
    (root / "cache" / "dissect-tiny" / "cache.json").write_text("{}")       # stale
    cache.build(dataset, "dissect-tiny", bundle.preprocess_train, bundle.tokenizer)
    found = cache.Cache(dataset, "dissect-tiny", bundle.preprocess_train)
    assert found.readable.tolist() == [i != 3 for i in range(20)]
    ids = np.concatenate([b[0].numpy() for b in found.batches(dataset, "train", batch_size=8, seed=0, epoch=0)])
    assert sorted(ids.tolist()) == [i for i in range(20) if i != 3]


def test_the_eval_reads_the_cache_as_open_clips_val_transform_would(cached):
    dataset, bundle, found = cached
    assert found.covers(dataset, "test")
    ids, images, tokens, owner = next(found.eval_batches(dataset, "test", batch_size=8))
    assert ids.tolist() == dataset.split("test")["sample_id"].to_pylist()[:8] and owner.tolist() == list(range(8))
    reader = data.SampleReader(dataset, transform=bundle.preprocess_val)
    expected = torch.stack([reader[int(i)][1] for i in ids])
    # resized twice (to the stored square, then to 32 px) against once: a small difference
    assert (images - expected).abs().mean() < 0.05 and images.shape == expected.shape
    assert torch.equal(tokens, found.tokens[ids])
    with torch.inference_mode():   # what the model sees of the two differs by little
        a, b = (bundle.model.eval().encode_image(x, normalize=True) for x in (images, expected))
    assert (a * b).sum(-1).min() > 0.99
