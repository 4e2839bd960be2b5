"""``artgan build TASK``: one model for a task, from data to installed, in one command.

A task builds one of two ways (:attr:`artgan.tasks.Task.builder`):

- **its pipeline** (most tasks): the task's reference pipeline (:attr:`~artgan.tasks.Task.pipelines`)
  trains and exports, with the data folder set at :attr:`~artgan.tasks.Task.data_keys` (superres,
  inpaint), or on the data the pipeline names itself when it declares none (augment, gan: built-in
  digits, no ``--data``); the export verifies the ONNX file against PyTorch and writes the card,
  and the card gets what the model is and how it was trained (:mod:`artgan.build_card`);
- **its plugin's builder**, where a model is made from something other than a folder of images
  (style: one painting): :class:`BuildRequest` in, :class:`BuiltModel` out, the model exported
  with its card in its run folder.

Then, the same for every task: the task's evaluation measures the model beside its baselines on
the data's held-out split (or on ``eval_data``, all of it; an evaluation with its own data, such
as augment's, runs on that) and adds the table to the card; the card also gets ONNX against
PyTorch on the real inputs the task's step makes and the step's speed at 512x512, and the command
that reproduces the model. Last, the model, its card and its builder's other files are installed
together where ``--step TASK:model=NAME`` finds them (:func:`artgan.model_search.installing`).

Read top to bottom; each part is the same code the separate commands (``run``, ``evaluate``) use.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ArtganError
from .tasks import Task

#: a model's name becomes its file names: no folders, no leading dot
_MODEL_NAME = re.compile(r"[A-Za-z0-9][\w.-]*")


@dataclass
class BuildRequest:
    """What ``artgan build TASK`` asks of a task's own builder (:attr:`artgan.tasks.Task.builder`):
    the options as given (``data``: a file or a folder, or None; ``seconds``: ``--minutes`` in
    seconds, None when not given; ``overrides``: the ``--set KEY=VALUE`` settings, the builder's to
    read), and how to report (``progress``: show progress bars; ``log``: one line at a time). The
    core has checked the name and that it may install under it (``--to``, ``--force``)."""

    task: Task
    name: str
    data: Path | None
    pipeline: Path | None
    seconds: float | None
    overrides: list[str]
    runs: Path
    registry: Any
    plugin_manager: Any = None
    progress: bool = True
    log: Callable[[str], None] = lambda msg: None


@dataclass
class BuiltModel:
    """What a build trained and exported, before the shared parts (evaluation, install).

    - ``model``: the exported ``.onnx`` file, its card beside it (``NAME.card.json``);
    - ``run_dir``: the run folder;
    - ``checkpoint``: what it was exported from (the core's ONNX-against-PyTorch check on the
      evaluation's real inputs rebuilds the module from it), or None;
    - ``files``: other files installed beside the model, under their own names, each starting with
      ``NAME.`` (style: ``NAME.reference.json``, ``NAME.contact.png``);
    - ``evaluation_options``: options of the task's evaluation this model is measured with (style:
      its ``painting``); the model's metadata and ``--eval-set`` add theirs;
    - ``pipeline``, ``settings``: what ran, for the card's ``build`` section.
    """

    model: Path
    run_dir: Path
    checkpoint: Path | None = None
    files: tuple[Path, ...] = ()
    evaluation_options: dict[str, Any] = field(default_factory=dict)
    pipeline: str = ""
    settings: list[str] = field(default_factory=list)


@dataclass
class BuildReport:
    """What one build made: the run folder, the installed model and the evaluation's result."""

    task: str
    run_dir: Path
    installed: Path
    evaluation: dict[str, Any] | None = None
    overrides: list[str] = field(default_factory=list)


