"""Bundles: a chain of post-processing steps (and optionally a generator before it) as one folder
that an app deploys and runs in one call. No torch.

A bundle is a folder with ``bundle.json`` (the manifest) and the ``.onnx`` files it names::

    {"format": 1, "name": "...", "artgan_version": "...",
     "generator": {"file": "generator.onnx", "sha256": "...", "metadata": {...}} | null,
     "steps": [{"name": "superres", "params": {"scale": 2}, "model": "01-superres-x2-psnr.onnx",
                "sha256": "...", "metadata": {...},
                "provided_by": {"plugin": "superres", "distribution": "artgan", "version": "..."}},
               {"name": "color-transfer", "params": {"strength": 0.5},
                "files": {"reference": {"file": "02-color-transfer-reference.jpg", "sha256": "..."}}},
               {"name": "lanczos", "params": {"scale": 2}}]}

Use it from an app::

    from artgan.bundle import load_bundle
    bundle = load_bundle("my-bundle")
    images = bundle.generate(16, seed=0)     # a bundle with a generator: noise -> finished images
    images = bundle(images_nhwc)             # any bundle: float32 NHWC in [0, 1] through the chain

A bundle is closed: every file it names is a plain file name inside its folder (no path,
no ``..``, no link leading out) with a ``sha256`` that is checked on load; step parameters cannot
name files outside it. A parameter a step reads a file for (``file_params``/``param_files``, see
:class:`artgan.steps.Step`: ``reference=starry-night``, a name looked up on the model search path,
or ``mask=hole.png``) is copied in when the bundle is made; where it runs, a declared file
parameter that names a file in the current folder, or a built step that read any file outside
the bundle, is refused. A malformed manifest is one error naming ``bundle.json`` and the key.
When a bundle is made, the chain is run once on a small input (the generator's output, or an RGB
image), so steps that do not fit together (channels, sizes) fail then, not at the user's; each
step records the plugin, distribution and version that provided it.

A step that runs a model file must say which: a ``model_path`` attribute, or an
:class:`artgan.runtime.Model` / :class:`artgan.steps.OnnxImageStep` attribute. The file is copied
into the bundle and handed back to the step's factory as ``model=`` when the bundle loads (a
parameter naming any other file, e.g. ``reference=painting.jpg``, is copied likewise, into
``files``); a step
whose plugin is not installed where the bundle runs falls back to a plain :class:`OnnxImageStep`.
"""

from __future__ import annotations

import glob
import hashlib
import inspect
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import ArtganError
from .files import remove_stale_temporaries
from .steps import OnnxImageStep, Step, build_step, parse_step_spec, run_chain, step_label

MANIFEST = "bundle.json"
FORMAT = 1
_MODEL_KEYS = ("task", "step", "architecture", "scale", "size_multiple", "value_range", "channels",
               "latent_dim", "image_size", "version")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: The largest manifest read at all (a real one is a few kilobytes)
MAX_MANIFEST_BYTES = 1_000_000
#: the RGB image a bundle without a generator is tried on when it is made (odd sizes on purpose)
_PROBE_SHAPE = (1, 24, 40, 3)


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
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        return spec["name"], {k: v for k, v in spec.items() if k != "name"}
    raise ArtganError(f"bundle: step {spec!r}: expected 'name:key=value' or a mapping with 'name:'")


def _provided_by(registry, name: str) -> dict[str, str]:
    """Which plugin, distribution and version gave step ``name``: recorded in the manifest."""
    plugin = registry.get("step", name).plugin
    rec = registry.plugins.get(plugin)
    return {"plugin": plugin, "distribution": getattr(rec, "distribution", "") or "",
            "version": getattr(rec, "version", "") or ""}


