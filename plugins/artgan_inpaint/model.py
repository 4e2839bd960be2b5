"""The PSNR-oriented inpainting network and the recipe that trains it.

The network never sees an empty hole: its input is the photo with the hole already filled by a
classical method (OpenCV's Navier-Stokes by default, done in numpy by the dataset and by the step),
plus the mask. It predicts a correction that is added inside the hole; known pixels are pasted
back. Its last layer starts at zero, so an untrained network *is* the classical fill and
everything training learns is gain over it (the residual idea of VDSR, over a classical first guess).

Large context at low cost: two stride-2 convolutions take it to 1/4 resolution, where residual
blocks with dilations 1, 2, 4, 8 see ~200 px of the photo; nearest upsampling and a convolution
with the skip from each level bring it back. Only plain 3x3 convolutions, LeakyReLU and zero
padding: fast in bf16 autocast on CPUs with native bf16 (reflection padding would stay fp32),
and standard ONNX ops. Sides must be a multiple of 4; the step pads to that.

Loss: mean squared error over the hole (PSNR is what we measure; no adversarial term).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.image_recipe import ImageSpec, ImageToImageRecipe
from artgan.recipe import AdversarialLoss, Phase, RecipeConfig

SIZE_MULTIPLE = 4  # two stride-2 levels
LOSSES = ("l2", "l1")


@dataclass
class InpaintNetConfig:
    """The network's shape; stored in every checkpoint so anything can rebuild it."""

    width: int = 32  # channels at 1/2 resolution; 1/4 resolution has twice as many
    blocks: int = 4  # residual blocks at 1/4 resolution
    dilations: tuple[int, ...] = (1, 2, 4, 8)  # cycled over the blocks

    def __post_init__(self):
        for name in ("width", "blocks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArtganError(f"inpaint-residual: {name} must be a positive integer, got {value!r}")
        dilations = tuple(self.dilations) if isinstance(self.dilations, (list, tuple)) else ()
        if not dilations or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dilations):
            raise ArtganError(f"inpaint-residual: dilations must be a list of integers >= 1, got {self.dilations!r}")
        self.dilations = dilations


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class ResidualBlock(nn.Module):
    """x + conv(act(dilated conv(x))): the dilation widens the context, the identity keeps
    gradients flowing through the stack."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.wide = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(_act(self.wide(x)))


class InpaintNet(nn.Module):
    """(pre-filled image N3HW in [-1, 1], mask N1HW with 1 = hole) -> correction N3HW.

    Only the correction inside the hole is used (:func:`apply_correction`)."""

    def __init__(self, config: InpaintNetConfig | None = None):
        super().__init__()
        self.config = config or InpaintNetConfig()
        c = self.config.width
        self.down1 = nn.Conv2d(4, c, 3, stride=2, padding=1)  # 1/2
        self.down2 = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)  # 1/4
        dil = self.config.dilations
        self.body = nn.Sequential(*[ResidualBlock(2 * c, dil[i % len(dil)]) for i in range(self.config.blocks)])
        self.up1 = nn.Conv2d(3 * c, c, 3, padding=1)  # 1/2, with down1's output
        self.up0 = nn.Conv2d(c + 4, c // 2 or 1, 3, padding=1)  # 1, with the input
        self.out = nn.Conv2d(c // 2 or 1, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # zero correction: the untrained network is the classical fill
        nn.init.zeros_(self.out.bias)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image, mask], dim=1)
        half = _act(self.down1(x))
        h = self.body(_act(self.down2(half)))
        h = _act(self.up1(torch.cat([_up(h), half], dim=1)))
        h = _act(self.up0(torch.cat([_up(h), x], dim=1)))
        return self.out(h)


def apply_correction(image: torch.Tensor, mask: torch.Tensor, correction: torch.Tensor) -> torch.Tensor:
    """The pre-filled image plus the correction inside the hole, clipped to [-1, 1]; known
    pixels unchanged."""
    return image + ((image + correction).clamp(-1.0, 1.0) - image) * mask


class PastedInpainter(nn.Module):
    """What is exported: the network, the correction and the paste, so the ONNX output is final."""

    def __init__(self, net: InpaintNet):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mask = (mask > 0.5).to(image.dtype)  # the contract: thresholded at 0.5, hole = 1
        return apply_correction(image, mask, self.net(image, mask))


def hole_loss(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean squared (l2) or absolute (l1) error over the hole's pixels."""
    diff = (output - target) * mask
    err = diff.square() if kind == "l2" else diff.abs()
    return err.sum() / (mask.sum() * output.shape[1]).clamp_min(1.0)


