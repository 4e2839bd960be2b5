"""SNGAN (Miyato et al., 2018): ResNet generator and a spectrally normalised ResNet
discriminator, for 32 to 128 px images, as a GAN recipe.

G: z -> linear -> 4x4 map -> one up-sampling residual block per doubling -> BN, ReLU, 3x3 conv,
tanh. D: residual down-sampling blocks -> ReLU -> global sum pooling -> linear. With
``conditional: true`` G's BatchNorms take a per-class scale and shift (conditional BN) and D
adds a projection term (Miyato & Koyama, 2018). Defaults: hinge-friendly Adam(2e-4, 0, 0.9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.image_gan import ImageGANRecipe

from .model import GANConfig


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose scale and shift come from the class label (or are learned constants)."""

    def __init__(self, channels: int, num_classes: int = 0):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        if num_classes:
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)
        self.conditional = num_classes > 0

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.bn(x)
        if self.conditional:
            h = h * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]
        return h


class GBlock(nn.Module):
    """BN-ReLU-up-conv3-BN-ReLU-conv3, plus an up-sampled 1x1 shortcut."""

    def __init__(self, cin: int, cout: int, num_classes: int = 0):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm(cin, num_classes), ConditionalBatchNorm(cout, num_classes)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


def _snx(m: nn.Module) -> nn.Module:
    """Xavier-initialise, then spectrally normalise (initialising first keeps SN's power
    iteration vectors consistent with the weights)."""
    nn.init.xavier_uniform_(m.weight)
    nn.init.zeros_(m.bias)
    return _sn(m)


class DBlock(nn.Module):
    """(ReLU)-conv3-ReLU-conv3-(avgpool), plus a 1x1 (then pooled) shortcut; all SN."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool = False):
        super().__init__()
        self.conv1, self.conv2 = _snx(nn.Conv2d(cin, cout, 3, 1, 1)), _snx(nn.Conv2d(cout, cout, 3, 1, 1))
        self.shortcut = _snx(nn.Conv2d(cin, cout, 1)) if (cin != cout or down) else None
        self.down, self.first = down, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)  # the first block sees the image, not activations
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:  # pool first, then 1x1 (the "optimised block" of SNGAN)
            s = self.shortcut(F.avg_pool2d(x, 2) if self.down else x)
        elif self.shortcut is not None:
            s = self.shortcut(x)
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


def _doublings(size: int) -> int:
    if size not in (32, 64, 128):
        raise ArtganError(f"sngan: image_size must be 32, 64 or 128, got {size}")
    return int(math.log2(size)) - 2


class ResNetGenerator(nn.Module):
    def __init__(self, latent_dim: int = 128, image_size: int = 32, channels: int = 3,
                 width: int = 64, num_classes: int = 0):
        super().__init__()
        n_up = _doublings(image_size)
        mult = [min(8, 2 ** (n_up - i)) for i in range(n_up + 1)]  # e.g. 32 px: 8, 4, 2, 1
        self.c0 = width * mult[0]
        self.latent_dim = latent_dim
        self.linear = nn.Linear(latent_dim, 4 * 4 * self.c0)
        self.blocks = nn.ModuleList(GBlock(width * mult[i], width * mult[i + 1], num_classes)
                                    for i in range(n_up))
        self.bn = nn.BatchNorm2d(width * mult[-1])
        self.out = nn.Conv2d(width * mult[-1], channels, 3, 1, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.c0, 4, 4)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.out(F.relu(self.bn(h))))


class ResNetDiscriminator(nn.Module):
    def __init__(self, image_size: int = 32, channels: int = 3, width: int = 64, num_classes: int = 0):
        super().__init__()
        n_down = _doublings(image_size)
        mult = [min(8, 2 ** i) for i in range(n_down + 1)]  # e.g. 32 px: 1, 2, 4, 8
        blocks = [DBlock(channels, width * mult[0], down=True, first=True)]
        blocks += [DBlock(width * mult[i], width * mult[i + 1], down=i + 1 < n_down) for i in range(n_down)]
        self.blocks = nn.Sequential(*blocks)  # image_size -> 4x4 (the last block keeps its size)
        c = width * mult[-1]
        self.linear = _snx(nn.Linear(c, 1))
        self.embed = _sn(nn.Embedding(num_classes, c)) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        logit = self.linear(h).flatten()
        if self.embed is not None:
            logit = logit + (self.embed(y) * h).sum(dim=1)
        return logit


@dataclass
class SNGANConfig(GANConfig):
    """sngan's knobs: :class:`~.model.GANConfig`'s, with SNGAN's latent size and hinge-friendly
    Adam betas."""

    latent_dim: int = 128
    betas: tuple[float, float] = (0.0, 0.9)


class SNGANRecipe(ImageGANRecipe):
    """ResNet SNGAN. Best with the hinge loss; ``ema``, ``r1``, ``diffaugment``, ``g_lr``/
    ``d_lr``, ``g_every``, ``pack`` and ``conditional`` work as for dcgan (:class:`SNGANConfig`)."""

    architecture = "sngan"
    config_class = SNGANConfig

    def __init__(self, *, info: DatasetInfo, loss=None, **params):
        super().__init__()
        _doublings(info.image_size)
        cfg = SNGANConfig.from_params("sngan", params)
        k = info.num_classes if cfg.conditional else 0
        self.G = ResNetGenerator(cfg.latent_dim, info.image_size, info.channels, cfg.g_width, k)
        self.D = ResNetDiscriminator(info.image_size, info.channels * cfg.pack, cfg.d_width, k)
        self.setup(cfg, info, loss, conditional=cfg.conditional)
