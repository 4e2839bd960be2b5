"""Finding exported ``.onnx`` models by name along a search path (no torch).

``find_model("superres", "x2-psnr")`` looks for ``superres/x2-psnr.onnx`` in, in order: each folder of
``ARTGAN_MODEL_PATH`` (os.pathsep-separated), the user's ``~/.local/share/artgan/models``, and the
``exports/`` folder of the artgan source tree (the reference models we ship). A value that is a path to an
existing file is used as is.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ArtganError


def model_search_path() -> list[Path]:
    roots = [Path(p).expanduser() for p in os.environ.get("ARTGAN_MODEL_PATH", "").split(os.pathsep) if p]
    data_home = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    roots.append(data_home / "artgan" / "models")
    roots.append(Path(__file__).resolve().parent.parent / "exports")
    return roots


def find_model(kind: str, name: str) -> Path:
    """The ``.onnx`` file for model ``name`` of ``kind`` (a step name), or a clear error listing
    the models that do exist."""
    as_path = Path(name).expanduser()
    if as_path.suffix == ".onnx" or os.sep in name:
        if as_path.is_file():
            return as_path
        raise ArtganError(f"{kind}: model file {name} not found")
    for root in model_search_path():
        candidate = root / kind / f"{name}.onnx"
        if candidate.is_file():
            return candidate
    known = list_models(kind)
    raise ArtganError(f"{kind}: no model named {name!r}; available: {', '.join(known) or 'none'} "
                      f"(searched {', '.join(str(r / kind) for r in model_search_path())})")


def list_models(kind: str) -> list[str]:
    names: list[str] = []
    for root in model_search_path():
        for p in sorted((root / kind).glob("*.onnx")):
            if p.stem not in names:
                names.append(p.stem)
    return names
