"""Every first-party task plugin has the same modules (docs/plugins.md, "A task plugin"):
``__init__.py`` (the hooks), ``model.py``, ``data.py``, ``steps.py``, ``evaluate.py``, so a reader
who knows one can find their way in the next. Where one does without a module, :data:`WITHOUT`
says why, and the test holds the reason to the task's declaration."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from artgan.plugins import get_registry
from artgan.tasks import load_tasks

MODULES = ("__init__.py", "model.py", "data.py", "steps.py", "evaluate.py")
FIRST_PARTY_TASKS = ("superres", "inpaint", "style", "augment", "gan")

#: (task, module) -> why its plugin does without it
WITHOUT = {
    ("augment", "data.py"): "small-cgan trains on the built-in labelled datasets (digits, image-folder: the "
                            "datasets plugin); the evaluation draws its k-per-class subsets itself (protocol.py)",
    ("augment", "steps.py"): "its models make labelled training images (artgan synth, synth.py), not "
                             "post-processed images: the task declares no step",
    ("gan", "data.py"): "it trains on the built-in datasets (mnist, digits, shapes, image-folder: the datasets "
                        "plugin; stacked-digits: its own plugin)",
    ("gan", "steps.py"): "noise-to-image models run through artgan generate (artgan.runtime.Generator), not "
                         "as a step: the task declares no step",
}


def package_dir(task: str) -> Path:
    registry = get_registry()
    module = registry.plugins[registry.get("task", task).plugin].module
    return Path(importlib.util.find_spec(module).submodule_search_locations[0])


@pytest.mark.parametrize("task", FIRST_PARTY_TASKS)
def test_every_task_plugin_has_the_five_modules_or_says_why_not(task):
    folder = package_dir(task)
    missing = [m for m in MODULES if not (folder / m).is_file()]
    unexplained = [m for m in missing if (task, m) not in WITHOUT]
    assert not unexplained, f"{folder.name} lacks {unexplained}: add them (docs/plugins.md) or say why in WITHOUT"
    stale = [m for (t, m) in WITHOUT if t == task and m not in missing]
    assert not stale, f"{folder.name} has {stale} now: drop them from WITHOUT"


@pytest.mark.parametrize("task", FIRST_PARTY_TASKS)
def test_the_reasons_hold(task):
    """A plugin without steps.py declares no step; one without data.py registers no dataset of its task."""
    registry = get_registry()
    declared = load_tasks(registry)[0][task]
    plugin = registry.get("task", task).plugin
    if (task, "steps.py") in WITHOUT:
        assert declared.step is None
    if (task, "data.py") in WITHOUT:
        assert all(registry.get("dataset", d).plugin != plugin for d in declared.datasets)