def _ordinary_permissions(folder: Path) -> None:
    """mkdtemp makes 0700 folders; a bundle is deployed and read by others, like any folder we make."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


def write_bundle(out: str | Path, steps: list[str | dict[str, Any]], *, registry,
                 generator: str | Path | None = None, name: str | None = None,
                 description: str = "", overwrite: bool = False) -> dict[str, Any]:
    """Build each step (so bad names and parameters fail now), copy the model files, try the
    chain once and write the manifest into ``out``; returns the manifest. The folder appears
    whole or not at all, and an old one replaced with ``overwrite`` stays until the new one is whole."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ArtganError(f"{out} is a file; choose a folder for the bundle")
    if not steps and generator is None:
        raise ArtganError("bundle: nothing to bundle; give at least one step or a generator")
    _recover_replaced(out)
    remove_stale_temporaries(out.parent, pattern=f".{glob.escape(out.name)}.*.tmp")  # a killed bundler's
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ArtganError(f"{out} exists and is not empty; choose another folder or overwrite it (--force)")
        if not (out / MANIFEST).is_file():
            raise ArtganError(f"{out} is not a bundle (no {MANIFEST}) and is not empty; --force only replaces a "
                              f"bundle: choose another folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        _ordinary_permissions(tmp)
        manifest: dict[str, Any] = {"format": FORMAT, "name": name or out.name, "description": description,
                                    "artgan_version": __version__, "generator": None, "steps": []}
        gen = None
        if generator is not None:
            gen, manifest["generator"] = _add_generator(Path(generator), tmp)
        built = []
        for i, spec in enumerate(steps, 1):
            step, entry = _add_step(i, spec, registry, tmp)
            built.append(step)
            manifest["steps"].append(entry)
        _try_chain(gen, built, generator)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        with open(tmp / MANIFEST, "rb") as fh:
            os.fsync(fh.fileno())
        _move_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _add_generator(generator: Path, folder: Path) -> tuple[Any, dict[str, Any]]:
    """Copy the generator into the bundle folder: (the loaded generator, its manifest entry)."""
    from .runtime import Generator, Model

    model = Model(generator, providers=["CPUExecutionProvider"])
    if model.task != "generate":
        raise ArtganError(f"bundle: {generator} is a {model.task!r} model, not a generator")
    gen = Generator(generator, providers=["CPUExecutionProvider"])
    shutil.copyfile(generator, folder / "generator.onnx")
    return gen, {"file": "generator.onnx", "sha256": _sha256(folder / "generator.onnx"),
                 "metadata": {k: gen.metadata[k] for k in _MODEL_KEYS if k in gen.metadata}}


def _add_step(i: int, spec: str | dict[str, Any], registry, folder: Path) -> tuple[Step, dict[str, Any]]:
    """Build step ``i`` and copy the files it reads (its model, files its parameters name) into
    the bundle folder: (the step, its manifest entry)."""
    from .runtime import Model

    step_name, params = _spec(spec)
    step = build_step(registry, {"name": step_name, **params})
    entry: dict[str, Any] = {"name": step_name, "params": {k: v for k, v in params.items() if k != "model"},
                             "provided_by": _provided_by(registry, step_name)}
    model_path = _step_model_path(step)
    if model_path is not None:
        file = f"{i:02d}-{step_name}-{model_path.stem}.onnx"
        shutil.copyfile(model_path, folder / file)
        md = getattr(getattr(step, "model", None), "metadata", None)
        if md is None:
            md = Model(folder / file, providers=["CPUExecutionProvider"]).metadata
        entry.update(model=file, sha256=_sha256(folder / file), metadata={k: md[k] for k in _MODEL_KEYS if k in md})
    files = {}
    # the files the step says it read (reference=starry-night, a shipped name, included), then any
    # other parameter naming a file (e.g. reference=painting.jpg): they all travel with the bundle
    read = {key: Path(path) for key, path in (getattr(step, "param_files", None) or {}).items()}
    for key, value in entry["params"].items():
        if key not in read and isinstance(value, str) and value and Path(value).expanduser().is_file():
            read[key] = Path(value).expanduser()
    for key, source in read.items():
        file = f"{i:02d}-{step_name}-{key}{source.suffix}"
        shutil.copyfile(source, folder / file)
        files[key] = {"file": file, "sha256": _sha256(folder / file)}
        entry["params"].pop(key, None)
    for key, value in entry["params"].items():
        if isinstance(value, str) and _looks_like_path(value):  # the manifest check would refuse it
            raise ArtganError(f"bundle: step {i} ({step_name}): {key}={value!r} looks like a path but is no file "
                              f"the step read, so it cannot travel with the bundle; give an existing file, or "
                              f"leave it out")
    if files:
        entry["files"] = files
    return step, entry


def _file_params(registry, step_name: str) -> tuple[str, ...]:
    """The parameters step ``step_name``'s factory declares as naming files (``file_params``)."""
    factory = registry.get("step", step_name).factory
    target = factory.resolve() if hasattr(factory, "resolve") else factory
    params = getattr(target, "file_params", ())
    return tuple(params) if isinstance(params, (tuple, list)) else ()


def _outside(bundle: Path, file: Path | str) -> bool:
    """Whether ``file`` (links followed) lies outside the folder ``bundle``."""
    root = os.path.realpath(bundle)
    return os.path.commonpath([root, os.path.realpath(file)]) != root


#: the suffix of the folder an old bundle waits in while ``--force`` replaces it; not ``.tmp``, so no
#: clean-up of stale temporaries ever deletes it: :func:`_recover_replaced` puts it back
REPLACED_SUFFIX = ".replaced"


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder ``tmp`` to ``out``; an old ``out`` is kept aside until then,
    and put back if the rename fails (or by the next ``artgan bundle``, if a kill came between)."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=REPLACED_SUFFIX, dir=out.parent))
    os.replace(out, old / out.name)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old / out.name, out)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def _recover_replaced(out: Path) -> None:
    """A bundle ``--force`` was replacing when it was killed between its two renames waits in
    ``.OUT.*.replaced/OUT``: with ``out`` missing, it is put back; beside a whole new ``out`` it is
    the replaced one, and goes."""
    if not out.parent.is_dir():
        return
    for aside in sorted(out.parent.glob(f".{glob.escape(out.name)}.*{REPLACED_SUFFIX}")):
        kept = aside / out.name
        if not out.exists() and (kept / MANIFEST).is_file():
            os.replace(kept, out)
        if (out / MANIFEST).is_file():
            shutil.rmtree(aside, ignore_errors=True)


