"""The plugin manager and the registry of everything plugins provide.

Plugins are found through the ``artgan`` entry-point group and loaded one at a time: a plugin
that fails to import, implements a hook that does not exist, takes arguments a hook does not pass,
or raises while registering is recorded as broken (with its error) and the others carry on.
Using a name that only a broken or disabled plugin could have provided says so. See
``docs/plugins.md`` for the author's side.

Turning plugins off (entry-point or distribution names, comma-separated):
  ``artgan plugins --disable NAME``  remembered in ``<config dir>/plugins.json`` (see :func:`config_dir`)
  ``ARTGAN_DISABLE_PLUGINS=a,b``     for one process or shell, on top of that file
  ``ARTGAN_LOAD_PLUGINS=a,b``        load only these
  ``ARTGAN_STRICT_PLUGINS=1``        a broken plugin or a name conflict is an error, not a warning

A name two plugins register is used by neither (no winner by load order), except when one of
them is artgan's own (:data:`FIRST_PARTY_DISTRIBUTION`): then artgan's is used and the other
plugin's registration of that name is dropped, with one warning line naming both.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import os
import traceback
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import ArtganError, UnknownNameError

ENTRY_POINT_GROUP = "artgan"

#: The distribution whose entry points are artgan's own (first-party) plugins: in a name conflict
#: with any other plugin, theirs is the name kept.
FIRST_PARTY_DISTRIBUTION = "artgan"

#: kind of thing -> the registration hook that provides it
REGISTRATION_HOOKS = {
    "dataset": "artgan_register_datasets",
    "architecture": "artgan_register_architectures",
    "loss": "artgan_register_losses",
    "step": "artgan_register_steps",
    "evaluation": "artgan_register_evaluations",
    "task": "artgan_register_tasks",
}

#: every hook name artgan calls
HOOK_NAMES = tuple(sorted(n for n in dir(hookspecs) if n.startswith("artgan_")))


class PluginWarning(UserWarning):
    """A plugin could not be loaded, or two plugins claim one name; artgan carries on."""


class PluginError(ArtganError):
    """Something wrong with a plugin itself (its hooks, its registrations, its version)."""


class DuplicateNameError(ArtganError):
    """Two plugins registered the same name for one kind."""


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
    error_at: str = ""  # file:line where the error was raised, when known
    disabled: bool = False
    disabled_by: str = ""  # what turned it off: an environment variable or the config file
    conflicts: list[str] = field(default_factory=list)  # names another plugin registered too
    commands: list[str] = field(default_factory=list)  # CLI commands it added ("evaluate style")

    @property
    def status(self) -> str:
        return "disabled" if self.disabled else ("broken" if self.error else "ok")

    @property
    def first_party(self) -> bool:
        """One of artgan's own plugins (an entry point of the ``artgan`` distribution itself)."""
        return self.distribution.lower().replace("_", "-") == FIRST_PARTY_DISTRIBUTION

    @property
    def label(self) -> str:
        """``'name' (distribution)``: how errors name this plugin."""
        origin = self.distribution or self.module
        return f"{self.name!r}" + (f" ({origin})" if origin and origin != self.name else "")


def third_party_dropped(kind: str, name: str, label: str, first_party: str) -> str:
    """The one line saying that a third party's ``kind``/``name`` is ignored for artgan's own."""
    return (f"plugin {label} registered {kind} {name!r}, which artgan's own plugin {first_party!r} provides: "
            f"artgan's is used and this one is ignored (rename it in plugin {label})")


def _env_list(var: str) -> set[str]:
    return {x.strip() for x in os.environ.get(var, "").split(",") if x.strip()}


# -- the user's plugin settings ----------------------------------------------------------------

