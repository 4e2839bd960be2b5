"""Pipeline files: YAML loading with locations, ``--set`` overrides, and schema checks.

Every mistake is reported as ``FILE:LINE: KEY: what was expected``, before anything runs.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import reprlib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError

Path_ = tuple  # a key path: ("stages", 0, "train", "iterations")


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


#: The most values (mappings, lists and scalars, counting each alias where it is used) a pipeline
#: file may expand to. Real pipelines hold a few hundred; a 400-byte "billion laughs" file of nested
#: aliases expands to 9**9 and would hang validation, so it is refused at this count instead.
MAX_YAML_VALUES = 100_000
#: The largest pipeline file read at all (real ones are a few kilobytes).
MAX_YAML_BYTES = 1_000_000


class _Budget:
    """Counts the values built from one document; refuses alias bombs and alias cycles."""

    def __init__(self, file: str, limit: int = MAX_YAML_VALUES):
        self.file, self.left, self.limit = file, limit, limit
        self.active: set[int] = set()  # ids of the collection nodes being built: a cycle revisits one

    def spend(self, node: yaml.Node) -> None:
        self.left -= 1
        if self.left < 0:
            raise ConfigError(f"the document holds or expands to more than {self.limit} values (a pipeline holds "
                              f"a few hundred; aliases of aliases, an alias bomb?); write the values out instead "
                              f"of nesting '*' aliases",
                              file=self.file, line=node.start_mark.line + 1)


def _construct(node: yaml.Node, path: tuple, lines: dict[tuple, int], file: str,
               budget: _Budget | None = None) -> Any:
    budget = budget or _Budget(file)
    budget.spend(node)
    lines[path] = node.start_mark.line + 1
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if id(node) in budget.active:
            raise ConfigError("an alias refers to the list or mapping that contains it (a cycle); "
                              "a pipeline must be a tree", file=file, key=_dotted(path) or None,
                              line=node.start_mark.line + 1)
        budget.active.add(id(node))
        try:
            return _construct_collection(node, path, lines, file, budget)
        finally:
            budget.active.discard(id(node))
    # scalars: the composer has resolved their tags (int, float, bool, null); the safe
    # constructor turns them into values (a fresh one each time: it caches by node)
    return yaml.constructor.SafeConstructor().construct_object(node)


def _construct_collection(node: yaml.Node, path: tuple, lines: dict[tuple, int], file: str,
                          budget: _Budget) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, path + (i,), lines, file, budget) for i, v in enumerate(node.value)]
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key = key_node.value
        else:  # a list or mapping as a key: no pipeline key is one, so say so rather than build it
            raise ConfigError("a key must be a plain name, not a list or mapping", file=file,
                              key=_dotted(path) or None, line=key_node.start_mark.line + 1)
        if key in out:
            raise ConfigError("duplicate key", file=file, key=_dotted(path + (key,)),
                              line=key_node.start_mark.line + 1)
        out[key] = _construct(value_node, path + (key,), lines, file, budget)
        lines[path + (key,)] = key_node.start_mark.line + 1
    return out


def load_yaml(path: str | Path) -> Located:
    """Read a YAML file into plain data with a line for each key path."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ConfigError(f"{path.stat().st_size} bytes is too big for a pipeline file (the limit is "
                              f"{MAX_YAML_BYTES}); is this the right file?", file=str(path))
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start}); save the pipeline as UTF-8 YAML", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    return loads_yaml(text, str(path))


def loads_yaml(text: str, file: str = "<string>") -> Located:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        lines: dict[tuple, int] = {}
        data = {} if node is None else _construct(node, (), lines, file)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", file=file,
                          line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise ConfigError("lists or mappings are nested too deeply to read; a pipeline is a few levels deep",
                          file=file) from None
    return Located(data, lines, file)


def _dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


# -- overrides ----------------------------------------------------------------------------------

def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.iterations=200"`` -> (["train", "iterations"], 200). Values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.iterations=200")
    key, value = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {text!r}: empty key")
    return parts, parse_value(value, f"--set {key.strip()}")


