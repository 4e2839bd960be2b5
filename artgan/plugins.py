"""The plugin manager and the registry of everything plugins provide.

Plugins are found through the ``artgan`` entry-point group and loaded one at a time: a plugin
that fails to import, names a hook that does not exist, or raises while registering is recorded
as broken (with its error) and the others carry on. ``ARTGAN_STRICT_PLUGINS=1`` makes that fatal.

Environment controls:
  ``ARTGAN_DISABLE_PLUGINS=a,b``  do not load these plugins (entry-point or distribution names)
  ``ARTGAN_LOAD_PLUGINS=a,b``     load only these plugins
  ``ARTGAN_STRICT_PLUGINS=1``     a broken plugin is an error, not a warning
"""

from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import ArtganError, UnknownNameError

ENTRY_POINT_GROUP = "artgan"

#: kind of thing -> the registration hook that provides it
REGISTRATION_HOOKS = {
    "dataset": "artgan_register_datasets",
    "architecture": "artgan_register_architectures",
    "loss": "artgan_register_losses",
    "step": "artgan_register_steps",
}


class PluginWarning(UserWarning):
    """A plugin could not be loaded; artgan carries on without it."""


@dataclass
class Registration:
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str


@dataclass
class PluginRecord:
    """What ``artgan plugins`` shows about one plugin."""

    name: str
    module: str = ""
    distribution: str = ""
    version: str = ""
    source: str = ""  # file the plugin was loaded from
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str = ""  # non-empty when the plugin is broken
    disabled: bool = False

    @property
    def status(self) -> str:
        return "disabled" if self.disabled else ("broken" if self.error else "ok")


def _env_list(var: str) -> set[str]:
    return {x.strip() for x in os.environ.get(var, "").split(",") if x.strip()}


class Registry:
    """kind -> name -> :class:`Registration`, plus a record of every plugin seen."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Registration]] = {k: {} for k in REGISTRATION_HOOKS}
        self.plugins: dict[str, PluginRecord] = {}

    # -- filling ---------------------------------------------------------------------------
    def add(self, kind: str, name: str, factory: Callable[..., Any], plugin: str) -> None:
        if not isinstance(name, str) or not name:
            raise ArtganError(f"plugin {plugin!r} registered a {kind} with an invalid name {name!r}")
        if not callable(factory):
            raise ArtganError(f"plugin {plugin!r} registered {kind} {name!r} with a non-callable factory")
        existing = self.entries[kind].get(name)
        if existing is not None:
            raise ArtganError(
                f"{kind} {name!r} is registered twice: by plugin {existing.plugin!r} and by plugin "
                f"{plugin!r}; disable one with ARTGAN_DISABLE_PLUGINS={plugin}"
            )
        self.entries[kind][name] = Registration(kind, name, factory, plugin)
        self.plugins[plugin].registered.setdefault(kind, []).append(name)

    # -- reading ---------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Registration:
        if kind not in self.entries:
            raise ArtganError(f"unknown kind {kind!r}; kinds: {', '.join(self.entries)}")
        try:
            return self.entries[kind][name]
        except KeyError:
            broken = [p for p in self.plugins.values() if p.error]
            hint = ""
            if broken:
                hint = "Broken plugins that may have provided it: " + "; ".join(
                    f"{p.name} ({p.error})" for p in broken)
            raise UnknownNameError(kind, name, self.names(kind), hint=hint) from None

    def create(self, kind: str, name: str, /, **params: Any) -> Any:
        """Build the named thing with ``params``. The factory's signature is its parameter
        schema: an unknown or missing parameter is reported with the accepted ones."""
        reg = self.get(kind, name)
        try:
            sig = inspect.signature(reg.factory)
        except (TypeError, ValueError):  # builtins and C callables: let the call decide
            sig = None
        if sig is not None:
            try:
                sig.bind(**params)
            except TypeError as exc:
                accepted = [p for p in sig.parameters if sig.parameters[p].kind not in
                            (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]
                raise ArtganError(f"{kind} {name!r} (plugin {reg.plugin!r}): {exc}; "
                                  f"accepted parameters: {', '.join(accepted) or 'none'}") from None
        return reg.factory(**params)

    @property
    def broken(self) -> list[PluginRecord]:
        return [p for p in self.plugins.values() if p.error]


def _load_entry_points(pm: pluggy.PluginManager, registry: Registry, strict: bool) -> None:
    disabled, allowed = _env_list("ARTGAN_DISABLE_PLUGINS"), _env_list("ARTGAN_LOAD_PLUGINS")
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        rec = PluginRecord(name=ep.name, module=ep.value,
                           distribution=dist.name if dist else "",
                           version=dist.version if dist else "")
        if ep.name in registry.plugins:  # the same distribution seen twice on sys.path
            continue
        registry.plugins[ep.name] = rec
        names = {ep.name, rec.distribution}
        if names & disabled or (allowed and not names & allowed):
            rec.disabled = True
            pm.set_blocked(ep.name)
            continue
        try:
            plugin = ep.load()
            rec.source = getattr(plugin, "__file__", "") or ""
            _register_checked(pm, plugin, ep.name)
        except Exception as exc:  # a broken plugin must not take the CLI down
            _mark_broken(rec, exc, strict)


def _register_checked(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """Register ``plugin`` and refuse hook implementations that match no hook, naming them."""
    unknown = [attr for attr in dir(plugin)
               if pm.parse_hookimpl_opts(plugin, attr) is not None
               and not hasattr(hookspecs, attr)]
    if unknown:
        raise ArtganError(f"implements unknown hook(s) {', '.join(unknown)}; "
                          f"known hooks: {', '.join(h for h in dir(hookspecs) if h.startswith('artgan_'))}")
    pm.register(plugin, name=name)  # pluggy validates argument names against the specs


def _mark_broken(rec: PluginRecord, exc: BaseException, strict: bool) -> None:
    rec.error = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    if strict:
        raise ArtganError(f"plugin {rec.name!r} ({rec.distribution or rec.module}) is broken: {rec.error}") from exc
    warnings.warn(f"artgan: plugin {rec.name!r} ({rec.distribution or rec.module}) failed to load "
                  f"and is skipped: {rec.error}", PluginWarning, stacklevel=3)


def _collect(pm: pluggy.PluginManager, registry: Registry, strict: bool) -> None:
    """Call every registration hook, one implementation at a time, so each name is attributed
    to its plugin and one plugin raising does not lose the others' registrations."""
    for kind, hook_name in REGISTRATION_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            rec = registry.plugins.setdefault(impl.plugin_name, PluginRecord(name=impl.plugin_name))
            if rec.error:
                continue

            def register(name: str, factory: Callable[..., Any], _kind=kind, _p=impl.plugin_name):
                registry.add(_kind, name, factory, _p)

            try:
                impl.function(**{a: register for a in impl.argnames})
            except Exception as exc:
                _mark_broken(rec, exc, strict)
                # keep what it registered out: a half-registered plugin is worse than none
                for k, names in rec.registered.items():
                    for n in names:
                        registry.entries[k].pop(n, None)
                rec.registered.clear()
                pm.unregister(name=impl.plugin_name)


