"""Pipelines: a YAML list of stages (train, export, generate, process) run into one run folder.

Everything is validated (keys, types, plugin names and their parameters) before anything runs.

Names (docs/glossary.md): a *step* is a post-processing step (``artgan.steps.Step``, the
``process`` stage's ``steps:``, ``artgan process --step``). A pipeline is a list of *stages*, and
training runs for ``iterations``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from .config import (MAX_SEED, Located, _dotted, build, finite_params_error, load_yaml, loads_yaml, named_mapping,
                     param_type_error, parse_override, shown)
from .errors import ArtganError, ConfigError
from .files import RUN_OWN_NAMES, write_text
from .train_options import TrainOptions


# -- the schema of each pipeline stage -------------------------------------------------------------

@dataclass
class ExportStage:
    checkpoint: str | None = None  # default: this run's last checkpoint
    out: str = "export/generator.onnx"  # relative to the run folder
    opset: int | None = None  # default: artgan.export.DEFAULT_OPSET
    precision: Literal["fp32", "fp16"] = "fp32"  # fp16: for GPU deployment
    quantize: Literal["int8"] | None = None  # int8: for CPU deployment
    verify: bool = True
    tolerance: float | None = None  # largest |onnxruntime - PyTorch|; default per precision
    min_psnr: float | None = None  # dB; default per precision
    optimize: bool = True  # exact rewrites that run faster (artgan.export.export_onnx, optimize)


@dataclass
class GenerateStage:
    model: str | None = None  # default: this run's last export
    n: int = 64
    seed: int = 0
    truncation: float | None = None
    batch_size: int = 64
    out: str = "generated"  # a folder in the run folder: grid.png and one PNG per image
    save_images: bool = True


@dataclass
class ProcessStage:
    steps: list  # post-processing step specs: "superres:scale=2" or {name: superres, scale: 2}
    input: str | None = None  # image file or folder; default: the images the last stage made
    out: str = "processed"


STAGE_KINDS: dict[str, type] = {"train": TrainOptions, "export": ExportStage,
                                "generate": GenerateStage, "process": ProcessStage}


@dataclass
class Pipeline:
    name: str
    stages: list  # [(kind, spec dataclass)], built by load_pipeline
    seed: int = 0
    description: str = ""
    source: str = ""
    raw: dict = field(default_factory=dict)  # the resolved mapping, saved in the run folder


# -- loading ---------------------------------------------------------------------------------------

def apply_overrides(doc: Located, overrides: list[str]) -> None:
    """``train.iterations=200``: the first part is a top-level key or the kind of a stage (its
    first occurrence); the rest walks into that stage's mapping."""
    data = doc.data
    for text in overrides:
        parts, value = parse_override(text)
        stages = data.get("stages") if isinstance(data, dict) else None
        target: Any = data
        if isinstance(stages, list) and parts[0] in STAGE_KINDS:
            found = [s for s in stages if isinstance(s, dict) and parts[0] in s]
            if not found:
                raise ConfigError(f"--set {text}: the pipeline has no {parts[0]!r} stage", file=doc.file)
            if found[0][parts[0]] is None:
                found[0][parts[0]] = {}
            target, parts = found[0][parts[0]], parts[1:]
            if not parts or not isinstance(target, dict):
                raise ConfigError(f"--set {text}: name a key inside the stage, e.g. --set {text.split('=')[0]}.iterations=200",
                                  file=doc.file)
        for p in parts[:-1]:
            if not isinstance(target.get(p), dict):
                target[p] = {} if target.get(p) is None else {"name": target[p]}
            target = target[p]
        target[parts[-1]] = value


