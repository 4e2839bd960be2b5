"""Pipelines: a YAML list of stages (train, export, generate, process) run into one run folder.

Everything is validated (keys, types, plugin names and their parameters) before anything runs.

Names: in artgan's public API a *step* is a post-processing step (``artgan.steps.Step``, the
``process`` stage's ``steps:``, ``artgan process --step``). A pipeline is a list of *stages*, and
training runs for ``iterations``. The old names (a pipeline's ``steps:``, ``train.steps``,
``TrainStep`` ...) keep working for one release, with a DeprecationWarning.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from .config import (MAX_SEED, Located, _dotted, build, load_yaml, loads_yaml, named_mapping, parse_override,
                     shown)
from .errors import ArtganError, ConfigError
from .files import write_text


# -- the schema of each pipeline stage -------------------------------------------------------------

@dataclass
class TrainStage:
    dataset: Any  # a dataset name, or {name: ..., params}
    architecture: Any  # an architecture name, or {name: ..., params}
    loss: Any = None  # a loss name, or {name: ..., params}; None: the architecture's default
    iterations: int = 1000  # training iterations (optimiser updates of every phase that is due)
    batch_size: int = 64
    seed: int | None = None  # default: the pipeline's seed
    device: str = "auto"
    log_every: int = 50
    checkpoint_every: int = 250
    num_workers: int = 0
    sample_count: int = 64
    precision: str = "auto"  # auto: bf16 autocast where measured faster (CUDA GPUs, CPUs with native bf16); fp32; bf16
    channels_last: bool | None = None  # None: on for CUDA, measured on CPU
    seconds: float = 0  # time budget: training ends at the first checkpoint after this many seconds; 0: none
    eval_every: int = 0  # dataset metrics (modes, FD, precision/recall) every n steps; 0: never
    eval_samples: int = 5000
    collapse_ratio: float = 0.5  # warn when sample diversity < this x its best; 0: off
    tensorboard: bool = False

    @property
    def steps(self) -> int:
        _deprecated("TrainStep.steps", "TrainStage.iterations")
        return self.iterations


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


STAGE_KINDS: dict[str, type] = {"train": TrainStage, "export": ExportStage,
                                "generate": GenerateStage, "process": ProcessStage}


@dataclass
class Pipeline:
    name: str
    stages: list  # [(kind, spec dataclass)], built by load_pipeline
    seed: int = 0
    description: str = ""
    source: str = ""
    raw: dict = field(default_factory=dict)  # the resolved mapping, saved in the run folder

    @property
    def steps(self) -> list:
        _deprecated("Pipeline.steps", "Pipeline.stages")
        return self.stages

    @steps.setter
    def steps(self, stages: list) -> None:
        _deprecated("Pipeline.steps", "Pipeline.stages")
        self.stages = stages


# -- old names, kept for one release ---------------------------------------------------------------

#: Deprecated module attributes -> their new names
_RENAMED = {"TrainStep": "TrainStage", "ExportStep": "ExportStage", "GenerateStep": "GenerateStage",
            "ProcessStep": "ProcessStage", "STEP_KINDS": "STAGE_KINDS"}


def _deprecated(old: str, new: str, where: str = "", stacklevel: int = 3) -> None:
    warnings.warn(f"{where}{old} is deprecated, use {new} (a step is a post-processing step; the old name "
                  f"goes in the next release)", DeprecationWarning, stacklevel=stacklevel)


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        _deprecated(f"artgan.pipeline.{name}", f"artgan.pipeline.{_RENAMED[name]}")
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def rename_deprecated_keys(doc: Located, *, warn: bool = True) -> None:
    """A pipeline's ``steps:`` list becomes ``stages:`` and a train stage's ``steps:`` becomes
    ``iterations:``, lines and all, so the rest reads only the new keys (one warning each)."""
    data = doc.data
    if not isinstance(data, dict):
        return
    if "steps" in data and "stages" not in data:
        _rename_key(doc, (), "steps", "stages", warn)
    for i, item in enumerate(data.get("stages") if isinstance(data.get("stages"), list) else []):
        train = item.get("train") if isinstance(item, dict) else None
        if isinstance(train, dict) and "steps" in train and "iterations" not in train:
            _rename_key(doc, ("stages", i, "train"), "steps", "iterations", warn)


def _rename_key(doc: Located, parent: tuple, old: str, new: str, warn: bool) -> None:
    if warn:
        line = doc.line(parent + (old,))
        where = f"{doc.file}:{line}: " if line else f"{doc.file}: "
        shown = "train." if parent else ""
        _deprecated(f"`{shown}{old}:`", f"`{shown}{new}:`", where, stacklevel=4)
    container: Any = doc.data
    for key in parent:
        container = container[key]
    items = list(container.items())  # the same order, so the saved pipeline.yaml reads as written
    container.clear()
    container.update((new if k == old else k, v) for k, v in items)
    n = len(parent)
    for path in [p for p in doc.lines if p[:n + 1] == parent + (old,)]:
        doc.lines[parent + (new,) + path[n + 1:]] = doc.lines.pop(path)


# -- loading ---------------------------------------------------------------------------------------

def apply_overrides(doc: Located, overrides: list[str], *, warn: bool = True) -> None:
    """``train.iterations=200``: the first part is a top-level key or the kind of a stage (its
    first occurrence); the rest walks into that stage's mapping."""
    data = doc.data
    for text in overrides:
        parts, value = parse_override(text)
        if parts[:1] == ["train"] and parts[1:] == ["steps"]:
            parts = ["train", "iterations"]
            if warn:
                _deprecated("--set train.steps", "--set train.iterations", stacklevel=3)
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
                raise ConfigError(f"--set {text}: name a key inside the step, e.g. --set {text.split('=')[0]}.iterations=200",
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
    rename_deprecated_keys(doc)
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


def _is_main_process() -> bool:
    import os
    return os.environ.get("RANK", "0") == "0"


def build_training(spec: TrainStage, seed: int, registry) -> tuple[Any, Any, dict[str, Any], Any]:
    """The dataset, recipe, recipe config and ``TrainOptions`` a train stage describes (the
    recipe's initial weights follow ``seed``). Benchmarks build reference models through this too."""
    from .checkpoints import build_recipe
    from .train import TrainOptions, seed_everything

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
    options = TrainOptions(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(TrainOptions)
                              if f.name != "steps" and hasattr(spec, f.name)}, steps=spec.iterations)
    options.seed = seed if spec.seed is None else spec.seed
    seed_everything(options.seed)
    return dataset, build_recipe(registry, recipe_config), recipe_config, options


def _run_train(spec: TrainStage, pipeline: Pipeline, ctx: RunContext) -> None:
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
        # step=: the hooks' old name of iteration, still passed to plugins that take it
        on_metrics=(lambda i, m: pm.hook.artgan_on_metrics(run_dir=str(ctx.run_dir), iteration=i, step=i,
                                                           metrics=m)) if pm else None,
        on_checkpoint=(lambda i, p: pm.hook.artgan_on_checkpoint(run_dir=str(ctx.run_dir), iteration=i, step=i,
                                                                 path=str(p))) if pm else None,
        evaluate=evaluate, log=ctx.log,
    )
    ctx.checkpoint = Path(summary["checkpoint"])
    ctx.results["train"] = summary
    budget = " (time budget reached)" if summary["stopped_by"] == "seconds" else ""
    ctx.log(f"  trained {summary['steps']} steps (from {summary['resumed_from']}) in {summary['seconds']:.1f}s{budget}")


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
                       extra_metadata={"run": ctx.run_dir.name, "train_steps": int(state["step"]),
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
