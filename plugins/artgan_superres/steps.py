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
from artgan.steps import OnnxImageStep, Step
from artgan.tiling import check_tiling

from .resize import resize

TRAIN_HINT = ("train one with `scripts/train_superres.sh DATA_DIR OUT_DIR` (or `artgan run "
              "pipelines/superres-x2-psnr.yaml`) and put the .onnx in exports/superres/ or a folder "
              "superres/ under ARTGAN_MODEL_PATH; the `bicubic` and `lanczos` steps need no model")


def _int_param(step: str, name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bound = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
        raise ArtganError(f"{step}: {name} must be an integer {bound}, got {value!r}")
    return value


class ResampleStep(Step):
    """Classical upscaling by an integer ``scale`` with a Pillow filter, in float precision."""

    method = "bicubic"

    def __init__(self, scale: int = 2):
        self.name = self.method
        self.scale = _int_param(self.name, "scale", scale, 1, 16)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        n, h, w, c = images.shape
        out = [resize(im, w * self.scale, h * self.scale, self.method) for im in images]
        return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} x{self.scale}>"


class BicubicStep(ResampleStep):
    method = "bicubic"


class LanczosStep(ResampleStep):
    method = "lanczos"


class SuperResStep(OnnxImageStep):
    """A trained upscaler. ``model`` is a name (``x2-psnr``, ``x2-gan``, ``x4-psnr``: found with
    :func:`artgan.model_search.find_model`) or a path to an ``.onnx``; without it, ``x{scale}-psnr``.
    ``scale`` defaults to the model's; giving both checks they agree. ``tile`` is the tile side in
    input pixels (default: none for images that fit a quarter of free memory, else from it),
    ``overlap`` the feathered overlap between tiles."""

    def __init__(self, scale: int | None = None, model: str | None = None, tile: int | None = None,
                 overlap: int = 32, providers=None):
        from artgan.model_search import find_model, list_models

        if scale is not None:
            _int_param("superres", "scale", scale, 2, 8)
        check_tiling("superres", tile, overlap, min_tile=16)
        if model is not None and not isinstance(model, str):
            raise ArtganError(f"superres: model must be a model name or an .onnx path, got {model!r}")
        name = model or f"x{scale or 2}-psnr"
        try:
            path = find_model("superres", name)
        except ArtganError:
            known = list_models("superres")
            raise ArtganError(f"superres: no model {name!r} (available: {', '.join(known) or 'none'}); "
                              + TRAIN_HINT) from None
        super().__init__(path, tile=tile, overlap=overlap, providers=providers, name="superres")
        if self.model.metadata.get("step", "superres") != "superres":
            raise ArtganError(f"superres: {path} is a {self.model.metadata.get('step')!r} model, not a superres one")
        if scale is not None and scale != self.scale:
            raise ArtganError(f"superres: model {name!r} upscales x{self.scale}, not x{scale}; "
                              f"drop scale= or pick an x{scale} model (available: "
                              f"{', '.join(list_models('superres')) or 'none'})")
        self.model_name = name
        self.model_path = path

    def __repr__(self) -> str:
        return f"<SuperResStep {self.model_name} x{self.scale} ({self.model_path})>"