def load_pipeline(path: str | Path | None = None, *, text: str | None = None,
                  overrides: list[str] = (), registry=None) -> Pipeline:
    """Read, override and validate a pipeline. With ``registry``, plugin names and their
    parameters are checked too, so a typo fails here and not after an hour of training."""
    doc = loads_yaml(text, str(path or "<string>")) if text is not None else load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError("a pipeline is a mapping with 'name:' and 'stages:'", file=doc.file, line=1)
    apply_overrides(doc, list(overrides))
    data = doc.data
    for key in data:
        if key not in ("name", "seed", "description", "stages"):
            raise ConfigError("unknown key; expected name, seed, description, stages",
                              file=doc.file, key=str(key), line=doc.line((key,)))
    name = data.get("name") or Path(doc.file).stem
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
        raise ConfigError(f"expected a name of letters, digits, '_', '-', '.', got {name!r}",
                          file=doc.file, key="name", line=doc.line(("name",)))
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not -MAX_SEED <= seed <= MAX_SEED:
        raise ConfigError(f"expected an integer from -(2**63 - 1) to 2**63 - 1, got {shown(seed)}", file=doc.file, key="seed",
                          line=doc.line(("seed",)))
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError("expected a non-empty list of stages (train, export, generate, process)",
                          file=doc.file, key="stages", line=doc.line(("stages",)))
    stages = []
    for i, item in enumerate(raw_stages):
        path = ("stages", i)
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"each stage is a mapping with one key, one of {', '.join(STAGE_KINDS)}",
                              file=doc.file, key=_dotted(path), line=doc.line(path))
        (kind, body), = item.items()
        if kind not in STAGE_KINDS:
            import difflib
            close = difflib.get_close_matches(str(kind), list(STAGE_KINDS), n=1)
            raise ConfigError(f"unknown stage {kind!r}{' (did you mean ' + repr(close[0]) + '?)' if close else ''}; "
                              f"stages: {', '.join(STAGE_KINDS)}", file=doc.file, key=_dotted(path + (kind,)),
                              line=doc.line(path + (kind,)))
        spec = build(STAGE_KINDS[kind], body, doc, path + (kind,))
        for key in getattr(spec, "REQUIRED_IN_A_PIPELINE", ()):
            if getattr(spec, key) is None:
                raise ConfigError(f"missing required key {key!r} (a {key} name, or a mapping with 'name:')",
                                  file=doc.file, key=_dotted(path + (kind,)), line=doc.line(path + (kind,)))
        stages.append((kind, spec))
        if registry is not None:
            _check_plugins(kind, spec, registry, doc, path + (kind,))
    return Pipeline(name=name, stages=stages, seed=seed, description=data.get("description", ""),
                    source=doc.file, raw=data)


def _check_plugins(kind: str, spec: Any, registry, doc: Located, path: tuple) -> None:
    def check(what: str, key: str, value: Any, extra: tuple[str, ...] = (), at: tuple = ()) -> None:
        where = dict(file=doc.file, key=key, line=doc.line(at or path + (key.split(".")[-1],)))
        name, params = named_mapping(value, doc, path + (key.split(".")[-1],), what)
        try:
            reg = registry.get(what, name)
        except ArtganError as exc:
            raise ConfigError(str(exc), **where) from None
        missing = _bind_error(reg.factory, params, extra)
        if missing:
            raise ConfigError(f"{what} {name!r} (plugin {reg.plugin!r}): {missing}", **where)

    if kind == "train":
        check("dataset", "train.dataset", spec.dataset)
        check("architecture", "train.architecture", spec.architecture, extra=("info", "loss"))
        if spec.loss is not None:
            check("loss", "train.loss", spec.loss)
    elif kind == "process":
        from .steps import parse_step_spec
        for j, s in enumerate(spec.steps):
            if isinstance(s, str):
                name, params = parse_step_spec(s)
                s = {"name": name, **params}
            check("step", f"process.steps[{j}]", s, at=path + ("steps", j))


def _bind_error(factory: Callable, params: dict[str, Any], extra: tuple[str, ...]) -> str:
    """Check params against the factory's signature; return a message or ''."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return ""
    try:
        sig.bind(**{**{e: None for e in extra if e in sig.parameters}, **params})
    except TypeError as exc:
        accepted = [p for p, prm in sig.parameters.items() if p not in extra and prm.kind not in
                    (prm.VAR_KEYWORD, prm.VAR_POSITIONAL)]
        from .config import unknown_param_hint
        return f"{exc}{unknown_param_hint(factory, params)}; accepted parameters: {', '.join(accepted) or 'none'}"
    return ""


# -- --dry-run: every plugin factory built with its parameters --------------------------------

def check_factories(pipeline: Any, registry: Any, overrides: list[str] = (), *, build_them: bool = True) -> None:
    """What ``--dry-run`` adds to schema checks: each plugin factory a pipeline names is called
    with its parameters (dataset, then architecture and loss with the dataset's info; process
    steps), and the files it reads must exist, so every value error a factory would raise shows
    now, as one line with the YAML's file:line, the key and the plugin. With ``build_them=False``
    (a real run, which builds them as it goes) only the parameters' types are checked against the
    factories' annotations, and ``out:`` paths: both cheap."""
    if pipeline.source and Path(pipeline.source).is_file():
        doc = load_yaml(pipeline.source)
        try:
            apply_overrides(doc, list(overrides))
        except Exception:  # already applied and checked once by load_pipeline; lines are what we need
            pass
    else:
        doc = Located(pipeline.raw, {}, pipeline.source or "<string>")
    check = _FactoryCheck(doc, registry, build_them)
    for i, (kind, spec) in enumerate(pipeline.stages):
        path = ("stages", i, kind)
        check.out_path(spec, path, kind)
        if kind == "train":
            check.train(spec, path)
        elif kind == "process":
            check.file(spec.input, path + ("input",))
            check.steps(spec.steps, path + ("steps",))
        else:
            key = "checkpoint" if kind == "export" else "model"
            check.file(getattr(spec, key, None), path + (key,))