def _try_chain(gen, steps: list[Step], generator) -> None:
    """Run the chain once, small, so that a step that cannot take what comes before it (channels,
    sizes, value range) fails when the bundle is made, not where it is deployed."""
    if gen is not None:
        images = gen.generate(1, 0, batch_size=1)
        n, h, w, c = images.shape
        source = f"the generator {Path(generator).name} ({c} channel(s), {h}x{w})"
    else:
        images = np.random.default_rng(0).random(_PROBE_SHAPE, dtype=np.float32)
        source = f"an RGB image ({_PROBE_SHAPE[1]}x{_PROBE_SHAPE[2]}), as `artgan process` gives"
    for i, step in enumerate(steps, 1):
        want = getattr(getattr(step, "model", None), "metadata", {}).get("channels")
        if isinstance(want, int) and want != images.shape[3]:
            raise ArtganError(f"bundle: {step_label(step)} (step {i}) takes {want}-channel images but gets "
                              f"{images.shape[3]}-channel ones from {source if i == 1 else f'step {i - 1}'}; "
                              f"the chain does not fit together")
        try:
            images = run_chain([step], images)
        except ArtganError as exc:
            raise ArtganError(f"bundle: the chain does not fit together: {step_label(step)} (step {i}) fails on "
                              f"the output of {source if i == 1 else f'step {i - 1}'}: {exc}") from None


