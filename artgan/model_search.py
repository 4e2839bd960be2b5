"""Finding exported ``.onnx`` models by name along a search path (no torch).

``find_model("superres", "x2-psnr")`` looks for ``superres/x2-psnr.onnx`` in, in order: each folder of
``ARTGAN_MODEL_PATH`` (os.pathsep-separated), the user's ``~/.local/share/artgan/models``, and the
``exports/`` folder of the artgan source tree (the reference models we ship). A value that is a path to an
existing file is used as is.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from .errors import ArtganError


def model_search_path() -> list[Path]:
    roots = [Path(p).expanduser() for p in os.environ.get("ARTGAN_MODEL_PATH", "").split(os.pathsep) if p]
    data_home = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    roots.append(data_home / "artgan" / "models")
    roots.append(Path(__file__).resolve().parent.parent / "exports")
    return roots


def user_models_root() -> Path:
    """The user's own model folder on the search path (``$XDG_DATA_HOME/artgan/models``): where
    ``artgan build`` and ``artgan style train`` install unless told ``--to``."""
    return next(p for p in model_search_path() if p.name == "models" and p.parent.name == "artgan")


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


# -- installing a model ----------------------------------------------------------------------------

def check_installable(kind: str, name: str, root: str | Path, *, force: bool = False) -> Path:
    """Where model ``name`` of ``kind`` installs under ``root`` (``root/kind/name.onnx``); an
    installed model of that name is replaced only with ``force``."""
    target = Path(root) / kind / f"{name}.onnx"
    if target.exists() and not force:
        raise ArtganError(f"{kind} model {name!r} is already installed ({target}); add --force to replace it, or "
                          f"choose another name")
    return target


@contextlib.contextmanager
def installing(kind: str, name: str, root: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Install model ``name`` of ``kind`` under ``root`` with all its files, together or not at all.

    Yields an empty staging folder (beside the installed models) where the caller writes
    ``name.onnx`` and its companions (``name.card.json``, ``name.card.md``, a reference, a contact
    sheet ...). When the block ends without an error they are renamed into ``root/kind``, the
    ``.onnx`` last (an old one, replaced with ``force``, goes first), with Ctrl-C held off: the
    model is found by :func:`find_model` only once all its files are there. On an error nothing
    is installed and a model already installed under the name is left as it was."""
    import glob
    import shutil
    import tempfile

    from .errors import Interrupted
    from .files import remove_stale_temporaries, rename_together

    target = check_installable(kind, name, root, force=force)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder, pattern=f".{glob.escape(name)}.install-*.tmp")  # a killed install's
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.install-", suffix=".tmp", dir=folder))
    try:
        yield staging
        check_installable(kind, name, root, force=force)  # installed by someone else meanwhile
        model = staging / target.name
        if not model.is_file():
            raise ArtganError(f"installing {kind} model {name!r}: {target.name} was not made; nothing installed")
        companions = [p for p in sorted(staging.iterdir()) if p != model and p.is_file()]
        umask = os.umask(0)
        os.umask(umask)
        for p in [*companions, model]:  # files as a plain open() makes them, whatever made them
            os.chmod(p, 0o666 & ~umask)
        replaced = [(target, staging / ".replaced.onnx")] if target.exists() else []  # deleted with staging
        try:
            rename_together(replaced + [(p, folder / p.name) for p in companions] + [(model, target)])
        except Interrupted:
            raise Interrupted(f"interrupted after installing {kind} model {name!r} ({target}): it is complete, "
                              f"with all its files") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
