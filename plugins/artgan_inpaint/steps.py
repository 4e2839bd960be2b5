"""Inpainting steps (no torch): the trained model through onnxruntime, and the classical methods a
user would try first.

=====================  ===============================================================
``inpaint``            the trained model (``exports/inpaint/<model>.onnx``): a classical
                       pre-fill (OpenCV, in numpy) corrected by the network
``inpaint-telea``      OpenCV, Telea (2004): fast marching, weighted average of neighbours
``inpaint-ns``         OpenCV, Bertalmio et al. (2001): Navier-Stokes propagation
``inpaint-biharmonic`` scikit-image: a smooth biharmonic fill (``pip install 'artgan[classical]'``)
=====================  ===============================================================

With opencv-contrib's ``cv2.xphoto`` (docs/inpainting.md says how to install it beside the
opencv-python-headless that albumentations needs), :class:`XPhotoInpaint` gives its FSR_FAST
(frequency-selective reconstruction) and SHIFTMAP (patch offsets) fills to ``artgan evaluate inpaint``.

Each takes the hole as ``mask=MASK.png`` (white = hole, same size as the image) or
``box=x,y,w,h``. Every step returns the input's known pixels exactly: only the hole changes.
For use from Python, ``step.inpaint(image, hole)`` fills one HWC float image with any HxW hole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from artgan.errors import ArtganError
from artgan.steps import Step

from .masks import MaskSource

DEFAULT_MODEL = "detail-bsds400"  # wins issue #25's targets on BSD68 (exports/inpaint/README.md)
PREFILL_METHODS = ("ns", "telea")
# Tiling cuts the context a hole needs: a hole larger than a tile is filled from the tile only.
# So the whole image runs at once up to this many pixels (about 1.5 GB of activations on
# onnxruntime's CPU provider for the reference model), and only larger images are tiled (in
# artgan.tiling.auto_tile's largest tiles, 1024 pixels).
WHOLE_IMAGE_MAX_PIXELS = 2_100_000  # 1920x1080 and below run untiled
LARGE_IMAGE_OVERLAP = 64


class InpaintingStep(Step):
    """Base class: subclasses implement ``fill(image, hole)``; this class applies the step's
    mask to each image of a batch and pastes the known pixels back."""

    name = "inpaint"

    def __init__(self, mask: MaskSource | None = None):
        self.mask = mask

    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def inpaint(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """One float32 HWC image in [0, 1] and an HxW hole (bool or {0, 1}) -> the filled image."""
        hole = np.asarray(hole).astype(bool)
        if hole.shape != image.shape[:2]:
            raise ArtganError(f"{self.name}: hole is {hole.shape[1]}x{hole.shape[0]} but the image is "
                              f"{image.shape[1]}x{image.shape[0]}")
        if not hole.any():
            return image.astype(np.float32, copy=True)
        filled = self.fill(image.astype(np.float32, copy=False), hole)
        return np.where(hole[..., None], filled, image).astype(np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.mask is None:
            raise ArtganError(f"{self.name}: no hole given; use mask=MASK.png or box=x,y,w,h")
        return np.stack([self.inpaint(im, self.mask.for_image(*im.shape[:2])) for im in images])

    @property
    def param_files(self) -> dict[str, Path]:
        """The mask file read, for bundles (:class:`artgan.steps.Step`)."""
        path = getattr(self.mask, "path", None)
        return {"mask": path} if path is not None else {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.mask!r}>"


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def classical_fill(image: np.ndarray, hole: np.ndarray, method: str = "ns", radius: float = 3.0) -> np.ndarray:
    """OpenCV's inpainting of an HxWx{1,3} uint8 image over an HxW hole -> uint8, same shape.
    The pre-fill of the trained model, in training (the dataset) and at run time (the step)."""
    import cv2

    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    out = cv2.inpaint(image if image.shape[2] == 3 else image[..., 0], hole.astype(np.uint8), radius, flag)
    return out.reshape(image.shape)


class OpenCVInpaint(InpaintingStep):
    """``cv2.inpaint`` (8-bit) with Telea's or the Navier-Stokes method."""

    def __init__(self, method: str = "telea", radius: float = 3.0, mask: MaskSource | None = None):
        super().__init__(mask)
        self.name, self.method = f"inpaint-{method}", method
        if not isinstance(radius, (int, float)) or isinstance(radius, bool) or not 0 < radius <= 64:
            raise ArtganError(f"{self.name}: radius must be a number of pixels in (0, 64], got {radius!r}")
        self.radius = float(radius)

    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return classical_fill(_to_uint8(image), hole, self.method, self.radius).astype(np.float32) / 255.0


