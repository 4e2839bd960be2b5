"""Contract checks for plugin authors, usable from any test runner, and a pytest plugin.

Each check raises ``AssertionError`` with a message that names what is wrong and what was
expected::

    import artgan_myplugin
    from artgan.testing import check_plugin, check_step

    def test_my_step():
        registry = check_plugin(artgan_myplugin)      # hooks valid, names registered, imports work
        check_step(registry.create("step", "mystep", strength=0.5))

The checks:

- :func:`check_plugin` -- a plugin module registers cleanly on its own (no install needed);
- :func:`check_installed` -- an installed distribution is found through the ``artgan`` entry points;
- :func:`check_dataset` -- items are dicts of tensors, ``"image"`` float32 C x S x S in [-1, 1];
- :func:`check_architecture` -- a recipe trains, round-trips a checkpoint and exports to ONNX with parity;
- :func:`check_loss` -- scalar, differentiable, and lower when the discriminator is right;
- :func:`check_step` -- float32 NHWC in [0, 1] in, float32 NHWC in [0, 1] of the declared shape out,
  on several batch sizes, odd and one-pixel ones included (:data:`CHECK_STEP_SIZES`);
- :func:`check_step_without_torch` -- building and running a step never imports torch;
- :func:`check_evaluation` -- an evaluation's ``methods``, ``load`` and ``score`` run on generated
  images (:data:`CHECK_EVALUATION_SIZES`) as ``artgan evaluate TASK`` runs them;
- :func:`check_registered` -- the right check for a registered name, with its declared contract params.

Installed with artgan, the pytest plugin (entry point ``pytest11``) adds the fixtures
``artgan_registry`` (a fresh registry of the installed plugins) and ``artgan_contract`` (these
checks, writing into the test's ``tmp_path``). This module imports no torch until a check needs it:
pytest loads it in every session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .errors import ArtganError
from .plugins import REGISTRATION_HOOKS, PluginWarning, Registry, lazy, make_plugin_manager
from .steps import expected_step_shape  # noqa: F401  (public here too: plugin authors' tests use it)

__all__ = [
    "check_plugin", "check_installed", "check_dataset", "check_architecture", "check_loss",
    "check_step", "check_step_without_torch", "check_evaluation", "check_task", "check_registered", "registry_with",
    "contract_declarations", "SyntheticImages", "Contract", "CHECK_STEP_SIZES", "CHECK_EVALUATION_SIZES",
]

# A value a little outside the contract range still passes: float arithmetic on [-1, 1] data
# (e.g. x * 2 - 1 in float32) can land a few ulps outside.
RANGE_SLACK = 1e-4


def _fail(message: str) -> None:
    raise AssertionError(message)


@contextmanager
def _workdir(workdir: str | Path | None) -> Iterator[Path]:
    if workdir is not None:
        path = Path(workdir)
        path.mkdir(parents=True, exist_ok=True)
        yield path
    else:
        with tempfile.TemporaryDirectory(prefix="artgan-contract-") as tmp:
            yield Path(tmp)


# -- plugins -----------------------------------------------------------------------------------

def registry_with(*plugins: Any, entry_points: bool = False) -> Registry:
    """A fresh registry holding only ``plugins`` (modules or objects with ``@artgan.hookimpl``
    functions), plus the installed plugins when ``entry_points`` is true. Nothing is installed
    and the process-wide registry is untouched."""
    return make_plugin_manager(tuple(plugins), load_entry_points=entry_points)[1]


def check_plugin(plugin: Any) -> Registry:
    """Register ``plugin`` alone and check it: its hooks exist and take only arguments artgan
    passes, registration does not raise, it registers at least one name, and every
    :class:`~artgan.plugins.lazy` factory imports. Returns the registry, ready to ``create``."""
    with warnings.catch_warnings():  # a broken plugin is this check's failure, not a warning
        warnings.simplefilter("ignore", PluginWarning)
        registry = registry_with(plugin)
    records = [r for r in registry.plugins.values()]
    broken = [r for r in records if r.error]
    if broken:
        r = broken[0]
        _fail(f"plugin {r.name!r} is broken: {r.error}" + (f" (at {r.error_at})" if r.error_at else ""))
    provided = {kind: registry.names(kind) for kind in REGISTRATION_HOOKS if registry.names(kind)}
    hooks = sorted({h for r in records for h in r.hooks})
    if not provided and "artgan_register_commands" not in hooks and not any(h.startswith("artgan_on_") for h in hooks):
        _fail(f"plugin {getattr(plugin, '__name__', plugin)!r} registered nothing: implement one of "
              f"{', '.join(REGISTRATION_HOOKS.values())} with @artgan.hookimpl and call register(name, factory)")
    problems = registry.check_lazy_targets()
    if problems:
        _fail("; ".join(msg for msgs in problems.values() for msg in msgs))
    return registry


def check_installed(distribution: str) -> Any:
    """Check that the installed ``distribution`` is found through the ``artgan`` entry-point
    group and loads cleanly; return its :class:`~artgan.plugins.PluginRecord`. Under pytest, a
    distribution that is not installed skips the test (``pip install -e .`` first)."""
    from importlib.metadata import PackageNotFoundError, distribution as find

    try:
        dist = find(distribution)
    except PackageNotFoundError:
        import pytest
        pytest.skip(f"{distribution} is not installed (pip install -e . runs this check)")
    eps = [ep for ep in dist.entry_points if ep.group == "artgan"]
    if not eps:
        _fail(f"{distribution} declares no entry point in the 'artgan' group; add to pyproject.toml:\n"
              f"[project.entry-points.artgan]\nNAME = \"your_module\"")
    registry = make_plugin_manager()[1]
    record = registry.plugins.get(eps[0].name)
    if record is None or record.distribution.lower().replace("_", "-") != dist.metadata["Name"].lower().replace("_", "-"):
        _fail(f"entry point {eps[0].name!r} of {distribution} was not loaded by artgan")
    if record.status != "ok":
        _fail(f"plugin {record.name!r} of {distribution} is {record.status}: "
              f"{record.error or record.disabled_by}")
    if record.conflicts:
        _fail(f"plugin {record.name!r}: {'; '.join(record.conflicts)}")
    return record


@dataclass
class Declarations:
    """What a factory declares for the contract checks (all optional, see docs/plugins.md)."""

    params: dict[str, Any]
    skip: str = ""
    dataset: Any = None  # architectures: the dataset to train on in the check
    info: dict[str, Any] | None = None  # architectures: DatasetInfo fields for the synthetic data
    options: dict[str, Any] | None = None  # evaluations: values of Evaluation.options for the check


def contract_declarations(factory: Callable[..., Any], workdir: Path) -> Declarations:
    """Read ``contract_params``, ``contract_skip``, ``contract_dataset``, ``contract_info`` and
    ``contract_options`` from a factory (a :class:`lazy` one is imported). ``contract_params``,
    ``contract_dataset`` and ``contract_options`` may be functions of a scratch folder, for data
    that needs files."""
    target = factory.resolve() if isinstance(factory, lazy) else factory
    params = getattr(target, "contract_params", None) or {}
    if callable(params):
        params = params(workdir)
    if not isinstance(params, dict):
        _fail(f"{target!r}.contract_params must be a dict (or a function of a folder returning one), "
              f"got {type(params).__name__}")
    dataset = getattr(target, "contract_dataset", None)
    if callable(dataset) and not hasattr(dataset, "__getitem__"):
        dataset = dataset(workdir)
    options = getattr(target, "contract_options", None)
    if callable(options):
        options = options(workdir)
    if options is not None and not isinstance(options, dict):
        _fail(f"{target!r}.contract_options must be a dict (or a function of a folder returning one), "
              f"got {type(options).__name__}")
    return Declarations(params=dict(params), skip=str(getattr(target, "contract_skip", "") or ""),
                        dataset=dataset, info=getattr(target, "contract_info", None), options=options)


def check_registered(registry: Registry, kind: str, name: str, workdir: str | Path | None = None) -> Any:
    """Build the registered ``kind``/``name`` with its declared ``contract_params`` and run the
    check for its kind. Returns what the check returns. A factory that declares
    ``contract_skip = "why"`` is not built: the test is skipped with that reason (raises
    :class:`unittest.SkipTest`, which pytest and unittest both report as a skip)."""
    reg = registry.get(kind, name)
    with _workdir(workdir) as work:
        d = contract_declarations(reg.factory, work)
        where = f"{kind} {name!r} (plugin {reg.plugin!r})"
        if d.skip:
            raise unittest.SkipTest(f"{where} declares contract_skip: {d.skip}")
        if kind == "architecture":
            info = None
            if d.info is not None:
                from .data import DatasetInfo
                info = DatasetInfo(**d.info)
            return check_architecture(reg.factory, info, params=d.params, dataset=d.dataset,
                                      workdir=work / "architecture", name=name)
        try:
            thing = registry.create(kind, name, **d.params)
        except Exception as exc:
            _fail(f"{where} cannot be built with {d.params or 'its default parameters'} for the "
                  f"contract check ({type(exc).__name__}: {exc}). Declare `contract_params` on its "
                  f"factory (a dict, or a function of a scratch folder returning one), or "
                  f"`contract_skip = \"why\"` if it cannot run in a test; see docs/plugins.md")
        if kind == "dataset":
            return check_dataset(thing)
        if kind == "loss":
            return check_loss(thing)
        if kind == "evaluation":
            return check_evaluation(thing, where, registry=registry, options=d.options, workdir=work / "evaluation",
                                    task=name)
        if kind == "task":
            return check_task(thing, registry, plugin=reg.plugin)
        return check_step(thing)


def check_task(task: Any, registry: Registry, *, plugin: str = "?") -> Any:
    """Fail unless ``task`` is an :class:`artgan.tasks.Task` whose every part (architectures,
    datasets, step, baselines, evaluation) some plugin in ``registry`` registers. Returns the task."""
    from .tasks import check_task as problems_of

    problems = problems_of(task, registry, plugin=plugin)
    if problems:
        _fail("; ".join(problems))
    return task


#: The images :func:`check_evaluation` writes into its data folder (height, width): four, so that
#: every split (``train``, ``heldout``: the 4th, ``all``) has a file; neither square nor powers of two.
CHECK_EVALUATION_SIZES = ((48, 64), (56, 40), (40, 56), (64, 48))


def check_evaluation(evaluation: Any, where: str = "evaluation", *, registry: Registry | None = None,
                     options: dict[str, Any] | None = None, workdir: str | Path | None = None,
                     task: str = "under-test") -> dict[str, dict[str, dict[str, float]]]:
    """An :class:`artgan.evaluation.Evaluation` with metrics, callables, a known default split and
    help with an example (the command's help is built from it); then, for one that scores files,
    what ``artgan evaluate TASK --data FOLDER`` does, on tiny generated images
    (:data:`CHECK_EVALUATION_SIZES`): ``methods(request)`` with the default baselines and no
    ``--model``, ``load(path, request)`` on each file of the default split (inputs float32 NHWC in
    [0, 1]), every method on those inputs (images out, float NHWC in [0, 1]) and
    ``score(outputs, reference, request)`` (every metric, numbers). A failure names the function
    and the image. ``options`` override the options' defaults (declare ``contract_options`` on the
    factory for :func:`check_registered`); an option with no default that names an existing file
    gets one of the generated images. An evaluation with its own ``run`` is not run (a whole
    protocol is no unit test). ``registry`` builds ``request.step(...)``: default, the installed
    plugins'. Returns method -> file -> scores."""
    from .evaluation import Evaluation
    from .splits import SPLITS

    if not isinstance(evaluation, Evaluation):
        _fail(f"{where}: the factory returned {type(evaluation).__name__}, not an artgan.evaluation.Evaluation")
    if not evaluation.metrics:
        _fail(f"{where}: Evaluation.metrics is empty; list the Metric(s) score() returns")
    for fn in ("load", "score", "methods") if evaluation.per_file else ("run",):
        if not callable(getattr(evaluation, fn)):
            _fail(f"{where}: Evaluation.{fn} is not callable")
    if evaluation.default_split not in SPLITS:
        _fail(f"{where}: default_split {evaluation.default_split!r} is not one of {', '.join(SPLITS)}")
    if "Example" not in evaluation.help:
        _fail(f"{where}: Evaluation.help needs an example (`artgan evaluate ... --data ...`)")
    if not evaluation.per_file:
        return {}
    with _workdir(workdir) as work:
        return _run_evaluation_on_generated_images(evaluation, where, registry, options or {}, work, task)