def build_task(task: Task, *, data: str | Path | None = None, name: str, registry: Any, plugin_manager: Any = None,
               pipeline: str | Path | None = None, seconds: float | None = None, overrides: list[str] = (),
               eval_data: str | Path | None = None, eval_options: list[str] = (), runs: str | Path = "runs",
               to: str | Path | None = None, force: bool = False, progress: bool = True,
               log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)) -> BuildReport:
    """Train, export, evaluate and install one model of ``task``: from the images in the folder
    ``data`` (a task with ``data_keys``), from what the task's builder takes as ``data`` (style: a
    painting) or from its pipeline's own data (``data`` None); ``eval_data``: evaluate on all of
    that folder instead of ``data``'s held-out quarter; ``eval_options``: ``KEY=VALUE`` options of
    the task's evaluation."""
    from .cards import read_card, update_card
    from .model_search import check_installable, installing, user_models_root

    # -- checked before an hour of training: the name, the install, the evaluation's options -------
    if not _MODEL_NAME.fullmatch(name):
        raise ArtganError(f"--name {name!r}: use letters, digits, '_', '-' and '.' (it becomes a file name)")
    if eval_data is not None and not Path(eval_data).is_dir():
        raise ArtganError(f"build {task.name}: --eval-data {eval_data}: no such folder")
    root = Path(to) if to is not None else user_models_root()
    check_installable(task.models, name, root, force=force)
    evaluation = registry.create("evaluation", task.evaluation) if task.evaluation else None
    chosen = _evaluation_options(task, evaluation, eval_options)
    if eval_data is not None and evaluation is not None and not evaluation.per_file:
        raise ArtganError(f"build {task.name}: --eval-data: artgan evaluate {task.evaluation} brings its own data; "
                          f"leave --eval-data out")
    data = Path(data) if data is not None else None

    # -- train and export: the task's builder, or its pipeline -------------------------------------
    if task.builder is not None:
        built = task.builder(BuildRequest(task, name, data, Path(pipeline) if pipeline else None, seconds,
                                          list(overrides), Path(runs), registry, plugin_manager, progress, log))
        if not isinstance(built, BuiltModel) or not Path(built.model).is_file():
            raise ArtganError(f"build {task.name}: the task's builder made no model file ({built!r})")
    else:
        built = _build_from_pipeline(task, data, name, pipeline, seconds, list(overrides), Path(runs), registry,
                                     plugin_manager, progress, log)
    model = Path(built.model)

    # -- evaluate beside the baselines; ONNX against PyTorch and the step's speed on real inputs -----
    result = None
    from_model = {k: v for k, v in read_card(model).get("metadata", {}).items()
                  if evaluation is not None and k in evaluation.options}
    options = {**from_model, **built.evaluation_options}
    if evaluation is not None and not evaluation.per_file:  # it brings its own data (``Evaluation.run``)
        result = _evaluate(task, evaluation, model, name, None, None, {**options, **chosen}, registry, progress, log)
    elif evaluation is not None:
        folder, split = ((Path(eval_data), "all") if eval_data is not None else
                         (data, "heldout") if task.builder is None and task.data_keys else (None, None))
        if folder is None:
            log(f"  artgan evaluate {task.evaluation} on a test set: not run (give --eval-data DIR)")
        else:
            result = _evaluate(task, evaluation, model, name, folder, split, {**options, **chosen}, registry,
                               progress, log)
            if task.step:
                # a builder that checked ONNX against PyTorch on real inputs of its own keeps its check
                parity = "real_inputs" not in read_card(model) and built.checkpoint is not None
                _check_on_real_inputs(task, evaluation, model, built.checkpoint if parity else None, folder, split,
                                      options, registry, log)
    shown = None if task.builder is not None else pipeline or task.pipelines[0]
    update_card(model, "command", _command(task, shown, data, name, seconds, list(overrides), eval_data,
                                           list(eval_options)))
    update_card(model, "build", {"pipeline": built.pipeline, "settings": built.settings, "run": built.run_dir.name})

    # -- install: the model, its card and its files together, or nothing ---------------------------
    with installing(task.models, name, root, force=force) as staging:
        shutil.copyfile(model, staging / f"{name}.onnx")
        shutil.copyfile(model.with_name(f"{model.stem}.card.json"), staging / f"{name}.card.json")
        for extra in built.files:
            if not Path(extra).name.startswith(f"{name}."):
                raise ArtganError(f"build {task.name}: the builder's file {Path(extra).name} is not named {name}.*")
            shutil.copyfile(extra, staging / Path(extra).name)
        update_card(staging / f"{name}.onnx", "file", f"{name}.onnx")  # and renders NAME.card.md
    installed = root / task.models / f"{name}.onnx"
    log(f"installed {installed}: use it as --step {task.step}:model={name}" if task.step else f"installed {installed}")
    return BuildReport(task.name, built.run_dir, installed, result, built.settings)