class _FactoryCheck:
    """The checks of :func:`check_factories`, each error located in ``doc``."""

    def __init__(self, doc: Located, registry: Any, build_them: bool):
        self.doc, self.registry, self.build_them = doc, registry, build_them

    def where(self, path: tuple) -> dict[str, Any]:
        return dict(file=self.doc.file, key=_dotted(path), line=self.doc.line(path))

    def make(self, kind: str, value: Any, path: tuple, **extra: Any) -> Any:
        """Check the parameters of ``value`` (a name or {name, params}) against its factory's
        annotations, and call it when building; None when not."""
        name, params = named_mapping(value, self.doc, path, kind)
        try:
            reg = self.registry.get(kind, name)
        except Exception as exc:
            raise ConfigError(str(exc), **self.where(path)) from None
        who = f"{kind} {name!r} (plugin {reg.plugin!r})"
        bad_key, bad = param_type_error(reg.factory, params)
        if not bad:
            bad_key, bad = finite_params_error(params)
        if bad:
            at = path + ((bad_key,) if isinstance(value, dict) else ())
            raise ConfigError(f"{who}: {bad}", **self.where(at)) from None
        if not self.build_them:
            self.check_config(reg, who, params, path)
            return None
        try:
            return self.registry.create(kind, name, **params, **extra)
        except ConfigError:
            raise
        except Exception as exc:  # ArtganError or a plain ValueError/TypeError from the plugin's factory
            message = " ".join(str(exc).split())
            if not message.startswith(f"{kind} {name!r}"):
                message = f"{who}: {message if isinstance(exc, ArtganError) else f'{type(exc).__name__}: {message}'}"
            raise ConfigError(message, **self.where(path)) from None

    def check_config(self, reg: Any, who: str, params: dict[str, Any], path: tuple) -> None:
        """A recipe with a ``config_class`` (:class:`artgan.recipe.RecipeConfig`) has its knobs
        checked without building the model, so a real run refuses ``latent_dim: 0`` before it
        makes its run folder, as --dry-run does."""
        target = getattr(reg.factory, "resolve", None)
        target = target() if callable(target) else reg.factory
        config_class = getattr(target, "config_class", None)
        if config_class is None or not callable(getattr(config_class, "from_params", None)):
            return
        try:
            config_class.from_params(who, params)
        except ArtganError as exc:
            message = " ".join(str(exc).split())
            raise ConfigError(message if message.startswith(who) else f"{who}: {message}",
                              **self.where(path)) from None

    def train(self, spec: Any, path: tuple) -> None:
        dataset = self.make("dataset", spec.dataset, path + ("dataset",))
        loss = self.make("loss", spec.loss, path + ("loss",)) if spec.loss is not None else None
        info = getattr(dataset, "info", None)
        if self.build_them and info is None:
            raise ConfigError("the dataset has no `info` (DatasetInfo); its plugin breaks the dataset contract",
                              **self.where(path + ("dataset",)))
        self.make("architecture", spec.architecture, path + ("architecture",),
                  **({"info": info, "loss": loss} if self.build_them else {}))

    def steps(self, items: list, path: tuple) -> None:
        from .steps import parse_step_spec  # here: steps loads only for a process stage

        for j, item in enumerate(items):
            try:
                if isinstance(item, str):
                    name, params = parse_step_spec(item)
                    item = {"name": name, **params}
            except ArtganError as exc:
                raise ConfigError(str(exc), **self.where(path + (j,))) from None
            self.make("step", item, path + (j,))

    def file(self, value: str | None, path: tuple) -> None:
        """A file a step reads (a checkpoint, a model, input images) exists, when building."""
        if self.build_them and value and not Path(value).exists():
            raise ConfigError(f"{value}: no such file or folder (paths are relative to where you run artgan)",
                              **self.where(path))

    def out_path(self, spec: Any, path: tuple, kind: str) -> None:
        """Everything a run makes stays in its run folder."""
        out = getattr(spec, "out", None)
        if isinstance(out, str) and (Path(out).is_absolute() or ".." in Path(out).parts or not out.strip()):
            example = "export/generator.onnx" if kind == "export" else kind
            raise ConfigError(f"{out!r} leads out of the run folder; everything a run makes stays in it: give a "
                              f"relative path such as {example}", **self.where(path + ("out",)))
        first = Path(out).parts[0] if isinstance(out, str) and Path(out).parts else ""
        if first in RUN_OWN_NAMES:
            example = "export/generator.onnx" if kind == "export" else kind
            raise ConfigError(f"{out!r} would overwrite the run's own {first}; give another path such as "
                              f"{example}", **self.where(path + ("out",)))


