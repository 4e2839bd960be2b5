"""GANs for data augmentation: ``artgan synth`` turns a conditional generator into a labelled
image-folder dataset (torch-free), the ``small-cgan`` architecture makes such generators from
few labelled images, and ``artgan evaluate augment`` scores such data by what a fixed
classifier learns from it (Classification Accuracy Score, Ravuri & Vinyals, 2019): an
evaluation (:mod:`.evaluate`) the core makes into a command; the protocol is :mod:`.protocol`.

Registered through the ``artgan`` entry-point group, like any third-party plugin. Everything is
named lazily: torch is imported only when a model trains or the evaluation runs.
"""

from __future__ import annotations

from pathlib import Path

import artgan
from artgan.plugins import lazy

# the repository's reference pipelines (artgan is installed from a checkout: pip install -e .)
PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"

ARTGAN_HOOK_API = 1


@artgan.hookimpl
def artgan_register_architectures(register):
    register("small-cgan", lazy("artgan_augment.model:SmallCGANRecipe"))


@artgan.hookimpl
def artgan_register_evaluations(register):
    register("augment", lazy("artgan_augment.evaluate:augment_evaluation"))


@artgan.hookimpl
def artgan_register_commands(cli):
    from .cli import synth

    cli.add_command(synth)


@artgan.hookimpl
def artgan_register_tasks(register):
    register("augment", augment_task)


def augment_task():
    """Augmentation: a class-conditional generator whose images train a classifier (``artgan synth``)."""
    from artgan.tasks import Task

    return Task("augment", "make labelled training images for a classifier (artgan synth)",
                architectures=("small-cgan",), datasets=("digits",), step=None, evaluation="augment",
                pipelines=(str(PIPELINES / "digits-augment.yaml"),),
                build="artgan build augment --name NAME")
