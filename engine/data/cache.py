"""A decoded form of a dataset: images stored once, resized, as uint8 arrays, captions stored
tokenized, both read by sample id and augmented as a batch (FFCV's idea).

    DATASET/cache/MODEL/images.npy   uint8 (N, S, S, 3): each image resized (shorter side S) and
                                     centre-cropped, S the model's image size / sqrt(the smallest
                                     crop scale of open_clip's train transform), so every random
                                     crop is cut from at least the model's resolution
    DATASET/cache/MODEL/tokens.npy   int64 (N, context length): the first caption, tokenized
    DATASET/cache/MODEL/readable.npy bool (N,): the image could be decoded
    DATASET/cache/MODEL/cache.json   the dataset's fingerprint, the model, S, the crop parameters

The batch is augmented as open_clip's train transform does (RandomResizedCrop with its scale,
ratio and interpolation, then its Normalize), the crop drawn from the square the cache
stores rather than the whole original image. A cache costs N x S x S x 3 bytes of disk:
7 MB for 2,000 pairs at 32 px, 550 GB for CC3M at 224 px. `--cache auto` (train's default)
builds and reads it where it fits a budget, the shards elsewhere (choose).
"""
import io
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode, Normalize, RandomResizedCrop
from torchvision.transforms import functional as F
from tqdm import tqdm

from dissect import ledger
from dissect.engine import data, models
from dissect.engine.errors import InputError

CACHE = "cache"
FORMAT = 1


@dataclass(frozen=True)
class Augmentation:
    """open_clip's train transform, the parts a batch of stored squares needs."""
    size: int
    scale: tuple[float, float]
    ratio: tuple[float, float]
    interpolation: InterpolationMode
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, preprocess_train) -> "Augmentation":
        steps = preprocess_train.transforms
        crop = next((t for t in steps if isinstance(t, RandomResizedCrop)), None)
        normalize = next((t for t in steps if isinstance(t, Normalize)), None)
        # a crop that fits in no try falls back to the whole square where the ratios allow a square
        if crop is None or normalize is None or not crop.ratio[0] <= 1 <= crop.ratio[1]:
            raise InputError("this model's train transform is not RandomResizedCrop (with square crops "
                             "allowed) + Normalize: train it without --cache")
        size = crop.size[0] if isinstance(crop.size, (tuple, list)) else crop.size
        return cls(size, tuple(crop.scale), tuple(crop.ratio), crop.interpolation, tuple(normalize.mean),
                   tuple(normalize.std))

    @property
    def stored_size(self) -> int:
        return math.ceil(self.size / math.sqrt(self.scale[0]))


# auto's budget: the cache is written beside the dataset and read at random, so it must fit on that
# disk with room to spare and in memory (as page cache): a larger one turns every batch into seeks.
DISK_SHARE = 0.5
MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class Choice:
    """Whether a run reads the decoded cache, and why: said in train's first lines, kept in the run record."""
    used: bool
    reason: str


def cache_bytes(n_samples: int, stored_size: int, context_length: int) -> int:
    """What images.npy, tokens.npy and readable.npy take for N_SAMPLES."""
    return n_samples * (stored_size * stored_size * 3 + context_length * 8 + 1)


def _nearest_existing(folder: Path) -> Path:
    """FOLDER or its closest ancestor that exists: where a cache to be written would go."""
    return next(p for p in [folder, *folder.parents] if p.exists())


