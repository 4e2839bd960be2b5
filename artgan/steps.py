"""The post-processing step contract (no torch).

A step maps a batch of images to a batch of images: float32 NHWC in [0, 1] in and out (the
height and width may change, e.g. super-resolution). Steps are registered by plugins through
``artgan_register_steps`` and built from a spec such as ``superres:scale=4,model=x2-psnr``.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .config import parse_value
from .errors import ArtganError


class Step:
    """Base class for post-processing steps. Subclasses set ``name`` and implement ``__call__``.

    A step that reads files named by its parameters says so, for bundles (:mod:`artgan.bundle`):
    the class (or factory function) lists those parameters in ``file_params`` (e.g.
    ``("reference",)``), and the built step maps each one it read to the file in ``param_files``
    (``{"reference": Path(".../starry-night.reference.json")}``), whether the value was a path or
    a name it looked up. A bundle copies those files in and refuses, where it runs, a step that
    read one outside the bundle.
    """

    name = "step"
    file_params: tuple[str, ...] = ()
    param_files: Mapping[str, Path] = MappingProxyType({})

    def __call__(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class OnnxImageStep(Step):
    """A trained image-to-image model (an ``.onnx`` with ``task: image-to-image``) run through
    :mod:`artgan.runtime`, tiled for large images.

    The model's first input is the image in its ``value_range`` (NCHW); ``scale`` and
    ``size_multiple`` come from its metadata. Further inputs (e.g. an inpainting ``mask``, NCHW
    in [0, 1]) are passed to :meth:`run_one` by name.
    """

    def __init__(self, model_path, *, tile: int | None = None, overlap: int = 32,
                 providers=None, name: str | None = None, min_tile: int = 16):
        from .runtime import Model
        from .tiling import check_tiling

        check_tiling(name or Path(getattr(model_path, "path", model_path)).stem, tile, overlap, min_tile)
        # a Model already loaded (artgan.load_model looked at its task) is used as it is
        self.model = model_path if isinstance(model_path, Model) else Model(model_path, providers=providers)
        md = self.model.metadata
        if md.get("task") != "image-to-image":
            raise ArtganError(f"{model_path}: task is {md.get('task')!r}, not an image-to-image model")
        self.name = name or md.get("step", md.get("architecture", "onnx"))
        self.scale = int(md.get("scale", 1))
        self.multiple = int(md.get("size_multiple", 1))
        self.value_range = tuple(md.get("value_range", (-1.0, 1.0)))
        self.input_names = list(self.model.inputs)
        self.tile, self.overlap = tile, overlap

    def _to_model(self, images: np.ndarray) -> np.ndarray:
        lo, hi = self.value_range
        return np.ascontiguousarray((images * (hi - lo) + lo).transpose(0, 3, 1, 2), dtype=np.float32)

    def _from_model(self, raw: np.ndarray) -> np.ndarray:
        lo, hi = self.value_range
        return np.clip((raw.transpose(0, 2, 3, 1) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)

    def run_one(self, image: np.ndarray, **extras: np.ndarray) -> np.ndarray:
        """One HWC image (plus HWC extra inputs by name) -> HWC output."""
        from .tiling import process_tiled

        names = [n for n in self.input_names[1:]]
        missing = [n for n in names if n not in extras]
        if missing:
            raise ArtganError(f"{self.name}: model needs input(s) {', '.join(missing)}")

        def fn(img_tile, *extra_tiles):
            feeds = {self.input_names[0]: self._to_model(img_tile)}
            for n, t in zip(names, extra_tiles):
                feeds[n] = np.ascontiguousarray(t.transpose(0, 3, 1, 2), dtype=np.float32)
            return self._from_model(self.check_scale(self.model.run(feeds), img_tile.shape))

        h, w = image.shape[:2]
        tile = self.tile if self.tile is not None else self.tile_for(h, w)
        return process_tiled(fn, image, *[extras[n] for n in names], scale=self.scale,
                             multiple=self.multiple, tile=tile, overlap=self.overlap)

    def tile_for(self, height: int, width: int) -> int | None:
        """The tile side for an image when ``tile`` is not given (None: the whole image at once):
        :func:`artgan.tiling.auto_tile`'s, from free memory."""
        from .tiling import auto_tile

        return auto_tile(height, width, multiple=self.multiple, scale=self.scale)

    def check_scale(self, raw: np.ndarray, tile_shape: tuple[int, ...]) -> np.ndarray:
        """The model's NCHW output for an NHWC tile is the tile times the metadata's ``scale``: a
        model whose metadata understates its scale would otherwise be cropped to the top-left of
        its output (silently wrong), one that overstates it padded with black."""
        n, h, w = tile_shape[:3]
        if not isinstance(raw, np.ndarray) or raw.ndim != 4 or len(raw) != n:
            raise ArtganError(f"{self.model.path.name}: the model returned "
                              f"{getattr(raw, 'shape', type(raw).__name__)} for {n} image(s), not NCHW images; "
                              f"re-export it with `artgan export`")
        oh, ow = raw.shape[2:]
        if (oh, ow) != (h * self.scale, w * self.scale):
            actual = f"x{oh // h}" if oh % h == 0 and ow % w == 0 and oh // h == ow // w else "by another factor"
            raise ArtganError(f"{self.model.path.name}: the model turns a {h}x{w} input into {oh}x{ow} (it scales "
                              f"{actual}), but its metadata artgan.scale says x{self.scale}; re-export it with "
                              f"`artgan export` (exports/README.md)")
        return raw

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if len(images) == 1:  # the usual case for large images: no stacked copy
            return self.run_one(images[0])[None]
        return np.stack([self.run_one(im) for im in images])


