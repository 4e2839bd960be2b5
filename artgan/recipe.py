"""The contract between the trainer and an architecture plugin: a GAN recipe.

A recipe owns its networks and optimisers and knows how to take one adversarial step; the one
trainer in :mod:`artgan.train` owns everything else (device, data, backward passes, checkpoints,
samples, logging). Unconditional and conditional GANs, super-resolution, inpainting and CycleGAN
all fit: each is a list of :class:`Phase` objects, one per optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn


class AdversarialLoss:
    """Base class of the losses registered through ``artgan_register_losses``.

    Subclasses implement both methods; each receives raw discriminator outputs (logits) and
    returns a scalar tensor to minimise.
    """

    name = "loss"

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def discriminator_penalty(self, critic: Callable[[torch.Tensor], torch.Tensor],
                              real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """An extra term for D's loss that needs D itself (e.g. WGAN-GP's gradient penalty), or
        ``None`` (the default). ``critic`` maps images to logits; recipes add what it returns."""
        return None


@dataclass
class Phase:
    """One optimiser's turn in a training step.

    ``step(batch)`` computes losses for this phase and returns them by name; ``"loss"`` is the one
    the trainer back-propagates through ``optimizer``; the others are logged. The trainer zeroes
    the gradients, calls ``step``, runs ``backward`` and steps the optimiser.
    """

    name: str
    optimizer: torch.optim.Optimizer
    step: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    every: int = 1  # take this phase on every n-th training step (e.g. several D steps per G)


@dataclass
class ExportSpec:
    """What to export: one module, example inputs by name, and the model's metadata."""

    module: nn.Module
    inputs: dict[str, torch.Tensor]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Optional ``calibration(n) -> {input name: tensor with n rows}``: inputs as the model meets
    #: them in use (e.g. real image crops), for int8 calibration. Without it, inputs are drawn as
    #: ``metadata["input_spec"]`` documents them (latents: standard normal).
    calibration: Callable[[int], dict[str, torch.Tensor]] | None = None


class GANRecipe:
    """Base class for what an architecture plugin returns.

    Subclasses fill ``self.modules`` (name -> ``nn.Module``; the checkpoint stores each) and
    ``self.optimizers`` and implement :meth:`phases`, :meth:`fixed_inputs`, :meth:`sample` and
    :meth:`export_spec`. ``self.config`` holds the constructor arguments, so a checkpoint can
    rebuild the recipe without the pipeline that made it.
    """

    def __init__(self) -> None:
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.config: dict[str, Any] = {}

    # -- what subclasses provide -------------------------------------------------------------
    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Inputs for the sample grids, drawn once per run from ``generator`` (CPU)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Images (float NCHW in [-1, 1]) for ``inputs`` from :meth:`fixed_inputs`."""
        raise NotImplementedError

    def export_spec(self) -> ExportSpec:
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """Called after every training step (e.g. to update an EMA of the generator)."""

    # -- shared plumbing -----------------------------------------------------------------------
    def to(self, device: torch.device | str) -> "GANRecipe":
        for m in self.modules.values():
            m.to(device)
        return self

    def train(self, mode: bool = True) -> "GANRecipe":
        for m in self.modules.values():
            m.train(mode)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
        }

    def load_state_dict(self, state: dict[str, Any], *, optimizers: bool = True) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(state["modules"][k])
        if optimizers:
            for k, o in self.optimizers.items():
                o.load_state_dict(state["optimizers"][k])
