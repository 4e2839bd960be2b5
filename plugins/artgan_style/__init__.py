"""Style transfer: a CycleGAN photo -> painting recipe, an unpaired two-folder dataset, the
``style`` / ``color-transfer`` / ``histogram-match`` steps and ``artgan evaluate style``.

Registered through the ``artgan`` entry-point group, like any third-party plugin. Everything is
named lazily: torch is imported only when a pipeline trains, never by the steps.
"""

from __future__ import annotations

import artgan
from artgan.plugins import lazy


@artgan.hookimpl
def artgan_register_datasets(register):
    register("unpaired-folders", lazy("artgan_style.data:UnpairedFoldersDataset"))


@artgan.hookimpl
def artgan_register_architectures(register):
    register("patch-style", lazy("artgan_style.model:PatchStyleRecipe"))
    register("cyclegan", lazy("artgan_style.cyclegan:CycleGANRecipe"))


@artgan.hookimpl
def artgan_register_steps(register):
    register("style", lazy("artgan_style.steps:StyleStep"))
    register("color-transfer", lazy("artgan_style.steps:ColorTransferStep"))
    register("histogram-match", lazy("artgan_style.steps:HistogramMatchStep"))


@artgan.hookimpl
def artgan_register_commands(cli):
    from .cli import style
    from .evaluate import evaluate_style

    cli.commands["evaluate"].add_command(evaluate_style)
    cli.add_command(style)