def parse_value(text: str, where: str) -> Any:
    """A command-line value read as YAML (``200`` an int, ``0.7`` a float, ``[1, 2]`` a list),
    with the same caps as pipeline files (no alias bombs); text that is not YAML stays text."""
    if not text.strip():
        return ""
    try:
        return loads_yaml(text, where).data
    except ConfigError as exc:
        if "invalid YAML" in exc.detail:
            return text
        raise ConfigError(exc.detail, file=where) from None  # one line of text: no line number


def shown(value: Any) -> str:
    """A value for an error message: its repr, cut short (a list of a million items, or one built
    from shared references, must not make the message itself huge)."""
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxstring, r.maxother = 3, 8, 8, 8, 80, 80
    return r.repr(value)


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


#: Bounds on schema values, by schema class name and field: (lowest allowed, strictly above it?,
#: what the value means). A bad value is one located line before anything runs, not a traceback
#: (or a silent no-op) an hour into training. None always passes (it means "the default").
FIELD_BOUNDS: dict[str, dict[str, tuple[float, bool, str]]] = {
    "TrainOptions": {
        "iterations": (1, False, "training iterations"),
        "batch_size": (1, False, "images per batch"),
        "log_every": (1, False, "iterations between log lines"),
        "checkpoint_every": (1, False, "iterations between checkpoints"),
        "num_workers": (0, False, "data loader processes; 0: load in this process"),
        "sample_count": (1, False, "images in each sample grid"),
        "eval_every": (0, False, "iterations between evaluations; 0: never"),
        "eval_samples": (1, False, "images per evaluation"),
        "collapse_ratio": (0, False, "0: off"),
        "seconds": (0, False, "a time budget in seconds; 0: none"),
    },
    "GenerateStage": {
        "n": (1, False, "images to generate"),
        "seed": (0, False, "the latents' seed"),
        "batch_size": (1, False, "images per batch"),
        "truncation": (0, True, "the latent truncation"),
    },
    "ExportStage": {
        "opset": (7, False, "the ONNX opset"),
        "tolerance": (0, False, "the largest allowed difference"),
    },
}


#: The most a data loader may start: each worker is a process with its own copy of the dataset,
#: so a typo (1000000) must not try to start that many. Far above what helps on any machine.
MAX_NUM_WORKERS = 64

#: Upper bounds on schema values, by schema class name and field: (highest allowed, why).
FIELD_MAXIMA: dict[str, dict[str, tuple[float, str]]] = {
    "TrainOptions": {
        "num_workers": (MAX_NUM_WORKERS, "each is a process; a few per CPU core are plenty"),
    },
}


#: The largest seed: torch.manual_seed takes 64-bit seeds; a larger one failed as "a bug".
MAX_SEED = 2**63 - 1
#: The newest opset the exporter writes (artgan.export.DEFAULT_OPSET is this).
MAX_OPSET = 20
#: Upper bounds, by field name in any schema: (highest allowed, what it is).
FIELD_MAX: dict[str, tuple[int, str]] = {"seed": (MAX_SEED, "2**63 - 1"),
                                         "opset": (MAX_OPSET, "the newest opset the exporter writes")}
#: String fields with a fixed set of values, by schema class name and field: a pattern they match
#: and the values to name in the message (checked in --dry-run, not after the run folder is made).
FIELD_PATTERNS: dict[str, dict[str, tuple[str, str]]] = {
    "TrainOptions": {"device": (r"auto|cpu|cuda(:\d+)?|mps", "auto, cpu, cuda, cuda:N or mps"),
                     "precision": (r"auto|fp32|bf16", "auto, fp32 or bf16")},
}


