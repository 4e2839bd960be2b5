"""Hole masks (numpy + OpenCV, no torch): random free-form masks for training and evaluation, and
the user's masks (a PNG or a box) for the steps.

Convention everywhere: a mask is HxW, hole = 1 (True, white in a PNG), known pixels = 0. Files are
thresholded at 50% grey.

Random masks mix two shapes, both sized relative to the image's shorter side so that a mask means
the same at any resolution:

- brush strokes (the free-form masks of DeepFill v2, Yu et al. 2019): a random walk of 4-12
  segments drawn with a round brush of random width;
- axis-aligned rectangles, the "remove this object" case.

Shapes are added until the hole covers a target area drawn from ``area`` (a fraction range); a
mask that overshoots the range is drawn again, so every mask's measured area lies in the range.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from artgan.errors import ArtganError

# Shape sizes, as fractions of the image's shorter side (e.g. 321 px for BSD68).
BRUSH_WIDTH = (0.03, 0.12)  # 10-38 px at 321 px
BRUSH_SEGMENT = (0.05, 0.25)
BRUSH_VERTICES = (4, 12)
BOX_SIDE = (0.10, 0.50)


def _brush_stroke(canvas: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    h, w = canvas.shape
    width = max(2, int(round(rng.uniform(*BRUSH_WIDTH) * scale)))
    x, y = rng.uniform(0, w), rng.uniform(0, h)
    angle = rng.uniform(0, 2 * math.pi)
    for _ in range(int(rng.integers(BRUSH_VERTICES[0], BRUSH_VERTICES[1] + 1))):
        angle += rng.uniform(-math.pi / 3, math.pi / 3)  # a wandering, not a zig-zag, stroke
        length = rng.uniform(*BRUSH_SEGMENT) * scale
        nx = float(np.clip(x + length * math.cos(angle), 0, w - 1))
        ny = float(np.clip(y + length * math.sin(angle), 0, h - 1))
        cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), 1, thickness=width)
        cv2.circle(canvas, (int(nx), int(ny)), width // 2, 1, thickness=-1)  # round joints
        x, y = nx, ny


def _box(canvas: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    h, w = canvas.shape
    bh = min(h, max(2, int(rng.uniform(*BOX_SIDE) * scale)))
    bw = min(w, max(2, int(rng.uniform(*BOX_SIDE) * scale)))
    top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    canvas[top:top + bh, left:left + bw] = 1


def random_mask(height: int, width: int, rng: np.random.Generator, *,
                area: Sequence[float] = (0.05, 0.4), box_prob: float = 0.25,
                max_tries: int = 100, scale: float | None = None) -> np.ndarray:
    """A float32 HxW mask (hole = 1) whose hole covers a fraction of the image inside ``area``.

    Each shape is a rectangle with probability ``box_prob``, else a brush stroke. After
    ``max_tries`` draws that all overshoot the range, the closest one is returned (this only
    happens for ranges too narrow for the shapes, e.g. 1-2% of a tiny image).

    ``scale`` (pixels, default the shorter side) sizes the shapes: a training crop of a larger
    photo passes the photo's shorter side, so its strokes and boxes are as wide as the
    evaluation's masks on whole photos.
    """
    lo, hi = check_area(area)
    scale = float(scale) if scale else min(height, width)
    best, best_gap = None, math.inf
    for _ in range(max_tries):
        target = rng.uniform(lo, hi)
        canvas = np.zeros((height, width), np.uint8)
        covered = 0.0
        while covered < target:
            (_box if rng.random() < box_prob else _brush_stroke)(canvas, rng, scale)
            covered = float(canvas.mean())
        if covered <= hi:
            return canvas.astype(np.float32)
        if covered - hi < best_gap:
            best, best_gap = canvas, covered - hi
    return best.astype(np.float32)


def check_area(area: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(a) for a in area)
    except (TypeError, ValueError):
        raise ArtganError(f"mask_area must be two fractions [low, high], e.g. [0.05, 0.4], got {area!r}") from None
    if not 0.0 < lo <= hi < 1.0:
        raise ArtganError(f"mask_area must satisfy 0 < low <= high < 1, got {area!r}")
    return lo, hi


# -- the user's mask: a PNG file or a box ------------------------------------------------------------

class MaskSource:
    """Where a step's hole comes from: ``mask=FILE.png`` (white = hole), ``mask=alpha`` (the
    image file's own transparency: erase a region in any editor, save as PNG) or ``box=x,y,w,h``.

    ``for_image(h, w)`` returns the HxW bool hole for an image of that size, or a one-line error
    naming the mask and the fix (wrong size, empty hole, a hole that covers the whole image).
    """

    def __init__(self, step: str, mask: Any = None, box: Any = None):
        self.step = step
        if (mask is None) == (box is None):
            raise ArtganError(f"{step}: give the hole as mask=MASK.png (white = hole), mask=alpha "
                              f"(the image's transparent pixels) or box=x,y,w,h"
                              + (", not both" if mask is not None else ""))
        self.path: Path | None = None
        self.array: np.ndarray | None = None
        self.box: tuple[int, int, int, int] | None = None
        self.alpha = isinstance(mask, str) and mask.strip().lower() == "alpha"
        if box is not None:
            self.box = parse_box(step, box)
        elif self.alpha:
            pass  # read per image, from the file being processed
        elif isinstance(mask, np.ndarray):
            self.array = _check_hole(step, "the mask array", np.asarray(mask).squeeze() > 0.5)
        else:
            from artgan.images import load_image
            self.path = Path(str(mask)).expanduser()
            hole = load_image(self.path, "L")[..., 0] > 127
            self.array = _check_hole(step, f"mask {self.path}", hole)

    def for_image(self, height: int, width: int) -> np.ndarray:
        if self.box is not None:
            x, y, w, h = self.box
            hole = np.zeros((height, width), bool)
            hole[y:y + h, x:x + w] = True
            if not hole.any():
                raise ArtganError(f"{self.step}: box={x},{y},{w},{h} lies outside the {width}x{height} image")
            return _check_hole(self.step, f"box={x},{y},{w},{h}", hole)
        if self.alpha:
            return self._alpha_hole(height, width)
        mh, mw = self.array.shape
        if (mh, mw) != (height, width):
            what = f"mask {self.path}" if self.path else "the mask"
            raise ArtganError(f"{self.step}: {what} is {mw}x{mh} but the image is {width}x{height}; "
                              f"draw the mask at the image's size")
        return self.array

    def _alpha_hole(self, height: int, width: int) -> np.ndarray:
        """The transparent pixels (alpha below 50%) of the file being processed."""
        from PIL import Image

        from artgan.images import load_image
        from artgan.steps import source_file

        path = source_file()
        if path is None:
            raise ArtganError(f"{self.step}: mask=alpha reads the transparency of the image file, which "
                              f"only `artgan process` has; give mask=MASK.png or box=x,y,w,h instead")
        with Image.open(path) as im:
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
        if not has_alpha:
            raise ArtganError(f"{self.step}: {path} has no transparency for mask=alpha; erase the region "
                              f"to fill in an editor and save as PNG, or give mask=MASK.png")
        hole = load_image(path, "RGBA")[..., 3] < 128
        if hole.shape != (height, width):  # another step before this one changed the size
            raise ArtganError(f"{self.step}: mask=alpha is {hole.shape[1]}x{hole.shape[0]} but the image "
                              f"reaching the step is {width}x{height}; put inpaint first in the chain")
        return _check_hole(self.step, f"the transparency of {path}", hole)

    def __repr__(self) -> str:
        if self.box:
            return f"box={','.join(map(str, self.box))}"
        return "mask=alpha" if self.alpha else f"mask={self.path or 'array'}"


def parse_box(step: str, box: Any) -> tuple[int, int, int, int]:
    """``"10,20,30,40"`` or ``[10, 20, 30, 40]`` -> (x, y, w, h), checked."""
    parts = box.split(",") if isinstance(box, str) else box
    try:
        values = [int(str(p).strip()) for p in parts]
    except (TypeError, ValueError):
        values = []
    if len(values) != 4:
        raise ArtganError(f"{step}: box must be x,y,w,h (4 integers, pixels from the top left), got {box!r}")
    x, y, w, h = values
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ArtganError(f"{step}: box={x},{y},{w},{h}: x and y must be >= 0, w and h > 0")
    return x, y, w, h


def _check_hole(step: str, what: str, hole: np.ndarray) -> np.ndarray:
    """The hole, if it is one HxW image with something to fill and something to fill it from."""
    if hole.ndim != 2:
        raise ArtganError(f"{step}: {what} must be one HxW image, got shape {hole.shape}")
    if not hole.any():
        raise ArtganError(f"{step}: {what} has no hole: mark the region to fill in white "
                          f"(pixels brighter than 50% grey are filled)")
    if hole.all():
        raise ArtganError(f"{step}: {what} covers the whole image, leaving nothing to fill from: "
                          f"mark only the region to fill in white, the rest black")
    return hole
