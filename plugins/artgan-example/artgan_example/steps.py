"""Two classical post-processing steps (numpy only: steps run where torch may be absent).

Contract: float32 NHWC in [0, 1] in, float32 NHWC in [0, 1] of the same shape out.
"""

from __future__ import annotations

import numpy as np

from artgan.errors import ArtganError
from artgan.steps import Step


def _number(step: str, key: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ArtganError(f"{step}: {key} must be a number from {lo:g} to {hi:g}, got {value!r}")
    return float(value)


class Posterize(Step):
    """Each channel reduced to ``levels`` evenly spaced values (0 and 1 included)."""

    name = "posterize"

    def __init__(self, levels: int = 4):
        if isinstance(levels, bool) or not isinstance(levels, int) or not 2 <= levels <= 256:
            raise ArtganError(f"posterize: levels must be an integer from 2 to 256, got {levels!r}")
        self.levels = levels

    def __call__(self, images: np.ndarray) -> np.ndarray:
        steps = self.levels - 1
        return (np.round(np.clip(images, 0.0, 1.0) * steps) / steps).astype(np.float32)


class Vignette(Step):
    """Darkens towards the corners: full brightness inside ``radius`` (a fraction of the
    centre-to-corner distance), then a smooth fall to ``1 - strength`` at the corners."""

    name = "vignette"

    def __init__(self, strength: float = 0.5, radius: float = 0.5):
        self.strength = _number("vignette", "strength", strength, 0.0, 1.0)
        self.radius = _number("vignette", "radius", radius, 0.0, 0.99)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        _, h, w, _ = images.shape
        y = (np.arange(h, dtype=np.float32) + 0.5) / h - 0.5
        x = (np.arange(w, dtype=np.float32) + 0.5) / w - 0.5
        r = np.sqrt(y[:, None] ** 2 + x[None, :] ** 2) / np.sqrt(0.5)  # 0 centre, 1 corner
        t = np.clip((r - self.radius) / (1.0 - self.radius), 0.0, 1.0)
        gain = 1.0 - self.strength * t * t * (3.0 - 2.0 * t)  # smoothstep fall-off
        return (np.clip(images, 0.0, 1.0) * gain[None, :, :, None]).astype(np.float32)
