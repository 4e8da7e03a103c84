"""A generated image-text benchmark whose noise is known.

Scenes of 1-3 objects (shape, colour, size, position) on a background with
per-image nuisance (tint, texture, jitter), so that single images can be told
apart and memorised, and near-unique captions that describe them. A fraction of
the train pairs gets noisy correspondence:
  shuffle: the caption of another random train sample (a mismatched pair);
  partial: the true caption with one attribute of one object changed (weakly
           matched, as web alt-text often is).
The test split is clean. Everything is a function of the seed.
"""
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from dissect.engine.data import SHARD_SIZE, Dataset, DatasetError, Sample, write_dataset

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 20),
    "white": (240, 240, 240),
    "cyan": (40, 210, 220),
}
SIZES = {"small": 0.13, "large": 0.24}
# A 3 x 3 grid of places, named as a caption would.
POSITIONS = {
    "top left": (0, 0), "top": (1, 0), "top right": (2, 0),
    "left": (0, 1), "center": (1, 1), "right": (2, 1),
    "bottom left": (0, 2), "bottom": (1, 2), "bottom right": (2, 2),
}
ATTRIBUTES = ("shape", "colour", "size", "position")
TEMPLATES = ("{}", "a picture of {}", "an image with {}", "there is {}", "a photo showing {}")
RENDER_SCALE = 4  # draw large, then downsample: smooth edges at 32 px


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    position: str


def random_scene(rng: np.random.Generator) -> list[SceneObject]:
    n = int(rng.integers(1, 4))
    places = rng.choice(list(POSITIONS), size=n, replace=False)
    return [
        SceneObject(
            shape=str(rng.choice(SHAPES)),
            colour=str(rng.choice(list(COLOURS))),
            size=str(rng.choice(list(SIZES))),
            position=str(place),
        )
        for place in places
    ]


def _phrase(obj: SceneObject) -> str:
    where = "in the center" if obj.position == "center" else f"at the {obj.position}"
    return f"a {obj.size} {obj.colour} {obj.shape} {where}"


def caption(scene: list[SceneObject], template: int) -> str:
    phrases = [_phrase(o) for o in scene]
    body = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return TEMPLATES[template].format(body)


def perturb(scene: list[SceneObject], rng: np.random.Generator) -> list[SceneObject]:
    """The same scene with one attribute of one object changed to another value."""
    scene = list(scene)
    i = int(rng.integers(len(scene)))
    obj = scene[i]
    attribute = str(rng.choice(ATTRIBUTES))
    if attribute == "position":
        taken = {o.position for o in scene}
        choices = [p for p in POSITIONS if p not in taken]
    else:
        pool = {"shape": SHAPES, "colour": list(COLOURS), "size": list(SIZES)}[attribute]
        choices = [v for v in pool if v != getattr(obj, attribute)]
    new = dict(obj.__dict__, **{attribute: str(rng.choice(choices))})
    scene[i] = SceneObject(**new)
    return scene


def render(scene: list[SceneObject], image_size: int, rng: np.random.Generator) -> Image.Image:
    side = image_size * RENDER_SCALE
    tint = rng.integers(0, 90, size=3)
    texture = rng.normal(0, 18, size=(side // 8, side // 8, 3))
    background = np.clip(tint + np.kron(texture, np.ones((8, 8, 1))), 0, 255).astype(np.uint8)
    img = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(img)
    cell = side / 3
    for obj in scene:
        gx, gy = POSITIONS[obj.position]
        cx = (gx + 0.5 + rng.uniform(-0.15, 0.15)) * cell
        cy = (gy + 0.5 + rng.uniform(-0.15, 0.15)) * cell
        r = SIZES[obj.size] * side * rng.uniform(0.9, 1.1)
        colour = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in COLOURS[obj.colour])
        _draw_shape(draw, obj.shape, cx, cy, r, colour)
    return img.resize((image_size, image_size), Image.LANCZOS)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, colour):
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(2, int(r / 2.5)))
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=colour)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    elif shape == "cross":
        w = r / 2.8
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=colour)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=colour)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def generate(n: int, test_n: int, noise_ratio: float, noise_type: str, image_size: int, seed: int):
    """Yield a data.Sample for every pair, train first.

    Three independent streams of the seed: scenes and pixels, caption templates,
    noise. Changing the noise ratio therefore keeps every image and true caption.
    """
    if noise_type not in ("shuffle", "partial"):
        raise ValueError(f"unknown noise type {noise_type!r}: use shuffle or partial")
    scene_rng, template_rng, noise_rng = (np.random.default_rng([seed, s]) for s in range(3))
    total = n + test_n
    scenes = [random_scene(scene_rng) for _ in range(total)]
    templates = template_rng.integers(len(TEMPLATES), size=total)
    captions = [caption(s, int(t)) for s, t in zip(scenes, templates)]

    noisy = np.zeros(total, dtype=bool)
    n_noisy = int(round(noise_ratio * n))
    noisy[noise_rng.choice(n, size=n_noisy, replace=False)] = True
    shown = list(captions)
    for i in np.flatnonzero(noisy):
        if noise_type == "shuffle":
            j = int(noise_rng.integers(n - 1))
            shown[i] = captions[j if j < i else j + 1]
        else:
            shown[i] = caption(perturb(scenes[i], noise_rng), int(templates[i]))

    for i in range(total):
        img = render(scenes[i], image_size, np.random.default_rng([seed, 3, i]))
        meta = {"objects": [o.__dict__ for o in scenes[i]], "true_caption": captions[i]}
        yield Sample("train" if i < n else "test", png_bytes(img), "png", shown[i], bool(noisy[i]), meta=meta)


def make_synthetic(out, *, n: int, test_n: int, noise_ratio: float, noise_type: str,
                   image_size: int = 32, seed: int = 0, shard_size: int = SHARD_SIZE) -> Dataset:
    """Write the synthetic benchmark to OUT (shards + manifest), all or nothing."""
    if n < 1:
        raise DatasetError("--n must be at least 1")
    if not 0 <= noise_ratio < 1:
        raise DatasetError(f"--noise-ratio {noise_ratio} is outside [0, 1)")
    return write_dataset(out, generate(n, test_n, noise_ratio, noise_type, image_size, seed), shard_size)