def config_dir() -> Path:
    """Where artgan keeps user settings: ``$ARTGAN_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/artgan``,
    else ``~/.config/artgan``."""
    if os.environ.get("ARTGAN_CONFIG_DIR"):
        return Path(os.environ["ARTGAN_CONFIG_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base).expanduser() / "artgan"


def plugin_settings_path() -> Path:
    return config_dir() / "plugins.json"


def disabled_in_config() -> list[str]:
    """Plugins turned off with ``artgan plugins --disable``. An unreadable file is reported and
    ignored: a settings typo must not stop artgan."""
    path = plugin_settings_path()
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names = data.get("disabled", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("'disabled' must be a list of plugin names")
        return names
    except (OSError, ValueError, AttributeError) as exc:
        warnings.warn(f"artgan: ignoring {path}: {exc}; fix or delete it", PluginWarning, stacklevel=2)
        return []


def set_disabled(name: str, disabled: bool) -> Path:
    """Add ``name`` to (or remove it from) the disabled plugins in the settings file."""
    from .files import write_json

    names = [n for n in disabled_in_config() if n != name]
    if disabled:
        names.append(name)
    path = plugin_settings_path()
    write_json(path, {"disabled": sorted(names)})
    return path


# -- the registry ------------------------------------------------------------------------------

class Registry:
    """kind -> name -> :class:`Registration`, plus a record of every plugin seen."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Registration]] = {k: {} for k in REGISTRATION_HOOKS}
        self.plugins: dict[str, PluginRecord] = {}
        # (kind, name) -> every registration of a name that more than one plugin claims; such a
        # name is unusable until all but one are disabled (no silent winner by load order)
        self.conflicts: dict[tuple[str, str], list[Registration]] = {}

    # -- filling ---------------------------------------------------------------------------
    def add(self, kind: str, name: str, factory: Callable[..., Any], plugin: str) -> None:
        if kind not in self.entries:
            raise PluginError(f"plugin {plugin!r} registered an unknown kind {kind!r}")
        if not isinstance(name, str) or not name.strip() or name != name.strip() or ":" in name or "," in name:
            raise PluginError(f"plugin {plugin!r} registered a {kind} with an invalid name {name!r} "
                              f"(use letters, digits, '-', '_', '.')")
        if not callable(factory):
            raise PluginError(f"plugin {plugin!r} registered {kind} {name!r} with a non-callable "
                              f"factory {factory!r}")
        existing = self.entries[kind].get(name)
        if existing is not None or (kind, name) in self.conflicts:
            owners = ", ".join(repr(r.plugin) for r in self.conflicts.get((kind, name), [existing]))
            raise DuplicateNameError(
                f"{kind} {name!r} is registered twice: by plugin {owners} and by plugin "
                f"{plugin!r}; disable one with `artgan plugins --disable {plugin}`")
        if isinstance(factory, lazy) and not factory.owner:
            factory.owner, factory.plugin = f"{kind} {name!r} of plugin {plugin!r}", plugin
        self.entries[kind][name] = Registration(kind, name, factory, plugin)
        self.plugins.setdefault(plugin, PluginRecord(name=plugin)).registered.setdefault(kind, []).append(name)

    def is_first_party(self, plugin: str) -> bool:
        rec = self.plugins.get(plugin)
        return rec is not None and rec.first_party

    def first_party_claim(self, kind: str, name: str, plugin: str) -> tuple[str, list[str]] | None:
        """When ``plugin`` claims a name that others hold and exactly one of the claimants is
        first-party: (that plugin, the third parties that lose the name); else None."""
        claimants = [r.plugin for r in self.conflicts.get((kind, name)) or [self.entries[kind][name]]] + [plugin]
        first = [p for p in claimants if self.is_first_party(p)]
        if len(first) != 1:
            return None
        return first[0], [p for p in claimants if p != first[0]]

    def label(self, plugin: str) -> str:
        rec = self.plugins.get(plugin)
        return rec.label if rec is not None else repr(plugin)

    def keep_first_party(self, kind: str, name: str, factory: Callable[..., Any], plugin: str) -> str:
        """Resolve a clash between a first-party plugin and third parties over ``kind``/``name``
        (:meth:`first_party_claim` is not None): the first party keeps the name and the third
        parties' registrations are dropped, each plugin's record saying so. Returns the warning:
        one line per dropped plugin, naming both plugins and the name."""
        claims = [*(self.conflicts.pop((kind, name), None) or [self.entries[kind][name]]),
                  Registration(kind, name, factory, plugin)]
        (keep,) = [r for r in claims if self.is_first_party(r.plugin)]
        self.entries[kind][name] = keep
        owner = self.plugins.setdefault(keep.plugin, PluginRecord(name=keep.plugin))
        owner.conflicts = [c for c in owner.conflicts if not c.startswith(f"{kind} {name!r} ")]
        if name not in owner.registered.get(kind, []):
            owner.registered.setdefault(kind, []).append(name)
        lines = []
        for r in claims:
            if r is keep:
                continue
            rec = self.plugins.setdefault(r.plugin, PluginRecord(name=r.plugin))
            if name in rec.registered.get(kind, []):
                rec.registered[kind].remove(name)
            rec.conflicts = [c for c in rec.conflicts if not c.startswith(f"{kind} {name!r} ")]
            rec.conflicts.append(f"{kind} {name!r} is artgan's own (plugin {keep.plugin!r}): this plugin's is "
                                 f"ignored; rename it")
            lines.append(third_party_dropped(kind, name, rec.label, keep.plugin))
        return "\n".join(lines)

    def add_conflict(self, kind: str, name: str, factory: Callable[..., Any], plugin: str) -> None:
        """``plugin`` registered a name another plugin already holds: neither is used."""
        first = self.entries[kind].pop(name, None)
        regs = self.conflicts.setdefault((kind, name), [first] if first else [])
        regs.append(Registration(kind, name, factory, plugin))
        self._describe_conflict(kind, name)

    def _describe_conflict(self, kind: str, name: str) -> None:
        regs = self.conflicts[(kind, name)]
        owners = [r.plugin for r in regs]
        for r in regs:
            rec = self.plugins.setdefault(r.plugin, PluginRecord(name=r.plugin))
            rec.conflicts = [c for c in rec.conflicts if not c.startswith(f"{kind} {name!r} ")]
            others = ", ".join(repr(o) for o in owners if o != r.plugin)
            rec.conflicts.append(f"{kind} {name!r} is also registered by plugin {others}: neither is "
                                 f"used until one is disabled")

    def remove_plugin(self, plugin: str) -> None:
        """Take back everything ``plugin`` registered (it broke half-way: none is better than half)."""
        rec = self.plugins.get(plugin)
        if rec is not None:
            for kind, names in rec.registered.items():
                for n in names:
                    if self.entries[kind].get(n) and self.entries[kind][n].plugin == plugin:
                        del self.entries[kind][n]
            rec.registered.clear()
            rec.conflicts.clear()
        for key, regs in list(self.conflicts.items()):
            if not any(r.plugin == plugin for r in regs):
                continue
            regs[:] = [r for r in regs if r.plugin != plugin]
            if len(regs) == 1:  # the conflict is gone: the other plugin gets its name back
                (kept,) = regs
                del self.conflicts[key]
                self.entries[key[0]][key[1]] = kept
                other = self.plugins.get(kept.plugin)
                if other is not None:
                    other.conflicts = [c for c in other.conflicts if not c.startswith(f"{key[0]} {key[1]!r} ")]
                    if key[1] not in other.registered.get(key[0], []):
                        other.registered.setdefault(key[0], []).append(key[1])
            else:
                self._describe_conflict(*key)

    # -- reading ---------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Registration:
        if kind not in self.entries:
            raise ArtganError(f"unknown kind {kind!r}; kinds: {', '.join(self.entries)}")
        if (kind, name) in self.conflicts:
            owners = [r.plugin for r in self.conflicts[(kind, name)]]
            raise ArtganError(
                f"{kind} {name!r} is registered by more than one plugin ({', '.join(map(repr, owners))}), "
                f"so none is used; turn all but one off, e.g. `artgan plugins --disable {owners[-1]}`")
        try:
            return self.entries[kind][name]
        except KeyError:
            raise UnknownNameError(kind, name, self.names(kind), hint=self._missing_hint(kind)) from None

    def _missing_hint(self, kind: str) -> str:
        """Which broken or disabled plugins might have provided a name of ``kind``."""
        hook = REGISTRATION_HOOKS[kind]
        hints = []
        for p in sorted(self.plugins.values(), key=lambda r: r.name):
            # a misspelled hook (artgan_register_step) breaks the plugin before it registers anything
            misspelled = any(h not in HOOK_NAMES for h in p.hooks)
            if p.error and (not p.hooks or hook in p.hooks or misspelled):
                hints.append(f"plugin {p.label} is broken: {p.error}")
            elif p.disabled and (not p.hooks or hook in p.hooks):
                hints.append(f"plugin {p.label} is disabled by {p.disabled_by}")
        if not hints:
            return ""
        return "It may come from a plugin that did not load: " + "; ".join(hints)

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
                from .config import unknown_param_hint
                raise ArtganError(f"{kind} {name!r} (plugin {reg.plugin!r}): {exc}"
                                  f"{unknown_param_hint(reg.factory, params)}; "
                                  f"accepted parameters: {', '.join(accepted) or 'none'}") from None
        who = f"{kind} {name!r} (plugin {reg.plugin!r})"
        try:
            return reg.factory(**params)
        except ArtganError as exc:  # the factory refused a value: say whose factory it was
            message = str(exc)
            # unless it names the thing already ("superres: no model ..."), as first-party plugins do
            if len(exc.args) == 1 and isinstance(exc.args[0], str) and name not in message.split(":")[0]:
                exc.args = (f"{who}: {message}",)
            raise
        except (ValueError, TypeError, RuntimeError) as exc:  # deep inside the plugin, or torch
            from .config import param_type_error  # 16.5 for an int: say so, not torch's complaint
            key, bad = param_type_error(reg.factory, params)
            if bad:
                raise ArtganError(f"{who}: {key}: {bad}") from exc
            raise ArtganError(f"{who}: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc
        except (MemoryError, OSError, KeyboardInterrupt):
            raise  # the machine's fault or the user's Ctrl-C: the CLI says which
        except (Exception, SystemExit) as exc:  # any other failure, sys.exit() included: the plugin's bug
            detail = " ".join(str(exc).split())[:300]
            raise ArtganError(f"{who}: its factory failed ({type(exc).__name__}: {detail}); a bug in the plugin "
                              f"{reg.plugin!r}, not in artgan") from None

    @property
    def broken(self) -> list[PluginRecord]:
        return [p for p in self.plugins.values() if p.error]

    def check_lazy_targets(self) -> dict[str, list[str]]:
        """Import every :class:`lazy` factory now; plugin name -> errors. ``artgan plugins
        --check`` uses this: a typo in ``"module:attr"`` otherwise shows only when used."""
        problems: dict[str, list[str]] = {}
        for kind in self.entries:
            for reg in self.entries[kind].values():
                if isinstance(reg.factory, lazy):
                    try:
                        reg.factory.resolve()
                    except ArtganError as exc:
                        problems.setdefault(reg.plugin, []).append(str(exc))
        return problems


# -- loading -----------------------------------------------------------------------------------

def _load_entry_points(pm: pluggy.PluginManager, registry: Registry, strict: bool) -> None:
    env_disabled = _env_list("ARTGAN_DISABLE_PLUGINS")
    file_disabled = set(disabled_in_config())
    allowed = _env_list("ARTGAN_LOAD_PLUGINS")
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        rec = PluginRecord(name=ep.name, module=ep.value,
                           distribution=dist.name if dist else "",
                           version=dist.version if dist else "")
        seen = registry.plugins.get(ep.name)
        if seen is not None:
            if seen.distribution == rec.distribution:  # the same distribution twice on sys.path
                continue
            # two distributions chose one entry-point name: keep the first, report the second
            rec.name = f"{ep.name}@{rec.distribution}"
            registry.plugins[rec.name] = rec
            _mark_broken(rec, PluginError(
                f"entry-point name {ep.name!r} is already used by distribution {seen.distribution!r}; "
                f"one of them must rename its entry point"), strict)
            continue
        registry.plugins[ep.name] = rec
        names = {ep.name, rec.distribution}
        if names & env_disabled:
            rec.disabled, rec.disabled_by = True, "ARTGAN_DISABLE_PLUGINS"
        elif names & file_disabled:
            rec.disabled, rec.disabled_by = True, f"{plugin_settings_path()} (artgan plugins --enable {ep.name})"
        elif allowed and not names & allowed:
            rec.disabled, rec.disabled_by = True, "ARTGAN_LOAD_PLUGINS (not listed)"
        if rec.disabled:
            pm.set_blocked(ep.name)
            continue
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the CLI down
            _mark_broken(rec, exc, strict)
            continue
        rec.source = getattr(plugin, "__file__", "") or ""
        try:
            _register_checked(pm, plugin, ep.name, rec)
        except Exception as exc:
            _mark_broken(rec, exc, strict)


def _hook_args(function: Callable[..., Any]) -> list[str]:
    """The argument names pluggy would pass to ``function`` (those without defaults)."""
    params = inspect.signature(function).parameters.values()
    return [p.name for p in params if p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _register_checked(pm: pluggy.PluginManager, plugin: Any, name: str, rec: PluginRecord) -> None:
    """Register ``plugin`` after checking its hooks against the specs, naming what is wrong."""
    impls = {}
    for attr in dir(plugin):
        opts = pm.parse_hookimpl_opts(plugin, attr)
        if opts is not None:
            impls[opts.get("specname") or attr] = getattr(plugin, attr)
    rec.hooks = sorted(impls)
    unknown = [h for h in impls if h not in HOOK_NAMES]
    if unknown:
        parts = []
        for h in unknown:
            close = difflib.get_close_matches(h, HOOK_NAMES, n=1)
            parts.append(h + (f" (did you mean {close[0]}?)" if close else ""))
        raise PluginError(f"implements unknown hook(s) {', '.join(parts)}; artgan's hooks: {', '.join(HOOK_NAMES)}")
    for hook, function in impls.items():
        spec_args = list(inspect.signature(getattr(hookspecs, hook)).parameters)
        try:
            extra = [a for a in _hook_args(function) if a not in spec_args]
        except (TypeError, ValueError):
            continue  # not introspectable; pluggy checks it below
        if extra:
            raise PluginError(f"hook {hook} takes argument(s) {', '.join(extra)} that artgan does not "
                              f"pass; its signature is {hook}({', '.join(spec_args)})")
    wanted = getattr(plugin, "ARTGAN_HOOK_API", None)
    if wanted is not None and (not isinstance(wanted, int) or wanted > hookspecs.HOOK_API_VERSION):
        from . import __version__
        raise PluginError(f"needs artgan hook API {wanted!r}; this artgan ({__version__}) has "
                          f"{hookspecs.HOOK_API_VERSION}: upgrade artgan")
    try:
        pm.register(plugin, name=name)  # pluggy validates again, in its own terms
    except Exception:
        if pm.get_plugin(name) is plugin:  # older pluggy can leave a half-registered plugin
            pm.unregister(name=name)
        raise


def _mark_broken(rec: PluginRecord, exc: BaseException, strict: bool) -> None:
    message = str(exc).replace("\n", " ").strip()
    rec.error = message if isinstance(exc, PluginError) else f"{type(exc).__name__}: {message}"
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    # the innermost frame outside artgan and importlib: where the plugin's author should look
    here = str(Path(__file__).parent) + os.sep
    for frame in reversed(frames):
        if not frame.filename.startswith(here) and "importlib" not in frame.filename:
            rec.error_at = f"{frame.filename}:{frame.lineno}"
            break
    if strict:
        raise ArtganError(f"plugin {rec.label} is broken: {rec.error} (ARTGAN_STRICT_PLUGINS is set)") from exc
    warnings.warn(f"plugin {rec.label} failed to load and is skipped: {rec.error} "
                  f"(`artgan plugins` for details; `artgan plugins --disable {rec.name}` to silence)",
                  PluginWarning, stacklevel=3)


def _collect(pm: pluggy.PluginManager, registry: Registry, strict: bool) -> None:
    """Call every registration hook, one implementation at a time, so each name is attributed
    to its plugin and one plugin raising does not lose the others' registrations."""
    for kind, hook_name in REGISTRATION_HOOKS.items():
        # artgan's own plugins register first: in a clash, the third party is the one registering
        # second, so a strict-mode error or a broken registration is charged to it
        impls = sorted(getattr(pm.hook, hook_name).get_hookimpls(),
                       key=lambda impl: not registry.is_first_party(impl.plugin_name))
        for impl in impls:
            plugin_name = impl.plugin_name
            rec = registry.plugins.setdefault(plugin_name, PluginRecord(name=plugin_name))
            if rec.error:
                continue

            def register(name: str, factory: Callable[..., Any], _kind=kind, _p=plugin_name) -> None:
                try:
                    registry.add(_kind, name, factory, _p)
                except DuplicateNameError as exc:
                    claim = registry.first_party_claim(_kind, name, _p)
                    if claim is not None:  # artgan's own keeps its name; the third party's is dropped
                        if strict:
                            keeper, losers = claim
                            raise PluginError("; ".join(third_party_dropped(_kind, name, registry.label(p), keeper)
                                                        for p in losers)) from None
                        for line in registry.keep_first_party(_kind, name, factory, _p).splitlines():
                            warnings.warn(line, PluginWarning, stacklevel=2)
                        return
                    if strict:
                        raise
                    registry.add_conflict(_kind, name, factory, _p)
                    warnings.warn(str(exc), PluginWarning, stacklevel=2)

            try:
                impl.function(**{a: register for a in impl.argnames})
            except Exception as exc:
                registry.remove_plugin(plugin_name)
                pm.unregister(name=plugin_name)
                _mark_broken(rec, exc, strict)


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
            _register_checked(pm, plugin, name, rec)
        except Exception as exc:
            _mark_broken(rec, exc, strict)
    _collect(pm, registry, strict)
    return pm, registry


def register_commands(pm: pluggy.PluginManager, registry: Registry, cli: Any) -> None:
    """Call ``artgan_register_commands(cli)`` plugin by plugin: one that raises is marked broken,
    the commands it had added are taken back, and the CLI carries on."""
    strict = os.environ.get("ARTGAN_STRICT_PLUGINS", "") not in ("", "0")
    for impl in pm.hook.artgan_register_commands.get_hookimpls():
        rec = registry.plugins.setdefault(impl.plugin_name, PluginRecord(name=impl.plugin_name))
        if rec.error:
            continue
        before = _command_tree(cli)
        try:
            impl.function(**{a: cli for a in impl.argnames})
            rec.commands = sorted(f"{group} {n}" if group else n for group, names in _command_tree(cli).items()
                                  for n in names - before.get(group, set()))
        except Exception as exc:
            for group, names in _command_tree(cli).items():
                for n in names - before.get(group, set()):
                    (cli if group is None else cli.commands[group]).commands.pop(n, None)
            _mark_broken(rec, exc, strict)


def _command_tree(cli: Any) -> dict[str | None, set[str]]:
    tree: dict[str | None, set[str]] = {None: set(getattr(cli, "commands", {}))}
    for name, cmd in getattr(cli, "commands", {}).items():
        if hasattr(cmd, "commands"):
            tree[name] = set(cmd.commands)
    return tree


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
    checks still work. If the import fails, the error names the plugin that registered it.
    """

    def __init__(self, target: str):
        module, sep, attr = str(target).partition(":")
        if not sep or not module.strip() or not attr.strip():
            raise ValueError(f"lazy({target!r}): expected 'module:attribute'")
        self.target = target
        self.owner = ""  # "dataset 'x' of plugin 'p'", filled in by the registry
        self.plugin = ""
        self._obj: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        """Import the target (once) and return it; an import that fails names the plugin."""
        if self._obj is None:
            module, _, attr = self.target.partition(":")
            who = f"{self.owner}: " if self.owner else ""
            try:
                obj: Any = importlib.import_module(module)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (Exception, SystemExit) as exc:
                fix = (f"reinstall or fix plugin {self.plugin!r}, or turn it off with "
                       f"`artgan plugins --disable {self.plugin}`") if self.plugin else "check the module path"
                detail = str(exc).splitlines()[0] if str(exc) else ""
                raise ArtganError(f"{who}cannot load {self.target!r} ({type(exc).__name__}: {detail}); "
                                  f"{fix}") from exc
            if not callable(obj):
                raise ArtganError(f"{who}{self.target!r} is a {type(obj).__name__}, not a callable factory")
            self._obj = obj
        return self._obj

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.resolve())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.target!r})"
