"""Resizing and the degradation that defines the task (numpy + Pillow, no torch).

One bicubic for everything: training pairs, the evaluation protocol and the ``bicubic`` baseline all
use Pillow's ``BICUBIC`` (Keys cubic with a = -0.5, antialiased when downscaling, like MATLAB's
``imresize``; OpenCV's ``INTER_CUBIC`` uses a = -0.75 and does not antialias). Published figures use
MATLAB's ``imresize``, so our bicubic baseline lands close to, not exactly on, theirs.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

FILTERS = {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS, "bilinear": Image.BILINEAR,
           "nearest": Image.NEAREST}


def resize(image: np.ndarray, width: int, height: int, method: str = "bicubic") -> np.ndarray:
    """Resize one HWC image. uint8 stays uint8 (Pillow rounds); float is resized per channel in
    32-bit float (no 8-bit rounding) and keeps its overshoot (callers clip when they need to)."""
    resample = FILTERS[method]
    if image.dtype == np.uint8:
        pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
        out = np.asarray(pil.resize((width, height), resample))
        return out[..., None] if out.ndim == 2 else out
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32), mode="F")
                           .resize((width, height), resample)) for c in range(image.shape[2])]
    return np.stack(channels, axis=-1)


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so both sides are multiples of ``scale`` (the SR literature's 'modcrop')."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """The task's degradation: an HR image (sides multiples of ``scale``) -> its LR image."""
    h, w = hr.shape[:2]
    return resize(hr, w // scale, h // scale, "bicubic")


def make_pair(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 HR image -> (HR cropped to a multiple of ``scale``, uint8 bicubic LR), as evaluated."""
    hr = crop_to_multiple(hr, scale)
    return hr, bicubic_downscale(hr, scale)