def dump_pipeline(pipeline: Pipeline) -> str:
    return yaml.safe_dump(pipeline.raw, sort_keys=False)


# -- running ---------------------------------------------------------------------------------------

def new_run_dir(root: str | Path, name: str) -> Path:
    """``runs/NAME``, or ``runs/NAME-2``, ``-3``... : a new run never overwrites an old one."""
    root = Path(root)
    candidate, n = root / name, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{name}-{n}"
    return candidate


def latest_run_dir(root: str | Path, name: str) -> Path | None:
    root = Path(root)
    found = [p for p in root.glob(f"{name}*") if p.is_dir() and re.fullmatch(rf"{re.escape(name)}(-\d+)?", p.name)]
    if not found:
        return None
    return max(found, key=lambda p: int(p.name.rsplit("-", 1)[1]) if p.name != name else 1)


@dataclass
class RunContext:
    run_dir: Path
    registry: Any
    plugin_manager: Any = None
    resume: bool = False
    progress: bool = True
    checkpoint: Path | None = None
    model: Path | None = None
    images: list[Path] = field(default_factory=list)
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)
    results: dict[str, Any] = field(default_factory=dict)


def run_pipeline(pipeline: Pipeline, ctx: RunContext) -> RunContext:
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    claim_run_folder(ctx.run_dir, pipeline, resume=ctx.resume)
    if ctx.resume:  # checked before the run's own pipeline.yaml is replaced by this one
        check_resumable(pipeline, ctx)
    write_text(ctx.run_dir / "pipeline.yaml", dump_pipeline(pipeline))
    finished = False
    try:
        for i, (kind, spec) in enumerate(pipeline.stages):
            ctx.log(f"[{i + 1}/{len(pipeline.stages)}] {kind}")
            RUNNERS[kind](spec, pipeline, ctx)
        finished = True
    finally:  # the report is written for failed runs too: it shows how far they got
        if _is_main_process():
            from .report import write_report
            try:
                ctx.log(f"  report: {write_report(ctx.run_dir)}")
            except Exception as exc:
                if finished:
                    raise
                ctx.log(f"  no report: {exc}")
    return ctx


def run_writes(pipeline: Pipeline) -> list[str]:
    """The names a run of ``pipeline`` writes at the top of its folder."""
    from .files import RUN_OWN_NAMES

    names = list(RUN_OWN_NAMES)
    for _, spec in pipeline.stages:
        out = getattr(spec, "out", None)
        if isinstance(out, str) and Path(out).parts:
            first = Path(out).parts[0]
            names += [first] if len(Path(out).parts) > 1 else [first, *(Path(first).stem + s for s in
                                                                       (".card.json", ".card.md"))]
    return names


