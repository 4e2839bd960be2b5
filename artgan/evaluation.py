"""Task evaluations: a plugin says what to compare and how to score it; the core does the rest (no torch).

A task plugin registers an :class:`Evaluation` through ``artgan_register_evaluations``::

    @artgan.hookimpl
    def artgan_register_evaluations(register):
        register("superres", lazy("artgan_superres.evaluate:superres_evaluation"))

and the core builds ``artgan evaluate superres`` from it, with the same options for every task:

- ``--data`` a folder of images (or one image) and ``--split`` which of its files
  (:mod:`artgan.splits`: ``all``, ``heldout`` or ``train``);
- ``--model NAME|PATH`` (repeatable) the trained models to compare with the task's baselines,
  ``--baselines`` which baselines;
- ``--out FILE`` the results JSON, ``--card CARD`` a model card to add them to
  (:func:`artgan.cards.update_card`), ``--json`` the results on stdout instead of a table,
  ``--per-image``, ``-q``;
- the task's own options (``Evaluation.options``, e.g. ``--scale``).

For each file of the split, ``load(path, request)`` gives ``(inputs, reference)``: the NHWC float32
images in [0, 1] that every method gets, and what ``score(outputs, reference, request)`` compares
their outputs with. ``methods(request)`` builds the methods compared (steps, usually with
``request.step(...)``). The results JSON (one format for every task) holds each method's mean
of each metric and its per-file scores; :func:`artgan.cards.table_rows` renders it for the terminal and cards.

An evaluation that is not one score per file (augment's trains classifiers over seeds on a
registry dataset) gives ``run(request, progress)`` instead of ``load``/``score``/``methods``: it
makes the rows itself and returns the results JSON's own part (``dataset``, ``split``, ``images``,
``methods`` with each metric's value, optionally ``summary`` lines and facts of its own); the core
adds the rest and builds the same command without ``--data``, ``--split``, ``--baselines`` and
``--per-image``, which mean nothing there.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .cards import table_rows
from .errors import ArtganError

Method = Callable[[np.ndarray], np.ndarray]  # NHWC float32 [0, 1] -> NHWC float32 [0, 1]


@dataclass(frozen=True)
class Metric:
    """One number an evaluation reports per file and, as a mean, per method."""

    name: str
    label: str = ""  # the table's column heading (default: the name)
    format: str = ".4f"
    unit: str = ""  # shown with the gain over the baseline (e.g. "dB")


@dataclass(frozen=True)
class Option:
    """A task's own option of ``artgan evaluate TASK`` (``--name``); its value reaches
    ``load``/``methods``/``score`` as ``request.options[name]``."""

    default: Any
    help: str
    type: Any = None  # a click type (click.IntRange(2, 8), ...); default: the default's type


@dataclass
class Request:
    """What one ``artgan evaluate TASK`` run asks: passed to the evaluation's functions."""

    task: str
    data: Path | None  # None for an evaluation with its own data (``Evaluation.run``)
    split: str | None
    models: list[str]
    baselines: list[str]
    options: dict[str, Any]
    registry: Any = None

    def step(self, spec: str | dict[str, Any]):
        """A post-processing step from the registry (``"bicubic:scale=2"`` or a mapping)."""
        from .steps import build_step

        return build_step(self.registry, spec)


@dataclass
class Evaluation:
    """A task's evaluation, as its plugin registers it: ``load``, ``score`` and ``methods`` (one
    score per file of ``--data``), or ``run`` (a whole protocol with its own data)."""

    help: str  # the command's help: what is measured and how, with an example (``\\b`` before it)
    metrics: list[Metric]
    load: Callable[[Path, Request], tuple[np.ndarray, Any]] | None = None
    score: Callable[[np.ndarray, Any, Request], dict[str, float]] | None = None
    methods: Callable[[Request], dict[str, Method]] | None = None
    baselines: tuple[str, ...] = ()  # compared by default; the first is the one gains are measured from
    options: dict[str, Option] = field(default_factory=dict)
    default_split: str = "all"
    protocol: Callable[[Request], str] | str = ""  # one line: how the numbers were made
    note: str = ""  # shown under the table (what a metric means)
    #: the results' section title in a model card (``--card``); default: ``"DATASET (split SPLIT)"``
    card_title: Callable[[dict[str, Any]], str] | None = None
    #: instead of load/score/methods: ``run(request, progress)`` -> the results' own part (module docstring)
    run: Callable[[Request, bool], dict[str, Any]] | None = None
    #: with load/score/methods: ``summary(results)`` -> headline lines under the table, from the
    #: per-image scores (e.g. a model against the best baseline on each image); in ``"summary"``
    summary: Callable[[dict[str, Any]], list[str]] | None = None

    def __post_init__(self):
        per_file = [fn for fn in ("load", "score", "methods") if getattr(self, fn) is not None]
        if self.run is None and len(per_file) < 3:
            raise ArtganError("Evaluation: give load, score and methods (one score per file), or run")
        if self.run is not None and per_file:
            raise ArtganError(f"Evaluation: give run or load/score/methods, not both ({', '.join(per_file)} given)")

    @property
    def per_file(self) -> bool:
        """Whether it scores each file of ``--data`` (else ``run`` does everything)."""
        return self.run is None


