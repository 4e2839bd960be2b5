"""Adversarial losses. Each takes raw discriminator logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from artgan.recipe import AdversarialLoss


class NonSaturatingLoss(AdversarialLoss):
    """The original GAN loss with the non-saturating generator objective (Goodfellow et al., 2014):
    D minimises softplus(-D(x)) + softplus(D(G(z))); G minimises softplus(-D(G(z)))."""

    name = "non-saturating"

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()