class Bundle:
    """A loaded bundle: ``bundle(images)`` runs the chain; ``bundle.generate(n, seed)`` runs the
    generator first (bundles that have one)."""

    def __init__(self, path: str | Path, *, registry=None, providers=None, verify: bool = True):
        from .runtime import Generator

        self.path = Path(path)
        self.manifest_file = self.path / MANIFEST
        if not self.manifest_file.is_file():
            raise ArtganError(f"{self.path}: not a bundle (no {MANIFEST}); make one with `artgan bundle`")
        try:
            if self.manifest_file.stat().st_size > MAX_MANIFEST_BYTES:
                raise ArtganError(f"{self.manifest_file}: {self.manifest_file.stat().st_size} bytes is too big for a "
                                  f"bundle manifest (the limit is {MAX_MANIFEST_BYTES}); rebuild the bundle")
            self.manifest = json.loads(self.manifest_file.read_text(encoding="utf-8"))
        except RecursionError:
            raise ArtganError(f"{self.manifest_file}: nested too deeply to read; rebuild the bundle with "
                              f"`artgan bundle`") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtganError(f"{self.manifest_file}: invalid JSON ({exc}); rebuild the bundle with "
                              f"`artgan bundle`") from None
        except OSError as exc:
            raise ArtganError(f"{self.manifest_file}: cannot read it ({exc.strerror})") from None
        _check_manifest(self.manifest, self.manifest_file)
        self.name = self.manifest.get("name") or self.path.name
        self.verify = verify
        gen = self.manifest.get("generator")
        self.generator = Generator(self._file(gen["file"], gen["sha256"], "generator.file"),
                                   providers=providers) if gen else None
        if registry is None:
            from .plugins import get_registry
            registry = get_registry()
        self.steps = [self._build(i, entry, registry, providers) for i, entry in enumerate(self.manifest["steps"])]

    def _file(self, name: str, sha256: str, key: str) -> Path:
        """``name`` inside the bundle folder, checked against its checksum; never a file outside."""
        where = f"{self.manifest_file}: {key}"
        if Path(name).name != name or name in (".", "..") or "\\" in name or "/" in name:
            raise ArtganError(f"{where}: {name!r} is not a plain file name in the bundle folder; a bundle only "
                              f"runs files it holds (rebuild it with `artgan bundle`)")
        path = self.path / name
        if os.path.realpath(path) != os.path.join(os.path.realpath(self.path), name):
            raise ArtganError(f"{where}: {name!r} is a link leading out of the bundle folder; a bundle only "
                              f"runs files it holds (rebuild it with `artgan bundle`)")
        if not path.is_file():
            raise ArtganError(f"bundle {self.path}: missing file {name} ({key}); copy the whole bundle folder")
        if self.verify and _sha256(path) != sha256:
            raise ArtganError(f"bundle {self.path}: {name} does not match its checksum in {MANIFEST}; "
                              f"rebuild the bundle")
        return path

    def _build(self, i: int, entry: dict[str, Any], registry, providers) -> Step:
        """Step ``i``, built from files the bundle holds only: a parameter that names a file (a
        declared ``file_params`` one) comes from ``files``, never from the current folder or
        the model search path; a step that read any file outside the bundle is refused."""
        key = f"steps[{i}]"
        name, params = entry["name"], dict(entry.get("params", {}))
        try:
            declared = _file_params(registry, name)
        except ArtganError:  # the plugin is not installed here: _create says so
            declared = ()
        for pkey in declared:
            value = params.get(pkey)
            if isinstance(value, str) and os.path.lexists(os.path.expanduser(value)):
                raise ArtganError(f"{self.manifest_file}: {key}.params.{pkey}: {value!r} names a file outside the "
                                  f"bundle (here, in the current folder); a bundle only reads files it holds "
                                  f"(rebuild it with `artgan bundle`)")
        step = self._build_unchecked(i, key, entry, name, params, registry, providers)
        read = {"model": _step_model_path(step), **(getattr(step, "param_files", None) or {})}
        for pkey, path in read.items():
            if path is not None and _outside(self.path, path):
                raise ArtganError(f"{self.manifest_file}: {key}.params.{pkey}: the step reads {path}, outside the "
                                  f"bundle; a bundle only reads files it holds (rebuild it with `artgan bundle`)")
        return step

    def _build_unchecked(self, i: int, key: str, entry: dict[str, Any], name: str, params: dict[str, Any],
                         registry, providers) -> Step:
        for pkey, meta in entry.get("files", {}).items():
            params[pkey] = str(self._file(meta["file"], meta["sha256"], f"{key}.files.{pkey}").resolve())
        if "model" not in entry:
            return self._create(registry, key, name, params)
        model = self._file(entry["model"], entry["sha256"], f"{key}.model")
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
        return self._create(registry, key, name, {**params, "model": str(model.resolve())})

    def _create(self, registry, key: str, name: str, params: dict[str, Any]) -> Step:
        try:
            return build_step(registry, {"name": name, **params})
        except ArtganError as exc:
            raise ArtganError(f"{self.manifest_file}: {key}: {exc}") from None
        except Exception as exc:  # a plugin's factory tripping over a manifest value
            raise ArtganError(f"{self.manifest_file}: {key}: step {name!r} cannot be built from these "
                              f"params ({type(exc).__name__}: {exc})") from None

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


