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


FAILURES_FILE = "failures.jsonl"
#: Failures in a row, with nothing made yet, after which a run stops: the steps, not the files, are at fault
HOPELESS_AFTER = 10


def pending_inputs(inputs: list[tuple[Path, Path]], out: str | Path, *, skip_existing: bool
                   ) -> tuple[list[tuple[Path, Path]], int]:
    """The inputs still to do and how many are skipped because ``out/<relative name>`` exists (a
    run that was stopped resumes where it was: outputs are written atomically, so one that exists
    is whole). Refuses an output that would overwrite one of the inputs."""
    out = Path(out)
    sources = {src.resolve() for src, _ in inputs}
    for _, rel in inputs:
        if (out / rel).resolve() in sources:
            raise ArtganError(f"{out / rel} is one of the inputs; choose another --out")
    if not skip_existing:
        return list(inputs), 0
    todo = [(src, rel) for src, rel in inputs if not (out / rel).is_file()]
    return todo, len(inputs) - len(todo)


def process_one(chain: Chain, src: Path, dest: Path) -> Path:
    """Read ``src``, run ``chain`` on it and write ``dest`` (PNG, atomically): what both engines
    (local and Ray) do with each file, so their outputs are the same bytes."""
    image = load_image(src, "RGB")
    token = current_source.set(src)
    try:
        result = chain(to_float(image)[None])
    finally:
        current_source.reset(token)
    if not isinstance(result, np.ndarray) or result.ndim != 4 or len(result) != 1:
        raise ArtganError(f"{src}: the steps returned {getattr(result, 'shape', type(result).__name__)}, "
                          f"not one NHWC image")
    return save_image(dest, to_uint8_rows(result[0]))


class FailureLog:
    """Images that could not be read or processed: each is one line of ``out/failures.jsonl``
    (``{"input": ..., "output": ..., "error": ...}``, written as it happens) and one warning, and
    the run goes on. The file holds the latest run's failures (a resumed run tries them again).
    With a single input its error is raised as it is; a run that has made nothing after
    :data:`HOPELESS_AFTER` failures stops, since then the steps are at fault, not the files."""

    def __init__(self, out: str | Path, total: int, *, warn: Callable[[str], None] | None = None):
        self.path = Path(out) / FAILURES_FILE
        self.total, self.failed, self.made = total, 0, 0
        self.first = ""
        self.warn = warn or (lambda msg: print(msg, file=sys.stderr))
        self.path.unlink(missing_ok=True)

    def done(self) -> None:
        self.made += 1

    def record(self, src: Path, rel: Path, error: str, exc: ArtganError | None = None) -> None:
        import json

        if self.total == 1 and exc is not None:
            raise exc
        self.failed += 1
        self.first = self.first or error
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"input": str(src), "output": rel.as_posix(), "error": error}) + "\n")
        self.warn(f"Warning: {error}; skipped (listed in {self.path})")
        if not self.made and self.failed >= min(HOPELESS_AFTER, self.total):
            self.finish()

    def finish(self) -> None:
        """Raise when nothing was made and something failed."""
        if self.failed and not self.made:
            if self.total == 1:
                raise ArtganError(self.first)
            raise ArtganError(f"{self.first}; none of the {self.failed} input image(s) could be read or processed "
                              f"(all are listed in {self.path})")


def process_files(chain: Chain, inputs: list[tuple[Path, Path]], out: str | Path, *,
                  progress: bool = False, skip_existing: bool = False) -> list[Path]:
    """Run ``chain`` on each input and write ``out/<relative name>.png`` (the local engine);
    returns the written files. With ``skip_existing`` an output already there is kept and its
    input not read (see :func:`pending_inputs`); a file that cannot be read or processed goes to
    ``out/failures.jsonl`` (:class:`FailureLog`) and the rest go on."""
    out = Path(out)
    todo, _ = pending_inputs(inputs, out, skip_existing=skip_existing)
    made: list[Path] = []
    bar = progress_bar(len(todo), progress)
    failures = FailureLog(out, len(todo), warn=progress_writer(bar))
    try:
        for src, rel in todo:
            try:
                made.append(process_one(chain, src, out / rel))
                failures.done()
            except ArtganError as exc:
                failures.record(src, rel, str(exc), exc)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    failures.finish()
    return made


def progress_writer(bar) -> Callable[[str], None] | None:
    """How to print a warning line without breaking the progress bar (on stderr, as it is)."""
    if bar is None:
        return None
    return lambda msg: bar.write(msg, file=sys.stderr)


def progress_bar(total: int, enabled: bool):
    """The one progress bar of a run (on stderr), or ``None``."""
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="process", unit="image", file=sys.stderr, dynamic_ncols=True)
