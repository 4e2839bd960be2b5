"""Every hook artgan calls, documented for plugin authors.

A plugin is a module (or object) with functions marked ``@artgan.hookimpl`` whose names are the
hook names below; it is found through the ``artgan`` entry-point group::

    [project.entry-points.artgan]
    myplugin = "artgan_myplugin"

Hooks are called with keyword arguments; an implementation may accept any subset of a hook's
parameters. Registration hooks receive a ``register(name, factory)`` callback so artgan can record
which plugin gave each name and refuse duplicates, naming both plugins.

Hook API version: :data:`HOOK_API_VERSION`. Adding a hook or an optional parameter keeps it;
removing or changing one raises it and is announced in the changelog.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

#: The version of the hooks and contracts (docs/plugins.md, "Versioning and compatibility").
HOOK_API_VERSION = 1

hookspec = pluggy.HookspecMarker("artgan")

Register = Callable[[str, Callable[..., Any]], None]


@hookspec
def artgan_register_datasets(register: Register) -> None:
    """Called once, when the plugin manager starts. Register the datasets you provide.

    Call ``register(name, factory)`` once per dataset. ``factory(**params)`` receives the
    ``dataset:`` mapping of a pipeline (less ``name``) and returns a ``torch.utils.data.Dataset``
    whose items are dicts of tensors (``{"image": float32 CxHxW in [-1, 1]}``, plus ``"label"``
    (int64) for labelled data) and which has an ``info`` attribute, an
    :class:`artgan.data.DatasetInfo`. Raise :class:`artgan.errors.ArtganError` for bad params.
    Returns nothing.
    """


@hookspec
def artgan_register_architectures(register: Register) -> None:
    """Called once, when the plugin manager starts. Register the GAN recipes you provide.

    Call ``register(name, factory)``. ``factory(*, info, loss, **params)`` receives the dataset's
    :class:`artgan.data.DatasetInfo`, a loss object made from the losses registry (or ``None``
    when the pipeline names none and the recipe has a default) and the ``architecture:`` mapping
    of a pipeline (less ``name``); it returns an :class:`artgan.recipe.GANRecipe`. Returns nothing.
    """


@hookspec
def artgan_register_losses(register: Register) -> None:
    """Called once, when the plugin manager starts. Register the adversarial losses you provide.

    Call ``register(name, factory)``. ``factory(**params)`` returns an
    :class:`artgan.recipe.AdversarialLoss`: ``discriminator(real_logits, fake_logits)`` and
    ``generator(fake_logits)``, each returning a scalar tensor. Returns nothing.
    """


@hookspec
def artgan_register_steps(register: Register) -> None:
    """Called once, when the plugin manager starts. Register post-processing steps.

    Call ``register(name, factory)``. ``factory(**params)`` receives the step's parameters as
    strings or YAML values, validates them (raise :class:`artgan.errors.ArtganError` naming the
    parameter) and returns an :class:`artgan.steps.Step`: a callable mapping float32 NHWC images
    in [0, 1] to float32 NHWC images in [0, 1]. A step must not import torch when it runs: use
    :mod:`artgan.runtime` for trained models. Returns nothing.
    """


@hookspec
def artgan_register_evaluations(register: Register) -> None:
    """Called once, when the plugin manager starts. Register your task's evaluation.

    Call ``register(name, factory)``; ``name`` is the task (``artgan evaluate NAME``).
    ``factory()`` takes no parameters and returns an :class:`artgan.evaluation.Evaluation`: the
    metrics it reports, the baselines it compares by default, ``methods(request)`` (name -> a
    method mapping NHWC float32 images in [0, 1] to images), ``load(path, request)`` (one data
    file -> the methods' inputs and the reference to score against) and ``score(outputs,
    reference, request)`` (-> ``{metric: number}``). The core builds the command with the same
    options for every task (``--data --split --model --baselines --out --card --json``), runs
    every method on every file of the split (:mod:`artgan.splits`), and writes one results JSON
    and table. Keep the module light: it is imported when the CLI starts. Returns nothing.
    """


@hookspec
def artgan_register_tasks(register: Register) -> None:
    """Called once, when the plugin manager starts. Say which of your registered parts make a task.

    Call ``register(name, factory)``; ``factory()`` takes no parameters and returns an
    :class:`artgan.tasks.Task` naming the task's architectures, datasets, step, evaluation and
    baselines, each registered through the hooks above (by this plugin or another). ``artgan tasks``
    lists them and checks every name; ``artgan.testing.check_task`` does the same in a plugin's
    tests. Keep the factory light (names only): it runs when the CLI starts. Returns nothing.
    """


@hookspec
def artgan_register_commands(cli: Any) -> None:
    """Called once, the first time the command line needs plugins' commands: for a command that
    is not artgan's own, or for the list of commands (``artgan --help``, ``artgan plugins``).
    artgan's own commands start without loading plugins. Add your own commands.

    ``cli`` is the root :class:`click.Group`; add commands with ``cli.add_command(...)`` or the
    ``@cli.command()`` decorator. Import heavy modules inside your command, not at the top of
    your plugin, so ``artgan --help`` stays fast. Returns nothing.
    """


@hookspec
def artgan_on_metrics(run_dir: str, iteration: int, metrics: dict[str, float]) -> None:
    """Called by the trainer each time it logs metrics (every ``log_every`` iterations).

    ``run_dir`` is the run folder, ``iteration`` the number of completed training iterations and
    ``metrics`` the scalars just appended to ``metrics.jsonl``. For loggers and trackers.
    Returns nothing; an exception here stops training.
    """


@hookspec
def artgan_on_checkpoint(run_dir: str, iteration: int, path: str) -> None:
    """Called by the trainer after a checkpoint has been written (atomically) to ``path``, after
    ``iteration`` training iterations.

    Returns nothing.
    """
