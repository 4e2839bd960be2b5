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
                max_tries: int = 100) -> np.ndarray:
    """A float32 HxW mask (hole = 1) whose hole covers a fraction of the image inside ``area``.

    Each shape is a rectangle with probability ``box_prob``, else a brush stroke. After
    ``max_tries`` draws that all overshoot the range, the closest one is returned (this only
    happens for ranges too narrow for the shapes, e.g. 1-2% of a tiny image).
    """
    lo, hi = check_area(area)
    scale = min(height, width)
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
    """Where a step's hole comes from: ``mask=FILE.png`` (white = hole) or ``box=x,y,w,h``.

    ``for_image(h, w)`` returns the HxW bool hole for an image of that size, or a one-line error
    naming the mask and the fix (wrong size, empty hole).
    """

    def __init__(self, step: str, mask: Any = None, box: Any = None):
        self.step = step
        if (mask is None) == (box is None):
            raise ArtganError(f"{step}: give the hole as mask=MASK.png (white = hole) or box=x,y,w,h"
                              + (", not both" if mask is not None else ""))
        self.path: Path | None = None
        self.array: np.ndarray | None = None
        self.box: tuple[int, int, int, int] | None = None
        if box is not None:
            self.box = parse_box(step, box)
        elif isinstance(mask, np.ndarray):
            self.array = _check_not_empty(step, "the mask array", np.asarray(mask).squeeze() > 0.5)
        else:
            from artgan.images import load_image
            self.path = Path(str(mask)).expanduser()
            hole = load_image(self.path, "L")[..., 0] > 127
            self.array = _check_not_empty(step, f"mask {self.path}", hole)

    def for_image(self, height: int, width: int) -> np.ndarray:
        if self.box is not None:
            x, y, w, h = self.box
            hole = np.zeros((height, width), bool)
            hole[y:y + h, x:x + w] = True
            if not hole.any():
                raise ArtganError(f"{self.step}: box={x},{y},{w},{h} lies outside the {width}x{height} image")
            return hole
        mh, mw = self.array.shape
        if (mh, mw) != (height, width):
            what = f"mask {self.path}" if self.path else "the mask"
            raise ArtganError(f"{self.step}: {what} is {mw}x{mh} but the image is {width}x{height}; "
                              f"draw the mask at the image's size")
        return self.array

    def __repr__(self) -> str:
        return f"box={','.join(map(str, self.box))}" if self.box else f"mask={self.path or 'array'}"


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


def _check_not_empty(step: str, what: str, hole: np.ndarray) -> np.ndarray:
    if hole.ndim != 2:
        raise ArtganError(f"{step}: {what} must be one HxW image, got shape {hole.shape}")
    if not hole.any():
        raise ArtganError(f"{step}: {what} has no hole: mark the region to fill in white "
                          f"(pixels brighter than 50% grey are filled)")
    return hole
