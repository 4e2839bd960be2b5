"""Adversarial losses. Each takes raw discriminator logits (cast to float32 by the recipe)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from artgan.errors import ArtganError
from artgan.recipe import AdversarialLoss
from artgan.training_tricks import gradient_penalty


class NonSaturatingLoss(AdversarialLoss):
    """The original GAN loss with the non-saturating generator objective (Goodfellow et al., 2014):
    D minimises softplus(-D(x)) + softplus(D(G(z))); G minimises softplus(-D(G(z)))."""

    name = "non-saturating"

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()


class HingeLoss(AdversarialLoss):
    """Hinge loss (Lim & Ye, 2017; Miyato et al., 2018): D minimises relu(1 - D(x)) +
    relu(1 + D(G(z))); G minimises -D(G(z)). The usual partner of spectral normalisation."""

    name = "hinge"

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


class LeastSquaresLoss(AdversarialLoss):
    """Least-squares GAN (Mao et al., 2017) with targets a=0 (fake), b=1 (real), c=1:
    D minimises ((D(x) - 1)^2 + D(G(z))^2) / 2; G minimises ``generator_scale`` * (D(G(z)) - 1)^2,
    0.5 as in the paper; CycleGAN's reference code (an MSE) has 1, and its recipe asks for that."""

    name = "least-squares"

    def __init__(self, generator_scale: float = 0.5):
        if not isinstance(generator_scale, (int, float)) or isinstance(generator_scale, bool) or generator_scale <= 0:
            raise ArtganError(f"least-squares: generator_scale must be a number > 0, got {generator_scale!r}")
        self.generator_scale = generator_scale

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_logits - 1).pow(2).mean() + fake_logits.pow(2).mean())

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return self.generator_scale * (fake_logits - 1).pow(2).mean()


class WassersteinGPLoss(AdversarialLoss):
    """Wasserstein loss with gradient penalty (Gulrajani et al., 2017): the critic minimises
    D(G(z)) - D(x) + gp_weight * (||grad D(x_hat)|| - 1)^2; G minimises -D(G(z)).

    Use a critic without BatchNorm (``spectral_norm: true`` on dcgan removes it, or sngan) and
    several critic steps per generator step (the recipe's ``g_every: 5``)."""

    name = "wgan-gp"

    def __init__(self, gp_weight: float = 10.0, drift: float = 0.0):
        if gp_weight < 0 or drift < 0:
            raise ArtganError(f"wgan-gp: gp_weight and drift must be >= 0, got {gp_weight}, {drift}")
        self.gp_weight, self.drift = gp_weight, drift

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        loss = fake_logits.mean() - real_logits.mean()
        if self.drift:  # keeps the critic's output near zero (Karras et al., 2018)
            loss = loss + self.drift * real_logits.pow(2).mean()
        return loss

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()

    def discriminator_penalty(self, critic, real, fake):
        return self.gp_weight * gradient_penalty(critic, real, fake)
