"""First-party GAN architectures and adversarial losses.

Registered through the ``artgan`` entry-point group, like any third-party plugin.
"""

from __future__ import annotations

import artgan
from artgan.plugins import lazy


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
