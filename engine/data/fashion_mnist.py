"""Fashion-MNIST as an image-text dataset with known caption noise.

Reads the idx files (gzipped or not) from a folder, by default where Debian's
package `dataset-fashion-mnist` installs them, writes a caption for every image
from its class name with varied templates, and gives a fraction of the train
pairs the caption of another class (is_noisy). The test split is clean and
carries labels and class names, for zero-shot classification.
"""
import gzip
import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from dissect.engine.data import Dataset, DatasetError, Sample, write_dataset

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSNAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
TEMPLATES = ("a photo of a {}.", "a black and white photo of a {}.", "a small picture of the {}.",
             "a grayscale image showing a {}.", "a product photo of a {}.", "a low resolution photo of a {}.",
             "this is a {}.", "a {} on a dark background.")
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    """An idx file (MNIST's format) as a numpy array; .gz is read transparently."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise DatasetError(f"{path} is not an idx file of unsigned bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    raise DatasetError(f"no {stem}[.gz] in {folder}: install Debian's dataset-fashion-mnist or pass --from DIR")


def load(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_file, labels_file = FILES[split]
    images, labels = read_idx(_find(folder, images_file)), read_idx(_find(folder, labels_file))
    if len(images) != len(labels):
        raise DatasetError(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
    return images, labels


def samples(folder: Path, noise_ratio: float, seed: int, n: int | None, test_n: int | None, skip: int = 0):
    rng = np.random.default_rng(seed)
    for split, first, limit in (("train", skip, n), ("test", 0, test_n)):
        images, labels = load(folder, split)
        end = None if limit is None else first + limit
        images, labels = images[first:end], labels[first:end]
        templates = rng.integers(len(TEMPLATES), size=len(labels))
        noisy = np.zeros(len(labels), dtype=bool)
        if split == "train":
            noisy[rng.choice(len(labels), size=int(round(noise_ratio * len(labels))), replace=False)] = True
        # a noisy pair gets the caption of another class, chosen uniformly
        shown = np.where(noisy, (labels + rng.integers(1, len(CLASSNAMES), size=len(labels))) % len(CLASSNAMES),
                         labels)
        for image, label, caption_class, template, is_noisy in zip(images, labels, shown, templates, noisy):
            buf = io.BytesIO()
            Image.fromarray(image, "L").save(buf, format="PNG")
            yield Sample(split, buf.getvalue(), "png", TEMPLATES[template].format(CLASSNAMES[caption_class]),
                         is_noisy=bool(is_noisy), label=int(label),
                         meta={"class": CLASSNAMES[label], "caption_class": CLASSNAMES[caption_class]})


def make_fashion_mnist(out, *, noise_ratio: float, seed: int = 0, source: str | None = None,
                       n: int | None = None, test_n: int | None = None, skip: int = 0) -> Dataset:
    """Fashion-MNIST as image-text pairs: train images skip .. skip + n (a disjoint sample for
    another skip), the first test_n test images."""
    if not 0 <= noise_ratio < 1:
        raise DatasetError(f"--noise-ratio {noise_ratio} is outside [0, 1)")
    if skip < 0:
        raise DatasetError(f"--skip {skip} is negative")
    folder = Path(source) if source else DEBIAN_DIR
    for split in FILES:   # fail before writing anything
        for stem in FILES[split]:
            _find(folder, stem)
    return write_dataset(out, samples(folder, noise_ratio, seed, n, test_n, skip), classnames=CLASSNAMES)
