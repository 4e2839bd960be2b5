"""Super-resolution networks and ``superres-gan``, the recipe that trains them.

The generator is EDSR-shaped (Lim et al., 2017) but small enough for CPUs: a 3x3 head, residual
blocks without BatchNorm, pixel-shuffle upsampling (Shi et al., 2016), and a 3x3 tail whose
output is added to a bicubic upscale of the input, so an untrained network already starts at
bicubic quality and only learns the missing detail. Images are NCHW in [-1, 1].

Two trainings use the recipe, as ESRGAN and its PSNR-oriented twin do:

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
from torch import nn
from torch.nn.utils import spectral_norm

from artgan.data import DatasetInfo, held_out_crops, uint8_to_tensor
from artgan.errors import ArtganError
from artgan.image_recipe import ImageSpec, ImageToImageRecipe
from artgan.recipe import AdversarialLoss, Phase, RecipeConfig
from artgan.training_tricks import averaged_weights

from .resize import bicubic_downscale

SCALES = (2, 3, 4)


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip; no BatchNorm (it hurts SR and slows CPUs)."""

    def __init__(self, width: int, res_scale: float = 1.0):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


def upsampler(width: int, scale: int) -> nn.Sequential:
    """x2 stages (x4 = two of them) or one x3 stage: conv to width*r^2 channels + pixel shuffle."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale}")
    stages = [3] if scale == 3 else [2] * int(math.log2(scale))
    layers: list[nn.Module] = []
    for r in stages:
        layers += [nn.Conv2d(width, width * r * r, 3, padding=1), nn.PixelShuffle(r), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class SRGenerator(nn.Module):
    """Low-resolution image (N, C, h, w) -> (N, C, h*scale, w*scale), both in [-1, 1].

    Any h and w work (the network is fully convolutional; nothing needs a multiple).
    """

    def __init__(self, scale: int = 2, width: int = 32, blocks: int = 8, channels: int = 3,
                 res_scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(channels, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width, res_scale) for _ in range(blocks)])
        self.body_tail = nn.Conv2d(width, width, 3, padding=1)
        self.upsample = upsampler(width, scale)
        self.tail = nn.Conv2d(width, channels, 3, padding=1)
        # Start as plain bicubic: the learned residual begins at zero.
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        features = self.head(lr)
        features = features + self.body_tail(self.body(features))  # global skip around the body
        return base + self.tail(self.upsample(features))


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al., 2017): one logit per overlapping patch, here with spectral norm
    (Miyato et al., 2018) instead of BatchNorm. ``layers=3`` sees 70x70-pixel patches.

    ``forward(x, features=True)`` also returns the intermediate activations, for the
    feature-matching term (Wang et al., 2018, pix2pixHD).
    """

    def __init__(self, channels: int = 3, width: int = 64, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = [nn.Sequential(spectral_norm(nn.Conv2d(channels, width, 4, 2, 1)),
                                                 nn.LeakyReLU(0.2, inplace=True))]
        c = width
        for i in range(1, layers + 1):
            c_out = min(width * 2**i, width * 8)
            stride = 2 if i < layers else 1
            blocks.append(nn.Sequential(spectral_norm(nn.Conv2d(c, c_out, 4, stride, 1)),
                                        nn.LeakyReLU(0.2, inplace=True)))
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.out = spectral_norm(nn.Conv2d(c, 1, 4, 1, 1))

    def forward(self, x: torch.Tensor, features: bool = False):
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        logits = self.out(x)
        return (logits, feats) if features else logits


def generator_from_onnx(path) -> SRGenerator:
    """Rebuild the PyTorch generator of an exported upscaler from the ``.onnx`` alone (its
    ``artgan.generator`` metadata and weights), e.g. to compare onnxruntime with PyTorch eager."""
    import json

    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    meta = {p.key: json.loads(p.value) for p in model.metadata_props if p.key.startswith("artgan.")}
    config = meta.get("artgan.generator")
    if not config:
        raise ValueError(f"{path}: no artgan.generator metadata; not a superres-gan export")
    g = SRGenerator(**config)
    state = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    g.load_state_dict({k: state[k] for k in g.state_dict()})
    return g.eval()


# -- the recipe -----------------------------------------------------------------------------------

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


class SuperResRecipe(ImageToImageRecipe):
    """Residual pixel-shuffle generator vs. PatchGAN; L1 + ``adv_weight`` x adversarial
    (+ ``feature_weight`` x feature matching). Knobs: :class:`SuperResConfig`.

    ``decay_to`` > 0 decays both learning rates along a cosine to 1% by that step; ``ema`` > 0
    keeps an exponential moving average of the generator, which is what samples and exports use.
    ``init_from`` is a ``superres-gan`` checkpoint or exported ``.onnx`` whose generator starts
    this one (GAN fine-tuning from the PSNR model). ``sample_images`` is a folder whose held-out
    images give the sample grids (bicubic | output | target); without it, synthetic images.
    """

    config_class = SuperResConfig
    default_loss = "non-saturating"
    step, architecture = "superres", "superres-gan"

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
        self.keep_ema(self.G, cfg.ema, warmup="iterations")
        self.optimizers = {"generator": torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=cfg.betas),
                           "discriminator": torch.optim.Adam(self.D.parameters(), lr=cfg.d_lr or cfg.lr,
                                                             betas=cfg.betas)}
        self.set_lr_schedule(cfg.schedule())
        self.config = {"scale": cfg.scale, "width": cfg.width, "blocks": cfg.blocks, "res_scale": cfg.res_scale}

    def _init_generator(self, path: str) -> None:
        """Start from another superres-gan generator: a checkpoint (its EMA weights when kept) or
        an exported ``.onnx`` (e.g. the shipped exports/superres/x2-psnr.onnx)."""
        if str(path).endswith(".onnx"):
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

    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        n = max(1, min(n, 16))  # triptychs: a few say enough
        hrs = self._sample_hr(n, generator)
        lrs = [bicubic_downscale(hr, self.scale) for hr in hrs]
        return {"lr": torch.stack([uint8_to_tensor(x) for x in lrs]),
                "hr": torch.stack([uint8_to_tensor(x) for x in hrs])}

    def _sample_hr(self, n: int, generator: torch.Generator) -> list[np.ndarray]:
        s = self.sample_size
        out = held_out_crops(self.sample_images, n, s) if self.sample_images else []
        # the rest synthetic: smooth colour fields with sharp stripes, drawn from the fixed generator
        while len(out) < n:
            low = torch.rand(1, 3, 4, 4, generator=generator)
            field = F.interpolate(low, size=(s, s), mode="bicubic", align_corners=False)[0]
            freq = 4 + 12 * torch.rand(1, generator=generator)
            stripes = (torch.sin(torch.linspace(0, float(freq) * math.pi, s))[None, :] > 0).float()
            image = (0.7 * field + 0.3 * stripes).clamp(0, 1)
            out.append((image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
        return out

    def sample_panels(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Bicubic | model | target, for each fixed input."""
        lr, hr = inputs["lr"], inputs["hr"]
        bicubic = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return [x.clamp(-1, 1) for x in (bicubic, self.sampling_generator(lr), hr)]

    # -- export: the metadata's image keys come from these (ImageToImageRecipe) -------------------
    def image_inputs(self) -> dict[str, ImageSpec]:
        return {"lr": ImageSpec(self.info.channels)}

    def image_outputs(self) -> dict[str, ImageSpec]:
        return {"hr": ImageSpec(self.info.channels, scale=self.scale)}

    def own_metadata(self) -> dict:
        return {"generator": self.config, "objective": "gan" if self.adversarial else "psnr",
                "degradation": "Pillow bicubic downscale (a=-0.5, antialiased)", "dataset": self.info.name}


def _contract_dataset(folder):
    """For artgan.testing's architecture check: LR/HR pairs, as training sees them."""
    from .data import SRPairsDataset, _contract_params

    return SRPairsDataset(**_contract_params(folder))


# a small network: the architecture check trains, checkpoints and exports it in a test
SuperResRecipe.contract_params = {"width": 8, "blocks": 1, "d_width": 8, "adv_weight": 0.01}
SuperResRecipe.contract_dataset = _contract_dataset
