"""Tasks as a declared shape (artgan.tasks): every first-party task plugin declares one through
``artgan_register_tasks``, each name in it is registered, and ``artgan tasks`` lists them."""

from __future__ import annotations

import json

import pytest

import artgan
from artgan.errors import ArtganError
from artgan.plugins import get_registry
from artgan.tasks import Task, check_task, load_tasks
from artgan.testing import check_registered, registry_with

FIRST_PARTY_TASKS = {"augment", "gan", "inpaint", "style", "superres"}


def test_every_first_party_task_is_declared_and_every_part_registered():
    registry = get_registry()
    tasks, problems = load_tasks(registry)
    assert problems == []
    assert FIRST_PARTY_TASKS <= set(tasks)
    for name in FIRST_PARTY_TASKS:
        task = check_registered(registry, "task", name)
        # a task's evaluation is `artgan evaluate TASK`; its models install where its step finds them
        assert task.evaluation == name and task.models == name
        assert task.step in (name, None) and task.architectures and task.datasets
        assert registry.get("task", name).plugin == registry.get("evaluation", name).plugin


def test_a_task_naming_a_part_nobody_registers_is_one_line_per_part():
    class Plugin:
        @staticmethod
        @artgan.hookimpl
        def artgan_register_tasks(register):
            register("sharpen", lambda: Task("sharpen", "undo blur", architectures=("sharpen-cnn",),
                                             datasets=("digits",), step="sharpen", evaluation=None))

    registry = registry_with(Plugin, entry_points=True)
    tasks, problems = load_tasks(registry)
    assert len(problems) == 2 and all(p.startswith("task 'sharpen' (plugin ") for p in problems)
    assert "names architecture 'sharpen-cnn', which no plugin registers (registered: " in problems[0]
    assert "names step 'sharpen'" in problems[1] and "lanczos" in problems[1]
    with pytest.raises(AssertionError, match="names architecture 'sharpen-cnn'"):
        check_registered(registry, "task", "sharpen")


def test_a_task_factory_returning_something_else_is_named():
    registry = get_registry()
    assert check_task({"name": "x"}, registry, plugin="mine") == [
        "task of plugin 'mine': its factory returned dict, not an artgan.tasks.Task"]


@pytest.mark.parametrize("kwargs, needle", [
    ({"name": "Bad Name"}, "a task's name is lower-case"),
    ({"architectures": "superres-gan"}, "architectures must be a tuple of names"),
])
def test_a_malformed_task_is_refused_when_made(kwargs, needle):
    args = {"name": "t", "summary": "s", "architectures": ("a",), "datasets": ("d",), "step": None,
            "evaluation": None, **kwargs}
    with pytest.raises(ArtganError, match=needle):
        Task(**args)


def test_tasks_command_lists_each_task_with_its_parts(runner):
    from artgan.cli import cli

    r = runner.invoke(cli, ["tasks"])
    assert r.exit_code == 0, r.output
    assert "superres: enlarge photos" in r.output and "runs as: --step superres:model=NAME" in r.output
    assert "evaluate: artgan evaluate inpaint (beside inpaint-telea" in r.output
    data = json.loads(runner.invoke(cli, ["tasks", "--json"]).output)
    by_name = {t["name"]: t for t in data["tasks"]}
    assert FIRST_PARTY_TASKS <= set(by_name) and data["problems"] == []
    assert by_name["style"]["step"] == "style" and isinstance(by_name["style"]["installed"], list)
    # how each builds: style by its plugin's builder, augment and gan on their pipelines' own data
    assert "  builds by: its plugin's builder (artgan_style.build:build_style)" in r.output
    assert by_name["style"]["builder"] == "artgan_style.build:build_style"
    assert by_name["augment"]["builds_by"] == "its pipeline, on the data the pipeline names (no --data)"
    assert by_name["superres"]["builds_by"].startswith("its pipeline, with --data DIR at train.dataset.path")


def test_every_first_party_task_builds_with_artgan_build():
    """Issue #23: one builder command for every task, each task's `build` line an `artgan build` one."""
    tasks, _ = load_tasks(get_registry())
    for name in FIRST_PARTY_TASKS:
        task = tasks[name]
        assert task.build.startswith(f"artgan build {name} ") and not task.builds_by().startswith("not"), name


def test_a_builder_must_be_a_function():
    with pytest.raises(ArtganError, match="builder must be a function"):
        Task("t", "s", architectures=("a",), datasets=("d",), step=None, evaluation=None, builder="pkg:build")


def test_every_pipeline_a_task_names_exists_and_trains_one_of_its_architectures():
    """The reference pipelines a task names are the repository's and train that task's recipes."""
    from pathlib import Path

    import yaml

    root = Path(__file__).parents[1]
    tasks, _ = load_tasks(get_registry())
    for name in FIRST_PARTY_TASKS:
        task = tasks[name]
        for pipeline in task.pipelines:
            doc = yaml.safe_load((root / pipeline).read_text())
            trains = [s["train"] for s in doc["stages"] if "train" in s]
            assert trains and all(t["architecture"]["name"] in task.architectures for t in trains), pipeline
            assert all(t["dataset"]["name"] in task.datasets for t in trains), pipeline