class ModelStep(OnnxImageStep):
    """A task's trained model as a step: ``model`` is a name that
    :func:`artgan.model_search.find_model` looks up under the task's ``step`` folder, or an
    ``.onnx`` path, and the model's metadata must say that ``step`` runs it.

    The tiling policy, when ``tile`` is not given: images run whole while
    :func:`artgan.tiling.auto_tile` says they fit a quarter of the free memory at the model's
    ``bytes_per_pixel``; with ``untiled_pixels``, whole up to that many output pixels whatever the
    memory (a model whose output needs the whole picture, e.g. an inpainted hole its context),
    else in auto_tile's largest tiles. ``hint`` ends the error for a name that finds no model
    (how to train or install one).
    """

    def __init__(self, step: str, model: str, *, tile: int | None = None, overlap: int = 32, providers=None,
                 min_tile: int = 16, bytes_per_pixel: int | None = None, untiled_pixels: int | None = None,
                 hint: str = ""):
        from .model_search import find_model, list_models
        from .tiling import check_tiling

        check_tiling(step, tile, overlap, min_tile)
        if not isinstance(model, str) or not model:
            raise ArtganError(f"{step}: model must be a model name or an .onnx path, got {model!r}")
        try:
            path = find_model(step, model)
        except ArtganError:
            if not hint:
                raise
            raise ArtganError(f"{step}: no model {model!r} (available: {', '.join(list_models(step)) or 'none'}); "
                              f"{hint}") from None
        super().__init__(path, tile=tile, overlap=overlap, providers=providers, name=step, min_tile=min_tile)
        made_for = self.model.metadata.get("step", step)
        if made_for != step:
            raise ArtganError(f"{step}: {path} is a {made_for!r} model, not a {step} one")
        self.model_name, self.model_path = model, path
        self.bytes_per_pixel, self.untiled_pixels = bytes_per_pixel, untiled_pixels

    def tile_for(self, height: int, width: int) -> int | None:
        from .tiling import DEFAULT_BYTES_PER_PIXEL, auto_tile

        bytes_per_pixel = self.bytes_per_pixel or DEFAULT_BYTES_PER_PIXEL
        budget = None if self.untiled_pixels is None else self.untiled_pixels * bytes_per_pixel
        return auto_tile(height, width, multiple=self.multiple, scale=self.scale, bytes_per_pixel=bytes_per_pixel,
                         budget=budget)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.model_name} ({self.model_path})>"


def source_file() -> Path | None:
    """The image file a step's images come from while ``artgan process`` (or a pipeline's
    ``process`` stage) runs the chain on it, for a step that needs more of the file than its RGB
    pixels (inpaint's ``mask=alpha`` reads its transparency); ``None`` elsewhere."""
    from .process import current_source  # set there, file by file

    return current_source.get()


