"""What artgan promises plugin authors and users stays what its own files use: shipped pipelines
and scripts use no deprecated name."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from artgan.pipeline import load_pipeline
from artgan.plugins import get_registry

ROOT = Path(__file__).parents[1]
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))
SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))


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
