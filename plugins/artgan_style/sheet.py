"""A contact sheet: photos beside what each method made of them, under the painting (no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from artgan.images import load_image, to_float, to_uint8


def run_methods(photos: list[Path], methods: dict[str, Callable[[np.ndarray], np.ndarray]]
                ) -> tuple[list[np.ndarray], list[tuple[str, list[np.ndarray]]]]:
    """The photos (float HWC) and, per method, its output for each: what :func:`contact_sheet` shows."""
    inputs = [to_float(load_image(p)) for p in photos]
    return inputs, [(label, [method(im[None])[0] for im in inputs]) for label, method in methods.items()]


def contact_sheet(painting: Path, inputs: list[np.ndarray], columns: list[tuple[str, list[np.ndarray]]],
                  row_height: int = 240, pad: int = 6, label_height: int = 22) -> np.ndarray:
    """One row per photo: the input, then each method's output, their width following the photo's
    aspect; every row is then scaled to the same width, so a row of portrait photos is taller rather
    than leaving a blank margin (the widest row keeps ``row_height``). A label above every picture;
    a first row with the painting, as wide as the rows (at most 1.5 ``row_height`` high, centred).
    Returns uint8 HWC."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=15)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        font = ImageFont.load_default()

    def at_height(image: Image.Image, height: int) -> Image.Image:
        return image.resize((max(1, round(image.width * height / image.height)), height), Image.LANCZOS)

    photo_rows = []
    for i, image in enumerate(inputs):
        cells = [("input", to_uint8(image))] + [(label, to_uint8(outs[i])) for label, outs in columns]
        photo_rows.append([(label, Image.fromarray(im)) for label, im in cells])
    # the width every row fills: the widest row at row_height (pictures and the gaps between them)
    inner = max(sum(im.width * row_height / im.height for _, im in row) + pad * (len(row) - 1)
                for row in photo_rows) if photo_rows else 4 * row_height
    rows = []
    for row in photo_rows:
        aspect = sum(im.width / im.height for _, im in row)  # row width per pixel of height
        height = max(1, round((inner - pad * (len(row) - 1)) / aspect))
        rows.append([(label, at_height(im, height)) for label, im in row])
    art = Image.fromarray(load_image(painting))
    art = at_height(art, max(1, min(round(1.5 * row_height), round(inner * art.height / art.width))))
    width = pad + round(inner) + pad
    heights = [art.height] + [row[0][1].height for row in rows]
    sheet = Image.new("RGB", (width, pad + sum(label_height + h + pad for h in heights)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = pad
    for r, row in enumerate([[(f"style: {painting.stem}", art)]] + rows):
        x = pad if r else pad + max(0, (round(inner) - art.width) // 2)
        for label, im in row:
            draw.text((x + 2, y + 2), label, fill=(0, 0, 0), font=font)
            sheet.paste(im, (x, y + label_height))
            x += im.width + pad
        y += label_height + heights[r] + pad
    return np.asarray(sheet)
