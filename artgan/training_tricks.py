"""Model-agnostic GAN training tricks any recipe can use.

- :class:`EMA`: an exponential moving average of a network's weights (Karras et al., 2018;
  Yazici et al., 2019), used for samples and export; it is a plain ``nn.Module`` so it lives in
  ``recipe.modules`` and is saved in every checkpoint.
- :class:`LRSchedule`: the learning rate as a factor of its base value at each training iteration,
  by name (``constant``, ``linear``, ``cosine``).
- :func:`diff_augment`: differentiable augmentation (Zhao et al., 2020, "DiffAugment"): colour,
  translation and cutout applied to real *and* fake images before the discriminator, so a small
  dataset is not memorised by D. Draws from the global torch RNG (saved in checkpoints).
- :func:`r1_penalty` (Mescheder et al., 2018) and :func:`gradient_penalty` (WGAN-GP, Gulrajani
  et al., 2017): penalties on the discriminator's input gradient.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
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
    def update(self, live: nn.Module, iteration: int | None = None) -> None:
        """Move the average towards ``live``'s weights. The warm-up counts this average's own
        updates, or ``iteration`` when given: superres and inpaint count the trainer's iterations (1
        at the first update), as they did before they used this class, so their models retrain the same."""
        n = int(self.updates) if iteration is None else iteration
        d = min(self.decay, (1 + n) / (10 + n))
        ema_p = [p for p in self.module.parameters()]
        live_p = [p.detach() for p in live.parameters()]
        torch._foreach_lerp_(ema_p, live_p, 1.0 - d)
        for b_ema, b in zip(self.module.buffers(), live.buffers()):
            b_ema.copy_(b)
        self.updates += 1

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # superres and inpaint checkpoints written before this class stored the bare network
        if state_dict and not any(k.startswith("module.") for k in state_dict):
            state_dict = {**{f"module.{k}": v for k, v in state_dict.items()}, "updates": self.updates.clone()}
        return super().load_state_dict(state_dict, strict, assign)

    def train(self, mode: bool = True) -> "EMA":
        # the averaged copy is never trained: keep it in eval mode whatever the trainer asks
        super().train(False)
        return self

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def averaged_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's own state dict from a saved :class:`EMA` state (either layout), e.g. to
    start a new network from a checkpoint's average."""
    if not any(k.startswith("module.") for k in state):
        return dict(state)  # the bare network, as older checkpoints stored it
    return {k[len("module."):]: v for k, v in state.items() if k.startswith("module.")}


# -- learning-rate schedules ----------------------------------------------------------------------

LR_SCHEDULES = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class LRSchedule:
    """The learning rate as a factor of its base value: 1 up to iteration ``start``, then along
    ``shape`` (``linear`` or ``cosine``) down to ``final`` at iteration ``end``, then ``final``.
    ``constant``, or ``end`` 0, keeps the base value.

    The three schedules the recipes had are instances: superres and inpaint a cosine from iteration 0
    to 1% (``final=0.01``), patch-style a line to 10% and CycleGAN a line to 0 (Zhu et al.).
    """

    shape: str = "constant"
    start: int = 0
    end: int = 0
    final: float = 0.0

    def __post_init__(self):
        if self.shape not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.shape!r}")
        if self.end and not 0 <= self.start < self.end:
            raise ValueError(f"need decay_from < decay_to, got {self.start}, {self.end}")
        if not 0.0 <= self.final <= 1.0:
            raise ValueError(f"lr_final is a fraction of lr in [0, 1], got {self.final!r}")

    @property
    def active(self) -> bool:
        """Whether the schedule changes the learning rate at all."""
        return self.shape != "constant" and self.end > 0

    def factor(self, iteration: int) -> float:
        if not self.active:
            return 1.0
        t = min(max((iteration - self.start) / (self.end - self.start), 0.0), 1.0)
        if self.shape == "cosine":
            return self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * t))
        return 1.0 - (1 - self.final) * t


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