def hole_psnr(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) over the hole, images in [-1, 1] (so the peak-to-peak range is 2)."""
    mse = hole_loss(output.float(), target.float(), mask.float(), "l2")
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-10))


@dataclass
class InpaintConfig(RecipeConfig):
    """inpaint-residual's knobs: the network's shape (:class:`InpaintNetConfig`), the pixel
    loss, the classical pre-fill and the sample folder; :class:`RecipeConfig`'s with an EMA on and
    a cosine learning-rate schedule to 1% (set ``decay_to``)."""

    width: int = 32
    blocks: int = 4
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    pixel_loss: str = "l2"  # or "l1", over the hole only
    prefill: str = "ns"
    sample_images: str | None = None
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    ema: float = 0.999
    lr_schedule: str = "cosine"
    lr_final: float = 0.01

    def check(self, who: str) -> None:
        super().check(who)
        if self.pixel_loss not in LOSSES:
            raise ArtganError(f"{who}: pixel_loss must be one of {', '.join(LOSSES)}, got {self.pixel_loss!r}")


class InpaintRecipe(ImageToImageRecipe):
    """Trains :class:`InpaintNet` on batches of the ``inpaint-masks`` dataset
    (``{"image": target, "prefill": classical fill, "mask": 1 = hole}``), one optimiser, no
    discriminator. Knobs: :class:`InpaintConfig`.

    ``pixel_loss``: ``l2`` (default; PSNR is mean squared error) or ``l1``, over the hole only.
    ``ema``: the exported network is an exponential moving average of the trained one (0: off).
    ``decay_to``: cosine decay of the learning rate to 1% by that step (0: constant; with a time
    budget the step count is unknown, and the EMA does the averaging).
    ``sample_images``: a folder whose held-out files give the sample grids (else synthetic).
    """

    config_class = InpaintConfig
    step, architecture = "inpaint", "inpaint-residual"
    size_multiple = SIZE_MULTIPLE

    def __init__(self, *, info: DatasetInfo, loss: AdversarialLoss | None = None, **params):
        super().__init__()
        if info.channels != 3:
            raise ArtganError(f"inpaint-residual: needs RGB images (channels 3), got {info.channels}")
        if loss is not None:
            raise ArtganError(f"inpaint-residual: trains without a discriminator; remove the pipeline's "
                              f"loss: {getattr(loss, 'name', loss)!r} (pixel_loss picks l2 or l1)")
        cfg = self.cfg = InpaintConfig.from_params("inpaint-residual", params)
        self.info, self.loss_kind, self.prefill = info, cfg.pixel_loss, cfg.prefill
        self.sample_images = cfg.sample_images
        self.net_config = InpaintNetConfig(width=cfg.width, blocks=cfg.blocks, dilations=cfg.dilations)
        self.net = InpaintNet(self.net_config)
        self.modules = {"generator": self.net}
        self.keep_ema(self.net, cfg.ema, warmup="iterations")
        self.optimizers = {"generator": torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=cfg.betas)}
        self.set_lr_schedule(cfg.schedule())
        self.config = asdict(self.net_config)

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image, prefill, mask = batch["image"], batch["prefill"], batch["mask"]
        out = apply_correction(prefill, mask, self.net(prefill, mask).float())
        loss = hole_loss(out, image, mask, self.loss_kind)
        with torch.no_grad():
            gain = hole_psnr(out, image, mask) - hole_psnr(prefill, image, mask)
        return {"loss": loss, "psnr_gain_db": gain}

    def phases(self) -> list[Phase]:
        return [Phase("G", self.optimizers["generator"], self.losses)]

    # -- samples and export ------------------------------------------------------------------------
    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Up to 8 held-out crops (or synthetic ones) with seeded 20-40% holes."""
        from .data import sample_batch

        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        return sample_batch(self.sample_images, min(n, 8), self.info.image_size, seed, self.prefill)

    def sample_panels(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Each sample: the hole in white, the classical fill, the network's fill, the target."""
        image, prefill, mask = inputs["image"], inputs["prefill"], inputs["mask"]
        return [image * (1 - mask) + mask, prefill, self.export_module()(prefill, mask), image]

    # -- export: the metadata's image keys come from these (ImageToImageRecipe) ---------------------
    def export_module(self) -> nn.Module:
        return PastedInpainter(self.sampling_generator)

    def image_inputs(self) -> dict[str, ImageSpec]:
        return {"image": ImageSpec(3, meaning=f"the photo with its hole pre-filled by OpenCV's {self.prefill} "
                                              f"inpainting (radius 3, 8-bit), see metadata 'prefill'"),
                "mask": ImageSpec(1, (0.0, 1.0), meaning="1 = hole to fill, 0 = known; thresholded at 0.5")}

    def image_outputs(self) -> dict[str, ImageSpec]:
        return {"output": ImageSpec(3, meaning="the image with the hole filled; known pixels pasted back")}

    def example_inputs(self) -> dict[str, torch.Tensor]:
        s = 64
        mask = torch.zeros(1, 1, s, s)
        mask[..., 16:40, 8:48] = 1  # a hole: the traced graph pastes around it
        return {"image": torch.rand(1, 3, s, s) * 2 - 1, "mask": mask}

    def own_metadata(self) -> dict:
        return {"prefill": {"method": self.prefill, "radius": 3.0}, "pasted": True, "dataset": self.info.name}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _contract_dataset(folder):
    """For artgan.testing's architecture check: batches as training sees them."""
    from .data import InpaintMaskDataset, _contract_params

    return InpaintMaskDataset(**_contract_params(folder))


# small widths: the architecture check trains, checkpoints and exports it in a test
InpaintRecipe.contract_params = {"width": 8, "blocks": 2}
InpaintRecipe.contract_dataset = _contract_dataset
