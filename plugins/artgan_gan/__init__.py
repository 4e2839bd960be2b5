"""First-party GAN architectures, adversarial losses and their evaluation (``artgan evaluate gan``).

Registered through the ``artgan`` entry-point group, like any third-party plugin.
"""

from __future__ import annotations

from pathlib import Path

import artgan
from artgan.plugins import lazy

# the repository's reference pipelines (artgan is installed from a checkout: pip install -e .)
PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


@artgan.hookimpl
def artgan_register_architectures(register):
    # lazy: torch is imported when a pipeline trains, not when the CLI starts
    register("dcgan", lazy("artgan_gan.dcgan:DCGANRecipe"))
    register("sngan", lazy("artgan_gan.sngan:SNGANRecipe"))


@artgan.hookimpl
def artgan_register_losses(register):
    register("non-saturating", lazy("artgan_gan.losses:NonSaturatingLoss"))
    register("hinge", lazy("artgan_gan.losses:HingeLoss"))
    register("least-squares", lazy("artgan_gan.losses:LeastSquaresLoss"))
    register("wgan-gp", lazy("artgan_gan.losses:WassersteinGPLoss"))


@artgan.hookimpl
def artgan_register_evaluations(register):
    register("gan", lazy("artgan_gan.evaluate:gan_evaluation"))


@artgan.hookimpl
def artgan_register_tasks(register):
    register("gan", gan_task)


def gan_task():
    """Generation: images from noise (the quickstart), measured by mode coverage and distances."""
    from artgan.tasks import Task

    return Task("gan", "generate images from noise (the quickstart)", architectures=("dcgan", "sngan"),
                datasets=("mnist", "digits", "shapes", "stacked-digits", "image-folder"), step=None, evaluation="gan",
                pipelines=(str(PIPELINES / "quickstart.yaml"), str(PIPELINES / "stacked-digits.yaml")),
                build="artgan build gan --name NAME")
