"""The Python API for running exported models (no torch): what ``artgan process`` and ``artgan
generate`` call, and what a notebook or an app calls instead of the command line.

    import artgan
    steps = artgan.Steps("superres:model=x2-gan", "style:model=great-wave")
    big = steps(image)                        # a PIL image, or an HxWxC uint8 / float [0, 1] array
    steps.process(["photos/"], "out/")        # folders of files, as `artgan process` (engine="ray")
    images = artgan.Generator("digits.onnx")(n=16, seed=0)   # uint8 NHWC
    model = artgan.load_model("x2-gan")       # a model by name or path: a Generator or an ImageModel

Every error is an :class:`artgan.ArtganError` (a subclass), never ``SystemExit``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .errors import ArtganError
from .runtime import Generator

__all__ = ["Steps", "ImageModel", "Generator", "load_model", "ProcessReport", "RECORD_FILE"]

#: What a run of :meth:`Steps.process` records in its output folder (the steps, the engine and
#: machine, counts and time): a resumed run checks it, and it compares machines and engines
RECORD_FILE = "process.json"
ENGINES = ("local", "ray")


class Steps:
    """A chain of post-processing steps, built once, run on images in memory or on files.

    ``Steps("superres:model=x2-gan", {"name": "lanczos", "scale": 2})`` builds each step through
    the plugins' registry (the same specs as ``artgan process --step``); a built
    :class:`artgan.steps.Step` may be given too. ``Steps.from_bundle(DIR)`` runs a bundle's chain.
    """

    def __init__(self, *steps: str | dict[str, Any] | Any, registry=None):
        from .steps import Step, build_step

        if not steps:
            raise ArtganError("Steps: give at least one step, e.g. Steps('superres:scale=2')")
        if registry is None:
            from .plugins import get_registry
            registry = get_registry()
        self._state: tuple[str, Any] = ("specs", list(steps))
        self.steps = [s if isinstance(s, Step) or (callable(s) and not isinstance(s, (str, dict)))
                      else build_step(registry, s) for s in steps]
        self.generator: Generator | None = None
        self._chain: Callable[[np.ndarray], np.ndarray] = self._run_steps

    @classmethod
    def from_bundle(cls, path: str | Path) -> "Steps":
        """The chain of a bundle folder (``artgan bundle``); ``.generator`` is its generator or None."""
        from .bundle import load_bundle

        bundle = load_bundle(path)
        self = cls.__new__(cls)
        self._state = ("bundle", str(Path(path).resolve()))
        self.steps, self.generator, self._chain = list(bundle.steps), bundle.generator, bundle
        self.bundle = bundle
        return self

    def _run_steps(self, images: np.ndarray) -> np.ndarray:
        from .steps import run_chain
        return run_chain(self.steps, images)

    # -- pickling: a Ray worker rebuilds the chain from what it was built from ----------------------

    def __reduce__(self):
        return (_rebuild_steps, (self.describe_state(),))

    def describe_state(self) -> tuple[str, Any]:
        """What the chain is built from, as plain data (for workers to rebuild it)."""
        kind, data = self._state
        if kind == "specs" and not all(isinstance(s, (str, dict)) for s in data):
            raise ArtganError("these Steps hold built step objects; to run them in other processes (engine='ray') "
                              "give the steps as specs, e.g. Steps('superres:scale=2')")
        return self._state

    def describe(self) -> list[Any]:
        """The chain as JSON-ready data, specs normalised (``"lanczos:scale=2"`` and
        ``{"name": "lanczos", "scale": 2}`` are the same): recorded by :meth:`process`."""
        from .steps import parse_step_spec

        kind, data = self._state
        if kind == "bundle":
            return [{"bundle": data}]
        if kind == "model":
            return [{"model": data}]
        out = []
        for s in data:
            if isinstance(s, str):
                name, params = parse_step_spec(s)
                out.append({"name": name, **params})
            elif isinstance(s, dict):
                out.append(dict(s))
            else:
                out.append({"object": repr(s)})
        return json.loads(json.dumps(out, default=str))

    # -- images in memory -----------------------------------------------------------------------

    def run(self, images: np.ndarray) -> np.ndarray:
        """float32 NHWC in [0, 1] -> float32 NHWC in [0, 1] (the step contract), every step's
        output checked."""
        return self._chain(images)

    def __call__(self, image):
        """One image through the chain, returned as the type it came in: a PIL image (read as
        RGB, upright by its EXIF orientation, as ``artgan process`` reads files), an HxWxC (or
        NHWC) uint8 array, or a float array in [0, 1] (the same float dtype back)."""
        from PIL import Image

        from .process import to_uint8_rows

        if isinstance(image, Image.Image):
            out = to_uint8_rows(self.run(_pil_to_float(image))[0])
            return Image.fromarray(out[..., 0] if out.shape[2] == 1 else out)
        if not isinstance(image, np.ndarray):
            raise ArtganError(f"Steps: expected a PIL image or a numpy array (HxWxC), got {type(image).__name__}")
        if image.ndim not in (3, 4) or not image.size:
            raise ArtganError(f"Steps: expected an HxWxC image (or an NHWC batch), got shape {image.shape}")
        batch = image if image.ndim == 4 else image[None]
        if image.dtype == np.uint8:
            out = self.run(batch.astype(np.float32) / 255.0)
            out = np.stack([to_uint8_rows(im) for im in out])
        elif np.issubdtype(image.dtype, np.floating):
            lo, hi = float(np.min(batch)), float(np.max(batch))
            if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
                raise ArtganError(f"Steps: a float image must hold values in [0, 1], this one has [{lo:.4g}, {hi:.4g}]"
                                  f" (divide by 255, or pass the uint8 array)")
            out = self.run(batch.astype(np.float32)).astype(image.dtype, copy=False)
        else:
            raise ArtganError(f"Steps: expected a uint8 or float array, got dtype {image.dtype}")
        return out if image.ndim == 4 else out[0]

    # -- files ----------------------------------------------------------------------------------

    def process(self, inputs: Iterable[str | Path], out: str | Path, *, engine: str = "local",
                address: str | None = None, overwrite: bool = False, progress: bool = False,
                log: Callable[[str], None] | None = None) -> "ProcessReport":
        """Run the chain over image files and folders (recursive) into ``out``, one PNG per input
        keeping its path relative to its folder: what ``artgan process`` does.

        ``engine="ray"`` runs it over Ray Data (``address``: a cluster; default ``RAY_ADDRESS``,
        else a local Ray); the outputs are the same bytes. An output already in ``out`` is kept
        and its input skipped (a stopped run resumes), unless ``overwrite``; ``out`` must then
        have been made by the same steps (``out/process.json`` says). A file that cannot be read
        or processed is listed in ``out/failures.jsonl`` and the run goes on."""
        from .process import collect_inputs, pending_inputs

        if engine not in ENGINES:
            raise ArtganError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if address and engine != "ray":
            raise ArtganError("an address is for engine 'ray' (--engine ray --address ...)")
        log = log or (lambda msg: None)
        out = Path(out)
        files = collect_inputs(inputs)
        record = out / RECORD_FILE
        chain = self.describe()
        # an earlier run's record binds the folder only when that run left images in it: one that
        # failed before making any (a step that refused the input) must not lock the folder
        if record.is_file() and not overwrite and _holds_outputs(out):
            try:
                before = json.loads(record.read_text(encoding="utf-8")).get("steps")
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                before = None
            if before != chain:
                raise ArtganError(f"{out} holds the outputs of other steps ({record} says {json.dumps(before)}); "
                                  f"choose another --out, or add --overwrite to redo every image")
        todo, skipped = pending_inputs(files, out, skip_existing=not overwrite)
        if skipped:
            log(f"{skipped} of {len(files)} image(s) already in {out}: kept (--overwrite redoes them)")
        report = ProcessReport(out=str(out), steps=chain, engine=engine, inputs=len(files), skipped=skipped,
                               started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        report.machine = _machine()
        report.write(record)
        t0 = time.perf_counter()
        if engine == "local":
            from .process import process_files
            made = process_files(self.run, todo, out, progress=progress) if todo else []
            report.made = len(made)
        else:
            from .ray_engine import process_on_ray
            report.made, report.ray = process_on_ray(self, todo, out, rebuild=_rebuild_steps, address=address,
                                                         progress=progress)
        report.seconds = round(time.perf_counter() - t0, 3)
        report.failed = len(todo) - report.made
        report.images_per_second = round(report.made / report.seconds, 3) if report.seconds > 0 else None
        report.finished = True
        report.write(record)
        return report

    def __repr__(self) -> str:
        return f"<Steps {' -> '.join(getattr(s, 'name', type(s).__name__) for s in self.steps)}>"


class ImageModel(Steps):
    """An image-to-image ``.onnx`` (superres, style, ...) run as it is, as a one-step chain:
    ``model(image)`` as :meth:`Steps.__call__`; ``.model`` is the :class:`artgan.runtime.Model`,
    ``.metadata`` its ``artgan.*`` metadata. (A model's step, e.g. ``style:model=NAME``, may
    do more, such as blending by a strength.)"""

    def __init__(self, path: str | Path, *, model=None, providers=None):
        from .steps import OnnxImageStep

        step = OnnxImageStep(model if model is not None else path, providers=providers)
        self._state = ("model", str(Path(path).resolve()))
        self.steps, self.generator, self._chain = [step], None, self._run_steps
        self.model, self.metadata, self.path = step.model, step.model.metadata, Path(path)


def _holds_outputs(out: Path) -> bool:
    """Whether ``out`` holds anything but the run's own records (process.json, failures.jsonl)."""
    from .process import FAILURES_FILE

    return any(p.name not in (RECORD_FILE, FAILURES_FILE) for p in out.iterdir())


