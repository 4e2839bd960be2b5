"""Write docs/api.md: the signature and summary of every public name of artgan.

The public names are those docs/plugins.md's "Public API" section lists (a module listed on its
own line is public as a whole: its ``__all__``), the package's own ``__all__`` (``artgan.Steps``
...), the hooks of ``artgan.hookspecs``, and the public methods of every public class. Signatures
come from the code, so the page cannot drift from it: tests/test_api_reference.py fails when this
script would write something else. Run it after changing a public signature or docstring:

    python scripts/api_reference.py
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLUGINS_DOC = ROOT / "docs" / "plugins.md"
API_DOC = ROOT / "docs" / "api.md"

HEADER = """\
# API reference

The signature and summary of every public name of artgan, written from the code by
`scripts/api_reference.py` (`tests/test_api_reference.py` fails when the code and this page
differ). What each is *for*, and what you may import, is in [writing plugins](plugins.md#public-api);
the hooks are explained in its [hook reference](plugins.md#hook-reference), and the Python API for
users in [deploy](deploy.md).

Public: every name below, and the public methods listed under each class. Everything else in
`artgan` may change without notice.
"""


def listed(doc: Path = PLUGINS_DOC) -> dict[str, str]:
    """docs/plugins.md's "Public API" section: dotted name -> its description there, in its order."""
    text = doc.read_text(encoding="utf-8")
    section = re.search(r"^## Public API\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    if not section:
        raise SystemExit("docs/plugins.md has no '## Public API' section")
    return dict(re.findall(r"^- `(artgan(?:\.\w+)+)`:? ?(.*)$", section.group(1), flags=re.M))


def listed_names(doc: Path = PLUGINS_DOC) -> list[str]:
    return list(listed(doc))


def comment_doc(name: str) -> str:
    """The ``#:`` comment lines just above ``NAME =`` in the module's source (a constant's doc)."""
    module_name, attr = name.rsplit(".", 1)
    try:
        lines = inspect.getsource(importlib.import_module(module_name)).splitlines()
    except (ImportError, OSError, TypeError):
        return ""
    for i, line in enumerate(lines):
        if re.match(rf"{re.escape(attr)}\s*(:[^=]*)?=", line):
            doc = []
            for above in reversed(lines[:i]):
                if not above.startswith("#:"):
                    break
                doc.insert(0, above[2:].strip())
            return " ".join(doc)
    return ""


def resolve(name: str) -> Any:
    """The object a dotted name names: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def module_names(module: ModuleType) -> list[str]:
    """A module public as a whole: its ``__all__``, else what it defines without a leading ``_``."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and getattr(v, "__module__", module.__name__) == module.__name__ and not isinstance(v, ModuleType)]
    return [f"{module.__name__}.{n}" for n in names]


def public_names() -> list[str]:
    """Every public dotted name, modules listed whole expanded, without duplicates, in page order."""
    import artgan
    from artgan import hookspecs

    names: list[str] = []
    for name in listed_names():
        obj = resolve(name)
        names += module_names(obj) if isinstance(obj, ModuleType) else [name]
    names += [f"artgan.{n}" for n in artgan.__all__]
    names += ["artgan.hookspecs.HOOK_API_VERSION"]
    names += [f"artgan.hookspecs.{n}" for n in sorted(vars(hookspecs)) if n.startswith("artgan_")]
    return list(dict.fromkeys(names))


def class_members(cls: type) -> list[str]:
    """The public methods and properties a class defines itself (those of an artgan base class are
    listed under that class)."""
    return [attr for attr, value in vars(cls).items()
            if (not attr.startswith("_") or attr == "__call__")
            and (inspect.isfunction(value) or isinstance(value, (property, staticmethod, classmethod)))]


def artgan_bases(cls: type) -> list[str]:
    return [f"{b.__module__}.{b.__qualname__}" for b in cls.__mro__[1:] if b.__module__.startswith("artgan")]


def outside_artgan(obj: Any) -> str:
    """The module of an object defined outside artgan (its signature follows that library's
    version, so the page shows none), else ""."""
    if isinstance(obj, (int, float, str, tuple, list, dict, property, ModuleType)) or obj is None:
        return ""
    owner = obj if inspect.isclass(obj) or inspect.isroutine(obj) else type(obj)
    module = getattr(owner, "__module__", "") or ""
    return "" if module.split(".")[0] == "artgan" else module


# -- rendering -----------------------------------------------------------------------------------

def _annotation(ann: Any) -> str:
    return ann if isinstance(ann, str) else inspect.formatannotation(ann)


def _default(value: Any) -> str:
    text = repr(value)
    return re.sub(r" at 0x[0-9a-f]+", "", text)  # a function's address changes from run to run


def signature(obj: Any, name: str, method: bool = False) -> str:
    """``name(param: annotation = default, ...) -> return``, annotations as written in the code."""
    target = obj.fget if isinstance(obj, property) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return name
    params, last_kind = [], None
    values = list(sig.parameters.values())
    if method and values and values[0].name in ("self", "cls"):
        values = values[1:]
    for p in values:
        if p.kind is p.KEYWORD_ONLY and last_kind not in (p.KEYWORD_ONLY, p.VAR_POSITIONAL):
            params.append("*")
        if last_kind is p.POSITIONAL_ONLY and p.kind is not p.POSITIONAL_ONLY:
            params.append("/")
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {_default(p.default)}" if p.annotation is not p.empty else f"={_default(p.default)}"
        params.append(text)
        last_kind = p.kind
    if last_kind is inspect.Parameter.POSITIONAL_ONLY:
        params.append("/")
    out = f"{name}({', '.join(params)})"
    if sig.return_annotation is not sig.empty:
        out += f" -> {_annotation(sig.return_annotation)}"
    return out


def summary(obj: Any) -> str:
    """The first paragraph of the docstring, reStructuredText roles turned into Markdown code."""
    if isinstance(obj, (int, float, str, tuple, list, dict)) or obj is None:
        return ""
    doc = inspect.getdoc(obj.fget if isinstance(obj, property) else obj) or ""
    if dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
        return ""  # the docstring dataclasses make up: the signature again
    first = doc.split("\n\n")[0].strip()
    first = re.sub(r":\w+:`~?([^`]+)`", lambda m: f"`{m.group(1).split('.')[-1] if '~' in m.group(0) else m.group(1)}`", first)
    first = first.replace("``", "`")
    return " ".join(first.split())


def value_line(name: str, obj: Any) -> str:
    """A constant: ``NAME = value`` (the version: its type only, it depends on the install)."""
    if name == "artgan.__version__":
        return f"{name}: str"
    return f"{name} = {_default(obj)}"


def is_constant(obj: Any) -> bool:
    return not (callable(obj) or isinstance(obj, (property, ModuleType)))


def entry(name: str, obj: Any, level: str = "###") -> list[str]:
    member = level == "####"
    elsewhere = outside_artgan(obj)
    if elsewhere:
        code, text = name, f"From `{elsewhere.split('.')[0]}` (`{type(obj).__name__}`); see that library's documentation."
    else:
        short = name.rsplit(".", 1)[-1] if member else name
        if isinstance(obj, property):
            returns = inspect.signature(obj.fget).return_annotation
            code = f"{short}: {_annotation(returns) if returns is not inspect.Signature.empty else 'Any'}  # a property"
        elif is_constant(obj):
            code = value_line(name, obj)
        else:
            code = signature(obj, short, method=member)
        text = summary(obj) or comment_doc(name) or _markdown(DESCRIPTIONS.get(name, ""))
    lines = [f"{level} `{name}`", "", "```python", code, "```"]
    if text:
        lines += ["", text]
    if inspect.isclass(obj) and artgan_bases(obj):
        lines += ["", "Subclass of " + ", ".join(f"`{b}`" for b in artgan_bases(obj)) + " (its members too)."]
    return lines + [""]


DESCRIPTIONS: dict[str, str] = {}  # docs/plugins.md's words for a name without a docstring


def _markdown(text: str) -> str:
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".") if text else ""


def render() -> str:
    DESCRIPTIONS.clear()
    DESCRIPTIONS.update(listed())
    names = public_names()
    listed_members: dict[str, list[str]] = {}  # GANRecipe.default_loss: listed on its own, shown under its class
    for name in names:
        owner, member = name.rsplit(".", 1)
        if inspect.isclass(resolve(owner)):
            listed_members.setdefault(owner, []).append(member)
    by_module: dict[str, list[str]] = {}  # in the order docs/plugins.md first names each module
    for name in names:
        owner, member = name.rsplit(".", 1)
        if member not in listed_members.get(owner, []):
            by_module.setdefault(owner, []).append(name)
    out = [HEADER, "Modules: " + ", ".join(f"[`{m}`](#{m.replace('.', '')})" for m in by_module) + ".", ""]
    for module, members in by_module.items():
        out += [f"## `{module}`", ""]
        for name in members:
            out += _entries(name, listed_members)
    return "\n".join(out).rstrip() + "\n"


def _entries(name: str, listed_members: dict[str, list[str]]) -> list[str]:
    """A name's entry, and a class's members after it."""
    obj = resolve(name)
    out = entry(name, obj)
    if inspect.isclass(obj) and not outside_artgan(obj):
        members = class_members(obj)
        for member in [*members, *(m for m in listed_members.get(name, []) if m not in members)]:
            raw = inspect.getattr_static(obj, member)
            value = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
            out += entry(f"{name}.{member}", value, "####")
    return out


def documented_names(page: str) -> set[str]:
    """The dotted names that have an entry (a ``###``/``####`` heading) on the page."""
    return set(re.findall(r"^#{3,4} `(artgan(?:\.\w+)+)`$", page, flags=re.M))


def main() -> int:
    text = render()
    API_DOC.write_text(text, encoding="utf-8")
    print(f"wrote {API_DOC.relative_to(ROOT)}: {len(documented_names(text))} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
