"""Super-resolution steps (no torch): the trained upscaler on onnxruntime, and the classical
resamplers everyone compares with.

============  =====================================================================
``superres``  a trained upscaler, ``exports/superres/<model>.onnx``: ``x2-psnr`` (default
              for ``scale=2``), ``x2-gan`` (sharper texture), ``x4-psnr`` ...
``bicubic``   Pillow's bicubic (a = -0.5, as MATLAB's ``imresize``)
``lanczos``   Pillow's Lanczos-3
============  =====================================================================

Large images run in overlapping, feathered tiles (``tile=`` pixels of input; chosen from free
memory when not given).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from artgan.errors import ArtganError
from artgan.steps import ModelStep, Step

from .resize import FILTERS

TRAIN_HINT = ("train one with `artgan build superres --data PHOTOS --name NAME` (it installs it where "
              "this step finds it), or put an .onnx in exports/superres/ or a folder superres/ under "
              "ARTGAN_MODEL_PATH; the `bicubic` and `lanczos` steps need no model")


def _int_param(step: str, name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bound = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
        raise ArtganError(f"{step}: {name} must be an integer {bound}, got {value!r}")
    return value


#: Output rows resized at a time: Pillow's float result and its numpy copy stay about this small.
BAND_BYTES = 64 * 2**20


def _size(n: float) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    return f"{round(n / 2**20)} MiB" if n >= 2**20 else f"{max(1, round(n / 2**10))} KiB"


class ResampleStep(Step):
    """Classical upscaling by an integer ``scale`` with a Pillow filter, in float precision.

    The result is written band by band into one float32 array (Pillow's ``box`` keeps the filter's
    support across band edges, so the bands are the whole-image resize), and refused in one line
    when that and its 8-bit copies would not fit the memory available: a 10000x9999 image x2 used
    15.5 GB in full-image temporaries before."""

    method = "bicubic"

    def __init__(self, scale: int = 2):
        self.name = self.method
        self.scale = _int_param(self.name, "scale", scale, 1, 16)

    def memory_needed(self, shape: tuple[int, ...]) -> int:
        """Bytes a batch of ``shape`` (NHWC) needs here and on its way to a file: the float32
        result, a source channel, a band and its copy, and the result's 8-bit copies (the
        conversion and the encoder's)."""
        n, h, w, c = shape
        out_pixels = n * h * w * self.scale ** 2
        band = min(BAND_BYTES, h * self.scale * w * self.scale * 4)
        return out_pixels * c * 4 + h * w * 4 + 2 * band + 2 * out_pixels * c

    def __call__(self, images: np.ndarray) -> np.ndarray:
        from PIL import Image

        from artgan.steps import source_file
        from artgan.tiling import available_memory


        n, h, w, c = images.shape
        s = self.scale
        height, width = h * s, w * s
        need, free = self.memory_needed(images.shape), available_memory()
        if free is not None and need > free:
            src = source_file()
            raise ArtganError(f"{str(src) + ': ' if src else ''}{self.name}: upscaling a {w}x{h} image x{s} to "
                              f"{width}x{height} needs about {_size(need)} of memory, more than the {_size(free)} "
                              f"available; use a smaller image (or scale), or cut it into tiles first")
        out = np.empty((n, height, width, c), np.float32)
        rows = max(s, BAND_BYTES // (width * 4) // s * s)  # a multiple of s: band edges fall on source rows
        for i, image in enumerate(images):
            for ch in range(c):
                source = Image.fromarray(np.ascontiguousarray(image[..., ch], dtype=np.float32), mode="F")
                for y0 in range(0, height, rows):
                    y1 = min(height, y0 + rows)
                    band = source.resize((width, y1 - y0), FILTERS[self.method], box=(0, y0 / s, w, y1 / s))
                    out[i, y0:y1, :, ch] = np.asarray(band)
        return np.clip(out, 0.0, 1.0, out=out)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} x{self.scale}>"


class BicubicStep(ResampleStep):
    method = "bicubic"


class LanczosStep(ResampleStep):
    method = "lanczos"


class SuperResStep(ModelStep):
    """A trained upscaler. ``model`` is a name (``x2-psnr``, ``x2-gan``, ``x4-psnr``: found with
    :func:`artgan.model_search.find_model`) or a path to an ``.onnx``; without it, ``x{scale}-psnr``.
    ``scale`` defaults to the model's; giving both checks they agree. ``tile`` is the tile side in
    input pixels (default: none for images that fit a quarter of free memory, else from it),
    ``overlap`` the feathered overlap between tiles."""

    def __init__(self, scale: int | None = None, model: str | None = None, tile: int | None = None,
                 overlap: int = 32, providers=None):
        if scale is not None:
            _int_param("superres", "scale", scale, 2, 8)
        super().__init__("superres", f"x{scale or 2}-psnr" if model is None else model, tile=tile, overlap=overlap,
                         providers=providers, hint=TRAIN_HINT)
        if scale is not None and scale != self.scale:
            from artgan.model_search import list_models

            raise ArtganError(f"superres: model {self.model_name!r} upscales x{self.scale}, not x{scale}; "
                              f"drop scale= or pick an x{scale} model (available: "
                              f"{', '.join(list_models('superres')) or 'none'})")

    def __repr__(self) -> str:
        return f"<SuperResStep {self.model_name} x{self.scale} ({self.model_path})>"
