"""Run an image-to-image function over large images in overlapping tiles (numpy only).

Tiles overlap by ``overlap`` pixels and are blended with linear feathering, so memory stays
bounded by the tile size and no seam shows. Sides that are not a multiple of what the model needs
are padded (reflect) and the output is cropped back: nothing is rejected for its size.
"""

from __future__ import annotations

import math
import os
from typing import Callable

import numpy as np

TileFn = Callable[..., np.ndarray]  # fn(*tiles: 1xhxwxC arrays) -> 1x(h*scale)x(w*scale)xC


def check_tiling(step: str, tile: object, overlap: object, min_tile: int = 16) -> None:
    """The tiling parameters every tiling step takes, checked the same way: ``tile`` None (chosen
    from memory) or a whole number of pixels >= ``min_tile``; ``overlap`` a whole number >= 0 (a negative
    overlap leaves unwritten, black blocks between tiles; one above a quarter of the tile is capped)."""
    from .errors import ArtganError

    def whole(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if tile is not None and (not whole(tile) or tile < min_tile):
        raise ArtganError(f"{step}: tile must be an integer >= {min_tile} (pixels), got {tile!r}")
    if not whole(overlap) or overlap < 0:  # above a quarter of the tile it is capped there
        raise ArtganError(f"{step}: overlap must be an integer >= 0 (pixels shared by neighbouring tiles), "
                          f"got {overlap!r}")


def pad_to_multiple(image: np.ndarray, multiple: int, min_size: int = 0) -> np.ndarray:
    """Reflect-pad the bottom/right of an HWC image to a multiple of ``multiple`` (and >= min_size)."""
    h, w = image.shape[:2]
    th = max(_round_up(h, multiple), _round_up(min_size, multiple))
    tw = max(_round_up(w, multiple), _round_up(min_size, multiple))
    if (th, tw) == (h, w):
        return image
    mode = "reflect" if h > 1 and w > 1 else "edge"
    return np.pad(image, ((0, th - h), (0, tw - w), (0, 0)), mode=mode)


def _round_up(n: int, m: int) -> int:
    return int(math.ceil(n / m) * m) if m > 1 else n


#: A model's peak memory per input pixel when nothing better is known: 64 float32 feature maps,
#: times 4 for the framework's working copies
DEFAULT_BYTES_PER_PIXEL = 4 * 64 * 4


def auto_tile(height: int, width: int, *, multiple: int = 1, scale: int = 1,
              bytes_per_pixel: int = DEFAULT_BYTES_PER_PIXEL, budget: int | None = None) -> int | None:
    """A tile side for an image, or None when the whole image fits the memory budget.

    ``bytes_per_pixel`` estimates the model's peak activation memory per input pixel
    (:data:`DEFAULT_BYTES_PER_PIXEL` when unknown); the budget defaults to
    a quarter of the machine's free memory (``ARTGAN_TILE_BUDGET_MB`` overrides).
    """
    if budget is None:
        env = os.environ.get("ARTGAN_TILE_BUDGET_MB")
        budget = int(env) * 2**20 if env else (available_memory() or 2 * 2**30) // 4
    need = height * width * bytes_per_pixel * max(scale, 1) ** 2
    if need <= budget:
        return None
    side = int(math.sqrt(budget / (bytes_per_pixel * max(scale, 1) ** 2)))
    side = max(64, min(side, 1024))
    return max(multiple, side - side % max(multiple, 1))


def available_memory() -> int | None:
    """Bytes of memory the machine can give a process now (Linux's MemAvailable), or None where
    unknown: what a step compares the memory it will need with, and what tiles are sized from."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _ramp(n: int, overlap: int, start_edge: bool, end_edge: bool) -> np.ndarray:
    """Blending weights along one axis: 1 inside, rising linearly over ``overlap`` pixels at sides
    shared with a neighbour tile (not at the image's own border)."""
    w = np.ones(n, np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        if not start_edge:
            w[:overlap] = ramp
        if not end_edge:
            w[n - overlap:] = ramp[::-1]
    return w


def _positions(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    pos = list(range(0, size - tile, stride))
    return pos + [size - tile]


def process_tiled(fn: TileFn, image: np.ndarray, *extras: np.ndarray, scale: int = 1,
                  multiple: int = 1, tile: int | None = None, overlap: int = 32) -> np.ndarray:
    """Apply ``fn`` to an HWC ``image`` (and same-sized ``extras``, e.g. a mask) tile by tile.

    ``fn`` receives 1xhxwxC arrays (one per input) and returns 1x(h*scale)x(w*scale)xC.
    ``tile=None`` runs the whole (padded) image at once.
    """
    h, w = image.shape[:2]
    arrays = [image, *extras]
    if tile is None or (h <= tile and w <= tile):
        padded = [pad_to_multiple(a, multiple) for a in arrays]
        out = fn(*[p[None] for p in padded])[0]
        return out[: h * scale, : w * scale]

    tile = max(multiple, tile - tile % max(multiple, 1))
    overlap = min(overlap, tile // 4)
    padded = [pad_to_multiple(a, multiple, min_size=tile) for a in arrays]
    ph, pw = padded[0].shape[:2]
    stride = tile - overlap
    out = acc_w = None
    ys, xs = _positions(ph, tile, stride), _positions(pw, tile, stride)
    for y in ys:
        for x in xs:
            tiles = [p[None, y:y + tile, x:x + tile] for p in padded]
            res = fn(*tiles)[0].astype(np.float32)
            if out is None:
                out = np.zeros((ph * scale, pw * scale, res.shape[2]), np.float32)
                acc_w = np.zeros((ph * scale, pw * scale, 1), np.float32)
            wy = _ramp(tile * scale, overlap * scale, y == ys[0], y == ys[-1])
            wx = _ramp(tile * scale, overlap * scale, x == xs[0], x == xs[-1])
            weight = (wy[:, None] * wx[None, :])[..., None]
            sy, sx = y * scale, x * scale
            out[sy:sy + tile * scale, sx:sx + tile * scale] += res * weight
            acc_w[sy:sy + tile * scale, sx:sx + tile * scale] += weight
    out /= np.maximum(acc_w, 1e-8)  # in place: the output can be the largest array in the process
    return out[: h * scale, : w * scale]
