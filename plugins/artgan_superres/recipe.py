"""``superres-gan``: the super-resolution recipe (the generator and discriminator of :mod:`.model`).

Two trainings use it, as ESRGAN and its PSNR-oriented twin do:

- PSNR-oriented (``adv_weight: 0``): L1 only; the discriminator is never stepped. The default
  shipped model, measured against bicubic.
- GAN fine-tuning (``adv_weight > 0``, ``init_from:`` the PSNR checkpoint): L1 + a small
  adversarial term from a PatchGAN, optionally + feature matching on the discriminator's
  activations (a perceptual term that needs no pretrained, downloaded network). Sharper texture,
  lower PSNR.

Batches come from ``superres-pairs``: ``{"image": HR, "lr": LR}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from artgan.data import DatasetInfo, uint8_to_tensor
from artgan.errors import ArtganError
from artgan.recipe import AdversarialLoss, ExportSpec, GANRecipe, Phase, RecipeConfig
from artgan.training_tricks import averaged_weights

from .model import SCALES, PatchDiscriminator, SRGenerator
from .resize import bicubic_downscale


@dataclass
class SuperResConfig(RecipeConfig):
    """superres-gan's knobs, and :class:`RecipeConfig`'s with ESRGAN's Adam betas and a cosine
    learning-rate schedule to 1% (set ``decay_to``, e.g. to ``train.iterations``)."""

    scale: int = 2
    width: int = 32
    blocks: int = 8
    res_scale: float = 1.0
    d_width: int = 64
    d_layers: int = 3
    d_lr: float | None = None  # the discriminator's learning rate (default: lr)
    l1_weight: float = 1.0
    adv_weight: float = 0.0
    feature_weight: float = 0.0
    init_from: str | None = None
    sample_images: str | None = None
    sample_size: int = 128
    amp: bool = False
    betas: tuple[float, float] = (0.9, 0.99)
    lr_schedule: str = "cosine"
    lr_final: float = 0.01

    def check(self, who: str) -> None:
        super().check(who)
        if self.scale not in SCALES:
            raise ArtganError(f"{who}: scale must be one of {', '.join(map(str, SCALES))}, got {self.scale!r}")
        for name in ("width", "blocks", "d_width", "d_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "blocks" else 1):
                raise ArtganError(f"{who}: {name} must be a positive integer, got {value!r}")
        for name in ("adv_weight", "feature_weight", "l1_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ArtganError(f"{who}: {name} must be a number >= 0, got {value!r}")
        if self.sample_size % self.scale:
            raise ArtganError(f"{who}: sample_size must be a multiple of scale {self.scale}, got {self.sample_size}")


class SuperResRecipe(GANRecipe):
    """Residual pixel-shuffle generator vs. PatchGAN; L1 + ``adv_weight`` x adversarial
    (+ ``feature_weight`` x feature matching). Knobs: :class:`SuperResConfig`.

    ``decay_to`` > 0 decays both learning rates along a cosine to 1% by that step; ``ema`` > 0
    keeps an exponential moving average of the generator, which is what samples and exports use.
    ``init_from`` is a ``superres-gan`` checkpoint or exported ``.onnx`` whose generator starts
    this one (GAN fine-tuning from the PSNR model). ``sample_images`` is a folder whose first
    images give the sample grids (input | output | target); without it, synthetic images.
    """

    config_class = SuperResConfig
    default_loss = "non-saturating"

    def __init__(self, *, info: DatasetInfo, loss: AdversarialLoss | None = None, **params):
        super().__init__()
        cfg = self.cfg = SuperResConfig.from_params("superres-gan", params)
        self.info, self.scale = info, cfg.scale
        self.loss = self.adversarial_loss(loss)
        self.l1_weight, self.adv_weight, self.feature_weight = cfg.l1_weight, cfg.adv_weight, cfg.feature_weight
        self.adversarial = cfg.adv_weight > 0 or cfg.feature_weight > 0
        self.sample_images, self.sample_size, self.amp = cfg.sample_images, cfg.sample_size, cfg.amp

        self.G = SRGenerator(cfg.scale, cfg.width, cfg.blocks, info.channels, cfg.res_scale)
        self.D = PatchDiscriminator(info.channels, cfg.d_width, cfg.d_layers)
        if cfg.init_from:
            self._init_generator(cfg.init_from)
        self.modules = {"generator": self.G, "discriminator": self.D}
        self.keep_ema(self.G, cfg.ema)
        self.optimizers = {"generator": torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=cfg.betas),
                           "discriminator": torch.optim.Adam(self.D.parameters(), lr=cfg.d_lr or cfg.lr,
                                                             betas=cfg.betas)}
        self.set_lr_schedule(cfg.schedule())
        self.config = {"scale": cfg.scale, "width": cfg.width, "blocks": cfg.blocks, "res_scale": cfg.res_scale}

    def _init_generator(self, path: str) -> None:
        """Start from another superres-gan generator: a checkpoint (its EMA weights when kept) or
        an exported ``.onnx`` (e.g. the shipped exports/superres/x2-psnr.onnx)."""
        if str(path).endswith(".onnx"):
            from .model import generator_from_onnx

            if not Path(path).is_file():
                raise ArtganError(f"superres-gan: init_from {path}: file not found")
            try:
                source = generator_from_onnx(path)
            except ValueError as exc:
                raise ArtganError(f"superres-gan: init_from {exc}") from None
            state, theirs = source.state_dict(), {"scale": source.scale, "width": source.head.out_channels,
                                                  "blocks": len(source.body)}
        else:
            from artgan.checkpoints import load

            ckpt = load(path)  # weights_only; raises a clear error when missing
            modules = ckpt.get("state", {}).get("modules", {})
            ema_state = modules.get("generator_ema")
            state = averaged_weights(ema_state) if ema_state else modules.get("generator")
            if ckpt.get("recipe", {}).get("architecture") != "superres-gan" or state is None:
                raise ArtganError(f"superres-gan: init_from {path} is not a superres-gan checkpoint")
            theirs = {k: v for k, v in ckpt["recipe"].get("params", {}).items() if k in ("scale", "width", "blocks")}
        try:
            self.G.load_state_dict(state)
        except RuntimeError as exc:
            raise ArtganError(f"superres-gan: init_from {path} holds a different generator ({theirs}); "
                              f"use the same scale, width and blocks ({str(exc).splitlines()[0]})") from None

    # -- training -------------------------------------------------------------------------------
    def _pair(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr = batch["lr"], batch["image"]
        if hr.shape[-2:] != (lr.shape[-2] * self.scale, lr.shape[-1] * self.scale):
            raise ArtganError(f"superres-gan: x{self.scale} needs HR batches {self.scale}x the LR size, got LR "
                              f"{tuple(lr.shape[-2:])} and HR {tuple(hr.shape[-2:])}; use the same scale "
                              f"for the dataset and the architecture")
        return lr, hr

    def _autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.amp and device.type == "cuda")

    def discriminator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        lr, hr = self._pair(batch)
        with torch.no_grad(), self._autocast(lr.device):
            sr = self.G(lr)
        with self._autocast(lr.device):
            real_logits, fake_logits = self.D(hr), self.D(sr.float())
        loss = self.loss.discriminator(real_logits.float(), fake_logits.float())
        return {"loss": loss, "real_score": torch.sigmoid(real_logits.float()).mean(),
                "fake_score": torch.sigmoid(fake_logits.float()).mean()}

    def generator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        lr, hr = self._pair(batch)
        with self._autocast(lr.device):
            sr = self.G(lr).float()
        l1 = F.l1_loss(sr, hr)
        out = {"l1": l1}
        total = self.l1_weight * l1
        if self.adversarial:
            with self._autocast(lr.device):
                fake_logits, fake_feats = self.D(sr, features=True)
            adv = self.loss.generator(fake_logits.float())
            total = total + self.adv_weight * adv
            out["adv"] = adv
            if self.feature_weight > 0:
                with torch.no_grad(), self._autocast(lr.device):
                    _, real_feats = self.D(hr, features=True)
                fm = sum(F.l1_loss(f.float(), r.float()) for f, r in zip(fake_feats, real_feats)) / len(real_feats)
                total = total + self.feature_weight * fm
                out["feature_match"] = fm
        with torch.no_grad():  # RGB PSNR of the batch, for the logs (images span 2.0 in [-1, 1])
            out["psnr"] = 10 * torch.log10(4.0 / F.mse_loss(sr.clamp(-1, 1), hr).clamp_min(1e-10))
        out["loss"] = total
        return out

    def phases(self) -> list[Phase]:
        g = Phase("G", self.optimizers["generator"], self.generator_step)
        if not self.adversarial:
            return [g]  # PSNR-oriented: the discriminator is never trained
        return [Phase("D", self.optimizers["discriminator"], self.discriminator_step), g]

    def after_iteration(self, iteration: int) -> None:
        self.apply_lr_schedule(iteration)
        if self.ema is not None:
            self.ema.update(self.G, iteration=iteration)

    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        n = max(1, min(n, 16))  # triptychs: a few say enough
        hrs = self._sample_hr(n, generator)
        lrs = [bicubic_downscale(hr, self.scale) for hr in hrs]
        return {"lr": torch.stack([uint8_to_tensor(x) for x in lrs]),
                "hr": torch.stack([uint8_to_tensor(x) for x in hrs])}

    def _sample_hr(self, n: int, generator: torch.Generator) -> list[np.ndarray]:
        s = self.sample_size
        if self.sample_images:
            from artgan.images import list_images, load_image

            files = [f for f in list_images(self.sample_images)]
            if not files:
                raise ArtganError(f"superres-gan: sample_images {self.sample_images} holds no images")
            out = []
            for i in range(n):
                im = load_image(files[i % len(files)], "RGB")
                if min(im.shape[:2]) < s:
                    raise ArtganError(f"superres-gan: {files[i % len(files)]} is smaller than sample_size {s}")
                top, left = (im.shape[0] - s) // 2, (im.shape[1] - s) // 2
                out.append(np.ascontiguousarray(im[top:top + s, left:left + s]))
            return out
        # synthetic: smooth colour fields with sharp stripes, drawn from the fixed generator
        out = []
        for _ in range(n):
            low = torch.rand(1, 3, 4, 4, generator=generator)
            field = F.interpolate(low, size=(s, s), mode="bicubic", align_corners=False)[0]
            freq = 4 + 12 * torch.rand(1, generator=generator)
            stripes = (torch.sin(torch.linspace(0, float(freq) * math.pi, s))[None, :] > 0).float()
            image = (0.7 * field + 0.3 * stripes).clamp(0, 1)
            out.append((image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
        return out

    @torch.no_grad()
    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Bicubic | model | target, side by side, for each fixed input."""
        lr, hr = inputs["lr"], inputs["hr"]
        bicubic = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return torch.cat([bicubic, self.sampling_generator(lr), hr], dim=3).clamp(-1, 1)

    def export_spec(self) -> ExportSpec:
        g, c = self.sampling_generator, self.info.channels
        return ExportSpec(
            module=g,
            inputs={"lr": torch.rand(1, c, 24, 32) * 2 - 1},
            outputs=["hr"],
            dynamic_axes={"lr": {0: "batch", 2: "height", 3: "width"},
                          "hr": {0: "batch", 2: "out_height", 3: "out_width"}},
            metadata={
                "task": "image-to-image", "step": "superres", "architecture": "superres-gan",
                "scale": self.scale, "size_multiple": 1, "value_range": [-1.0, 1.0], "channels": c,
                "color_order": "RGB", "layout": "NCHW", "inputs": ["lr"],
                "input_spec": {"lr": {"shape": ["batch", c, "height", "width"], "dtype": "float32",
                                      "range": [-1.0, 1.0]}},
                "output_spec": {"hr": {"shape": ["batch", c, f"height*{self.scale}", f"width*{self.scale}"],
                                       "dtype": "float32", "range": [-1.0, 1.0]}},
                "generator": self.config, "objective": "gan" if self.adversarial else "psnr",
                "degradation": "Pillow bicubic downscale (a=-0.5, antialiased)", "dataset": self.info.name,
            },
        )


def _contract_dataset(folder):
    """For artgan.testing's architecture check: LR/HR pairs, as training sees them."""
    from .data import SRPairsDataset, _contract_params

    return SRPairsDataset(**_contract_params(folder))


# a small network: the architecture check trains, checkpoints and exports it in a test
SuperResRecipe.contract_params = {"width": 8, "blocks": 1, "d_width": 8, "adv_weight": 0.01}
SuperResRecipe.contract_dataset = _contract_dataset
