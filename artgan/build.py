"""``artgan build TASK``: one model for a task, from data to installed, in one command.

The task's reference pipeline (:attr:`artgan.tasks.Task.pipelines`, with the data folder set at
:attr:`~artgan.tasks.Task.data_keys`) trains and exports; the export verifies the ONNX file
against PyTorch and writes the card. The task's evaluation then measures the model beside its
baselines on the data's held-out split (or on ``eval_data``, all of it) and adds the table to the
card; the card also gets what the model is, how it was trained, ONNX against PyTorch on the real
inputs the task's step makes and the step's speed at 512x512 (:mod:`artgan.build_card`), and the
command that reproduces it. Last, the model and its card are installed together where
``--step TASK:model=NAME`` finds them (:func:`artgan.model_search.installing`).

Read top to bottom; each part is the same code the separate commands (``run``, ``evaluate``) use.
"""

from __future__ import annotations

import shlex
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
               eval_data: str | Path | None = None, eval_options: list[str] = (), runs: str | Path = "runs",
               to: str | Path | None = None, force: bool = False, progress: bool = True,
               log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)) -> BuildReport:
    """Train, export, evaluate and install one model of ``task`` from the images in ``data``;
    ``eval_data``: evaluate on all of that folder instead of ``data``'s held-out quarter;
    ``eval_options``: ``KEY=VALUE`` options of the task's evaluation."""
    from .cards import read_card, update_card
    from .checkpoints import load_recipe
    from .model_search import check_installable, installing, user_models_root
    from .pipeline import RunContext, check_factories, load_pipeline, new_run_dir, run_pipeline
    from . import build_card

    # -- what to run, checked before an hour of training -----------------------------------------
    if pipeline is None:
        if not task.pipelines:
            raise ArtganError(f"build {task.name}: the task names no pipeline to build with; "
                              f"build it with: {task.build or 'its own command'}")
        pipeline = task.pipelines[0]
    if not task.data_keys:
        raise ArtganError(f"build {task.name}: the task says no pipeline key takes the data folder (Task.data_keys); "
                          f"build it with: {task.build or 'its own command'}")
    data = Path(data)
    for flag, folder in (("--data", data), ("--eval-data", eval_data)):
        if folder is not None and not Path(folder).exists():
            raise ArtganError(f"build {task.name}: {flag} {folder}: no such folder")
    root = Path(to) if to is not None else user_models_root()
    check_installable(task.models, name, root, force=force)
    evaluation = registry.create("evaluation", task.evaluation) if task.evaluation else None
    chosen = _evaluation_options(task, evaluation, eval_options)
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
    module = load_recipe(ctx.checkpoint, registry)[0].export_spec().module
    update_card(model, "summary", build_card.summary(task, name, spec.description))
    if "train" in ctx.results:
        update_card(model, "training", build_card.training(run_dir, spec.raw, ctx.results["train"],
                                                           sum(p.numel() for p in module.parameters())))

    # -- evaluate beside the baselines; ONNX against PyTorch and the step's speed on real inputs -----
    result = None
    if evaluation is not None and not evaluation.per_file:  # it brings its own data (``Evaluation.run``)
        log(f"  not evaluated here: artgan evaluate {task.evaluation} takes its own data; run it with --model {model}")
    elif evaluation is not None:
        folder, split = (Path(eval_data), "all") if eval_data is not None else (data, "heldout")
        from_model = {k: v for k, v in read_card(model).get("metadata", {}).items() if k in evaluation.options}
        result = _evaluate(task, evaluation, model, name, folder, split, {**from_model, **chosen}, registry,
                           progress, log)
        if task.step:
            _check_on_real_inputs(task, evaluation, model, module, folder, split, from_model, registry, log)
    update_card(model, "command", _command(task, pipeline, data, name, seconds, overrides, eval_data, eval_options))
    update_card(model, "build", {"pipeline": str(pipeline), "settings": settings, "run": run_dir.name})

    # -- install: the model and its card together, or nothing ----------------------------------
    with installing(task.models, name, root, force=force) as staging:
        shutil.copyfile(model, staging / f"{name}.onnx")
        shutil.copyfile(model.with_name(f"{model.stem}.card.json"), staging / f"{name}.card.json")
        update_card(staging / f"{name}.onnx", "file", f"{name}.onnx")  # and renders NAME.card.md
    installed = root / task.models / f"{name}.onnx"
    log(f"installed {installed}: use it as --step {task.step}:model={name}" if task.step else f"installed {installed}")
    return BuildReport(task.name, run_dir, installed, result, settings)


