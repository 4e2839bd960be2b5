"""Bundles: a chain of post-processing steps (and optionally a generator before it) as one folder
that an app deploys and runs in one call. No torch.

A bundle is a folder with ``bundle.json`` (the manifest) and the ``.onnx`` files it names::

    {"format": 1, "name": "...", "artgan_version": "...",
     "generator": {"file": "generator.onnx", "sha256": "...", "metadata": {...}} | null,
     "steps": [{"name": "superres", "params": {"scale": 2}, "model": "01-superres-x2-psnr.onnx",
                "sha256": "...", "metadata": {...}},
               {"name": "lanczos", "params": {"scale": 2}}]}

Use it from an app::

    from artgan.bundle import load_bundle
    bundle = load_bundle("my-bundle")
    images = bundle.generate(16, seed=0)     # a bundle with a generator: noise -> finished images
    images = bundle(images_nhwc)             # any bundle: float32 NHWC in [0, 1] through the chain

A step that runs a model file must say which: a ``model_path`` attribute, or an
:class:`artgan.runtime.Model` / :class:`artgan.steps.OnnxImageStep` attribute. The file is copied
into the bundle and handed back to the step's factory as ``model=`` when the bundle loads; a step
whose plugin is not installed where the bundle runs falls back to a plain :class:`OnnxImageStep`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import ArtganError
from .steps import OnnxImageStep, Step, parse_step_spec, run_chain

MANIFEST = "bundle.json"
FORMAT = 1
_MODEL_KEYS = ("task", "step", "architecture", "scale", "size_multiple", "value_range", "channels",
               "latent_dim", "image_size", "version")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _step_model_path(step: Step) -> Path | None:
    """The model file a built step runs, found by the convention in the module docstring."""
    from .runtime import Model

    if getattr(step, "model_path", None):
        return Path(step.model_path)
    candidates = [step, *vars(step).values()]
    for value in candidates:
        if isinstance(value, OnnxImageStep):
            return Path(value.model.path)
        if isinstance(value, Model):
            return Path(value.path)
    return None


def _spec(spec: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return parse_step_spec(spec)
    if isinstance(spec, dict) and "name" in spec:
        return spec["name"], {k: v for k, v in spec.items() if k != "name"}
    raise ArtganError(f"bundle: step {spec!r}: expected 'name:key=value' or a mapping with 'name:'")


def write_bundle(out: str | Path, steps: list[str | dict[str, Any]], *, registry,
                 generator: str | Path | None = None, name: str | None = None,
                 description: str = "", overwrite: bool = False) -> dict[str, Any]:
    """Build each step (so bad names and parameters fail now), copy the model files and write
    the manifest into ``out``; returns the manifest. The folder appears whole or not at all."""
    from .runtime import Model

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ArtganError(f"{out} exists and is not empty; choose another folder or overwrite it (--force)")
    if not steps and generator is None:
        raise ArtganError("bundle: nothing to bundle; give at least one step or a generator")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest: dict[str, Any] = {"format": FORMAT, "name": name or out.name, "description": description,
                                    "artgan_version": __version__, "generator": None, "steps": []}
        if generator is not None:
            gen = Model(generator, providers=["CPUExecutionProvider"])
            if gen.task != "generate":
                raise ArtganError(f"bundle: {generator} is a {gen.task!r} model, not a generator")
            shutil.copyfile(generator, tmp / "generator.onnx")
            manifest["generator"] = {"file": "generator.onnx", "sha256": _sha256(tmp / "generator.onnx"),
                                     "metadata": {k: gen.metadata[k] for k in _MODEL_KEYS if k in gen.metadata}}
        for i, spec in enumerate(steps, 1):
            step_name, params = _spec(spec)
            step = registry.create("step", step_name, **params)
            entry: dict[str, Any] = {"name": step_name, "params": {k: v for k, v in params.items() if k != "model"}}
            model_path = _step_model_path(step)
            if model_path is not None:
                file = f"{i:02d}-{step_name}-{model_path.stem}.onnx"
                shutil.copyfile(model_path, tmp / file)
                md = Model(tmp / file, providers=["CPUExecutionProvider"]).metadata
                entry.update(model=file, sha256=_sha256(tmp / file),
                             metadata={k: md[k] for k in _MODEL_KEYS if k in md})
            manifest["steps"].append(entry)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return manifest


class Bundle:
    """A loaded bundle: ``bundle(images)`` runs the chain; ``bundle.generate(n, seed)`` runs the
    generator first (bundles that have one)."""

    def __init__(self, path: str | Path, *, registry=None, providers=None, verify: bool = True):
        from .runtime import Generator

        self.path = Path(path)
        manifest_file = self.path / MANIFEST
        if not manifest_file.is_file():
            raise ArtganError(f"{self.path}: not a bundle (no {MANIFEST}); make one with `artgan bundle`")
        try:
            self.manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ArtganError(f"{manifest_file}: invalid JSON ({exc})") from None
        if self.manifest.get("format") != FORMAT:
            raise ArtganError(f"{manifest_file}: bundle format {self.manifest.get('format')!r}; this artgan "
                              f"reads format {FORMAT}")
        self.name = self.manifest.get("name", self.path.name)
        self.verify = verify
        gen = self.manifest.get("generator")
        self.generator = Generator(self._file(gen), providers=providers) if gen else None
        if registry is None:
            from .plugins import get_registry
            registry = get_registry()
        self.steps = [self._build(entry, registry, providers) for entry in self.manifest.get("steps", [])]

    def _file(self, entry: dict[str, Any]) -> Path:
        path = self.path / entry["file" if "file" in entry else "model"]
        if not path.is_file():
            raise ArtganError(f"bundle {self.path}: missing file {path.name}")
        if self.verify and entry.get("sha256") and _sha256(path) != entry["sha256"]:
            raise ArtganError(f"bundle {self.path}: {path.name} does not match its checksum in {MANIFEST}; "
                              f"rebuild the bundle")
        return path

    def _build(self, entry: dict[str, Any], registry, providers) -> Step:
        name, params = entry["name"], dict(entry.get("params", {}))
        if "model" not in entry:
            return registry.create("step", name, **params)
        model = self._file(entry)
        try:
            factory = registry.get("step", name).factory
        except ArtganError:  # the plugin is not installed here: run the model as it is
            return OnnxImageStep(model, tile=params.get("tile"), overlap=params.get("overlap", 32),
                                 providers=providers, name=name)
        try:
            accepted = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            accepted = {}
        if "model" not in accepted:
            return OnnxImageStep(model, tile=params.get("tile"), overlap=params.get("overlap", 32),
                                 providers=providers, name=name)
        return registry.create("step", name, **params, model=str(model.resolve()))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """float32 NHWC in [0, 1] through every step."""
        return run_chain(self.steps, images)

    def generate(self, n: int, seed: int = 0, *, truncation: float | None = None,
                 batch_size: int = 16) -> np.ndarray:
        """``n`` generated images, each through the chain (one at a time: sizes may grow large)."""
        if self.generator is None:
            raise ArtganError(f"bundle {self.name}: has no generator; pass images to it instead")
        images = self.generator.generate(n, seed, batch_size=batch_size, truncation=truncation)
        return np.concatenate([self(images[i:i + 1]) for i in range(len(images))])

    def __repr__(self) -> str:
        chain = " -> ".join((["generator"] if self.generator else []) + [s.name for s in self.steps])
        return f"<Bundle {self.name}: {chain}>"


def load_bundle(path: str | Path, *, registry=None, providers=None) -> Bundle:
    return Bundle(path, registry=registry, providers=providers)
