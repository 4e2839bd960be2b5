"""Pipeline files: YAML loading with locations, ``--set`` overrides, and schema checks.

Every mistake is reported as ``FILE:LINE: KEY: what was expected``, before anything runs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError

Path_ = tuple  # a key path: ("steps", 0, "train", "steps")


class Located:
    """Plain YAML data plus the line of every key path, for error messages."""

    def __init__(self, data: Any, lines: dict[tuple, int], file: str):
        self.data, self.lines, self.file = data, lines, file

    def line(self, path: tuple) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def _construct(node: yaml.Node, path: tuple, lines: dict[tuple, int], file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node)) if not isinstance(key_node, yaml.ScalarNode) else key_node.value
            if key in out:
                raise ConfigError("duplicate key", file=file, key=_dotted(path + (key,)),
                                  line=key_node.start_mark.line + 1)
            out[key] = _construct(value_node, path + (key,), lines, file)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, path + (i,), lines, file) for i, v in enumerate(node.value)]
    # scalars: let the safe loader's resolver type them (ints, floats, bools, null)
    return yaml.safe_load(yaml.serialize(node))


def load_yaml(path: str | Path) -> Located:
    """Read a YAML file into plain data with a line for each key path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    return loads_yaml(text, str(path))


def loads_yaml(text: str, file: str = "<string>") -> Located:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", file=file,
                          line=mark.line + 1 if mark else None) from None
    lines: dict[tuple, int] = {}
    data = {} if node is None else _construct(node, (), lines, file)
    return Located(data, lines, file)


def _dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


# -- overrides ----------------------------------------------------------------------------------

def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.steps=200"`` -> (["train", "steps"], 200). Values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.steps=200")
    key, value = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return parts, parsed


# -- schema checks --------------------------------------------------------------------------------

def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None)) + (
            " or null" if type(None) in get_args(tp) else "")
    if origin in (list, typing.List):
        return "a list"
    if origin in (dict, typing.Dict):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            dict: "a mapping", list: "a list", Any: "any value"}.get(tp, getattr(tp, "__name__", str(tp)))


def _check_type(value: Any, tp: Any) -> tuple[bool, Any]:
    """Return (ok, coerced value). ints are accepted where floats are expected."""
    if tp is Any:
        return True, value
    origin = get_origin(tp)
    if origin is Literal:
        return value in get_args(tp), value
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            ok, v = _check_type(value, arg)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if origin in (list, typing.List):
        return isinstance(value, list), value
    if origin in (dict, typing.Dict):
        return isinstance(value, dict), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    return isinstance(value, tp), value


def build(schema: type, data: Any, doc: Located, path: tuple) -> Any:
    """Check ``data`` against a dataclass ``schema`` and build it; errors name file, key, line."""
    where = dict(file=doc.file, line=doc.line(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping, got {type(data).__name__}", key=_dotted(path) or None, **where)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = get_type_hints(schema)
    unknown = [k for k in data if k not in fields]
    if unknown:
        import difflib
        k = unknown[0]
        close = difflib.get_close_matches(str(k), list(fields), n=1)
        raise ConfigError(f"unknown key{' (did you mean ' + repr(close[0]) + '?)' if close else ''}; "
                          f"expected one of: {', '.join(fields)}",
                          key=_dotted(path + (k,)), file=doc.file, line=doc.line(path + (k,)))
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                raise ConfigError(f"missing required key {name!r} ({_type_name(hints[name])})",
                                  key=_dotted(path) or None, **where)
            continue
        ok, value = _check_type(data[name], hints[name])
        if not ok:
            raise ConfigError(f"expected {_type_name(hints[name])}, got {data[name]!r}",
                              key=_dotted(path + (name,)), file=doc.file, line=doc.line(path + (name,)))
        kwargs[name] = value
    return schema(**kwargs)


def named_mapping(value: Any, doc: Located, path: tuple, what: str) -> tuple[str, dict[str, Any]]:
    """A plugin reference: ``"dcgan"`` or ``{name: dcgan, ...params}`` -> ("dcgan", params)."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        params = {k: v for k, v in value.items() if k != "name"}
        return value["name"], params
    raise ConfigError(f"expected a {what} name or a mapping with 'name:' and its parameters, got {value!r}",
                      key=_dotted(path), file=doc.file, line=doc.line(path))