def _generated_images(folder: Path) -> list[Path]:
    """Smooth random RGB photos with a little grain, one per size of :data:`CHECK_EVALUATION_SIZES`."""
    from PIL import Image

    from .images import save_image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate(CHECK_EVALUATION_SIZES):
        coarse = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((w, h), Image.BICUBIC), dtype=np.float32)
        grain = rng.normal(0, 6, (h, w, 3))
        paths.append(save_image(folder / f"image{i}.png", np.clip(smooth + grain, 0, 255).astype(np.uint8)))
    return paths


def _file_option(option: Any) -> bool:
    """An option with no default whose value must be an existing file (e.g. a reference image)."""
    kind = option.type
    return (option.default is None and getattr(kind, "exists", False) and getattr(kind, "file_okay", False)
            and type(kind).__name__ == "Path")


def _check_images(what: str, images: Any) -> None:
    """``images`` is float NHWC in [0, 1] (a numpy array, or an ndarray subclass)."""
    if not isinstance(images, np.ndarray):
        _fail(f"{what} is a {type(images).__name__}, not a numpy array of images (float32 NHWC in [0, 1])")
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4) or 0 in images.shape:
        _fail(f"{what} has shape {images.shape}; expected a batch N x H x W x C (C 1, 3 or 4)")
    if images.dtype.kind != "f":
        _fail(f"{what} has dtype {images.dtype}; images between methods are float32 in [0, 1]")
    if not np.isfinite(images).all():
        _fail(f"{what} has NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    if lo < -RANGE_SLACK or hi > 1 + RANGE_SLACK:
        _fail(f"{what} spans [{lo:.4g}, {hi:.4g}]; images are in [0, 1]")


def _call(where: str, what: str, function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # an ArtganError too: generated images are valid input
        detail = " ".join(str(exc).split())[:500]
        _fail(f"{where}: {what} failed ({type(exc).__name__}: {detail})")


def _run_evaluation_on_generated_images(evaluation: Any, where: str, registry: Registry | None,
                                        options: dict[str, Any], work: Path, task: str) -> dict[str, Any]:
    from .evaluation import Request
    from .images import list_images
    from .plugins import get_registry
    from .splits import split_files

    unknown = sorted(set(options) - set(evaluation.options))
    if unknown:
        _fail(f"{where}: contract options {', '.join(unknown)} are not options of the evaluation "
              f"(it has {', '.join(evaluation.options) or 'none'})")
    data = work / "images"
    generated = _generated_images(data)
    values = {name: generated[0] if _file_option(opt) else opt.default for name, opt in evaluation.options.items()}
    values.update(options)
    split = evaluation.default_split
    request = Request(task, data, split, [], list(evaluation.baselines), values,
                      registry if registry is not None else get_registry())
    described = f"split {split} of {len(generated)} generated RGB images in {data}"
    methods = _call(where, f"methods(request) (baselines {', '.join(request.baselines) or 'none'}, no --model)",
                    evaluation.methods, request)
    if not isinstance(methods, dict) or not all(isinstance(k, str) and callable(m) for k, m in methods.items()):
        _fail(f"{where}: methods(request) returned {type(methods).__name__}; expected a dict of name -> "
              f"callable (images -> images)")
    if not methods:
        _fail(f"{where}: methods(request) returned no method for the default baselines "
              f"({', '.join(request.baselines) or 'none'}) and no --model: the check needs one to call score(); "
              f"give the Evaluation a baseline")
    metric_names = [m.name for m in evaluation.metrics]
    results: dict[str, dict[str, dict[str, float]]] = {name: {} for name in methods}
    for path in split_files(list_images(data), split):
        h, w = CHECK_EVALUATION_SIZES[generated.index(path)]
        image = f"{path.name} ({w}x{h} RGB, {described})"
        loaded = _call(where, f"load on {image}", evaluation.load, path, request)
        if not isinstance(loaded, tuple) or len(loaded) != 2:
            _fail(f"{where}: load on {image} returned {type(loaded).__name__}; expected (inputs, reference)")
        inputs, reference = loaded
        _check_images(f"{where}: the inputs load returned for {path.name}", inputs)
        if inputs.dtype != np.float32:
            _fail(f"{where}: the inputs load returned for {path.name} are {inputs.dtype}; methods take float32")
        for name, method in methods.items():
            outputs = _call(where, f"method {name!r} on the inputs of {image}", method, inputs)
            _check_images(f"{where}: method {name!r}'s outputs for {path.name}", outputs)
            figures = _call(where, f"score of method {name!r} on {image}", evaluation.score, outputs, reference,
                            request)
            if not isinstance(figures, dict):
                _fail(f"{where}: score of method {name!r} on {path.name} returned {type(figures).__name__}; "
                      f"expected a dict of metric name -> number")
            missing = [m for m in metric_names if m not in figures]
            if missing:
                _fail(f"{where}: score of method {name!r} on {path.name} returned no {', '.join(missing)} "
                      f"(Evaluation.metrics lists them; it returned {', '.join(map(str, figures)) or 'nothing'})")
            try:
                numbers = {k: float(figures[k]) for k in metric_names}
            except (TypeError, ValueError):
                _fail(f"{where}: score of method {name!r} on {path.name} returned a non-number: "
                      f"{ {k: figures[k] for k in metric_names} }")
            nan = [k for k, v in numbers.items() if np.isnan(v)]
            if nan:
                _fail(f"{where}: score of method {name!r} on {path.name} returned NaN for {', '.join(nan)}")
            results[name][path.stem] = numbers
    return results


# -- datasets ----------------------------------------------------------------------------------

def check_dataset(dataset: Any, *, samples: int = 4) -> None:
    """Items are dicts of tensors: ``"image"`` float32 C x S x S in [-1, 1] matching
    ``dataset.info`` (:class:`artgan.data.DatasetInfo`), ``"label"`` an int64 scalar below
    ``info.num_classes`` when it has classes; two items collate into a batch."""
    import torch
    from torch.utils.data import default_collate

    from .data import DatasetInfo

    info = getattr(dataset, "info", None)
    if not isinstance(info, DatasetInfo):
        _fail(f"dataset {type(dataset).__name__} has no `info` attribute of type artgan.data.DatasetInfo "
              f"(got {type(info).__name__}); set self.info = DatasetInfo(image_size=..., channels=...)")
    if not (isinstance(info.image_size, int) and info.image_size > 0):
        _fail(f"info.image_size must be a positive int, got {info.image_size!r}")
    if info.channels not in (1, 3):
        _fail(f"info.channels must be 1 or 3, got {info.channels!r}")
    n = len(dataset)
    if n < 1:
        _fail("dataset is empty (len(dataset) == 0)")
    indices = sorted({0, n - 1, *np.random.default_rng(0).integers(0, n, size=max(samples - 2, 0)).tolist()})
    want = (info.channels, info.image_size, info.image_size)
    items, lows = [], []
    for i in indices:
        item = dataset[i]
        if not isinstance(item, dict) or "image" not in item:
            _fail(f"dataset[{i}] must be a dict with an 'image' tensor, got {type(item).__name__}"
                  + (f" with keys {sorted(item)}" if isinstance(item, dict) else ""))
        for key, value in item.items():
            if not isinstance(value, torch.Tensor):
                _fail(f"dataset[{i}][{key!r}] must be a torch.Tensor, got {type(value).__name__}")
        image = item["image"]
        if image.dtype != torch.float32:
            _fail(f"dataset[{i}]['image'] must be float32, got {image.dtype}")
        if tuple(image.shape) != want:
            _fail(f"dataset[{i}]['image'] has shape {tuple(image.shape)}; expected {want} "
                  f"(C x H x W from info: channels={info.channels}, image_size={info.image_size})")
        if not torch.isfinite(image).all():
            _fail(f"dataset[{i}]['image'] has NaN or infinite values")
        lo, hi = float(image.min()), float(image.max())
        if lo < -1 - RANGE_SLACK or hi > 1 + RANGE_SLACK:
            _fail(f"dataset[{i}]['image'] values span [{lo:.4g}, {hi:.4g}]; the contract is [-1, 1] "
                  f"(uint8 -> x / 127.5 - 1)")
        lows.append(lo)
        if info.num_classes:
            label = item.get("label")
            if label is None:
                _fail(f"info.num_classes is {info.num_classes} but dataset[{i}] has no 'label'")
            if label.dtype != torch.int64 or label.ndim != 0:
                _fail(f"dataset[{i}]['label'] must be an int64 scalar tensor, got {label.dtype} "
                      f"shape {tuple(label.shape)}")
            if not 0 <= int(label) < info.num_classes:
                _fail(f"dataset[{i}]['label'] = {int(label)} is outside [0, {info.num_classes})")
        items.append(item)
    if min(lows) >= 0:
        _fail(f"every sampled image is in [0, 1] (lowest value {min(lows):.3g}): images must be "
              f"scaled to [-1, 1], not [0, 1]")
    try:
        default_collate(items[:2])
    except Exception as exc:
        _fail(f"two items do not collate into a batch (do all items have the same keys and shapes?): {exc}")


class SyntheticImages:
    """A tiny dataset for :func:`check_architecture`: smooth random images in [-1, 1] shaped by
    ``info`` (with labels when ``info.num_classes``). A ``torch.utils.data.Dataset`` in all but
    name, so that importing this module needs no torch."""

    def __init__(self, info: Any, count: int = 16, seed: int = 0):
        import torch
        import torch.nn.functional as F

        self.info, self.count = info, count
        g = torch.Generator().manual_seed(seed)
        small = torch.rand(count, info.channels, 4, 4, generator=g) * 2 - 1
        self.images = F.interpolate(small, size=(info.image_size, info.image_size), mode="bilinear",
                                    align_corners=False).clamp(-1, 1).contiguous()
        self.labels = torch.arange(count, dtype=torch.int64) % max(info.num_classes, 1)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {"image": self.images[i]}
        if self.info.num_classes:
            item["label"] = self.labels[i]
        return item


# -- architectures -----------------------------------------------------------------------------

def check_architecture(factory: Callable[..., Any], info: Any = None, *, params: dict[str, Any] | None = None,
                       loss: Any = None, dataset: Any = None, workdir: str | Path | None = None,
                       iterations: int = 2, batch_size: int = 4, tolerance: float = 1e-3,
                       name: str = "under-test") -> dict[str, Any]:
    """Build ``factory(info=info, loss=loss, **params)``, train it ``iterations`` iterations with artgan's
    trainer, reload the checkpoint with :func:`artgan.checkpoints.load_recipe` and check the
    reloaded generator matches, export it to ONNX (verified against PyTorch within
    ``tolerance``) and run it with artgan's runtime. ``info`` defaults to ``dataset.info`` or
    32 px RGB; ``dataset`` to :class:`SyntheticImages`; ``loss`` is a name in the installed
    registry or ``None`` for the recipe's default. Returns a report (paths, parity figures)."""
    from .data import DatasetInfo
    from .train import TrainOptions, train

    params = dict(params or {})
    if info is None:
        info = getattr(dataset, "info", None) or DatasetInfo(image_size=32, channels=3, num_classes=0,
                                                              name="synthetic")
    if dataset is None:
        dataset = SyntheticImages(info, count=max(16, 2 * batch_size))
    registry, recipe_config = _contract_registry(factory, info, params, loss, name)
    recipe, phases = _built_recipe(registry, recipe_config, info)
    before = _parameters_before_training(recipe, phases)

    with _workdir(workdir) as work:
        run_dir = work / "run"
        options = TrainOptions(iterations=iterations, batch_size=batch_size, seed=0, device="cpu", log_every=1,
                               checkpoint_every=iterations, sample_count=4)
        summary = train(recipe, dataset, run_dir, options, recipe_config=recipe_config, progress=False)
        _check_it_trained(before, phases, run_dir, iterations)
        _check_samples(recipe)
        spec = _reloaded_export_spec(recipe, summary["checkpoint"], registry)
        onnx_path = work / "export" / f"{name}.onnx"
        card = _check_onnx_export(spec, onnx_path, tolerance)
        return {"run_dir": str(run_dir), "checkpoint": summary["checkpoint"], "onnx": str(onnx_path),
                "verification": card["verification"], "metadata": card["metadata"]}


def _contract_registry(factory: Callable[..., Any], info: Any, params: dict[str, Any], loss: Any,
                       name: str) -> tuple[Registry, dict[str, Any]]:
    """One registry for the check, so the checkpoint can be rebuilt by name as artgan would, and
    the recipe config a pipeline would record."""
    registry = Registry()
    registry.add("architecture", name, factory, "contract-check")
    loss_config = None
    if loss is not None:
        from .plugins import get_registry
        loss_reg = get_registry().get("loss", loss)
        registry.add("loss", loss, loss_reg.factory, loss_reg.plugin)
        loss_config = {"name": loss, "params": {}}
    recipe_config = {"architecture": name, "params": params, "info": info.to_dict(),
                     "loss": loss_config, "dataset": info.name or "synthetic"}
    return registry, recipe_config


def _built_recipe(registry: Registry, recipe_config: dict[str, Any], info: Any) -> tuple[Any, list[Any]]:
    """(the recipe built by name, its phases), checked: a GANRecipe with modules and phases."""
    import torch

    from .checkpoints import build_recipe
    from .recipe import GANRecipe, Phase

    name, params = recipe_config["architecture"], recipe_config["params"]
    try:
        recipe = build_recipe(registry, recipe_config)
    except Exception as exc:
        _fail(f"architecture {name!r} cannot be built with info={info} and params {params or '{}'}: "
              f"{type(exc).__name__}: {exc}. "
              f"Declare `contract_params` (or `contract_info` / `contract_dataset`) on its factory")
    if not isinstance(recipe, GANRecipe):
        _fail(f"the factory returned {type(recipe).__name__}, not an artgan.recipe.GANRecipe")
    if not recipe.modules or not all(isinstance(m, torch.nn.Module) for m in recipe.modules.values()):
        _fail("recipe.modules must be a non-empty dict of name -> torch.nn.Module (the checkpoint stores each)")
    phases = recipe.phases()
    if not phases or not all(isinstance(p, Phase) for p in phases):
        _fail("recipe.phases() must return a non-empty list of artgan.recipe.Phase")
    return recipe, phases


def _parameters_before_training(recipe: Any, phases: list[Any]) -> list[tuple[str, list[Any]]]:
    """(phase name, copies of the parameters its optimiser updates), each phase checked to
    optimise only parameters of ``recipe.modules`` (the checkpoint saves no others)."""
    owned = {id(p) for m in recipe.modules.values() for p in m.parameters()}
    before = []
    for phase in phases:
        ps = [p for group in phase.optimizer.param_groups for p in group["params"]]
        if not ps:
            _fail(f"phase {phase.name!r}: its optimiser has no parameters")
        stray = [p for p in ps if id(p) not in owned]
        if stray:
            _fail(f"phase {phase.name!r} optimises {len(stray)} parameter(s) of a module that is not in "
                  f"recipe.modules, so checkpoints would not save them")
        before.append((phase.name, [p.detach().clone() for p in ps]))
    return before


def _check_it_trained(before: list[tuple[str, list[Any]]], phases: list[Any], run_dir: Path, iterations: int) -> None:
    """Every phase moved its parameters, and the logged losses are finite."""
    import torch

    for (phase_name, old), phase in zip(before, phases):
        new = [p for group in phase.optimizer.param_groups for p in group["params"]]
        if all(torch.equal(a, b.detach()) for a, b in zip(old, new)):
            _fail(f"phase {phase_name!r} changed none of its parameters in {iterations} iterations: does its "
                  f"loss depend on them, and does phases() return the recipe's own optimisers?")
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    if not lines or not all(np.isfinite(v) for x in lines for v in x.values() if isinstance(v, (int, float))):
        _fail(f"metrics.jsonl has missing or non-finite values: {lines}")


def _check_samples(recipe: Any) -> None:
    """Samples are float NCHW in [-1, 1], with 1 or 3 channels."""
    import torch

    recipe.train(False)
    fixed = recipe.fixed_inputs(2, torch.Generator().manual_seed(0))
    samples = recipe.sample(fixed)
    if not isinstance(samples, torch.Tensor) or samples.ndim != 4 or samples.shape[1] not in (1, 3):
        _fail(f"recipe.sample() must return a float tensor N x C x H x W (C 1 or 3), got "
              f"{getattr(samples, 'shape', type(samples).__name__)}")
    if samples.min() < -1 - RANGE_SLACK or samples.max() > 1 + RANGE_SLACK:
        _fail(f"recipe.sample() values span [{float(samples.min()):.4g}, {float(samples.max()):.4g}], "
              f"outside [-1, 1]")


def _reloaded_export_spec(recipe: Any, checkpoint: str, registry: Registry) -> Any:
    """The export spec of the recipe rebuilt from ``checkpoint``, checked to give the trained
    recipe's outputs."""
    import torch

    from .checkpoints import load_recipe
    from .recipe import ExportSpec

    spec = recipe.export_spec()
    if not isinstance(spec, ExportSpec):
        _fail(f"recipe.export_spec() must return an artgan.recipe.ExportSpec, got {type(spec).__name__}")
    reloaded, _ = load_recipe(checkpoint, registry)
    spec2 = reloaded.export_spec()
    with torch.no_grad():
        a = _first(spec.module.eval()(*spec.inputs.values()))
        b = _first(spec2.module.eval()(*spec.inputs.values()))
    if a.shape != b.shape or not torch.allclose(a, b, atol=1e-5, rtol=0):
        diff = float((a - b).abs().max()) if a.shape == b.shape else float("nan")
        _fail(f"the recipe rebuilt from its checkpoint gives different outputs (max |diff| {diff:.3g}): "
              f"is every module in recipe.modules, and is the module deterministic in eval mode "
              f"(noise must be an input, not drawn inside forward)?")
    return spec2


def _check_onnx_export(spec: Any, onnx_path: Path, tolerance: float) -> dict[str, Any]:
    """Export with parity against PyTorch, and artgan's runtime runs the file; the model card."""
    from .export import export_onnx
    from .runtime import Generator, Model

    try:
        card = export_onnx(spec, onnx_path, verify=True, tolerance=tolerance)
    except Exception as exc:  # export_onnx's own errors, and onnxruntime's on a broken graph
        detail = str(exc) if isinstance(exc, ArtganError) else f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        _fail(f"ONNX export: {detail}. The exported module must run in eval mode, take any noise "
              f"as an input, use each of its inputs and only standard ONNX operations")
    model = Model(onnx_path, providers=["CPUExecutionProvider"])
    if model.task == "generate":
        images = Generator(onnx_path, providers=["CPUExecutionProvider"]).generate(3, seed=0)
        want_c = int(model.metadata.get("channels", images.shape[-1]))
        if images.ndim != 4 or images.shape[0] != 3 or images.shape[-1] != want_c or images.dtype != np.float32:
            _fail(f"the exported generator produced {images.shape} {images.dtype}; expected 3 x H x W x {want_c} float32")
    return card


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, (tuple, list)) else out


# -- losses ------------------------------------------------------------------------------------

def check_loss(loss: Any) -> None:
    """``discriminator(real_logits, fake_logits)`` and ``generator(fake_logits)`` return finite
    scalar tensors that back-propagate to the logits, for per-sample (N) and patch (N x 1 x H x W)
    logits; and each is lower when the discriminator is right than when it is wrong."""
    import torch

    for name in ("discriminator", "generator"):
        if not callable(getattr(loss, name, None)):
            _fail(f"loss {type(loss).__name__} has no method {name}(); subclass artgan.recipe.AdversarialLoss")
    g = torch.Generator().manual_seed(0)
    for shape in ((8,), (8, 1, 4, 4)):
        real = torch.randn(shape, generator=g).requires_grad_(True)
        fake = torch.randn(shape, generator=g).requires_grad_(True)
        results = (("discriminator", loss.discriminator(real, fake), (real, fake)),
                   ("generator", loss.generator(fake), (fake,)))
        for what, out, wrt in results:
            if not isinstance(out, torch.Tensor) or out.ndim != 0:
                _fail(f"loss.{what}() with logits of shape {shape} must return a scalar tensor, got "
                      f"{getattr(out, 'shape', type(out).__name__)}")
            if not torch.isfinite(out):
                _fail(f"loss.{what}() returned {float(out)}")
            if not out.requires_grad:
                _fail(f"loss.{what}() does not back-propagate to the logits (its result has no gradient)")
            grads = torch.autograd.grad(out, wrt, allow_unused=True)
            if any(gr is None or not torch.isfinite(gr).all() for gr in grads) \
                    or all(float(gr.abs().sum()) == 0 for gr in grads):
                _fail(f"loss.{what}() does not back-propagate to the logits (no or non-finite gradient)")
    confident, wrong = torch.full((8,), 4.0), torch.full((8,), -4.0)
    d_right, d_wrong = loss.discriminator(confident, wrong), loss.discriminator(wrong, confident)
    if not float(d_right) < float(d_wrong):
        _fail(f"loss.discriminator is not lower when real logits are high and fake logits low "
              f"({float(d_right):.4g}) than the reverse ({float(d_wrong):.4g}): is a sign flipped?")
    g_fooled, g_caught = loss.generator(confident), loss.generator(wrong)
    if not float(g_fooled) < float(g_caught):
        _fail(f"loss.generator is not lower when fake logits are high ({float(g_fooled):.4g}) than "
              f"when they are low ({float(g_caught):.4g}): is a sign flipped?")


# -- steps -------------------------------------------------------------------------------------

#: The batches :func:`check_step` feeds a step when given none (N, H, W): not square, not powers of
#: two, odd and prime sizes, larger than a 64 px tile: off-by-one, swapped H/W,
#: alignment and off-by-tile bugs all show up on one of them.
CHECK_STEP_SIZES = ((2, 24, 40), (1, 17, 31), (1, 97, 70))


def check_step(step: Any, images: np.ndarray | None = None, *, channels: int = 3) -> np.ndarray:
    """The step maps a float32 NHWC batch in [0, 1] to a float32 NHWC batch in [0, 1] of the
    declared shape (see :func:`expected_step_shape`), leaves its input untouched, and has a
    string ``name``. ``images`` defaults to random batches of each size in
    :data:`CHECK_STEP_SIZES`. Returns the output for ``images`` (or for the first size)."""
    from .steps import Step

    if not callable(step):
        _fail(f"a step must be callable (images -> images); got {type(step).__name__}")
    if not isinstance(getattr(step, "name", None), str):
        _fail(f"step {step!r} has no string `name`; subclass artgan.steps.Step and set name")
    if not isinstance(step, Step):
        _fail(f"step {step.name!r} is a {type(step).__name__}; subclass artgan.steps.Step")
    if images is not None:
        return _check_step_on(step, images)
    rng = np.random.default_rng(0)
    outputs = [_check_step_on(step, rng.random((*size, channels), dtype=np.float32)) for size in CHECK_STEP_SIZES]
    return outputs[0]


def _check_step_on(step: Any, images: np.ndarray) -> np.ndarray:
    original = images.copy()
    try:
        out = step(images)
    except Exception as exc:
        _fail(f"step {step.name!r} failed on a batch of shape {images.shape} ({type(exc).__name__}: {exc}); "
              f"steps take any height and width")
    if not np.array_equal(images, original):
        _fail(f"step {step.name!r} modified its input array in place; work on a copy")
    if not isinstance(out, np.ndarray):
        _fail(f"step {step.name!r} returned {type(out).__name__}, not a numpy array")
    if out.dtype != np.float32:
        _fail(f"step {step.name!r} returned dtype {out.dtype}; steps return float32 in [0, 1]")
    want = expected_step_shape(step, images.shape)
    if out.shape != want:
        _fail(f"step {step.name!r} returned shape {out.shape} for input {images.shape}; expected {want} "
              f"(NHWC; set `scale` or define output_shape() if the size changes)")
    if not np.isfinite(out).all():
        _fail(f"step {step.name!r} returned NaN or infinite values for input {images.shape}")
    lo, hi = float(out.min()), float(out.max())
    if lo < -RANGE_SLACK or hi > 1 + RANGE_SLACK:
        _fail(f"step {step.name!r} returned values in [{lo:.4g}, {hi:.4g}]; steps return [0, 1] (clip)")
    return out


_NO_TORCH_SCRIPT = r"""
import importlib, json, sys
import numpy as np
from artgan.plugins import make_plugin_manager
from artgan.steps import build_step
modules, specs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
plugins = tuple(importlib.import_module(m) for m in modules)
registry = make_plugin_manager(plugins, load_entry_points=not plugins)[1]
images = np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32)
for spec in specs:
    build_step(registry, spec)(images)
    if "torch" in sys.modules:
        print("IMPORTED-TORCH", json.dumps(spec))
        sys.exit(3)
print("OK")
"""


def check_step_without_torch(*specs: str | dict[str, Any], plugin_module: str | None = None,
                             timeout: float = 120) -> None:
    """Build and run each step spec (``"name:key=value"`` or ``{"name": ..., ...}``) in a fresh
    Python process and check that torch was never imported: steps run on the runtime side,
    where torch may not be installed. ``plugin_module`` registers that module alone (no install
    needed); without it the installed plugins are used."""
    modules = [plugin_module] if plugin_module else []
    # the child imports from where this process does (e.g. pytest's pythonpath), less the
    # interpreter's own folders, which it has anyway
    own = (sys.prefix, sys.base_prefix, sys.exec_prefix)
    extra = [p for p in sys.path if p and not p.startswith(own) and Path(p).is_dir()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*extra, os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)}
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH_SCRIPT, json.dumps(modules), json.dumps(list(specs))],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if "IMPORTED-TORCH" in proc.stdout:
        spec = proc.stdout.split("IMPORTED-TORCH", 1)[1].strip()
        _fail(f"step {spec} imported torch when built or run; import torch-side code only in "
              f"training modules, and run trained models through artgan.runtime")
    if proc.returncode != 0 or "OK" not in proc.stdout:
        _fail(f"building or running steps {list(specs)} failed in a fresh process:\n{proc.stderr.strip()[-2000:]}")


