"""What artgan promises plugin authors and users stays what its own files use: first-party plugins
import only what docs/plugins.md lists as public; shipped pipelines and scripts use no deprecated name; the training "step" names renamed in the public API (``Phase``'s
``losses``, ``GANRecipe.after_iteration``, the hooks' ``iteration``) keep their old names working."""

from __future__ import annotations

import ast
import importlib
import re
import types
import warnings
from pathlib import Path

import pytest
import torch

import artgan
from artgan.pipeline import RunContext, load_pipeline, run_pipeline
from artgan.plugins import get_registry, make_plugin_manager
from artgan.recipe import GANRecipe, Phase
from artgan.training_tricks import LRSchedule

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs" / "plugins.md"
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))
SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))



# -- first-party plugins import only the documented public API ---------------------------------------

def documented_public_names() -> set[str]:
    """The dotted names listed in docs/plugins.md's "Public API" section, one per bullet."""
    text = DOCS.read_text(encoding="utf-8")
    section = re.search(r"^## Public API\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert section, "docs/plugins.md needs a '## Public API' section"
    return set(re.findall(r"^- `(artgan(?:\.\w+)+)`", section.group(1), flags=re.M))


def artgan_names_used(source: str) -> set[str]:
    """Every ``artgan.*`` name a module imports (``from artgan.x import y`` -> ``artgan.x.y``,
    ``import artgan.x``) or reaches as an attribute of ``import artgan`` (``artgan.hookimpl``)."""
    used = set()
    tree = ast.parse(source)
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}  # a.b of a.b.c: seen as a.b.c
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "artgan":
            used |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            used |= {a.name for a in node.names if a.name.startswith("artgan.")}
        elif isinstance(node, ast.Attribute) and id(node) not in inner:
            chain, value = [], node
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id == "artgan":
                used.add(".".join(["artgan", *reversed(chain)]))
    return used


def is_public(name: str, public: set[str]) -> bool:
    """Listed itself, or inside a listed module or class (``artgan.testing.check_step``)."""
    return any(name == p or name.startswith(p + ".") for p in public)


def test_first_party_plugins_import_only_the_documented_public_api():
    public = documented_public_names()
    private = {}
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        for name in artgan_names_used(path.read_text(encoding="utf-8")):
            if not is_public(name, public):
                private.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not private, ("first-party plugins use names docs/plugins.md's Public API does not list (list "
                         "them there, one line each, or stop using them): " +
                         "; ".join(f"{n} in {', '.join(ps)}" for n, ps in sorted(private.items())))


def _resolve(name: str):
    """The object a dotted name names: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def test_every_documented_public_name_exists():
    public = documented_public_names()
    assert {"artgan.hookimpl", "artgan.recipe.GANRecipe", "artgan.testing"} <= public  # the parse found the list
    missing = []
    for name in sorted(public):
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert not missing, f"docs/plugins.md lists names that do not exist: {missing}"


def test_the_import_check_sees_every_form_of_import():
    source = """
import artgan
import artgan.metrics
from artgan.process import current_source
def f():
    from artgan.export import export_onnx
    return artgan.hookimpl, artgan.recipe.GANRecipe.keep_ema
