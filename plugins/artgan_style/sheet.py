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
    """One row per photo: the input, then each method's output, all at ``row_height`` px high
    with their width following the photo's aspect (no square cells with empty margins); a label
    above every picture; a first row with the painting. Returns uint8 HWC."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=15)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        font = ImageFont.load_default()

    def scaled(image: Image.Image) -> Image.Image:
        w = max(1, round(image.width * row_height / image.height))
        return image.resize((w, row_height), Image.LANCZOS)

    rows = [[(f"style: {painting.stem}", scaled(Image.fromarray(load_image(painting))))]]
    for i, image in enumerate(inputs):
        rows.append([("input", scaled(Image.fromarray(to_uint8(image))))] +
                    [(label, scaled(Image.fromarray(to_uint8(outs[i])))) for label, outs in columns])
    width = pad + max(sum(im.width + pad for _, im in row) for row in rows)
    height = pad + len(rows) * (label_height + row_height + pad)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        y = pad + r * (label_height + row_height + pad)
        x = pad
        for label, im in row:
            draw.text((x + 2, y + 2), label, fill=(0, 0, 0), font=font)
            sheet.paste(im, (x, y + label_height))
            x += im.width + pad
    return np.asarray(sheet)
