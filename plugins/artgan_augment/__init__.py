"""GANs for data augmentation: ``artgan synth`` turns a conditional generator into a labelled
image-folder dataset (torch-free), the ``small-cgan`` architecture makes such generators from
few labelled images, and ``artgan evaluate augment`` scores such data by what a fixed
classifier learns from it (Classification Accuracy Score, Ravuri & Vinyals, 2019).

Registered through the ``artgan`` entry-point group, like any third-party plugin. Only click is
imported here; each command imports the rest when it runs.
"""

from __future__ import annotations

import artgan
from artgan.plugins import lazy

ARTGAN_HOOK_API = 1


@artgan.hookimpl
def artgan_register_architectures(register):
    register("small-cgan", lazy("artgan_augment.model:SmallCGANRecipe"))


@artgan.hookimpl
def artgan_register_commands(cli):
    from .cli import evaluate_augment, synth

    cli.add_command(synth)
    cli.commands["evaluate"].add_command(evaluate_augment)