"""
    used = artgan_names_used(source)
    assert "artgan.recipe" not in used and "artgan.recipe.GANRecipe" not in used  # only the whole chain
    assert {"artgan.metrics", "artgan.process.current_source", "artgan.export.export_onnx", "artgan.hookimpl",
            "artgan.recipe.GANRecipe.keep_ema"} <= used
    public = documented_public_names()
    assert not is_public("artgan.process.current_source", public) and not is_public("artgan.export.export_onnx", public)
    assert is_public("artgan.testing.check_step", public) and not is_public("artgan.recipe", public)

def _config_class(architecture: str):
    """The recipe config class of a registered architecture, or None (a recipe without one)."""
    factory = get_registry().get("architecture", architecture).factory
    factory = factory.resolve() if hasattr(factory, "resolve") else factory
    return getattr(factory, "config_class", None)


def _architectures(pipeline) -> list[tuple[str, dict]]:
    out = []
    for kind, stage in pipeline.stages:
        if kind == "train":
            arch = stage.architecture
            out.append((arch, {}) if isinstance(arch, str) else (arch["name"], {k: v for k, v in arch.items() if k != "name"}))
    return out


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_shipped_pipelines_use_no_deprecated_name(path):
    """Loading the pipeline and building each recipe's config from it warns of nothing: no old
    pipeline key (``steps:``, ``train.steps``) and no old knob name (``lr_decay_steps``, ...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        pipeline = load_pipeline(path, registry=get_registry())
        for name, params in _architectures(pipeline):
            config_class = _config_class(name)
            if config_class is not None:
                config_class.from_params(name, params)


def _deprecated_overrides() -> set[str]:
    """Every old name a ``--set`` could still use: pipeline keys and each recipe's renamed knobs."""
    old = {"train.steps"}
    for name in get_registry().names("architecture"):
        config_class = _config_class(name)
        if config_class is not None:
            old |= {f"train.architecture.{k}" for k in ("beta1", "beta2", *config_class.renamed)}
    return old


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_shipped_scripts_set_no_deprecated_name(path):
    keys = set(re.findall(r"--set\s+\"?([\w.]+)=", path.read_text()))
    assert not keys & _deprecated_overrides(), f"{path.name} sets old names: {sorted(keys & _deprecated_overrides())}"


def test_the_deprecated_names_are_known():
    # the two checks above would pass vacuously if no old name were found
    assert {"train.steps", "train.architecture.lr_decay_steps", "train.architecture.beta1"} <= _deprecated_overrides()


# -- training "step" -> iteration: the new names, and the old ones still working ---------------------

def _losses(batch):
    return {"loss": torch.zeros(())}


def test_phase_takes_losses_and_still_the_old_step_keyword():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert Phase("G", opt, _losses).losses is _losses  # positional: no warning
    with pytest.warns(DeprecationWarning, match=r"Phase\(step=...\) is renamed Phase\(losses=...\)"):
        old = Phase("G", opt, step=_losses, every=2)
    assert old == Phase("G", opt, losses=_losses, every=2) and old.step is _losses
    with pytest.raises(artgan.errors.ArtganError, match="give only losses"):
        Phase("G", opt, _losses, step=_losses)


class _Chores(GANRecipe):
    """A recipe whose only chore is a step schedule: lr 1 -> 0 over 10 iterations; ``calls`` logs
    which after_* methods ran."""

    def __init__(self):
        super().__init__()
        self.calls = []
        self.net = torch.nn.Linear(1, 1)
        self.modules = {"generator": self.net}
        self.optimizers = {"generator": torch.optim.SGD(self.net.parameters(), lr=1.0)}
        self.set_lr_schedule(LRSchedule("linear", 0, 10, 0.0))

    def lr(self):
        return self.optimizers["generator"].param_groups[0]["lr"]


class _New(_Chores):
    def after_iteration(self, iteration):
        self.calls.append(("new", iteration))
        super().after_iteration(iteration)


def _old_style(base):
    with pytest.warns(DeprecationWarning, match=r"_Old.after_step\(step\) is renamed after_iteration\(iteration\)"):
        class _Old(base):
            def after_step(self, step):
                self.calls.append(("old", step))
                super().after_step(step)
    return _Old


@pytest.mark.parametrize("call", ["after_iteration", "after_step"])  # after_step: the trainer's call today
@pytest.mark.parametrize("kind", ["new", "old", "old over new"])
def test_after_iteration_and_old_after_step_overrides_each_run_once_with_the_chores(kind, call):
    cls = {"new": lambda: _New, "old": lambda: _old_style(_Chores), "old over new": lambda: _old_style(_New)}[kind]()
    recipe = cls()
    getattr(recipe, call)(5)
    expected = {"new": [("new", 5)], "old": [("old", 5)], "old over new": [("old", 5), ("new", 5)]}[kind]
    assert recipe.calls == expected
    assert recipe.lr() == pytest.approx(0.5)  # the schedule ran, once per call


def _tracker(**hooks):
    module = types.ModuleType("tracker")
    for name, function in hooks.items():
        setattr(module, name, artgan.hookimpl(function))
    return module


def test_the_training_hooks_pass_iteration_and_the_old_step(tmp_path):
    seen = []
    new = _tracker(artgan_on_metrics=lambda iteration, metrics: seen.append(("metrics", iteration)),
                   artgan_on_checkpoint=lambda iteration, path: seen.append(("checkpoint", iteration)))
    old = _tracker(artgan_on_metrics=lambda step: seen.append(("old metrics", step)))
    old.__name__ = "old_tracker"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        pm, registry = make_plugin_manager((new,))
    with pytest.warns(DeprecationWarning, match="artgan_on_metrics: the parameter step is renamed iteration"):
        pm.register(old, name="old_tracker")
    pipeline = load_pipeline(text="""
name: hooks
stages:
  - train:
      dataset: {name: digits, image_size: 16}
      architecture: {name: dcgan, latent_dim: 8, g_width: 8, d_width: 8}
      iterations: 2
      batch_size: 4
      log_every: 1
      checkpoint_every: 2
      sample_count: 4
      device: cpu
""", registry=registry)
    run_pipeline(pipeline, RunContext(run_dir=tmp_path / "run", registry=registry, plugin_manager=pm,
                                      progress=False, log=lambda msg: None))
    assert sorted(seen) == [("checkpoint", 2), ("metrics", 1), ("metrics", 2), ("old metrics", 1), ("old metrics", 2)]
