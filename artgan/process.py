"""Apply a chain of steps to image files (no torch): what ``artgan process`` and the pipeline's
``process`` stage do.

Inputs are files or folders (searched recursively); outputs are PNGs in one folder, keeping each
file's path relative to the folder it was found in, so ``a/x.jpg`` and ``b/x.jpg`` do not collide.
Images go through the chain one at a time (sizes differ, and a large image is tiled by the steps).
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .errors import ArtganError
from .images import list_images, load_image, save_image, to_float

Chain = Callable[[np.ndarray], np.ndarray]  # NHWC float32 [0, 1] -> NHWC float32 [0, 1]

#: The file whose pixels the chain is processing, for steps that need more of it than its RGB
#: (the inpaint step's ``mask=alpha`` reads the file's transparency); ``None`` outside a file.
current_source: ContextVar[Path | None] = ContextVar("artgan_current_source", default=None)


def collect_inputs(paths: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """(image file, output name relative to the output folder) for every image under ``paths``."""
    found: list[tuple[Path, Path]] = []
    for p in map(Path, paths):
        if not p.exists():
            raise ArtganError(f"{p}: no such file or folder")
        if p.is_dir():
            files = list_images(p)
            if not files:
                raise ArtganError(f"{p}: no images in this folder")
            found += [(f, f.relative_to(p).with_suffix(".png")) for f in files]
        else:
            found.append((p, Path(p.name).with_suffix(".png")))
    seen: dict[Path, Path] = {}
    for src, rel in found:
        if rel in seen:
            raise ArtganError(f"{seen[rel]} and {src} would both be written as {rel}; process them separately")
        seen[rel] = src
    return found


def to_uint8_rows(image: np.ndarray, rows: int = 256) -> np.ndarray:
    """float [0, 1] HWC -> uint8, a band of rows at a time: a 16000x12000 result does not need
    three full-size float temporaries on its way to the file."""
    out = np.empty(image.shape, np.uint8)
    for y in range(0, image.shape[0], rows):
        band = np.clip(image[y:y + rows], 0.0, 1.0)
        band *= 255.0
        band += 0.5
        out[y:y + rows] = band
    return out


def process_files(chain: Chain, inputs: list[tuple[Path, Path]], out: str | Path, *,
                  progress: bool = False) -> list[Path]:
    """Run ``chain`` on each input and write ``out/<relative name>.png``; returns the written files."""
    out = Path(out)
    sources = {src.resolve() for src, _ in inputs}
    for _, rel in inputs:
        if (out / rel).resolve() in sources:
            raise ArtganError(f"{out / rel} is one of the inputs; choose another --out")
    made = []
    items: Iterable = inputs
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(inputs, desc="process", unit="image", file=sys.stderr, dynamic_ncols=True)
    skipped = 0
    for src, rel in items:
        try:
            image = load_image(src, "RGB")
        except ArtganError as exc:  # as training does: one warning per unreadable file, the rest go on
            if len(inputs) == 1:
                raise
            print(f"Warning: {exc}; skipped", file=sys.stderr)
            skipped += 1
            continue
        token = current_source.set(src)
        try:
            result = chain(to_float(image)[None])
        finally:
            current_source.reset(token)
        if not isinstance(result, np.ndarray) or result.ndim != 4 or len(result) != 1:
            raise ArtganError(f"{src}: the steps returned {getattr(result, 'shape', type(result).__name__)}, "
                              f"not one NHWC image")
        made.append(save_image(out / rel, to_uint8_rows(result[0])))
        del result
    if skipped and not made:
        raise ArtganError(f"none of the {skipped} input image(s) could be read (see the warnings above)")
    return made
