"""The inpainting GAN: a gated-convolution U-Net generator, a spectrally normalised patch
discriminator, and the recipe that trains them.

Generator input: the image (NCHW in [-1, 1]; what is inside the hole is ignored) and the mask
(N1HW, 1 = hole); output: a full image in [-1, 1] of which only the hole is used (:func:`paste`).
The generator starts from a smooth push-pull fill of the hole and learns a correction to it.
Sides must be a multiple of 8 (three stride-2 levels); the step pads to that.

Loss (generator) = hole_weight * L1 over the hole + valid_weight * L1 over the known pixels
+ adv_weight * adversarial loss of the pasted result. The discriminator sees the pasted image and the
mask, and scores every patch (SN-PatchGAN, Yu et al. 2019), with the hinge loss by default.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.recipe import AdversarialLoss, ExportSpec, GANRecipe, Phase

SIZE_MULTIPLE = 8


def paste(output: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The generator's output inside the hole, the known pixels everywhere else."""
    return output * mask + image * (1 - mask)


class GatedConv(nn.Module):
    """Gated convolution (DeepFill v2): ELU(features) * sigmoid(gate). The gate lets each layer
    learn which of its inputs are valid, which plain convolutions cannot do for free-form holes."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, kernel, stride, padding=dilation * (kernel - 1) // 2,
                              dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return F.elu(features) * torch.sigmoid(gate)


def push_pull_fill(image: torch.Tensor, mask: torch.Tensor, levels: int = 8) -> torch.Tensor:
    """A smooth fill of the hole from its surroundings (push-pull, Gortler et al. 1996): average
    the known pixels down a pyramid (push), then fill each level's unknown pixels from the level
    below it, upsampled (pull). Plain pooling and resizing: exports to ONNX at any size."""
    known = 1 - mask
    values, weights = [image], [known]
    for _ in range(levels):
        v, w = values[-1], weights[-1]
        # 2x2 sums over a zero-padded border (any side length); the zeros carry no weight
        total = F.avg_pool2d(F.pad(v * w, (0, 1, 0, 1)), 2)
        count = F.avg_pool2d(F.pad(w, (0, 1, 0, 1)), 2)
        values.append(total / count.clamp_min(1e-6))
        weights.append((4 * count).clamp(max=1.0))  # any known pixel below makes a block known
    fill = values[-1]
    for v, w in zip(reversed(values[:-1]), reversed(weights[:-1])):
        up = F.interpolate(fill, size=v.shape[-2:], mode="bilinear", align_corners=False)
        fill = w * v + (1 - w) * up
    return fill


class InpaintGenerator(nn.Module):
    """A U-Net of gated convolutions, 1 -> 1/8 resolution and back, with dilated convolutions at
    1/8 so that the centre of a large hole still sees known pixels (receptive field ~500 px).

    It starts from a push-pull fill of the hole and predicts a correction to it (the last layer
    starts at zero): from the first step the output is a sensible smooth fill, and training
    spends its time on structure and texture rather than on learning to carry colours inwards.
    """

    def __init__(self, width: int = 32, dilations: Sequence[int] = (2, 4, 8, 16), levels: int = 8):
        super().__init__()
        self.levels = levels
        c = width
        self.enc1 = GatedConv(4, c, 5)                                        # 1
        self.enc2 = nn.Sequential(GatedConv(c, 2 * c, 3, 2), GatedConv(2 * c, 2 * c))      # 1/2
        self.enc3 = nn.Sequential(GatedConv(2 * c, 4 * c, 3, 2), GatedConv(4 * c, 4 * c))  # 1/4
        self.enc4 = GatedConv(4 * c, 4 * c, 3, 2)                             # 1/8
        self.middle = nn.Sequential(*[GatedConv(4 * c, 4 * c, 3, dilation=d) for d in dilations])
        self.dec3 = GatedConv(8 * c, 4 * c)                                   # 1/4, with enc3's skip
        self.dec2 = GatedConv(6 * c, 2 * c)                                   # 1/2, with enc2's skip
        self.dec1 = GatedConv(3 * c, c)                                       # 1, with enc1's skip
        self.out = nn.Conv2d(c, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        image = image * (1 - mask)  # the hole's content never leaks in
        start = image + push_pull_fill(image, mask, self.levels) * mask
        x = torch.cat([start, mask], dim=1)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        x = self.middle(self.enc4(e3))
        x = self.dec3(torch.cat([_up(x), e3], dim=1))
        x = self.dec2(torch.cat([_up(x), e2], dim=1))
        x = self.dec1(torch.cat([_up(x), e1], dim=1))
        return (start + self.out(x)).clamp(-1.0, 1.0)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class PastedInpainter(nn.Module):
    """What is exported: the generator followed by the paste, so the ONNX output is final."""

    def __init__(self, generator: InpaintGenerator):
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mask = (mask > 0.5).to(image.dtype)  # the contract: thresholded at 0.5, hole = 1
        return paste(self.generator(image, mask), image, mask)


class PatchDiscriminator(nn.Module):
    """SN-PatchGAN: 5x5 stride-2 spectrally normalised convolutions on (image, mask); one logit per
    patch (each sees ~190 px), all of which the loss averages."""

    def __init__(self, width: int = 64, layers: int = 5):
        super().__init__()
        chans = [4] + [width * min(2 ** i, 4) for i in range(layers)]
        body: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            body += [spectral_norm(nn.Conv2d(cin, cout, 5, 2, 2)), nn.LeakyReLU(0.2, inplace=True)]
        body.append(spectral_norm(nn.Conv2d(chans[-1], 1, 3, 1, 1)))
        self.net = nn.Sequential(*body)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, mask], dim=1))


class HingeLoss(AdversarialLoss):
    """The hinge loss of SN-PatchGAN (and SAGAN/BigGAN); the default when the pipeline names none."""

    name = "hinge"

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


def masked_l1(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean |a - b| over the pixels where ``weight`` (N1HW) is 1."""
    return (torch.abs(a - b) * weight).sum() / (weight.sum() * a.shape[1]).clamp_min(1.0)


