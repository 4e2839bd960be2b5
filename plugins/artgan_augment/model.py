"""``small-cgan``: a class-conditional GAN for small labelled datasets (16 or 32 px), the one
``artgan evaluate augment`` trains on k images per class and ``pipelines/digits-augment.yaml``
ships.

Why not dcgan with ``conditional: true``: on the digits its generator ignored the latent within
a class (intra-class sample spread 0.02-0.06 against 0.46 for real digits: one prototype per class,
CAS 0.72-0.84), with or without spectral norm, hinge loss or a smaller projection embedding.
Here G takes the class through conditional BatchNorm (scale and shift per class, as in SNGAN and
BigGAN) and D ends with a minibatch standard-deviation feature (ProGAN, Karras et al., 2018), which
lets it see a batch with too little variety; D is spectrally normalised with a projection term.

G: z -> linear -> 4x4 -> (cBN, ReLU, 2x nearest upsample, 3x3 conv) per doubling -> BN, ReLU,
3x3 conv, tanh. D: 3x3 conv, (4x4 stride-2 conv, LeakyReLU) per halving to 4x4, minibatch std,
3x3 conv, global sum pooling, linear + projection. Trained by the core's image-GAN recipe, as
dcgan and sngan are: hinge loss by default; ``diffaugment``, ``ema``, ``r1`` ... as there
(:class:`SmallCGANConfig`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as sn

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.image_gan import ImageGANConfig, ImageGANRecipe


class ConditionalBatchNorm(nn.Module):
    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain, self.bias = nn.Embedding(num_classes, channels), nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: int):
        super().__init__()
        self.norm = ConditionalBatchNorm(cin, num_classes)
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(F.relu(self.norm(x, y)), scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    def __init__(self, latent_dim: int, image_size: int, channels: int, width: int, num_classes: int):
        super().__init__()
        n_up = _doublings(image_size)
        chans = [width * 2 ** (n_up - i) for i in range(n_up + 1)]  # e.g. 16 px, width 32: 128, 64, 32
        self.c0 = chans[0]
        self.linear = nn.Linear(latent_dim, 16 * chans[0])
        self.blocks = nn.ModuleList(UpBlock(chans[i], chans[i + 1], num_classes) for i in range(n_up))
        self.out = nn.Sequential(nn.BatchNorm2d(chans[-1]), nn.ReLU(), nn.Conv2d(chans[-1], channels, 3, 1, 1),
                                 nn.Tanh())

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.c0, 4, 4)  # z.shape[0], not len(z): traced as dynamic
        for block in self.blocks:
            h = block(h, label)
        return self.out(h)


class Discriminator(nn.Module):
    def __init__(self, image_size: int, channels: int, width: int, num_classes: int):
        super().__init__()
        n_down = _doublings(image_size)
        layers: list[nn.Module] = [sn(nn.Conv2d(channels, width, 3, 1, 1)), nn.LeakyReLU(0.2)]
        c = width
        for _ in range(n_down):
            layers += [sn(nn.Conv2d(c, c * 2, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c *= 2
        self.features = nn.Sequential(*layers)
        self.last = nn.Sequential(sn(nn.Conv2d(c + 1, c, 3, 1, 1)), nn.LeakyReLU(0.2))
        self.linear = sn(nn.Linear(c, 1))
        self.embed = sn(nn.Embedding(num_classes, c))

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        # minibatch standard deviation: one extra map, the batch's mean per-feature spread
        spread = h.float().std(dim=0, unbiased=False).mean().to(h.dtype) if len(h) > 1 else h.new_zeros(())
        h = self.last(torch.cat([h, spread.expand(len(h), 1, *h.shape[2:])], dim=1)).sum(dim=(2, 3))
        return self.linear(h).flatten() + (self.embed(label) * h).sum(dim=1)


def _doublings(size: int) -> int:
    if size not in (16, 32):
        raise ArtganError(f"small-cgan: image_size must be 16 or 32, got {size}")
    return int(math.log2(size)) - 2


@dataclass
class SmallCGANConfig(ImageGANConfig):
    """small-cgan's knobs: the core image-GAN recipe's (with SNGAN's Adam betas and an EMA on),
    and its networks' widths."""

    latent_dim: int = 64
    width: int = 32  # G's channels at full resolution; D's too unless d_width
    d_width: int | None = None
    betas: tuple[float, float] = (0.0, 0.9)
    ema: float = 0.999


class SmallCGANRecipe(ImageGANRecipe):
    """Class-conditional GAN for small labelled datasets (needs labels): the core's image-GAN
    training (:class:`artgan.image_gan.ImageGANRecipe`) over this module's G and D."""

    architecture = "small-cgan"
    config_class = SmallCGANConfig
    default_loss = "hinge"
    contract_params = {"latent_dim": 8, "width": 4}
    contract_info = {"image_size": 16, "channels": 1, "num_classes": 3}

    def __init__(self, *, info: DatasetInfo, loss=None, **params):
        super().__init__()
        if info.num_classes < 2:
            raise ArtganError(f"small-cgan: needs a labelled dataset (2 or more classes); "
                              f"{info.name or 'this dataset'} has {info.num_classes}. Use labels: folders "
                              f"for image-folder, or an unconditional architecture such as dcgan")
        cfg = SmallCGANConfig.from_params("small-cgan", params)
        self.G = Generator(cfg.latent_dim, info.image_size, info.channels, cfg.width, info.num_classes)
        self.D = Discriminator(info.image_size, info.channels, cfg.d_width or cfg.width, info.num_classes)
        self.setup(cfg, info, loss, conditional=True)