def claim_run_folder(run_dir: Path, pipeline: Pipeline, *, resume: bool = False) -> None:
    """A run writes only over what a run made. A folder is a run folder when it holds
    ``.artgan-run`` (:data:`artgan.files.RUN_MARKER`), written the first time a run takes it; a
    folder without it (a user's ``--out``) is taken only when it holds nothing the run would
    write (its files are left beside the run's), and is never resumed."""
    from .files import RUN_LOCK, RUN_MARKER

    if (run_dir / RUN_MARKER).is_file():
        return
    present = {p.name for p in run_dir.iterdir()} - {RUN_LOCK}
    if resume and present:  # (an empty folder is a fresh run, resumed or not)
        raise ArtganError(f"{run_dir}: not an artgan run folder (no {RUN_MARKER}), so --resume will not write "
                          f"into it; run without --resume into a new --out (if a run made it, create "
                          f"{run_dir / RUN_MARKER} to resume it)")
    clash = [name for name in dict.fromkeys(run_writes(pipeline)) if name in present]
    if clash:
        raise ArtganError(f"{run_dir}: holds {clash[0]}, which the run would write, and is not an artgan run "
                          f"folder (no {RUN_MARKER}); choose another --out, an empty or new folder")
    write_text(run_dir / RUN_MARKER, "This folder is an artgan run folder: `artgan run` writes and rewrites "
                                     "its files.\n")


def check_resumable(pipeline: Pipeline, ctx: RunContext) -> None:
    """On ``--resume``: the run's last checkpoint fits the pipeline's (first) train stage, so a
    resume that cannot work fails before anything in the run folder is rewritten."""
    from . import checkpoints
    from .train import checkpoint_path

    train_stage = next((spec for kind, spec in pipeline.stages if kind == "train"), None)
    ckpt_file = checkpoint_path(ctx.run_dir)
    if train_stage is None or not ckpt_file.exists():
        return
    ckpt = checkpoints.load(ckpt_file, map_location="cpu", require=("recipe", "state", "iteration"))
    checkpoints.refuse_nonfinite(ckpt_file, ckpt)
    _, recipe, recipe_config, _ = build_training(train_stage, pipeline.seed, ctx.registry)
    try:
        recipe.load_state_dict(ckpt["state"])
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
        # say what differs as the pipeline names it (architecture.g_width ...), else what torch said
        differs = checkpoints.recipe_differences(ckpt["recipe"], recipe_config)
        detail = differs or "its weights: " + " ".join(str(exc).split())[:200]
        raise ArtganError(f"--resume: {ckpt_file} does not fit the pipeline's train stage ({detail}); "
                          f"{ctx.run_dir / 'pipeline.yaml'} is unchanged: resume with it, or run without "
                          f"--resume into a new folder") from None


def _is_main_process() -> bool:
    import os
    return os.environ.get("RANK", "0") == "0"


def build_training(spec: TrainOptions, seed: int, registry) -> tuple[Any, Any, dict[str, Any], TrainOptions]:
    """The dataset, recipe, recipe config and options (the stage with its seed resolved) a train
    stage describes (the recipe's initial weights follow ``seed``). Benchmarks build reference
    models through this too."""
    from .checkpoints import build_recipe
    from .train import seed_everything

    ds_name, ds_params = named_mapping(spec.dataset, Located({}, {}, ""), (), "dataset")
    dataset = registry.create("dataset", ds_name, **ds_params)
    arch_name, arch_params = named_mapping(spec.architecture, Located({}, {}, ""), (), "architecture")
    loss = None
    if spec.loss is not None:
        loss_name, loss_params = named_mapping(spec.loss, Located({}, {}, ""), (), "loss")
        loss = {"name": loss_name, "params": loss_params}
    recipe_config = {"architecture": arch_name, "params": arch_params,
                     "info": dataset.info.to_dict(), "loss": loss, "dataset": ds_name,
                     "dataset_params": ds_params}
    options = dataclasses.replace(spec, seed=seed if spec.seed is None else spec.seed)
    seed_everything(options.seed)
    return dataset, build_recipe(registry, recipe_config), recipe_config, options


