"""``inpaint-detail``: the residual inpainting network trained for texture, not only PSNR.

The generator is :class:`~.model.InpaintNet` unchanged (the same classical pre-fill, the same
correction inside the hole, the same export contract as ``residual-bsds400``), so the ``inpaint``
step runs either model. What changes is the loss (as LaMa and AOT-GAN train):

- reconstruction: mean |error| over the hole (L1 blurs less than L2);
- perceptual: :func:`artgan.features.perceptual_distance` between the filled image's and the
  photo's feature maps in the core's pretrained network (:mod:`artgan.features`);
- adversarial: a small patch discriminator (:class:`HolePatchDiscriminator`) that learns to tell
  which patches of an image were filled: real photos are "real" everywhere, a filled image is
  "fake" on the patches that the hole covers and "real" on the known ones (AOT-GAN's soft-mask
  patch GAN). The generator is pushed to make its hole patches pass.

``init_from`` starts the generator from a trained ``inpaint-residual`` network (a checkpoint or
an exported ``.onnx``, e.g. ``exports/inpaint/residual-bsds400.onnx``): on a CPU budget, texture
is learned on top of a faithful fill rather than from nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.recipe import AdversarialLoss, GANRecipe, Phase

from .model import InpaintConfig, InpaintNet, InpaintNetConfig, InpaintRecipe, apply_correction, hole_loss, hole_psnr

ARCHITECTURE = "inpaint-detail"
FEATURE_LAYERS = ("relu2", "relu3", "relu4")  # 1/2 to 1/8: textures and small structures


class HolePatchDiscriminator(nn.Module):
    """RGB N3HW -> per-patch logits at 1/8 resolution (receptive field ~46 px).

    Plain convolutions with LeakyReLU and spectral norm (stable with one D step per G step)."""

    def __init__(self, width: int = 32):
        super().__init__()
        sn = nn.utils.spectral_norm
        c = width
        self.layers = nn.Sequential(
            sn(nn.Conv2d(3, c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(4 * c, 4 * c, 3, padding=1)), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * c, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def patch_hole_share(mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The share of each logit's patch that lies in the hole (N1hw, in [0, 1])."""
    return F.adaptive_avg_pool2d(mask, logits.shape[-2:])


