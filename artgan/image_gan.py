"""The image GAN's training recipe over networks a plugin gives: noise (and, when conditional, a
class label) to an image, with the stabilising switches every such GAN wants (EMA, R1,
DiffAugment, separate G/D learning rates, critic steps, PacGAN) and the knobs they read
(:class:`ImageGANConfig`).

The core knows no network: an architecture subclass of :class:`ImageGANRecipe` builds ``self.G``
(``G(z, y)`` -> images in [-1, 1]) and ``self.D`` (``D(x, y)`` -> one logit per image; ``y`` is
``None`` for an unconditional model) and calls :meth:`ImageGANRecipe.setup`. The gan plugin's
dcgan and sngan and the augment plugin's small-cgan are such subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .data import DatasetInfo
from .errors import ArtganError
from .recipe import ExportSpec, GANRecipe, Phase, RecipeConfig
from .training_tricks import diff_augment, parse_policy, r1_penalty


@dataclass
class ImageGANConfig(RecipeConfig):
    """The training knobs of an image GAN (besides :class:`~artgan.recipe.RecipeConfig`'s ``lr``,
    ``betas``, ``ema`` and the learning-rate schedule, which applies to both optimisers); a
    recipe's config adds its networks' own (widths, upsampling ...)."""

    latent_dim: int = 100
    g_lr: float | None = None  # the generator's learning rate (default: lr)
    d_lr: float | None = None  # the discriminator's (default: lr)
    r1: float = 0.0  # gamma of the R1 penalty on D (0: off)
    diffaugment: str | None = None  # e.g. "color,translation,cutout"
    g_every: int = 1  # a generator step every n discriminator steps
    pack: int = 1  # PacGAN: D judges this many samples at once

    def check(self, who: str) -> None:
        super().check(who)
        if isinstance(self.latent_dim, bool) or not isinstance(self.latent_dim, int) or self.latent_dim < 1:
            raise ArtganError(f"{who}: latent_dim must be an integer >= 1, got {self.latent_dim!r}")
        for name in ("g_lr", "d_lr"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 < value < float("inf")):
                raise ArtganError(f"{who}: {name} must be a finite number > 0 (or unset: lr), got {value!r}")
        if self.r1 < 0:
            raise ArtganError(f"{who}: r1 (gamma) must be >= 0, got {self.r1}")
        if not isinstance(self.g_every, int) or self.g_every < 1:
            raise ArtganError(f"{who}: g_every must be an integer >= 1, got {self.g_every!r}")
        if not isinstance(self.pack, int) or isinstance(self.pack, bool) or not 1 <= self.pack <= 8:
            raise ArtganError(f"{who}: pack must be an integer from 1 to 8, got {self.pack!r}")


class _LabelledGenerator(nn.Module):
    """Export wrapper: ``(z, label)`` as ONNX inputs for a conditional generator."""

    def __init__(self, g: nn.Module):
        super().__init__()
        self.g = g

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.g(z, label)


class ImageGANRecipe(GANRecipe):
    """Noise (and a label) to image: D then G each iteration (G every ``g_every``), the
    pipeline's adversarial loss (``default_loss`` otherwise), samples and export from the EMA of
    G when kept. Subclasses build ``self.G`` and ``self.D``, then call :meth:`setup`."""

    architecture = "gan"
    default_loss = "non-saturating"

    def setup(self, cfg: ImageGANConfig, info: DatasetInfo, loss, *, conditional: bool) -> None:
        """The losses, optimisers, EMA and schedule for ``self.G`` and ``self.D``; ``conditional``:
        both take the batch's class label (``info`` then needs two classes or more)."""
        if conditional and info.num_classes < 2:
            raise ArtganError(f"{self.architecture}: conditional: true needs a labelled dataset; "
                              f"{info.name or 'this dataset'} has no classes")
        if cfg.pack > 1 and conditional:
            raise ArtganError(f"{self.architecture}: pack > 1 is for unconditional models; set pack: 1 or "
                              f"conditional: false")
        try:
            self.policy = parse_policy(cfg.diffaugment)
        except ValueError as exc:
            raise ArtganError(f"{self.architecture}: diffaugment: {exc}") from None
        self.cfg, self.info, self.loss = cfg, info, self.adversarial_loss(loss)
        self.latent_dim, self.conditional = cfg.latent_dim, conditional
        self.r1, self.g_every, self.pack = cfg.r1, cfg.g_every, cfg.pack
        self.modules = {"generator": self.G, "discriminator": self.D}
        self.keep_ema(self.G, cfg.ema)
        self.optimizers = {
            "generator": torch.optim.Adam(self.G.parameters(), lr=cfg.g_lr or cfg.lr, betas=cfg.betas),
            "discriminator": torch.optim.Adam(self.D.parameters(), lr=cfg.d_lr or cfg.lr, betas=cfg.betas),
        }
        self.set_lr_schedule(cfg.schedule())

    # -- training -------------------------------------------------------------------------------
    def _labels(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        return batch["label"] if self.conditional else None

    def _noise(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=device)

    def _d(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        # D sees augmented images (real and fake alike); logits in float32 for the losses
        if self.policy:
            x = diff_augment(x, self.policy)
        if self.pack > 1:  # PacGAN: D judges `pack` samples at once, stacked along the channels
            n, c, h, w = x.shape
            if n % self.pack:
                raise ArtganError(f"{self.architecture}: batch_size ({n}) must be a multiple of pack ({self.pack})")
            x = x.reshape(n // self.pack, c * self.pack, h, w)
        return self.D(x, y).float()

    def discriminator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """D's losses on a real batch and as many fakes: the adversarial loss, its penalty, R1."""
        real, y = batch["image"], self._labels(batch)
        with torch.no_grad():
            fake = self.G(self._noise(real.shape[0], real.device), y)
        use_r1 = self.r1 > 0
        if use_r1:
            real = real.detach().requires_grad_(True)
        real_logits, fake_logits = self._d(real, y), self._d(fake, y)
        loss = self.loss.discriminator(real_logits, fake_logits)
        out = {"real_logit": real_logits.detach().mean(), "fake_logit": fake_logits.detach().mean()}
        penalty = self.loss.discriminator_penalty(lambda x: self._d(x, y), real, fake)
        if penalty is not None:
            loss = loss + penalty
            out["penalty"] = penalty.detach()
        if use_r1:
            r1 = r1_penalty(real_logits, real)
            loss = loss + 0.5 * self.r1 * r1
            out["r1"] = r1.detach()
        out["loss"] = loss
        return out

    def generator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """G's adversarial loss on fresh fakes (the batch gives their number and labels)."""
        real, y = batch["image"], self._labels(batch)
        fake_logits = self._d(self.G(self._noise(real.shape[0], real.device), y), y)
        return {"loss": self.loss.generator(fake_logits)}

    def phases(self) -> list[Phase]:
        return [Phase("D", self.optimizers["discriminator"], self.discriminator_step),
                Phase("G", self.optimizers["generator"], self.generator_step, every=self.g_every)]

    def after_iteration(self, iteration: int) -> None:
        self.apply_lr_schedule(iteration)
        if self.ema is not None and iteration % self.g_every == 0:  # the average follows G's updates
            self.ema.update(self.G)

    # -- sampling and export (sampling_generator: the EMA of G when kept) ------------------------
    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        inputs = {"z": torch.randn(n, self.latent_dim, generator=generator)}
        if self.conditional:  # every class in turn: one row of the grid per class when n = k^2
            inputs["label"] = torch.arange(n) % self.info.num_classes
        return inputs

    @torch.no_grad()
    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.sampling_generator(inputs["z"], inputs.get("label"))

    def export_spec(self) -> ExportSpec:
        info = self.info
        g = self.sampling_generator
        inputs = {"z": torch.randn(1, self.latent_dim)}
        input_spec = {"z": {"shape": ["batch", self.latent_dim], "dtype": "float32",
                            "distribution": "standard normal"}}
        axes = {"z": {0: "batch"}, "image": {0: "batch"}}
        if self.conditional:
            g = _LabelledGenerator(g)
            inputs["label"] = torch.zeros(1, dtype=torch.long)
            input_spec["label"] = {"shape": ["batch"], "dtype": "int64", "range": [0, info.num_classes - 1]}
            axes["label"] = {0: "batch"}
        return ExportSpec(
            module=g, inputs=inputs, outputs=["image"], dynamic_axes=axes,
            metadata={
                "task": "generate", "architecture": self.architecture, "latent_dim": self.latent_dim,
                "image_size": info.image_size, "channels": info.channels,
                "color_order": "RGB" if info.channels == 3 else "L",
                "value_range": [-1.0, 1.0], "layout": "NCHW",
                "num_classes": info.num_classes if self.conditional else 0,
                "class_names": info.class_names if self.conditional else None,  # the export checks them
                "ema": self.ema is not None,
                "input_spec": input_spec,
                "output_spec": {"image": {"shape": ["batch", info.channels, info.image_size, info.image_size],
                                          "dtype": "float32", "range": [-1.0, 1.0]}},
                "dataset": info.name,
            },
        )

    def load_state_dict(self, state, *, optimizers: bool = True) -> None:
        if self.ema is not None and "generator_ema" not in state["modules"]:
            # a checkpoint from before EMA was switched on: start the average at the weights
            state = {**state, "modules": dict(state["modules"])}
            self.G.load_state_dict(state["modules"]["generator"])
            self.keep_ema(self.G, self.ema.decay)
            state["modules"]["generator_ema"] = self.ema.state_dict()
        if self.ema is None and "generator_ema" in state["modules"]:
            state = {**state, "modules": {k: v for k, v in state["modules"].items() if k != "generator_ema"}}
        super().load_state_dict(state, optimizers=optimizers)