def _run_train(spec: TrainOptions, pipeline: Pipeline, ctx: RunContext) -> None:
    from .train import train

    dataset, recipe, recipe_config, options = build_training(spec, pipeline.seed, ctx.registry)
    evaluate = None
    if options.eval_every:
        from .gan_metrics import MODE_DATASETS
        if dataset.info.name not in MODE_DATASETS:
            raise ArtganError(f"train.eval_every: no built-in metrics for dataset {dataset.info.name!r} "
                              f"(they exist for {', '.join(MODE_DATASETS)}); set eval_every: 0")
        evaluator: list = []

        def evaluate(sample_fn):  # built on first use: only the first process evaluates
            if not evaluator:
                from .gan_metrics import Evaluator
                evaluator.append(Evaluator(dataset, samples=options.eval_samples,
                                           real_samples=options.eval_samples,
                                           pr_samples=min(options.eval_samples, 5000), seed=options.seed))
            return evaluator[0](sample_fn)
    pm = ctx.plugin_manager
    summary = train(
        recipe, dataset, ctx.run_dir, options, recipe_config=recipe_config, resume=ctx.resume,
        progress=ctx.progress,
        on_metrics=(lambda i, m: pm.hook.artgan_on_metrics(run_dir=str(ctx.run_dir), iteration=i,
                                                           metrics=m)) if pm else None,
        on_checkpoint=(lambda i, p: pm.hook.artgan_on_checkpoint(run_dir=str(ctx.run_dir), iteration=i,
                                                                 path=str(p))) if pm else None,
        evaluate=evaluate, log=ctx.log,
    )
    ctx.checkpoint = Path(summary["checkpoint"])
    ctx.results["train"] = summary
    budget = " (time budget reached)" if summary["stopped_by"] == "seconds" else ""
    ctx.log(f"  trained {summary['iterations']} iterations (from {summary['resumed_from']}) in {summary['seconds']:.1f}s{budget}")


def _run_export(spec: ExportStage, pipeline: Pipeline, ctx: RunContext) -> None:
    from .checkpoints import load_recipe
    from .export import DEFAULT_OPSET, export_onnx

    ckpt = Path(spec.checkpoint) if spec.checkpoint else ctx.checkpoint
    if ckpt is None:
        from .train import checkpoint_path
        ckpt = checkpoint_path(ctx.run_dir)
    recipe, state = load_recipe(ckpt, ctx.registry)
    out = ctx.run_dir / spec.out
    card = export_onnx(recipe.export_spec(), out, opset=spec.opset or DEFAULT_OPSET, precision=spec.precision,
                       quantize=spec.quantize, verify=spec.verify, tolerance=spec.tolerance, min_psnr=spec.min_psnr,
                       optimize=spec.optimize,
                       extra_metadata={"run": ctx.run_dir.name, "train_iterations": int(state["iteration"]),
                                       "architecture": state["recipe"]["architecture"]})
    ctx.model = out
    ctx.results["export"] = card
    v = card["verification"]
    ctx.log(f"  exported {out}" + (f" (max |onnx - torch| = {v['max_abs_diff']:.2e})" if v.get("verified") else ""))


def _run_generate(spec: GenerateStage, pipeline: Pipeline, ctx: RunContext) -> None:
    from .images import make_grid, save_image
    from .runtime import Generator

    model = Path(spec.model) if spec.model else ctx.model
    if model is None:
        raise ArtganError("generate: no model; add an export stage before it or set generate.model")
    gen = Generator(model)
    images = gen.generate(spec.n, spec.seed, batch_size=spec.batch_size, truncation=spec.truncation,
                          progress=ctx.progress)
    out = ctx.run_dir / spec.out
    save_image(out / "grid.png", make_grid(images))
    ctx.images = []
    if spec.save_images:
        for i, img in enumerate(images):
            ctx.images.append(save_image(out / f"{spec.seed:04d}_{i:04d}.png", img))
    ctx.log(f"  generated {spec.n} images on {gen.providers[0]} -> {out / 'grid.png'}")


def _run_process(spec: ProcessStage, pipeline: Pipeline, ctx: RunContext) -> None:
    from .process import collect_inputs, process_files
    from .steps import build_step, run_chain

    steps = [build_step(ctx.registry, s) for s in spec.steps]
    if spec.input:
        inputs = collect_inputs([spec.input])
    else:
        inputs = [(Path(p), Path(Path(p).stem + ".png")) for p in ctx.images]
    if not inputs:
        raise ArtganError("process: no input images; set process.input or put a generate stage before it")
    out = ctx.run_dir / spec.out
    made = process_files(lambda images: run_chain(steps, images), inputs, out, progress=ctx.progress)
    ctx.images = made
    ctx.log(f"  processed {len(made)} images -> {out}")


RUNNERS: dict[str, Callable[[Any, Pipeline, RunContext], None]] = {
    "train": _run_train, "export": _run_export, "generate": _run_generate, "process": _run_process,
}