def _rebuild_steps(state: tuple[str, Any]) -> Steps:
    kind, data = state
    if kind == "bundle":
        return Steps.from_bundle(data)
    if kind == "model":
        return ImageModel(data)
    return Steps(*data)


def _pil_to_float(image) -> np.ndarray:
    """A PIL image as ``artgan process`` reads a file: upright, 8-bit, RGB; float32 NHWC [0, 1]."""
    from PIL import ImageOps

    from .images import _to_8bit, to_float

    upright = ImageOps.exif_transpose(image)
    arr = np.asarray(_to_8bit(upright).convert("RGB"), dtype=np.uint8)
    return to_float(arr)[None]


def load_model(name: str | Path, *, providers=None) -> Generator | ImageModel:
    """An exported model by path (``.onnx``), by ``KIND/NAME`` (``superres/x2-gan``) or by name
    alone (``x2-gan``: searched in every kind's folder along the model search path, see
    :func:`artgan.model_search.model_search_path`). A generator comes back as an
    :class:`artgan.Generator`, an image-to-image model as an :class:`ImageModel`."""
    from .runtime import Model

    path = _find_any_model(str(name))
    model = Model(path, providers=providers)
    if model.task == "generate":
        return Generator(path, providers=providers)
    return ImageModel(path, model=model)


