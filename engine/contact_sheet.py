"""A contact sheet: the pairs a curation rule keeps first and drops first, as one PNG.

Each cell is the image (scaled up, pixels kept sharp), its caption, its score and rank,
and a border that says what the dataset knows: red for a pair marked noisy, green for
one marked clean, grey where the source does not know.
"""
import io
import textwrap
from pathlib import Path

import pyarrow as pa
from PIL import Image, ImageDraw, ImageFont

from dissect import ledger
from dissect.engine.data import Dataset, SampleReader

THUMB = 96
CELL_W, TEXT_LINES, LINE_H = 128, 4, 12
COLUMNS = 10
BORDER = {True: (210, 40, 40), False: (40, 160, 70), None: (150, 150, 150)}


def typeface(size: int) -> ImageFont.ImageFont:
    """DejaVu Sans where the system has it (captions carry accents), else Pillow's own."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def contact_sheet(dataset: Dataset, ends: pa.Table, out, *, title: str) -> Path:
    """Draw ENDS (curation.ends' table: end, sample_id, caption, is_noisy, score, rank) of
    DATASET to the PNG OUT, written whole or not at all."""
    font = typeface(10)
    reader = SampleReader(dataset, transform=None)
    blocks = [(end, [r for r in ends.to_pylist() if r["end"] == end]) for end in ("kept first", "dropped first")]
    cell_h = THUMB + 8 + TEXT_LINES * LINE_H
    rows = [max(1, -(-len(part) // COLUMNS)) for _, part in blocks]
    height = 30 + sum(24 + n * cell_h for n in rows)
    sheet = Image.new("RGB", (COLUMNS * CELL_W + 8, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 8), title, fill="black", font=typeface(13))
    y = 30
    for (end, part), n_rows in zip(blocks, rows):
        draw.text((6, y + 6), f"{len(part)} pairs the rule {'keeps' if end == 'kept first' else 'drops'} first",
                  fill="black", font=typeface(12))
        y += 24
        for i, row in enumerate(part):
            x0, y0 = 4 + (i % COLUMNS) * CELL_W, y + (i // COLUMNS) * cell_h
            image = Image.open(io.BytesIO(reader.raw(row["sample_id"])[0])).convert("RGB")
            thumb = image.resize((THUMB, THUMB), Image.NEAREST if image.width < THUMB else Image.LANCZOS)
            left = x0 + (CELL_W - THUMB) // 2
            draw.rectangle((left - 3, y0, left + THUMB + 2, y0 + THUMB + 5), outline=BORDER[row["is_noisy"]],
                           width=3)
            sheet.paste(thumb, (left, y0 + 3))
            lines = textwrap.wrap(row["caption"], 22)[:TEXT_LINES - 1]
            lines.append(f"#{row['rank']}  score {row['score']:.3g}")
            for j, line in enumerate(lines):
                draw.text((x0 + 4, y0 + THUMB + 8 + j * LINE_H), line, fill="black", font=font)
        y += n_rows * cell_h
    out = Path(out)
    with ledger.atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out