def _build_from_pipeline(task: Task, data: Path | None, name: str, pipeline: str | Path | None,
                         seconds: float | None, overrides: list[str], runs: Path, registry: Any, plugin_manager: Any,
                         progress: bool, log: Callable[[str], None]) -> BuiltModel:
    """Train and export with the task's pipeline: ``data`` set at its ``data_keys``, or none
    (the pipeline trains on the data it names); the card's summary and training sections."""
    from .cards import update_card
    from .checkpoints import load_recipe
    from .pipeline import RunContext, check_factories, load_pipeline, new_run_dir, run_pipeline
    from . import build_card

    if pipeline is None:
        if not task.pipelines:
            raise ArtganError(f"build {task.name}: the task names no pipeline to build with; "
                              f"build it with: {task.build or 'its own command'}")
        pipeline = task.pipelines[0]
    if task.data_keys and data is None:
        raise ArtganError(f"build {task.name}: give --data DIR, a folder of images to train on")
    if not task.data_keys and data is not None:
        raise ArtganError(f"build {task.name}: --data: the task's pipeline trains on the data it names itself "
                          f"(Task.data_keys is empty); leave --data out or change the data with --set")
    if data is not None and not data.is_dir():
        raise ArtganError(f"build {task.name}: --data {data}: no such folder")
    settings = [f"{key}={data}" for key in task.data_keys] + list(task.build_settings)
    settings += [f"train.seconds={seconds:g}"] if seconds is not None else []
    settings += list(overrides)
    spec = load_pipeline(pipeline, overrides=settings, registry=registry)
    check_factories(spec, registry, settings, build_them=False)

    # the export verifies the ONNX file and writes its card
    run_dir = new_run_dir(runs, name)
    ctx = run_pipeline(spec, RunContext(run_dir=run_dir, registry=registry, plugin_manager=plugin_manager,
                                        progress=progress, log=log))
    if ctx.model is None or not Path(ctx.model).is_file():
        raise ArtganError(f"build {task.name}: {pipeline} exported no model (it needs an export stage)")
    model = Path(ctx.model)
    update_card(model, "summary", build_card.summary(task, name, spec.description))
    if "train" in ctx.results:
        module = load_recipe(ctx.checkpoint, registry)[0].export_spec().module
        update_card(model, "training", build_card.training(run_dir, spec.raw, ctx.results["train"],
                                                           sum(p.numel() for p in module.parameters())))
    return BuiltModel(model, run_dir, ctx.checkpoint, pipeline=str(pipeline), settings=settings)


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


def _evaluate(task: Task, evaluation: Any, model: Path, name: str, data: Path | None, split: str | None,
              options: dict[str, Any], registry: Any, progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """The task's evaluation of ``model`` beside its baselines on ``data``'s ``split`` (None: an
    evaluation with its own data), added to the model's card. Its options: the defaults, then
    those the model's metadata also names (an x4 upscaler is measured at x4) and its builder's,
    then the ones given."""
    from .evaluation import Request, add_to_card, evaluate, format_table

    options = {**{n: o.default for n, o in evaluation.options.items()}, **options}
    baselines = list(evaluation.baselines) if evaluation.per_file else []
    request = Request(task.evaluation, data, split, [str(model)], baselines, options, registry)
    result = evaluate(task.evaluation, evaluation, request, progress=progress)
    # the row is the model by the name it installs under, not the run folder's path
    labels = _labels(model)
    result["methods"] = {name if m in labels else m: v for m, v in result["methods"].items()}
    log(format_table(result))
    add_to_card(model, task.evaluation, evaluation, result, registry)
    return result


def _labels(model: Path) -> set[str]:
    return {str(model), model.name, model.stem}  # however an evaluation labels a model given by path


def _check_on_real_inputs(task: Task, evaluation: Any, model: Path, checkpoint: Path | None, data: Path,
                          split: str, from_model: dict[str, Any], registry: Any, log: Callable[[str], None]) -> None:
    """ONNX against PyTorch (the module exported from ``checkpoint``; None: not checked here) on
    what the task's step feeds the model for the first evaluation image, and the step's speed on
    it at 512x512, each into the card."""
    from . import build_card
    from .cards import read_card, update_card
    from .checkpoints import load_recipe
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
    if checkpoint is not None:  # else its builder checked the model on real inputs of its own
        module = load_recipe(checkpoint, registry)[0].export_spec().module
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


def _command(task: Task, pipeline: str | Path | None, data: Path | None, name: str, seconds: float | None,
             overrides: list[str], eval_data: str | Path | None, eval_options: list[str]) -> str:
    """The ``artgan build`` command line that makes this model again (paths as given, the
    task's own pipeline relative to the current folder; none for a task with its own builder)."""
    args = ["artgan", "build", task.name] + (["--pipeline", shown_path(pipeline)] if pipeline is not None else [])
    args += ["--data", str(data)] if data is not None else []
    args += ["--name", name]
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