def _check_manifest(m: Any, file: Path) -> None:
    """Every key the loader reads has the type it expects; an error names the key."""
    def bad(key: str, message: str) -> None:
        raise ArtganError(f"{file}: {key}: {message}; rebuild the bundle with `artgan bundle`")

    def check_sha(value: Any, key: str) -> None:
        if not isinstance(value, str) or not _SHA256.fullmatch(value):
            bad(key, "missing or not a sha256 hex digest (every file of a bundle is checksummed)")

    if not isinstance(m, dict):
        raise ArtganError(f"{file}: expected a JSON object with format, name, generator and steps, got a "
                          f"{type(m).__name__}; rebuild the bundle with `artgan bundle`")
    if m.get("format") != FORMAT:
        raise ArtganError(f"{file}: bundle format {m.get('format')!r}; this artgan ({__version__}) reads "
                          f"format {FORMAT}")
    if "name" in m and not isinstance(m["name"], str):
        bad("name", f"expected a string, got {m['name']!r}")
    gen = m.get("generator")
    if gen is not None:
        if not isinstance(gen, dict):
            bad("generator", f"expected an object or null, got {type(gen).__name__}")
        if not isinstance(gen.get("file"), str):
            bad("generator.file", "missing or not a string")
        check_sha(gen.get("sha256"), "generator.sha256")
    steps = m.get("steps", [])
    if not isinstance(steps, list):
        bad("steps", f"expected a list, got {type(steps).__name__}")
    if not steps and gen is None:
        bad("steps", "no steps and no generator: nothing to run")
    for i, entry in enumerate(steps):
        key = f"steps[{i}]"
        if not isinstance(entry, dict):
            bad(key, f"expected an object with name and params, got {entry!r}")
        if not isinstance(entry.get("name"), str) or not entry["name"]:
            bad(f"{key}.name", "missing or not a string")
        params = entry.get("params", {})
        if not isinstance(params, dict):
            bad(f"{key}.params", f"expected an object, got {type(params).__name__}")
        if "model" in params:
            bad(f"{key}.params.model", "a bundle names its model file in the step's 'model', not in params")
        for pkey, value in params.items():
            if isinstance(value, str) and _looks_like_path(value):
                bad(f"{key}.params.{pkey}", f"{value!r} names a file outside the bundle; a bundle only reads "
                                            f"files it holds")
        if "model" in entry:
            if not isinstance(entry["model"], str):
                bad(f"{key}.model", "not a string")
            check_sha(entry.get("sha256"), f"{key}.sha256")
        files = entry.get("files", {})
        if not isinstance(files, dict):
            bad(f"{key}.files", f"expected an object, got {type(files).__name__}")
        for pkey, meta in files.items():
            if not isinstance(meta, dict) or not isinstance(meta.get("file"), str):
                bad(f"{key}.files.{pkey}", "expected an object with 'file' and 'sha256'")
            check_sha(meta.get("sha256"), f"{key}.files.{pkey}.sha256")


def _looks_like_path(value: str) -> bool:
    return ("/" in value or "\\" in value or value.startswith("~") or value in (".", "..")
            or os.path.isabs(value))


def load_bundle(path: str | Path, *, registry=None, providers=None) -> Bundle:
    return Bundle(path, registry=registry, providers=providers)