class BiharmonicInpaint(InpaintingStep):
    """scikit-image's ``inpaint_biharmonic``: the smoothest surface through the hole's border."""

    name = "inpaint-biharmonic"

    def __init__(self, mask: MaskSource | None = None):
        super().__init__(mask)
        try:
            from skimage.restoration import inpaint_biharmonic  # noqa: F401
        except ImportError:
            raise ArtganError("inpaint-biharmonic needs scikit-image: pip install 'artgan[classical]'") from None

    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        from skimage.restoration import inpaint_biharmonic

        return inpaint_biharmonic(image.astype(np.float64), hole, channel_axis=-1).astype(np.float32)


XPHOTO_METHODS = ("fsr_fast", "shiftmap")
XPHOTO_INSTALL = ("pip install --force-reinstall --no-deps \"opencv-contrib-python-headless==$(pip show "
                  "opencv-python-headless | sed -n 's/^Version: //p')\"")


def xphoto_available() -> bool:
    """Whether OpenCV's ``cv2.xphoto.inpaint`` (opencv-contrib) can be called. ``cv2.xphoto``
    alone is not enough: a contrib install overwritten by opencv-python-headless leaves its
    ``cv2/xphoto`` folder behind, an empty module."""
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(getattr(cv2, "xphoto", None), "inpaint")


class XPhotoInpaint(InpaintingStep):
    """opencv-contrib's ``cv2.xphoto.inpaint``: ``fsr_fast`` (frequency-selective reconstruction,
    Genser et al. 2018, fast mode) or ``shiftmap`` (He and Sun 2012: patches copied by optimised
    offsets). Both take 8-bit CIELab (their documented input)."""

    def __init__(self, method: str = "fsr_fast", mask: MaskSource | None = None):
        super().__init__(mask)
        if method not in XPHOTO_METHODS:
            raise ArtganError(f"inpaint: unknown xphoto method {method!r}; choose among {', '.join(XPHOTO_METHODS)}")
        self.name, self.method = f"inpaint-{method}", method
        if not xphoto_available():
            raise ArtganError(f"{self.name} needs opencv-contrib's cv2.xphoto beside opencv-python-headless: "
                              f"{XPHOTO_INSTALL}")

    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import cv2

        flag = {"fsr_fast": cv2.xphoto.INPAINT_FSR_FAST, "shiftmap": cv2.xphoto.INPAINT_SHIFTMAP}[self.method]
        lab = cv2.cvtColor(_to_uint8(image[..., :3]), cv2.COLOR_RGB2Lab)
        known = np.where(hole, 0, 255).astype(np.uint8)  # xphoto's mask: non-zero = known
        out = np.zeros_like(lab)
        cv2.xphoto.inpaint(lab, known, out, flag)
        return cv2.cvtColor(out, cv2.COLOR_Lab2RGB).astype(np.float32) / 255.0