def _find_any_model(name: str) -> Path:
    from .model_search import find_model, model_search_path

    as_path = Path(name).expanduser()
    if as_path.suffix == ".onnx" or as_path.is_file():
        if as_path.is_file():
            return as_path
        raise ArtganError(f"model file {name} not found")
    if name.count("/") == 1:
        kind, model = name.split("/")
        return find_model(kind, model)
    found: dict[str, Path] = {}
    known: set[str] = set()
    for root in model_search_path():
        for p in sorted(root.glob("*/*.onnx")):
            known.add(f"{p.parent.name}/{p.stem}")
            if p.stem == name:
                found.setdefault(p.parent.name, p)
    if len(found) > 1:
        raise ArtganError(f"model name {name!r} is in more than one kind ({', '.join(sorted(found))}); "
                          f"say which, e.g. {sorted(found)[0]}/{name}")
    if not found:
        import difflib
        close = difflib.get_close_matches(name, sorted(k.split("/")[1] for k in known), n=1)
        raise ArtganError(f"no model named {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                          + f"; available: {', '.join(sorted(known)) or 'none'} (or give a path to an .onnx)")
    return next(iter(found.values()))


@dataclass
class ProcessReport:
    """What one :meth:`Steps.process` run did; also written to ``out/process.json``."""

    out: str
    steps: list[Any]
    engine: str
    inputs: int = 0
    skipped: int = 0
    made: int = 0
    failed: int = 0
    seconds: float = 0.0
    images_per_second: float | None = None
    started: str = ""
    finished: bool = False
    machine: dict[str, Any] = field(default_factory=dict)
    ray: dict[str, Any] | None = None

    def write(self, path: Path) -> None:
        """Write the report as JSON to ``path``, atomically."""
        from .files import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def _machine() -> dict[str, Any]:
    """Where a run ran, to compare machines: host, CPUs, versions."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__
    from .runtime import cpu_count

    def v(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    return {"host": platform.node(), "cpus": cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "artgan": __version__,
            "onnxruntime": v("onnxruntime-gpu") or v("onnxruntime"),
            "threads": os.environ.get("ARTGAN_THREADS") or None}