def budget_bytes(folder: Path) -> int:
    """auto's budget: a share of the free disk where the cache goes and a share of physical memory."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(min(DISK_SHARE * shutil.disk_usage(_nearest_existing(folder)).free, MEMORY_SHARE * memory))


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.3g} GB"


def choose(dataset: data.Dataset, model: str, preprocess_train, context_length: int, mode: str,
           max_gb: float | None = None, resumed: bool | None = None) -> Choice:
    """MODE on: the cache (an InputError where this model's transform cannot be cached); off: the
    shards; auto: what the run it resumes read (RESUMED, where given: a run keeps its data
    pipeline), else the cache where a current one is there or its decoded form fits the budget
    (MAX_GB, else budget_bytes), the shards elsewhere."""
    if mode == "auto" and resumed is not None:
        return Choice(resumed, f"the run it resumes read {'the cache' if resumed else 'the shards'}")
    if mode == "off":
        return Choice(False, "--no-cache")
    try:
        aug = Augmentation.of(preprocess_train)
    except InputError as e:
        if mode == "on":
            raise
        return Choice(False, f"{model}'s train transform is not one the cache reproduces ({e})")
    if mode == "on":
        return Choice(True, "--cache")
    folder = cache_dir(dataset, model)
    if _is_current(folder, describe(aug, dataset.fingerprint, model)):
        return Choice(True, f"a current cache is there ({folder})")
    writable = _nearest_existing(folder)
    if not os.access(writable, os.W_OK):
        return Choice(False, f"no cache can be written in {writable}: reading the shards; `dissect cache` where "
                             "DATA is writable, or --no-cache to say so")
    need = cache_bytes(dataset.n_samples, aug.stored_size, context_length)
    budget = budget_bytes(folder) if max_gb is None else max_gb * 1e9
    where = f"--cache-max-gb {max_gb:g}" if max_gb is not None else \
        f"half the free disk at {dataset.root} and half the memory"
    if need <= budget:
        return Choice(True, f"its decoded form ({_gb(need)}) fits the budget of {_gb(budget)} ({where})")
    return Choice(False, f"its decoded form ({_gb(need)}) exceeds the budget of {_gb(budget)} ({where}): "
                         "reading the shards; --cache forces the cache")


def open_for(dataset: data.Dataset, model: str, bundle: models.ClipBundle, mode: str, max_gb: float | None = None,
             quiet: bool = True, resumed: bool | None = None) -> tuple["Cache | None", Choice]:
    """The cache choose() picks for DATASET, built where it is missing, or None for the shards."""
    choice = choose(dataset, model, bundle.preprocess_train, bundle.model.context_length, mode, max_gb, resumed)
    if not choice.used:
        return None, choice
    build(dataset, model, bundle.preprocess_train, bundle.tokenizer, quiet=quiet)
    return Cache(dataset, model, bundle.preprocess_train), choice


def open_for_one_pass(dataset: data.Dataset, model: str, bundle: models.ClipBundle, mode: str,
                      quiet: bool = True) -> "Cache | None":
    """The cache for `dissect score` and `dissect eval`, or None for the shards. They read each sample
    once, so building a cache would cost that pass again: auto reads one that is there and
    current, on builds it where it is missing, off never reads it."""
    # auto with a budget of nothing: only a cache that is there and current is read
    return open_for(dataset, model, bundle, mode, max_gb=0 if mode == "auto" else None, quiet=quiet)[0]


def cache_dir(dataset: data.Dataset, model: str) -> Path:
    return dataset.root / CACHE / model


def describe(aug: Augmentation, fingerprint: str, model: str) -> dict:
    return {"format": FORMAT, "dataset_fingerprint": fingerprint, "model": model, "stored_size": aug.stored_size,
            "size": aug.size, "scale": list(aug.scale), "ratio": list(aug.ratio), "interpolation": aug.interpolation.value}


def _is_current(folder: Path, wanted: dict) -> bool:
    return (folder / "cache.json").exists() and json.loads((folder / "cache.json").read_text()) == wanted


def build_for(data_path, model: str, *, quiet: bool = True) -> "Cache":
    """`dissect cache`: the cache of the dataset at DATA_PATH for MODEL, built where it is missing or stale."""
    dataset = data.open_dataset(data_path)
    bundle = models.create(model)
    build(dataset, model, bundle.preprocess_train, bundle.tokenizer, quiet=quiet)
    return Cache(dataset, model, bundle.preprocess_train)


def build(dataset: data.Dataset, model: str, preprocess_train, tokenizer, *, quiet: bool = True) -> Path:
    """Decode, resize and tokenize every sample of DATASET into its cache for MODEL, all or nothing;
    a cache that is already there and current is kept. Returns its folder."""
    aug = Augmentation.of(preprocess_train)
    out = cache_dir(dataset, model)
    wanted = describe(aug, dataset.fingerprint, model)
    if _is_current(out, wanted):
        return out
    with ledger.FileLock(dataset.root / CACHE / f".{model}.lock"):   # two runs building one cache: one builds
        if _is_current(out, wanted):
            return out
        if out.exists():
            for stale in out.iterdir():
                stale.unlink()
            out.rmdir()
        with data.staged(out) as staging:
            _write(staging, dataset, aug, tokenizer, quiet)
            (staging / "cache.json").write_text(json.dumps(wanted, indent=1))
    return out


def _write(folder: Path, dataset: data.Dataset, aug: Augmentation, tokenizer, quiet: bool) -> None:
    n, side = dataset.n_samples, aug.stored_size
    images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(n, side, side, 3))
    readable = np.zeros(n, dtype=bool)
    firsts = [""] * n
    reader = data.SampleReader(dataset, transform=None)
    for sample_id in tqdm(range(n), desc=f"caching {dataset.root.name}", unit="image", disable=quiet):
        try:
            image_bytes, text_bytes = reader.raw(sample_id)
            image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
            firsts[sample_id] = data.captions(text_bytes.decode("utf-8"))[0]
        except (OSError, ValueError, UnicodeDecodeError, IndexError):
            continue
        square = F.center_crop(F.resize(image, side, interpolation=aug.interpolation), side)
        images[sample_id] = np.asarray(square, dtype=np.uint8)
        readable[sample_id] = True
    images.flush()
    tokens = torch.cat([tokenizer(firsts[i:i + 4096]) for i in range(0, n, 4096)])
    np.save(folder / "tokens.npy", tokens.numpy())
    np.save(folder / "readable.npy", readable)


class Cache:
    """A dataset's cache for one model, opened for reading (memory-mapped)."""

    def __init__(self, dataset: data.Dataset, model: str, preprocess_train):
        self.folder = cache_dir(dataset, model)
        self.aug = Augmentation.of(preprocess_train)
        if not _is_current(self.folder, describe(self.aug, dataset.fingerprint, model)):
            raise InputError(f"no current cache of {dataset.root} for {model}: build it with "
                             f"`dissect cache {dataset.root} --model {model}`")
        self.images = np.load(self.folder / "images.npy", mmap_mode="r")
        self.tokens = torch.from_numpy(np.load(self.folder / "tokens.npy"))
        self.readable = np.load(self.folder / "readable.npy")
        self.mean = torch.tensor(self.aug.mean).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(self.aug.std).view(1, 3, 1, 1) * 255
        # one batched resampling; crops scale by 0.95-1.05, where antialiasing changes nothing
        self.mode = "bicubic" if self.aug.interpolation == InterpolationMode.BICUBIC else "bilinear"

    def batch(self, ids: np.ndarray, generator: torch.Generator):
        """(ids, augmented images, tokens) of sample IDS, crops drawn from GENERATOR."""
        order = np.argsort(ids)   # memory-mapped reads in file order
        stored = np.empty((len(ids), *self.images.shape[1:]), dtype=np.uint8)
        stored[order] = self.images[ids[order]]
        squares = torch.from_numpy(stored).permute(0, 3, 1, 2).float()
        images = (self.resample(squares, self.crop_boxes(squares, generator)) - self.mean) / self.std
        return torch.from_numpy(ids).long(), images, self.tokens[ids]

    def crop_boxes(self, squares: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(top, left, height, width) of each square's crop, (N, 4): RandomResizedCrop.get_params's
        draw (ten tries of an area and an aspect ratio, the first that fits; else the whole
        square), made for the whole batch at once."""
        n, side = len(squares), squares.shape[-1]
        tries = 10
        area = side * side * torch.empty(n, tries).uniform_(*self.aug.scale, generator=generator)
        log_ratio = torch.log(torch.tensor(self.aug.ratio))
        aspect = torch.exp(torch.empty(n, tries).uniform_(*log_ratio.tolist(), generator=generator))
        w = torch.round(torch.sqrt(area * aspect)).long()
        h = torch.round(torch.sqrt(area / aspect)).long()
        fits = (w > 0) & (w <= side) & (h > 0) & (h <= side)
        first = fits.long().argmax(1, keepdim=True)     # the first try that fits
        found = fits.any(1)
        w = torch.where(found, w.gather(1, first).squeeze(1), side)
        h = torch.where(found, h.gather(1, first).squeeze(1), side)
        offsets = torch.rand(n, 2, generator=generator)
        top = (offsets[:, 0] * (side - h + 1)).long()
        left = (offsets[:, 1] * (side - w + 1)).long()
        return torch.stack([top, left, h, w], 1)

    def resample(self, squares: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Each box of each square resized to the model's size, all in one grid_sample."""
        side = squares.shape[-1]
        top, left, h, w = boxes.double().unbind(1)
        # the boxes in grid_sample's coordinates, -1..1 across the stored square
        theta = torch.zeros(len(boxes), 2, 3, dtype=torch.float64)
        theta[:, 0, 0], theta[:, 0, 2] = w / side, (2 * left + w) / side - 1
        theta[:, 1, 1], theta[:, 1, 2] = h / side, (2 * top + h) / side - 1
        theta = theta.float()
        grid = torch.nn.functional.affine_grid(theta, [len(boxes), 3, self.aug.size, self.aug.size],
                                               align_corners=False)
        return torch.nn.functional.grid_sample(squares, grid, mode=self.mode, padding_mode="border",
                                               align_corners=False).clamp_(0, 255)

    def covers(self, dataset: data.Dataset, split: str) -> bool:
        """Whether SPLIT can be evaluated from the cache: one caption per sample (the cache keeps
        the first), every image readable."""
        part = dataset.split(split)
        return pc.any(pc.match_substring(part["caption"], "\n")).as_py() is not True and \
            bool(self.readable[part["sample_id"].to_numpy()].all())

    def eval_batches(self, dataset: data.Dataset, split: str, batch_size: int):
        """SPLIT in manifest order as the retrieval eval takes it, (ids, images, tokens, owner), each
        stored square resized to the model's size (open_clip's val transform: resize, centre crop)."""
        ids = dataset.split(split)["sample_id"].to_numpy()
        for start in range(0, len(ids), batch_size):
            batch = ids[start:start + batch_size]
            squares = torch.from_numpy(np.asarray(self.images[batch])).permute(0, 3, 1, 2).float()
            images = torch.nn.functional.interpolate(squares, size=self.aug.size, mode=self.mode, antialias=True)
            images = (images.clamp_(0, 255) - self.mean) / self.std
            ids_batch = torch.tensor(batch, dtype=torch.long)
            yield ids_batch, images, self.tokens[ids_batch], torch.arange(len(batch))

    def batches(self, dataset: data.Dataset, split: str, *, batch_size: int, seed: int, epoch: int, rank: int = 0,
                world_size: int = 1, only: np.ndarray | None = None):
        """The epoch's batches in data.epoch_batches' order (the shard loader's order), readable samples only."""
        ids = dataset.split(split)["sample_id"].to_numpy()
        ids = ids[self.readable[ids]]
        if only is not None:
            ids = ids[np.isin(ids, only, assume_unique=True)]
        generator = torch.Generator().manual_seed(data.rank_seed(seed, epoch, rank))
        for batch_ids in data.epoch_batches(ids, batch_size, shuffle=True, seed=seed, epoch=epoch, rank=rank,
                                            world_size=world_size):
            yield self.batch(batch_ids, generator) if len(batch_ids) else None
