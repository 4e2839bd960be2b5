"""``artgan plugin new NAME --kind KIND``: write a complete, installable plugin package.

The files come from ``artgan/templates/`` (``*.tmpl``, with ``{{placeholders}}``): a pyproject
with the ``artgan`` entry point, the plugin module that registers one thing lazily, the
implementation, a README and a test that runs :mod:`artgan.testing`'s contract checks. A
``task`` is a whole task plugin instead: the five modules (a working denoiser to start from), the
task declaration, a one-minute pipeline, and tests that train, export and evaluate it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import ArtganError
from .hookspecs import HOOK_API_VERSION

TEMPLATES = Path(__file__).parent / "templates"
KINDS = ("dataset", "architecture", "loss", "step", "task")
HOOKS = {"dataset": "artgan_register_datasets", "architecture": "artgan_register_architectures",
         "loss": "artgan_register_losses", "step": "artgan_register_steps", "task": "artgan_register_tasks"}
# what the implementation module defines, per kind: the registered factory
FACTORIES = {"dataset": "{cls}Dataset", "architecture": "{cls}Recipe", "loss": "{cls}Loss", "step": "{cls}Step",
             "task": "{snake}_task"}
#: a task is a whole plugin: the five modules every task plugin has, and a pipeline that trains it
TASK_MODULES = ("__init__", "model", "data", "steps", "evaluate")
NAME_RE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


@dataclass
class NewPlugin:
    root: Path  # the package folder
    name: str  # the registered name and entry-point name
    distribution: str  # artgan-NAME
    module: str  # artgan_NAME
    kind: str


def names_for(name: str) -> dict[str, str]:
    """``soft-glow`` -> name, distribution ``artgan-soft-glow``, module ``artgan_soft_glow``,
    class prefix ``SoftGlow``."""
    if name.startswith("artgan-"):
        name = name[len("artgan-"):]
    if not NAME_RE.fullmatch(name):
        raise ArtganError(f"plugin name {name!r}: use lower-case letters, digits and single hyphens, "
                          f"starting with a letter (e.g. posterize, soft-glow)")
    return {"name": name, "dist": f"artgan-{name}", "module": "artgan_" + name.replace("-", "_"),
            "snake": name.replace("-", "_"), "cls": "".join(part.capitalize() for part in name.split("-"))}


def render(text: str, values: dict[str, str]) -> str:
    out = re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)
    leftover = re.findall(r"\{\{\w*\}\}", out)
    if leftover:  # a template bug, not a user mistake
        raise RuntimeError(f"unfilled template placeholders: {leftover}")
    return out


def new_plugin(name: str, kind: str, parent: str | Path = ".") -> NewPlugin:
    """Write the package for ``name`` into ``parent/artgan-NAME``; refuse to overwrite."""
    if kind not in KINDS:
        raise ArtganError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    n = names_for(name)
    root = Path(parent) / n["dist"]
    if root.exists():
        raise ArtganError(f"{root} already exists; choose another name or --out folder")
    major_minor = ".".join(__version__.split(".")[:2])
    values = {
        **n, "kind": kind, "hook": HOOKS[kind], "factory": FACTORIES[kind].format(cls=n["cls"], snake=n["snake"]),
        "hook_api": str(HOOK_API_VERSION),
        "artgan_requirement": f"artgan>={major_minor}" if re.fullmatch(r"\d+\.\d+", major_minor) else "artgan",
    }
    files = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "task/README.md.tmpl" if kind == "task" else "README.md.tmpl",
        ".gitignore": "gitignore.tmpl",
        f"tests/test_{n['module']}.py": f"{kind}/test.py.tmpl",
    }
    if kind == "task":
        files.update({f"{n['module']}/{m}.py": f"task/{m}.py.tmpl" for m in TASK_MODULES})
        files[f"{n['module']}/pipeline.yaml"] = "task/pipeline.yaml.tmpl"
    else:
        files.update({f"{n['module']}/__init__.py": "__init__.py.tmpl", f"{n['module']}/{kind}.py": f"{kind}/{kind}.py.tmpl"})
    written = {rel: render((TEMPLATES / tmpl).read_text(encoding="utf-8"), values) for rel, tmpl in files.items()}
    for rel, text in written.items():  # everything rendered first: no half-written package
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return NewPlugin(root=root, name=n["name"], distribution=n["dist"], module=n["module"], kind=kind)
