"""``artgan web``: a static site that runs exported models in the browser with onnxruntime-web.

The site is plain files (index.html, app.js, isolate.js, models.json, the models, onnxruntime-web's
files) that any static file server serves; the page loads nothing from elsewhere. Each model is checked
against onnxruntime-web's op support first (:mod:`.ops`). The page configures itself from each
model's ``artgan.*`` metadata, as :mod:`artgan.runtime` does. Never imports torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

from ..errors import ArtganError
from .int8 import int8_for_web, quantizable
from .ops import ORT_WEB_VERSION, check_model
from .ortweb import WASM_FILES, WEBGPU_FILES, runtime_files

PAGE_DIR = Path(__file__).parent / "page"
PAGE_FILES = ("index.html", "app.js", "isolate.js")
#: Written into every site: a folder holding it is one ``artgan web`` may replace.
MARKER = ".artgan-site"


def describe_model(path: Path) -> dict[str, Any]:
    """Check one model for the web and return its entry in models.json (name, file, metadata,
    inputs and outputs as the graph declares them, what the WebGPU backend leaves to WASM)."""
    import onnx

    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise ArtganError(f"{path}: model file not found") from None
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArtganError(f"{path}: not a readable ONNX model ({first})") from None
    meta = {}
    for prop in model.metadata_props:
        if prop.key.startswith("artgan."):
            try:
                meta[prop.key[7:]] = json.loads(prop.value)
            except json.JSONDecodeError:
                meta[prop.key[7:]] = prop.value
    if meta.get("task") not in ("generate", "image-to-image"):
        raise ArtganError(f"{path}: no artgan.task metadata (generate or image-to-image), so not an artgan "
                          f"model; export it with `artgan export --target web`")
    report = check_model(model, str(path))
    init = {i.name for i in model.graph.initializer}

    def tensors(values):
        return [{"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
                 "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]}
                for v in values if v.name not in init]

    return {"name": path.stem, "file": f"models/{path.stem}.onnx", "bytes": path.stat().st_size,
            "metadata": meta, "inputs": tensors(model.graph.input), "outputs": tensors(model.graph.output),
            **report}


def build_site(models: Sequence[str | Path], out: str | Path, *, webgpu: bool = True,
               ort_tarball: str | Path | None = None, int8_photos: str | Path | None = None) -> dict[str, Any]:
    """Write the site for ``models`` into ``out``; return what models.json holds.

    With ``int8_photos`` (a folder of photos), each image-to-image model with one input goes into
    the site quantised to int8 where it keeps its quality (:mod:`.int8`); each entry's ``int8``
    line says what happened.

    Everything is checked before anything is written, and the site is assembled beside ``out``
    and moved into place at the end. ``out`` may be missing, empty, or a site built before
    (replaced); any other folder is refused, never clobbered.
    """
    out = Path(out)
    _check_out(out)
    paths = [Path(m) for m in models]
    if not paths:
        raise ArtganError("artgan web: give at least one MODEL.onnx")
    stems = [p.stem for p in paths]
    odd = next((p for p in paths if not safe_name(p.stem)), None)
    if odd:
        raise ArtganError(f"{odd}: name the file with letters, digits, '.', '-' or '_' only (it becomes a URL)")
    dup = next((s for s in stems if stems.count(s) > 1), None)
    if dup:
        raise ArtganError(f"artgan web: two models named {dup!r}; rename one file (the page lists models by name)")
    entries = [describe_model(p) for p in paths]
    ort_dir = runtime_files(ort_tarball)

    site = {"artgan_site": 1, "onnxruntime_web": ORT_WEB_VERSION, "webgpu": webgpu, "models": entries}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for name in PAGE_FILES:
            shutil.copyfile(PAGE_DIR / name, tmp / name)
        (tmp / "models").mkdir()
        for i, (p, e) in enumerate(zip(paths, entries)):
            if int8_photos is None:
                shutil.copyfile(p, tmp / e["file"])
            elif not quantizable(e):
                shutil.copyfile(p, tmp / e["file"])
                e["int8"] = f"{p.stem}: fp32: only an image-to-image model with one input is calibrated on photos"
            else:
                result = int8_for_web(p, tmp / e["file"], e, Path(int8_photos))
                entries[i] = {**describe_model(tmp / e["file"]), "file": e["file"], "int8": result["line"]}
        (tmp / "ort").mkdir()
        for name in (*WASM_FILES, *(WEBGPU_FILES if webgpu else ()), "LICENSE.txt"):
            _link_or_copy(ort_dir / name, tmp / "ort" / name)
        (tmp / "models.json").write_text(json.dumps(site, indent=1))
        (tmp / MARKER).write_text("built by `artgan web`; the folder is replaced when the site is rebuilt\n")
        os.chmod(tmp, 0o755)
        _swap_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return site


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ArtganError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ArtganError(f"{out}: folder exists and is not a site `artgan web` built (no {MARKER}); "
                          f"choose another --out (nothing in it was touched)")


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where the cache shares the file system (the WASM files are 15-29 MB), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def safe_name(stem: str) -> bool:
    return bool(re.fullmatch(r"[\w.-]+", stem))