def _evaluation_options(task: Task, evaluation: Any, given: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` options of the task's evaluation, converted as ``artgan evaluate`` does."""
    import click

    if given and evaluation is None:
        raise ArtganError(f"build {task.name}: --eval-set: the task has no evaluation")
    options = {}
    for item in given:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in evaluation.options:
            raise ArtganError(f"build {task.name}: --eval-set {item!r}: give KEY=VALUE, KEY one of "
                              f"{', '.join(evaluation.options) or 'none (the evaluation takes no options)'}")
        option = evaluation.options[key]
        try:
            options[key] = click.types.convert_type(option.type, option.default).convert(value, None, None)
        except click.BadParameter as exc:
            raise ArtganError(f"build {task.name}: --eval-set {key}: {exc.message}") from None
    return options


def _evaluate(task: Task, evaluation: Any, model: Path, name: str, data: Path, split: str,
              options: dict[str, Any], registry: Any, progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """The task's evaluation of ``model`` beside its baselines on ``data``'s ``split``, added to
    the model's card. Its options: the defaults, then those the model's metadata also names (an
    x4 upscaler is measured at x4), then the ones given."""
    from .evaluation import Request, add_to_card, evaluate, format_table

    options = {**{n: o.default for n, o in evaluation.options.items()}, **options}
    request = Request(task.evaluation, data, split, [str(model)], list(evaluation.baselines), options, registry)
    result = evaluate(task.evaluation, evaluation, request, progress=progress)
    # the row is the model by the name it installs under, not the run folder's path
    labels = _labels(model)
    result["methods"] = {name if m in labels else m: v for m, v in result["methods"].items()}
    log(format_table(result))
    add_to_card(model, task.evaluation, evaluation, result, registry)
    return result


def _labels(model: Path) -> set[str]:
    return {str(model), model.name, model.stem}  # however an evaluation labels a model given by path


def _check_on_real_inputs(task: Task, evaluation: Any, model: Path, module: Any, data: Path, split: str,
                          from_model: dict[str, Any], registry: Any, log: Callable[[str], None]) -> None:
    """ONNX against PyTorch on what the task's step feeds the model for the first evaluation
    image, and the step's speed on it at 512x512, each into the card."""
    from . import build_card
    from .cards import read_card, update_card
    from .evaluation import Request, call_plugin, plugin_of
    from .images import list_images
    from .splits import split_files

    options = {**{n: o.default for n, o in evaluation.options.items()}, **from_model}
    request = Request(task.evaluation, data, split, [str(model)], [], options, registry)
    plugin = plugin_of(task.evaluation, evaluation, registry)
    first = split_files(list_images(data), split)[0]
    methods = call_plugin(task.evaluation, plugin, "methods", evaluation.methods, request)
    method = next((m for label, m in methods.items() if label in _labels(model)), None)
    if method is None:
        log(f"  ONNX against PyTorch on real inputs, speed: not measured ({task.evaluation}'s methods do not "
            f"name the model)")
        return
    inputs, _ = call_plugin(task.evaluation, plugin, f"load ({first.name})", evaluation.load, first, request)
    min_psnr = read_card(model).get("verification", {}).get("min_psnr") or build_card.REAL_INPUTS_MIN_PSNR
    report = build_card.real_inputs(module, model, method, inputs, f"{first.name} ({data.name}, split {split})",
                                    min_psnr)
    if report is None:
        log(f"  ONNX against PyTorch on real inputs: not checked ({task.step} did not run the model through "
            f"artgan.runtime)")
    else:
        log(f"  ONNX against PyTorch on {report['inputs']}: {report['min_psnr_db']:.1f} dB at least")
    timing = build_card.speed(method, inputs)
    if timing is None:
        log(f"  {task.step}'s speed: not measured ({task.evaluation}'s inputs are no batch of images)")
        return
    update_card(model, "speed", {"step": task.step, "image": first.name, **timing,
                                 "lines": build_card.speed_lines(task.step, first.name, timing)})
    log(f"  {task.step} at {build_card.SPEED_SIZE}x{build_card.SPEED_SIZE}: {timing['median_s']} s per image")


def _command(task: Task, pipeline: str | Path, data: Path, name: str, seconds: float | None, overrides: list[str],
             eval_data: str | Path | None, eval_options: list[str]) -> str:
    """The ``artgan build`` command line that makes this model again (paths as given, the
    task's own pipeline relative to the current folder)."""
    args = ["artgan", "build", task.name, "--pipeline", shown_path(pipeline), "--data", str(data), "--name", name]
    args += ["--minutes", f"{seconds / 60:g}"] if seconds is not None else []
    args += ["--eval-data", str(eval_data)] if eval_data is not None else []
    args += [a for option in eval_options for a in ("--eval-set", option)]
    args += [a for setting in overrides for a in ("--set", setting)]
    return shlex.join(args)


def shown_path(path: str | Path) -> str:
    """``path`` relative to the current folder where it is under it (shorter to read)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