class InpaintRecipe(GANRecipe):
    """Trains :class:`InpaintGenerator` against :class:`PatchDiscriminator`.

    Batches are ``{"image": N3HW in [-1, 1], "mask": N1HW, 1 = hole}`` (the ``inpaint-masks``
    dataset). ``ema``: the exported generator is an exponential moving average of the trained one
    (smoother, a little better in PSNR). ``lr_decay_steps``: cosine decay of both learning rates to
    zero over that many steps (0: constant). ``amp``: bfloat16 autocast on CUDA.
    ``sample_images``: a folder whose held-out split (see :func:`artgan_inpaint.evaluate.split_files`)
    gives the sample grids; without it they are synthetic.
    """

    def __init__(self, *, info: DatasetInfo, loss: AdversarialLoss | None = None, width: int = 32,
                 dilations: Sequence[int] = (2, 4, 8, 16), d_width: int = 64, lr: float = 2e-4,
                 d_lr: float | None = None, beta1: float = 0.5, beta2: float = 0.999,
                 hole_weight: float = 6.0, valid_weight: float = 1.0, adv_weight: float = 0.01,
                 ema: float = 0.999, lr_decay_steps: int = 0, amp: bool = False,
                 sample_images: str | None = None):
        super().__init__()
        if info.channels != 3:
            raise ArtganError(f"inpaint-gan: needs RGB images (channels 3), got {info.channels}")
        if not isinstance(width, int) or width < 4:
            raise ArtganError(f"inpaint-gan: width must be an integer >= 4, got {width!r}")
        if not 0 <= ema < 1:
            raise ArtganError(f"inpaint-gan: ema must be in [0, 1) (0: off), got {ema!r}")
        self.info = info
        self.loss = loss or HingeLoss()
        self.hole_weight, self.valid_weight, self.adv_weight = hole_weight, valid_weight, adv_weight
        self.ema_decay, self.lr_decay_steps, self.amp = float(ema), int(lr_decay_steps), bool(amp)
        self.sample_images = sample_images
        self.G = InpaintGenerator(width, tuple(int(d) for d in dilations))
        self.D = PatchDiscriminator(d_width)
        self.G_ema = InpaintGenerator(width, tuple(int(d) for d in dilations)).requires_grad_(False)
        self.G_ema.load_state_dict(self.G.state_dict())
        self.modules = {"generator": self.G, "discriminator": self.D, "generator_ema": self.G_ema}
        self.base_lr = {"generator": lr, "discriminator": d_lr or lr}
        self.optimizers = {
            "generator": torch.optim.Adam(self.G.parameters(), lr=lr, betas=(beta1, beta2)),
            "discriminator": torch.optim.Adam(self.D.parameters(), lr=d_lr or lr, betas=(beta1, beta2)),
        }
        self._fake: torch.Tensor | None = None

    def _autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.amp and device.type == "cuda")

    # -- one training step: G first, then D on the same fakes (one generator pass per step) ---------
    def generator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real, mask = batch["image"], batch["mask"]
        self.D.requires_grad_(False)  # the G loss flows through D; D's own gradients are not needed
        with self._autocast(real.device):
            out = self.G(real, mask).float()
            fake = paste(out, real, mask)
            adv = self.loss.generator(self.D(fake, mask).float()) if self.adv_weight else out.new_zeros(())
        self.D.requires_grad_(True)
        self._fake = fake.detach()
        hole, valid = masked_l1(out, real, mask), masked_l1(out, real, 1 - mask)
        loss = self.hole_weight * hole + self.valid_weight * valid + self.adv_weight * adv
        return {"loss": loss, "l1_hole": hole, "l1_valid": valid, "adv": adv}

    def discriminator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real, mask = batch["image"], batch["mask"]
        fake = self._fake
        if fake is None:  # only when G skipped this step
            with torch.no_grad(), self._autocast(real.device):
                fake = paste(self.G(real, mask).float(), real, mask)
        with self._autocast(real.device):  # real and fake in one pass
            logits = self.D(torch.cat([real, fake]), torch.cat([mask, mask])).float()
        real_logits, fake_logits = logits.chunk(2)
        self._fake = None
        loss = self.loss.discriminator(real_logits, fake_logits)
        return {"loss": loss, "real_logit": real_logits.mean(), "fake_logit": fake_logits.mean()}

    def phases(self) -> list[Phase]:
        phases = [Phase("G", self.optimizers["generator"], self.generator_step)]
        if self.adv_weight:
            phases.append(Phase("D", self.optimizers["discriminator"], self.discriminator_step))
        return phases

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        if self.ema_decay:
            # warm-up: a plain average early on, so the EMA is not stuck near the random init
            decay = min(self.ema_decay, (1 + step) / (10 + step))
            for e, p in zip(self.G_ema.parameters(), self.G.parameters()):
                e.lerp_(p, 1 - decay)
        else:
            self.G_ema.load_state_dict(self.G.state_dict())
        if self.lr_decay_steps:
            factor = 0.5 * (1 + math.cos(math.pi * min(step, self.lr_decay_steps) / self.lr_decay_steps))
            for name, opt in self.optimizers.items():
                for group in opt.param_groups:
                    group["lr"] = self.base_lr[name] * factor

    # -- samples and export ------------------------------------------------------------------------
    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Up to 8 held-out images (or synthetic ones) with seeded masks, 20-40% holes."""
        from .data import sample_batch

        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        images, masks = sample_batch(self.sample_images, min(n, 8), self.info.image_size, seed)
        return {"image": images, "mask": masks}

    @torch.no_grad()
    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each sample: the masked input, the filled output and the target, side by side."""
        image, mask = inputs["image"], inputs["mask"]
        filled = paste(self.G_ema(image, mask), image, mask)
        shown = image * (1 - mask) + mask  # the hole in white
        return torch.cat([shown, filled, image], dim=3)

    def export_spec(self) -> ExportSpec:
        s = 64
        image = torch.rand(1, 3, s, s) * 2 - 1
        mask = torch.zeros(1, 1, s, s)
        mask[..., 16:40, 8:48] = 1
        return ExportSpec(
            module=PastedInpainter(self.G_ema),
            inputs={"image": image, "mask": mask},
            outputs=["output"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                          "mask": {0: "batch", 2: "height", 3: "width"},
                          "output": {0: "batch", 2: "height", 3: "width"}},
            metadata={
                "task": "image-to-image", "step": "inpaint", "architecture": "inpaint-gan",
                "scale": 1, "size_multiple": SIZE_MULTIPLE, "value_range": [-1.0, 1.0], "channels": 3,
                "color_order": "RGB", "layout": "NCHW", "inputs": ["image", "mask"],
                "input_spec": {
                    "image": {"shape": ["batch", 3, "height", "width"], "dtype": "float32", "range": [-1.0, 1.0]},
                    "mask": {"shape": ["batch", 1, "height", "width"], "dtype": "float32",
                             "range": [0.0, 1.0], "meaning": "1 = hole to fill, 0 = known; thresholded at 0.5"}},
                "output_spec": {"output": {"shape": ["batch", 3, "height", "width"], "dtype": "float32",
                                           "range": [-1.0, 1.0],
                                           "meaning": "the image with the hole filled; known pixels pasted back"}},
                "pasted": True, "dataset": self.info.name,
            },
        )


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())



def _contract_dataset(folder):
    """For artgan.testing's architecture check: image + mask batches, as training sees them."""
    from .data import InpaintMaskDataset, _contract_params

    return InpaintMaskDataset(**_contract_params(folder))


# small widths: the architecture check trains, checkpoints and exports it in a test
InpaintRecipe.contract_params = {"width": 8, "d_width": 8}
InpaintRecipe.contract_dataset = _contract_dataset