def make_plugin_manager(extra_plugins: tuple[Any, ...] = (), *,
                        load_entry_points: bool = True) -> tuple[pluggy.PluginManager, Registry]:
    """Build a fresh plugin manager and registry. ``extra_plugins`` (objects or modules) are
    registered beside the entry points; tests use this to add throwaway plugins."""
    strict = os.environ.get("ARTGAN_STRICT_PLUGINS", "") not in ("", "0")
    pm = pluggy.PluginManager("artgan")
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    if load_entry_points:
        _load_entry_points(pm, registry, strict)
    for plugin in extra_plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        rec = registry.plugins.setdefault(name, PluginRecord(name=name, module=name,
                                                                source=getattr(plugin, "__file__", "") or ""))
        try:
            _register_checked(pm, plugin, name)
        except Exception as exc:
            _mark_broken(rec, exc, strict)
    _collect(pm, registry, strict)
    for rec in registry.plugins.values():
        plugin = pm.get_plugin(rec.name)
        if plugin is not None:
            rec.hooks = sorted(c.name for c in (pm.get_hookcallers(plugin) or []))
    return pm, registry


_STATE: tuple[pluggy.PluginManager, Registry] | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loaded on first use (never at import)."""
    return _state()[0]


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    return _state()[1]


def _state() -> tuple[pluggy.PluginManager, Registry]:
    global _STATE
    if _STATE is None:
        _STATE = make_plugin_manager()
    return _STATE


def reset() -> None:
    """Forget the loaded plugins (tests, and after installing a plugin in-process)."""
    global _STATE
    _STATE = None


class lazy:
    """A factory named by ``"module:attr"``, imported on first use.

    Register with it to keep start-up fast: ``register("digits", lazy("pkg.datasets:Digits"))``
    imports nothing until a pipeline uses ``digits``. Its signature is the target's, so parameter
    checks still work.
    """

    def __init__(self, target: str):
        if ":" not in target:
            raise ValueError(f"lazy({target!r}): expected 'module:attribute'")
        self.target = target
        self._obj: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        if self._obj is None:
            import importlib
            module, _, attr = self.target.partition(":")
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._obj = obj
        return self._obj

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.resolve())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.target!r})"
