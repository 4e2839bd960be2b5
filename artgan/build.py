"""``artgan build TASK``: one model for a task, from data to installed, in one command.

The task's reference pipeline (:attr:`artgan.tasks.Task.pipelines`, with the data folder set at
:attr:`~artgan.tasks.Task.data_keys`) trains and exports; the export verifies the ONNX file
against PyTorch and writes the card. The task's evaluation then measures the model beside its
baselines on the data's held-out split and adds the table to the card. Last, the model and its card
are installed together where ``--step TASK:model=NAME`` finds them (:func:`artgan.model_search.installing`).

Read top to bottom; each part is the same code the separate commands (``run``, ``evaluate``) use.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ArtganError
from .tasks import Task


@dataclass
class BuildReport:
    """What one build made: the run folder, the installed model and the evaluation's result."""

    task: str
    run_dir: Path
    installed: Path
    evaluation: dict[str, Any] | None = None
    overrides: list[str] = field(default_factory=list)


def build_task(task: Task, *, data: str | Path, name: str, registry: Any, plugin_manager: Any = None,
               pipeline: str | Path | None = None, seconds: float | None = None, overrides: list[str] = (),
               runs: str | Path = "runs", to: str | Path | None = None, force: bool = False, progress: bool = True,
               log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)) -> BuildReport:
    """Train, export, evaluate and install one model of ``task`` from the images in ``data``."""
    from .cards import update_card
    from .model_search import check_installable, installing, user_models_root
    from .pipeline import RunContext, check_factories, load_pipeline, new_run_dir, run_pipeline

    # -- what to run ---------------------------------------------------------------------------
    if pipeline is None:
        if not task.pipelines:
            raise ArtganError(f"build {task.name}: the task names no pipeline to build with; "
                              f"build it with: {task.build or 'its own command'}")
        pipeline = task.pipelines[0]
    if not task.data_keys:
        raise ArtganError(f"build {task.name}: the task says no pipeline key takes the data folder (Task.data_keys); "
                          f"build it with: {task.build or 'its own command'}")
    data = Path(data)
    if not data.exists():
        raise ArtganError(f"build {task.name}: --data {data}: no such folder")
    root = Path(to) if to is not None else user_models_root()
    check_installable(task.models, name, root, force=force)  # before an hour of training, not after
    settings = [f"{key}={data}" for key in task.data_keys] + list(task.build_settings)
    settings += [f"train.seconds={seconds:g}"] if seconds is not None else []
    settings += list(overrides)
    spec = load_pipeline(pipeline, overrides=settings, registry=registry)
    check_factories(spec, registry, settings, build_them=False)

    # -- train and export (the export verifies the ONNX file and writes its card) ---------------
    run_dir = new_run_dir(runs, name)
    ctx = run_pipeline(spec, RunContext(run_dir=run_dir, registry=registry, plugin_manager=plugin_manager,
                                        progress=progress, log=log))
    if ctx.model is None or not Path(ctx.model).is_file():
        raise ArtganError(f"build {task.name}: {pipeline} exported no model (it needs an export stage)")
    model = Path(ctx.model)

    # -- evaluate beside the baselines, on the data's held-out split ---------------------------
    result = None
    if task.evaluation:
        result = _evaluate(task, model, name, data, registry, progress, log)
    update_card(model, "build", {"command": f"artgan build {task.name} --data {data.name} --name {name}",
                                 "pipeline": str(pipeline), "settings": settings, "run": run_dir.name})

    # -- install: the model and its card together, or nothing ----------------------------------
    with installing(task.models, name, root, force=force) as staging:
        shutil.copyfile(model, staging / f"{name}.onnx")
        shutil.copyfile(model.with_name(f"{model.stem}.card.json"), staging / f"{name}.card.json")
        update_card(staging / f"{name}.onnx", "file", f"{name}.onnx")  # and renders NAME.card.md
    installed = root / task.models / f"{name}.onnx"
    log(f"installed {installed}: use it as --step {task.step}:model={name}" if task.step else f"installed {installed}")
    return BuildReport(task.name, run_dir, installed, result, settings)


def _evaluate(task: Task, model: Path, name: str, data: Path, registry: Any, progress: bool,
              log: Callable[[str], None]) -> dict[str, Any] | None:
    """The task's evaluation of ``model`` on ``data`` with its default options, added to the
    model's card; None (with a line saying why) for an evaluation with data of its own."""
    from .evaluation import Request, add_to_card, evaluate, format_table

    evaluation = registry.create("evaluation", task.evaluation)
    if not evaluation.per_file:  # it brings its own data (``Evaluation.run``): not the build's folder
        log(f"  not evaluated here: artgan evaluate {task.evaluation} takes its own data; run it with --model {model}")
        return None
    options = {n: o.default for n, o in evaluation.options.items()}
    # always the held-out quarter: the build trains on the rest (Task.build_settings)
    request = Request(task.evaluation, data, "heldout", [str(model)], list(evaluation.baselines), options, registry)
    result = evaluate(task.evaluation, evaluation, request, progress=progress)
    # the row is the model by the name it installs under, not the run folder's path
    labels = {str(model), model.name, model.stem}  # however the evaluation labels a model given by path
    result["methods"] = {name if m in labels else m: v for m, v in result["methods"].items()}
    log(format_table(result))
    add_to_card(model, task.evaluation, evaluation, result, registry)
    return result