def _check_bounds(schema: type, name: str, value: Any) -> str:
    """'' or what is wrong with ``value`` for field ``name`` of ``schema``."""
    import re

    pattern = FIELD_PATTERNS.get(schema.__name__, {}).get(name)
    if pattern is not None and isinstance(value, str) and not re.fullmatch(pattern[0], value):
        return f"expected {pattern[1]}, got {shown(value)}"
    rule = FIELD_BOUNDS.get(schema.__name__, {}).get(name)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    if value != value or value in (float("inf"), float("-inf")):
        return f"expected a finite number{f' ({rule[2]})' if rule else ''}, got {value!r}"
    if name in FIELD_MAX and value > FIELD_MAX[name][0]:
        high, meaning = FIELD_MAX[name]
        return f"must be at most {high} ({meaning}), got {shown(value)}"
    if rule is None:
        return ""
    top = FIELD_MAXIMA.get(schema.__name__, {}).get(name)
    if top is not None and value > top[0]:
        return f"must be <= {top[0]:g} ({top[1]}), got {value!r}"
    low, strict, meaning = rule
    if value < low or (strict and value == low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        return f"must be {bound} ({meaning}), got {value!r}"
    return ""


def finite_params_error(params: Any, prefix: str = "") -> tuple[str, str]:
    """(key, message) for the first infinite or NaN number among a plugin's parameters (``lr:
    .inf`` trained into NaN after the run folder was made), or ("", "")."""
    items = params.items() if isinstance(params, dict) else enumerate(params) if isinstance(params, list) else ()
    for key, value in items:
        where = f"{prefix}.{key}" if prefix and not isinstance(key, int) else f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, float) and not math.isfinite(value):
            return where, f"expected a finite number, got {value!r}"
        if isinstance(value, (dict, list)):
            found = finite_params_error(value, where)
            if found[0]:
                return found
    return "", ""


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
            raise ConfigError(f"expected {_type_name(hints[name])}, got {shown(data[name])}",
                              key=_dotted(path + (name,)), file=doc.file, line=doc.line(path + (name,)))
        bad = _check_bounds(schema, name, value)
        if bad:
            raise ConfigError(bad, key=_dotted(path + (name,)), file=doc.file, line=doc.line(path + (name,)))
        kwargs[name] = value
    return schema(**kwargs)


def named_mapping(value: Any, doc: Located, path: tuple, what: str) -> tuple[str, dict[str, Any]]:
    """A plugin reference: ``"dcgan"`` or ``{name: dcgan, ...params}`` -> ("dcgan", params)."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        params = {k: v for k, v in value.items() if k != "name"}
        return value["name"], params
    raise ConfigError(f"expected a {what} name or a mapping with 'name:' and its parameters, got {shown(value)}",
                      key=_dotted(path), file=doc.file, line=doc.line(path))


# -- plugin factories' parameters ---------------------------------------------------------------

_SIMPLE_TYPES = (int, float, str, bool, type(None), list, dict, Any)


def _simple(tp: Any) -> bool:
    """True for annotations made of plain YAML types only: those can be checked exactly."""
    origin = get_origin(tp)
    if origin is Literal:
        return True
    if origin in (Union, types.UnionType):
        return all(_simple(a) for a in get_args(tp))
    if origin in (list, dict, typing.List, typing.Dict):
        return True
    return tp in _SIMPLE_TYPES


def param_type_error(factory: Any, params: dict[str, Any]) -> tuple[str, str]:
    """Check ``params`` against the annotations of ``factory``'s signature (``latent_dim: int``
    given 16.5); returns (parameter, message) for the first mismatch or ("", ""). Annotations
    that are not plain YAML types (a class, a protocol) are left to the factory."""
    target = getattr(factory, "resolve", None)
    target = target() if callable(target) else factory
    try:
        sig = inspect.signature(target, eval_str=True)
    except Exception:  # unresolvable string annotations, builtins: nothing to check here
        return "", ""
    for name, value in params.items():
        prm = sig.parameters.get(name)
        if prm is None or prm.annotation is inspect.Parameter.empty or not _simple(prm.annotation):
            continue
        ok, _ = _check_type(value, prm.annotation)
        if not ok:
            return name, f"expected {_type_name(prm.annotation)}, got {shown(value)}"
    return "", ""


def unknown_param_hint(factory: Any, params: dict[str, Any]) -> str:
    """`` (did you mean 'latent_dim'?)`` for the first parameter the factory does not take."""
    import difflib

    try:
        accepted = list(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return ""
    for name in params:
        if name not in accepted:
            close = difflib.get_close_matches(str(name), accepted, n=1)
            if close:
                return f" (did you mean {close[0]!r} for {name!r}?)"
    return ""