@dataclass
class DetailInpaintConfig(InpaintConfig):
    """:class:`~.model.InpaintConfig`'s knobs, plus the loss weights, the discriminator's width
    and ``init_from``. Defaults: L1 reconstruction, no learning-rate decay."""

    pixel_loss: str = "l1"
    lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.99)
    lr_schedule: str = "constant"
    pixel_weight: float = 1.0
    perceptual_weight: float = 0.1
    adversarial_weight: float = 0.01
    d_width: int = 32
    init_from: str | None = None

    def check(self, who: str) -> None:
        super().check(who)
        for name in ("pixel_weight", "perceptual_weight", "adversarial_weight", "d_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ArtganError(f"{who}: {name} must be a number >= 0, got {value!r}")
        if isinstance(self.d_width, bool) or not isinstance(self.d_width, int) or self.d_width < 1:
            raise ArtganError(f"{who}: d_width must be a positive integer, got {self.d_width!r}")


class DetailInpaintRecipe(InpaintRecipe):
    """Trains :class:`~.model.InpaintNet` with reconstruction + perceptual + adversarial terms
    (module docstring); a D phase, then a G phase, each iteration. Knobs:
    :class:`DetailInpaintConfig`."""

    config_class = DetailInpaintConfig
    architecture = ARCHITECTURE

    def __init__(self, *, info: DatasetInfo, loss: AdversarialLoss | None = None, **params):
        if info.channels != 3:
            raise ArtganError(f"{ARCHITECTURE}: needs RGB images (channels 3), got {info.channels}")
        if loss is not None:
            raise ArtganError(f"{ARCHITECTURE}: has its own patch-GAN loss on the hole; remove the pipeline's "
                              f"loss: {getattr(loss, 'name', loss)!r}")
        GANRecipe.__init__(self)  # InpaintRecipe's __init__ builds inpaint-residual's config
        cfg = self.cfg = DetailInpaintConfig.from_params(ARCHITECTURE, params)
        self.info, self.loss_kind, self.prefill = info, cfg.pixel_loss, cfg.prefill
        self.sample_images = cfg.sample_images
        self.net_config = InpaintNetConfig(width=cfg.width, blocks=cfg.blocks, dilations=cfg.dilations)
        self.net = InpaintNet(self.net_config)
        if cfg.init_from:
            self.net.load_state_dict(residual_weights(cfg.init_from, self.net_config))
        self.discriminator = HolePatchDiscriminator(cfg.d_width)
        self.modules = {"generator": self.net, "discriminator": self.discriminator}
        self.keep_ema(self.net, cfg.ema, warmup="iterations")
        self.optimizers = {
            "generator": torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=cfg.betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=cfg.d_lr, betas=cfg.betas)}
        self.set_lr_schedule(cfg.schedule())
        self.config = asdict(self.net_config)

    def _fill(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        prefill, mask = batch["prefill"], batch["mask"]
        return apply_correction(prefill, mask, self.net(prefill, mask).float())

    def discriminator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image, mask = batch["image"], batch["mask"]
        with torch.no_grad():
            fake = self._fill(batch)
        real_logits = self.discriminator(image).float()
        fake_logits = self.discriminator(fake).float()
        share = patch_hole_share(mask, fake_logits)
        # real photos: real everywhere; a filled one: fake as far as a patch lies in the hole
        loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, 1 - share))
        return {"loss": loss, "real_score": torch.sigmoid(real_logits).mean(),
                "hole_score": (torch.sigmoid(fake_logits) * share).sum() / share.sum().clamp_min(1e-6)}

    def generator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from artgan.features import feature_network, perceptual_distance

        cfg = self.cfg
        image, prefill, mask = batch["image"], batch["prefill"], batch["mask"]
        out = self._fill(batch)
        pixel = hole_loss(out, image, mask, self.loss_kind)
        total = cfg.pixel_weight * pixel
        logs = {"pixel": pixel}
        if cfg.perceptual_weight > 0:
            features = feature_network(image.device)
            with torch.no_grad():
                target = features.from_signed(image, FEATURE_LAYERS)
            perceptual = perceptual_distance(features.from_signed(out, FEATURE_LAYERS), target)
            total = total + cfg.perceptual_weight * perceptual
            logs["perceptual"] = perceptual
        if cfg.adversarial_weight > 0:
            logits = self.discriminator(out).float()
            share = patch_hole_share(mask, logits)
            per_patch = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
            adversarial = (per_patch * share).sum() / share.sum().clamp_min(1e-6)
            total = total + cfg.adversarial_weight * adversarial
            logs["adversarial"] = adversarial
        with torch.no_grad():
            logs["psnr_gain_db"] = hole_psnr(out, image, mask) - hole_psnr(prefill, image, mask)
        return {"loss": total, **logs}

    def phases(self) -> list[Phase]:
        g = Phase("G", self.optimizers["generator"], self.generator_step)
        if self.cfg.adversarial_weight == 0:
            return [g]
        return [Phase("D", self.optimizers["discriminator"], self.discriminator_step), g]

    def own_metadata(self) -> dict:
        return {**super().own_metadata(), "objective": "detail: L1 + perceptual + patch GAN on the hole"}


def residual_weights(path: str, config: InpaintNetConfig) -> dict[str, torch.Tensor]:
    """An ``InpaintNet`` state dict from an ``inpaint-residual``/``inpaint-detail`` checkpoint (its
    EMA weights when kept) or from an exported ``.onnx`` (whose initializers are named
    ``net.<parameter>``)."""
    p = Path(path)
    if not p.is_file():
        raise ArtganError(f"{ARCHITECTURE}: init_from {path}: file not found")
    if p.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(p))
        state = {t.name.removeprefix("net."): torch.from_numpy(numpy_helper.to_array(t).copy())
                 for t in model.graph.initializer if t.name.startswith("net.")}
    else:
        from artgan.checkpoints import load
        from artgan.training_tricks import averaged_weights

        ckpt = load(str(p))
        modules = ckpt.get("state", {}).get("modules", {})
        ema_state = modules.get("generator_ema")
        state = averaged_weights(ema_state) if ema_state else modules.get("generator")
        if state is None or ckpt.get("recipe", {}).get("architecture") not in ("inpaint-residual", ARCHITECTURE):
            raise ArtganError(f"{ARCHITECTURE}: init_from {path} is not an inpaint-residual checkpoint")
    expected = InpaintNet(config).state_dict()
    if set(state) != set(expected) or any(state[k].shape != v.shape for k, v in expected.items()):
        raise ArtganError(f"{ARCHITECTURE}: init_from {path} holds a different network; use its width, blocks "
                          f"and dilations (this one: {asdict(config)})")
    return state


def _contract_dataset(folder):
    from .data import InpaintMaskDataset, _contract_params

    return InpaintMaskDataset(**_contract_params(folder))


DetailInpaintRecipe.contract_params = {"width": 8, "blocks": 2, "d_width": 4}
DetailInpaintRecipe.contract_dataset = _contract_dataset