def plugin_of(task: str, evaluation: Evaluation, registry: Any = None) -> str:
    """The plugin that registered ``task`` in ``registry``; without one (an evaluation run from
    Python), the top-level module its functions come from."""
    entries = getattr(registry, "entries", None) or {}
    registration = entries.get("evaluation", {}).get(task)
    if registration is not None:
        return registration.plugin
    function = evaluation.run or evaluation.load
    return (getattr(function, "__module__", None) or "unknown").split(".")[0]


class PluginFailure(ArtganError):
    """An evaluation's own function raised something other than an :class:`ArtganError`."""


def call_plugin(task: str, plugin: str, what: str, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, one of an evaluation's own functions: an exception other than an
    :class:`ArtganError` (a bug in the plugin) becomes one line naming the task, the plugin and
    ``what`` failed, e.g. ``evaluate superres: plugin 'x' failed in score (bicubic on a.png):
    ValueError: ...``. The machine's errors (files, memory) and Ctrl-C pass as they are."""
    try:
        return function(*args)
    except (ArtganError, OSError, MemoryError):
        raise
    except (Exception, SystemExit) as exc:  # sys.exit() inside a plugin is its bug too
        detail = " ".join(str(exc).split())[:300]
        raise PluginFailure(f"evaluate {task}: plugin {plugin!r} failed in {what}: {type(exc).__name__}"
                            f"{': ' + detail if detail else ''} (a bug in the plugin, not in artgan)") from exc


def evaluate(task: str, evaluation: Evaluation, request: Request, *, progress: bool = False) -> dict[str, Any]:
    """Run every method on every file of the request's split (or the evaluation's ``run``); the results JSON."""
    plugin = plugin_of(task, evaluation, request.registry)
    if not evaluation.per_file:
        return _run_protocol(task, evaluation, request, progress, plugin)
    from .images import list_images
    from .splits import split_files

    if not request.data.exists():
        raise ArtganError(f"evaluate {task}: {request.data} not found; give --data a folder of images")
    files = split_files(list_images(request.data), request.split)
    if not files:
        raise ArtganError(f"evaluate {task}: no images in {request.data} (split {request.split})")
    methods = call_plugin(task, plugin, "methods", evaluation.methods, request)
    if not methods:
        raise ArtganError(f"evaluate {task}: nothing to evaluate; give --model or --baselines")
    names = [m.name for m in evaluation.metrics]
    scores: dict[str, dict[str, dict[str, float]]] = {name: {} for name in methods}
    for path in _progress(files, progress):
        loaded = call_plugin(task, plugin, f"load ({path.name})", evaluation.load, path, request)
        if not isinstance(loaded, tuple) or len(loaded) != 2:
            raise PluginFailure(f"evaluate {task}: plugin {plugin!r}: load ({path.name}) returned "
                                f"{type(loaded).__name__}, not (inputs, reference) (a bug in the plugin, not in artgan)")
        inputs, reference = loaded
        for name, method in methods.items():
            outputs = call_plugin(task, plugin, f"method {name!r} ({path.name})", method, inputs)
            where = f"score ({name} on {path.name})"
            try:
                figures = call_plugin(task, plugin, where, evaluation.score, outputs, reference, request)
            except PluginFailure:
                raise
            except ArtganError as exc:  # the plugin refused the outputs: say whose and where
                raise ArtganError(f"evaluate {task}: {name} on {path.name}: {exc}") from None
            scores[name][path.stem] = _figures(task, plugin, where, figures, names)
    result = {"task": task, "data": str(request.data), "dataset": request.data.name, "split": request.split,
              "images": len(files), "options": dict(request.options), "protocol": _protocol(evaluation, request, plugin),
              "metrics": _metrics(evaluation), "baseline": next((b for b in request.baselines if b in methods), None),
              "note": evaluation.note,
              "methods": {name: {**{k: float(np.mean([s[k] for s in per.values()])) for k in names}, "per_image": per}
                          for name, per in scores.items()}}
    if evaluation.summary is not None:
        result["summary"] = [str(line) for line in call_plugin(task, plugin, "summary", evaluation.summary, result)]
    return result


def _figures(task: str, plugin: str, where: str, figures: Any, names: list[str]) -> dict[str, float]:
    """What ``score`` returned, as name -> float, with every metric; else the plugin's bug, named."""
    try:
        out = {str(k): float(v) for k, v in figures.items()}
    except (AttributeError, TypeError, ValueError):
        raise PluginFailure(f"evaluate {task}: plugin {plugin!r}: {where} returned {str(figures)[:200]}, not a "
                            f"mapping of metric name -> number (a bug in the plugin, not in artgan)") from None
    missing = [n for n in names if n not in out]
    if missing:
        raise PluginFailure(f"evaluate {task}: plugin {plugin!r}: {where} returned no {', '.join(map(repr, missing))}, "
                            f"listed in its Evaluation.metrics; it returned {', '.join(map(repr, out)) or 'nothing'} "
                            f"(a bug in the plugin, not in artgan)")
    return out


def _run_protocol(task: str, evaluation: Evaluation, request: Request, progress: bool, plugin: str) -> dict[str, Any]:
    """An evaluation's own ``run``, with the fields every results JSON has (its own win)."""
    own = call_plugin(task, plugin, "run", evaluation.run, request, progress)
    missing = [k for k in ("dataset", "split", "images", "methods") if k not in own]
    if missing:  # a plugin's bug, named so that its author sees what to return
        raise ArtganError(f"evaluate {task}: plugin {plugin!r}: its run() returned no {', '.join(missing)}")
    return {"task": task, "options": dict(request.options), "protocol": _protocol(evaluation, request, plugin),
            "metrics": _metrics(evaluation), "baseline": None, "note": evaluation.note, **own}


def _protocol(evaluation: Evaluation, request: Request, plugin: str) -> str:
    if not callable(evaluation.protocol):
        return evaluation.protocol
    return call_plugin(request.task, plugin, "protocol", evaluation.protocol, request)


def _metrics(evaluation: Evaluation) -> dict[str, dict[str, str]]:
    return {m.name: {"label": m.label or m.name, "format": m.format, "unit": m.unit} for m in evaluation.metrics}


def format_table(result: dict[str, Any], per_image: bool = False) -> str:
    """The results as a plain-text table (what ``artgan evaluate TASK`` prints)."""
    header, rows = table_rows(result)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [f"{result['dataset']} ({result['images']} images, split {result.get('split', 'all')}): "
             f"{result.get('protocol', '')}", line(header), *map(line, rows)]
    if result.get("summary"):  # headline figures that are no column (e.g. a ratio of two rows)
        lines += ["", *result["summary"]]
    if per_image:
        first = next(iter(result["metrics"]))
        names = list(result["methods"])
        lines += ["", f"{'file (' + first + ')':<24} " + " ".join(f"{n[:12]:>12}" for n in names)]
        for im in next(iter(result["methods"].values()))["per_image"]:
            lines.append(f"{im:<24} " + " ".join(
                f"{result['methods'][n]['per_image'][im][first]:>12{result['metrics'][first]['format']}}" for n in names))
    return "\n".join(lines)


def _progress(files: list[Path], enabled: bool):
    if not enabled:
        return files
    from tqdm.auto import tqdm

    return tqdm(files, desc="evaluate", unit="image", file=sys.stderr)


# -- the command line: `artgan evaluate TASK` for every registered evaluation --------------------

def add_evaluation_commands(group, registry) -> None:
    """Add ``TASK`` to the ``evaluate`` click group for each registered evaluation. A task that
    cannot be used (its name claimed by two plugins, its factory failing) still gets a command,
    one that says why: never a bare "No such command"."""
    conflicts = sorted(name for kind, name in getattr(registry, "conflicts", {}) if kind == "evaluation")
    for task in sorted({*registry.names("evaluation"), *conflicts}):
        if task in group.commands:  # a command of the same name wins; `artgan plugins` shows both
            continue
        try:
            evaluation = registry.create("evaluation", task)
            if not isinstance(evaluation, Evaluation):
                plugin = registry.get("evaluation", task).plugin
                raise ArtganError(f"evaluation {task!r} (plugin {plugin!r}): its factory returned "
                                  f"{type(evaluation).__name__}, not an artgan.evaluation.Evaluation")
        except ArtganError as exc:  # one broken evaluation does not take the CLI down
            import warnings

            from .plugins import PluginWarning
            if task not in conflicts:  # the conflict was warned about when the plugins loaded
                warnings.warn(f"evaluate {task}: {exc}", PluginWarning, stacklevel=2)
            group.add_command(unavailable_command(task, str(exc)))
            continue
        group.add_command(evaluation_command(task, evaluation))


def unavailable_command(task: str, reason: str):
    """``artgan evaluate TASK`` for a task that cannot run: whatever its arguments, one line with the reason."""
    import click

    def run(args):
        raise ArtganError(reason if reason.startswith(f"evaluate {task}") else f"evaluate {task}: {reason}")

    return click.Command(task, callback=run, params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
                         help=f"Unavailable: {reason}", short_help="unavailable (run it to see why)",
                         add_help_option=False,
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


def evaluation_command(task: str, evaluation: Evaluation):
    import click

    from .splits import SPLITS

    def run(models, out, card, json_, quiet, data=None, split=None, baselines="", per_image=False, **options):
        from .plugins import get_registry

        try:
            request = Request(task, data, split, list(models), [b.strip() for b in baselines.split(",") if b.strip()],
                              options, get_registry())
            result = evaluate(task, evaluation, request, progress=not quiet)
            if out:
                from .files import write_json
                write_json(out, result)
            if card:
                add_to_card(card, task, evaluation, result, request.registry)
        except (ArtganError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(json.dumps(result, indent=2, default=str) if json_  # default: Path options
                   else format_table(result, per_image=per_image))

    per_file = evaluation.per_file  # else `run` has its own data, no files to split and no baselines
    params = [
        *([click.Option(["--data"], required=True, type=click.Path(exists=True, path_type=Path),
                        help="A folder of images (or one image)."),
           click.Option(["--split"], default=evaluation.default_split, show_default=True, type=click.Choice(SPLITS),
                        help="Which files of --data: all, or artgan.splits' heldout quarter or the rest (train).")]
          if per_file else []),
        click.Option(["--model", "models"], multiple=True, metavar="NAME|PATH",
                     help="A trained model (name or .onnx); repeatable. Default: the task's own choice."),
        *([click.Option(["--baselines"], default=",".join(evaluation.baselines), show_default=True,
                        help="Baselines to compare with, comma-separated ('' for none).")] if per_file else []),
        click.Option(["--out"], type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the results JSON here."),
        click.Option(["--card"], type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="Add the results to this model card (NAME.card.json; NAME.card.md is re-rendered)."),
        click.Option(["--json", "json_"], is_flag=True, help="Print the results JSON instead of a table."),
        *([click.Option(["--per-image"], is_flag=True, help="Also print the first metric per file.")]
          if per_file else []),
        click.Option(["-q", "--quiet"], is_flag=True, help="No progress bar."),
    ]
    for name, opt in evaluation.options.items():
        params.append(click.Option([f"--{name.replace('_', '-')}", name], default=opt.default, show_default=True,
                                   type=opt.type, help=opt.help))
    return click.Command(task, callback=run, params=params, help=evaluation.help,
                         context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})


def add_to_card(card: str | Path, task: str, evaluation: Evaluation, result: dict[str, Any], registry: Any = None) -> None:
    """Put ``result`` in a model card as its own section, titled by the evaluation's
    ``card_title`` (default: ``"DATASET (split SPLIT)"``); the card's Markdown is re-rendered."""
    from .cards import update_card

    title = call_plugin(task, plugin_of(task, evaluation, registry), "card_title", evaluation.card_title or _card_title,
                        result)
    update_card(card, f"evaluation/{title}", {k: v for k, v in result.items() if k != "data"})


def _card_title(result: dict[str, Any]) -> str:
    return f"{result['dataset']} (split {result['split']})"