# -- pytest plugin -----------------------------------------------------------------------------

class Contract:
    """The checks, writing any files into one folder (the ``artgan_contract`` fixture's ``tmp_path``)."""

    def __init__(self, workdir: Path, registry: Registry | None = None):
        self.workdir, self._registry = Path(workdir), registry

    @property
    def registry(self) -> Registry:
        """The registry ``registered`` looks names up in: by default, a fresh one of the installed plugins."""
        if self._registry is None:
            self._registry = make_plugin_manager()[1]
        return self._registry

    def _sub(self, what: str) -> Path:
        path = self.workdir / what
        n = 1
        while path.exists():
            n += 1
            path = self.workdir / f"{what}-{n}"
        return path

    def plugin(self, plugin: Any) -> Registry:
        """:func:`check_plugin`."""
        return check_plugin(plugin)

    def dataset(self, dataset: Any, **kw: Any) -> None:
        """:func:`check_dataset`."""
        return check_dataset(dataset, **kw)

    def architecture(self, factory: Callable[..., Any], info: Any = None, **kw: Any) -> dict[str, Any]:
        """:func:`check_architecture`, writing into a sub-folder of the test's folder."""
        kw.setdefault("workdir", self._sub("architecture"))
        return check_architecture(factory, info, **kw)

    def loss(self, loss: Any) -> None:
        """:func:`check_loss`."""
        return check_loss(loss)

    def step(self, step: Any, images: np.ndarray | None = None, **kw: Any) -> np.ndarray:
        """:func:`check_step`."""
        return check_step(step, images, **kw)

    def evaluation(self, evaluation: Any, **kw: Any) -> dict[str, Any]:
        """:func:`check_evaluation`, writing into a sub-folder of the test's folder."""
        kw.setdefault("workdir", self._sub("evaluation"))
        return check_evaluation(evaluation, **kw)

    def registered(self, kind: str, name: str, registry: Registry | None = None) -> Any:
        """:func:`check_registered`, writing into a sub-folder of the test's folder."""
        return check_registered(registry or self.registry, kind, name, self._sub(f"{kind}-{name}"))


try:  # the fixtures exist only under pytest; importing this module elsewhere needs no pytest
    import pytest as _pytest
except ImportError:  # pragma: no cover
    _pytest = None

if _pytest is not None:
    @_pytest.fixture
    def artgan_registry() -> Registry:
        """A fresh registry of the installed plugins (not the process-wide one)."""
        return make_plugin_manager()[1]

    @_pytest.fixture
    def artgan_contract(tmp_path: Path) -> Contract:
        """artgan's contract checks, writing into this test's ``tmp_path``:
        ``artgan_contract.step(step)``, ``.dataset(ds)``, ``.loss(loss)``,
        ``.architecture(factory, info)``, ``.evaluation(evaluation)``, ``.registered(kind, name)``,
        ``.plugin(module)``."""
        return Contract(tmp_path)
