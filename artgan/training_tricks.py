"""Model-agnostic GAN training tricks any recipe can use.

- :class:`EMA`: an exponential moving average of a network's weights (Karras et al., 2018;
  Yazici et al., 2019), used for samples and export; it is a plain ``nn.Module`` so it lives in
  ``recipe.modules`` and is saved in every checkpoint.
- :func:`diff_augment`: differentiable augmentation (Zhao et al., 2020, "DiffAugment"): colour,
  translation and cutout applied to real *and* fake images before the discriminator, so a small
  dataset is not memorised by D. Draws from the global torch RNG (saved in checkpoints).
- :func:`r1_penalty` (Mescheder et al., 2018) and :func:`gradient_penalty` (WGAN-GP, Gulrajani
  et al., 2017): penalties on the discriminator's input gradient.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class EMA(nn.Module):
    """``EMA(generator, decay)``: a frozen copy whose parameters follow ``decay * ema + (1 -
    decay) * live`` after each :meth:`update`; buffers (BatchNorm statistics) are copied.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates, so
    the average is not dominated by the random initialisation.
    """

    def __init__(self, module: nn.Module, decay: float = 0.999):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, live: nn.Module) -> None:
        n = int(self.updates)
        d = min(self.decay, (1 + n) / (10 + n))
        ema_p = [p for p in self.module.parameters()]
        live_p = [p.detach() for p in live.parameters()]
        torch._foreach_lerp_(ema_p, live_p, 1.0 - d)
        for b_ema, b in zip(self.module.buffers(), live.buffers()):
            b_ema.copy_(b)
        self.updates += 1

    def train(self, mode: bool = True) -> "EMA":
        # the averaged copy is never trained: keep it in eval mode whatever the trainer asks
        super().train(False)
        return self

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


# -- DiffAugment ----------------------------------------------------------------------------------

def _brightness(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)


def _saturation(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean


def _contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros (mid-grey in [-1, 1])."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + ty + 1, 0, h + 1)
    gx = torch.clamp(gx[None] + tx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # the border row/column is the zero fill
    flat = padded.permute(0, 2, 3, 1)  # N, H+2, W+2, C
    out = flat[torch.arange(n, device=x.device)[:, None, None], gy, gx]
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.contiguous_format)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` times the image size at a random place in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    gy = torch.arange(h, device=x.device)[None, :, None]
    gx = torch.arange(w, device=x.device)[None, None, :]
    dy, dx = gy - oy + ch // 2, gx - ox + cw // 2
    inside = (dy >= 0) & (dy < ch) & (dx >= 0) & (dx < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTS: dict[str, list[Callable[[torch.Tensor], torch.Tensor]]] = {
    "color": [_brightness, _saturation, _contrast],
    "translation": [_translation],
    "cutout": [_cutout],
}


def parse_policy(policy: str | list[str] | None) -> list[str]:
    """``"color,translation,cutout"`` (or a list) -> validated names; ``""``/None -> []."""
    if not policy:
        return []
    names = [p.strip() for p in (policy.split(",") if isinstance(policy, str) else policy) if p.strip()]
    for p in names:
        if p not in AUGMENTS:
            raise ValueError(f"unknown DiffAugment policy {p!r}; choose from {', '.join(AUGMENTS)}")
    return names


def diff_augment(x: torch.Tensor, policy: list[str]) -> torch.Tensor:
    """Apply the policy's augmentations, each differentiable w.r.t. ``x``."""
    for name in policy:
        for fn in AUGMENTS[name]:
            x = fn(x)
    return x


# -- gradient penalties ---------------------------------------------------------------------------

def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``||d D(x) / d x||^2`` at real images ``x`` (``real`` must have
    ``requires_grad`` and ``real_logits`` must come from it). Multiply by gamma / 2 yourself."""
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: ``E[(||grad critic(x_hat)|| - 1)^2]`` at random interpolates of real and fake."""
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).float().sum(), x_hat, create_graph=True)
    return (grad.float().flatten(1).norm(2, dim=1) - 1).pow(2).mean()