class ModelInpaint(InpaintingStep):
    """The trained inpainting model, run with onnxruntime after its classical pre-fill.

    The model's metadata names the pre-fill (``prefill``: OpenCV method and radius); this step
    runs it on the 8-bit image, exactly as the training data did, then the exported graph takes
    ``image`` (the pre-filled photo, NCHW in [-1, 1]) and ``mask`` (N1HW, 1 = hole) and adds its
    correction inside the hole. :meth:`inpaint` pastes the known pixels back, so they come back
    bit-exact. Images up to :data:`WHOLE_IMAGE_MAX_PIXELS` run untiled (a hole keeps all its
    context); larger ones in tiles (of ``tile`` pixels when given).
    """

    name = "inpaint"

    def __init__(self, model: str = DEFAULT_MODEL, tile: int | None = None,
                 mask: MaskSource | None = None, providers=None):
        from artgan.steps import ModelStep

        super().__init__(mask)
        self.runner = ModelStep("inpaint", str(model), tile=tile, overlap=LARGE_IMAGE_OVERLAP, providers=providers,
                                min_tile=64, untiled_pixels=WHOLE_IMAGE_MAX_PIXELS)
        self.model_path = self.runner.model_path
        if list(self.runner.input_names) != ["image", "mask"]:
            raise ArtganError(f"{self.model_path}: inputs are {self.runner.input_names}, not an inpainting "
                              f"model (expected image, mask)")
        prefill = self.runner.model.metadata.get("prefill")
        if not isinstance(prefill, dict) or prefill.get("method") not in PREFILL_METHODS:
            raise ArtganError(f"{self.model_path}: no 'prefill' method in its metadata; it is not an "
                              f"inpainting model of this artgan version (re-export it)")
        self.prefill_method, self.prefill_radius = prefill["method"], float(prefill.get("radius", 3.0))

    def fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        start = classical_fill(_to_uint8(image), hole, self.prefill_method, self.prefill_radius)
        start = np.where(hole[..., None], start.astype(np.float32) / 255.0, image)  # known pixels as given
        return self.runner.run_one(start, mask=hole[..., None].astype(np.float32))


# -- factories registered as steps: each requires a hole ------------------------------------------

def inpaint_step(mask: Any = None, box: Any = None, model: str = DEFAULT_MODEL,
                 tile: int | None = None) -> ModelInpaint:
    """The trained inpainting model: ``inpaint:mask=hole.png``, ``inpaint:mask=alpha`` (the
    image's own transparency is the hole) or ``inpaint:box=x,y,w,h``."""
    return ModelInpaint(model=model, tile=tile, mask=MaskSource("inpaint", mask, box))


def telea_step(mask: Any = None, box: Any = None, radius: float = 3.0) -> OpenCVInpaint:
    """OpenCV's Telea inpainting: ``inpaint-telea:mask=hole.png``."""
    return OpenCVInpaint("telea", radius, MaskSource("inpaint-telea", mask, box))


def ns_step(mask: Any = None, box: Any = None, radius: float = 3.0) -> OpenCVInpaint:
    """OpenCV's Navier-Stokes inpainting: ``inpaint-ns:mask=hole.png``."""
    return OpenCVInpaint("ns", radius, MaskSource("inpaint-ns", mask, box))


def biharmonic_step(mask: Any = None, box: Any = None) -> BiharmonicInpaint:
    """scikit-image's biharmonic inpainting: ``inpaint-biharmonic:box=x,y,w,h``."""
    source = MaskSource("inpaint-biharmonic", mask, box)
    return BiharmonicInpaint(mask=source)


# -- what artgan.testing's contract checks build these steps with (docs/plugins.md) -------------
# Its test images are 24 x 40; this box lies inside them.
_CONTRACT_HOLE = {"box": "4,4,12,10"}
telea_step.contract_params = _CONTRACT_HOLE
ns_step.contract_params = _CONTRACT_HOLE
biharmonic_step.contract_params = _CONTRACT_HOLE
# the shipped model, found by name as superres's and style's checks find theirs
inpaint_step.contract_params = {"model": DEFAULT_MODEL, **_CONTRACT_HOLE}


# the parameter naming a file, for bundles (artgan.steps.Step)
for _factory in (inpaint_step, telea_step, ns_step, biharmonic_step):
    _factory.file_params = ("mask",)
