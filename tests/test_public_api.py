"""What artgan promises plugin authors and users stays what its own files use: first-party plugins
import only what docs/plugins.md lists as public; shipped pipelines load without a warning; the names
0.2 renamed (``train.steps``, ``Phase(step=)``, ``after_step``, ``beta1`` ...) are gone, not aliased."""

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

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs" / "plugins.md"
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))



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
def test_shipped_pipelines_load_and_build_their_recipe_configs_without_a_warning(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipeline = load_pipeline(path, registry=get_registry())
        for name, params in _architectures(pipeline):
            config_class = _config_class(name)
            if config_class is not None:
                config_class.from_params(name, params)


# -- 0.2 keeps no old name: each is an unknown name now, with the usual one-line error ---------------

_TRAIN = """
name: old
stages:
  - train:
      dataset: digits
      architecture: dcgan
"""


@pytest.mark.parametrize("text, error", [
    (_TRAIN.replace("stages:", "steps:"), "unknown key; expected name, seed, description, stages"),
    (_TRAIN + "      steps: 10\n", "steps"),
], ids=["steps-list", "train.steps"])
def test_the_old_pipeline_keys_are_unknown_keys(text, error):
    with pytest.raises(artgan.errors.ConfigError, match=error):
        load_pipeline(text=text)


def test_the_old_override_train_steps_is_an_unknown_key():
    with pytest.raises(artgan.errors.ConfigError, match="steps"):
        load_pipeline(text=_TRAIN, overrides=["train.steps=10"])


@pytest.mark.parametrize("old", ["beta1", "lr_decay_steps"])
def test_the_old_recipe_knob_names_are_unknown_parameters(old):
    with pytest.raises(artgan.errors.ArtganError, match=f"unknown parameter {old!r}"):
        _config_class("superres-gan").from_params("superres-gan", {old: 0.5})


def test_the_old_module_and_class_names_are_gone():
    import artgan.pipeline
    import artgan.recipe

    with pytest.raises(ImportError):
        importlib.import_module("artgan.models")
    for name in ("TrainStep", "ExportStep", "GenerateStep", "ProcessStep", "STEP_KINDS"):
        assert not hasattr(artgan.pipeline, name), name
    assert not hasattr(artgan.pipeline.Pipeline, "steps") and not hasattr(artgan.pipeline.TrainOptions, "steps")
    assert not hasattr(GANRecipe, "after_step")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(TypeError):
        Phase("G", opt, step=_losses)


def _losses(batch):
    return {"loss": torch.zeros(())}


def _tracker(**hooks):
    module = types.ModuleType("tracker")
    for name, function in hooks.items():
        setattr(module, name, artgan.hookimpl(function))
    return module


def test_the_training_hooks_pass_iteration(tmp_path):
    seen = []
    tracker = _tracker(artgan_on_metrics=lambda iteration, metrics: seen.append(("metrics", iteration)),
                       artgan_on_checkpoint=lambda iteration, path: seen.append(("checkpoint", iteration)))
    pm, registry = make_plugin_manager((tracker,))
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
    assert sorted(seen) == [("checkpoint", 2), ("metrics", 1), ("metrics", 2)]