def parse_step_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"superres:scale=4,model=x2"`` -> ("superres", {"scale": 4, "model": "x2"}).

    Values are read as YAML scalars (``4`` is an int, ``0.7`` a float, ``true`` a bool). A value
    that itself holds commas (``box=10,20,30,40``) keeps them: a comma starts a new parameter
    only when ``key=`` follows it.
    """
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise ArtganError(f"step {spec!r}: expected NAME or NAME:key=value,...")
    params: dict[str, Any] = {}
    if rest.strip():
        parts: list[str] = []
        for piece in rest.split(","):
            if "=" in piece or not parts:
                parts.append(piece)
            else:
                parts[-1] += "," + piece
        for part in parts:
            key, eq, value = part.partition("=")
            if not eq or not key.strip():
                raise ArtganError(f"step {spec!r}: parameter {part!r} is not key=value")
            params[key.strip()] = parse_value(value, f"step {name!r}: {key.strip()}")
    return name, params


def build_step(registry, spec: str | dict[str, Any]) -> Step:
    """Build a step from ``"name:k=v"`` or ``{name: ..., k: v}`` through the registry. The step
    remembers the plugin that provided it (``step.plugin``), for run-time errors."""
    if isinstance(spec, str):
        name, params = parse_step_spec(spec)
    elif isinstance(spec, dict) and isinstance(spec.get("name"), str):
        name, params = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    else:
        raise ArtganError(f"step {spec!r}: expected 'name:key=value' or a mapping with 'name:'")
    try:
        step = registry.create("step", name, **params)
    except SystemExit as exc:  # a plugin's factory calling sys.exit(): an error naming it, not the caller's exit
        try:
            plugin = f" (plugin {registry.get('step', name).plugin!r})"
        except ArtganError:
            plugin = ""
        raise ArtganError(f"step {name!r}{plugin} called sys.exit({exc.code!r}) while being built; "
                          f"a bug in the plugin: it must raise an exception instead") from None
    if not getattr(step, "plugin", None):
        try:
            step.plugin = registry.get("step", name).plugin
        except AttributeError:  # a step class with __slots__: errors name the step alone
            pass
    return step


#: How far outside [0, 1] a step's output may stray (rounding in resamplers) before it is an error
RANGE_SLACK = 1e-4


def expected_step_shape(step: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The output shape a step declares for an NHWC input ``shape``: its ``output_shape(shape)``
    method if it has one, else ``scale`` (an int: H and W multiplied), else the input shape."""
    if callable(getattr(step, "output_shape", None)):
        return tuple(step.output_shape(tuple(shape)))
    scale = getattr(step, "scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        scale = 1  # not an integer upscale factor: some other meaning of "scale"
    n, h, w, c = shape
    return (n, h * scale, w * scale, c)


def step_label(step: Any) -> str:
    """``step 'superres' (plugin 'superres')``: how run-time errors name a step."""
    plugin = getattr(step, "plugin", "")
    return f"step {getattr(step, 'name', type(step).__name__)!r}" + (f" (plugin {plugin!r})" if plugin else "")


def check_step_output(step: Any, images: np.ndarray, out: Any) -> np.ndarray:
    """The step contract, checked on every call: a float32 NHWC array of the declared shape
    (:func:`expected_step_shape`), finite, in [0, 1]. Raises :class:`ArtganError` naming the step
    and its plugin, so a plugin's bug is not reported deep inside Pillow, or written silently."""
    who = step_label(step)
    if not isinstance(out, np.ndarray):
        raise ArtganError(f"{who} returned {type(out).__name__}, not a numpy array; steps return float32 "
                          f"NHWC in [0, 1] (a bug in the plugin)")
    try:
        want = expected_step_shape(step, images.shape)
    except Exception as exc:
        raise ArtganError(f"{who}: its output_shape() failed ({type(exc).__name__}: {exc})") from None
    if out.shape != want:
        raise ArtganError(f"{who} returned shape {out.shape} for input {images.shape}, expected {want} "
                          f"(NHWC; a bug in the plugin, or it must declare `scale` or output_shape())")
    if out.dtype != np.float32:
        raise ArtganError(f"{who} returned dtype {out.dtype}; steps return float32 in [0, 1] (a bug in the plugin)")
    if out.size:
        lo, hi = float(out.min()), float(out.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ArtganError(f"{who} returned NaN or infinite values (a bug in the plugin, or an input it "
                              f"cannot handle)")
        if lo < -RANGE_SLACK or hi > 1 + RANGE_SLACK:
            raise ArtganError(f"{who} returned values in [{lo:.4g}, {hi:.4g}]; steps return [0, 1] "
                              f"(a bug in the plugin)")
    return out


def run_chain(steps: list[Step], images: np.ndarray) -> np.ndarray:
    """``images`` through each step in turn, every output checked (:func:`check_step_output`)."""
    for step in steps:
        try:
            out = step(images)
        except (ArtganError, MemoryError, OSError, KeyboardInterrupt):
            raise  # already one line, or the machine's fault: the CLI says which
        except (Exception, SystemExit) as exc:  # a plugin's bug: name the step and its plugin, not just the
            # exception; a plugin's sys.exit() must not end the caller's program (a notebook, a Ray worker)
            detail = " ".join(str(exc).split())[:300]
            raise ArtganError(f"{step_label(step)} failed on a batch of shape {images.shape} "
                              f"({type(exc).__name__}: {detail}); a bug in the plugin, or an input it cannot "
                              f"handle") from exc
        images = check_step_output(step, images, out)
    return images
