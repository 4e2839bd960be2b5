"""DCGAN (Radford et al., 2016) for 16 to 128 px images, as a GAN recipe.

The generator maps a latent vector ``z`` (N, latent_dim) to an image (N, C, S, S) in [-1, 1];
the discriminator maps an image to one logit per sample. ``conditional: true`` feeds the class
label to both: G gets a learned label embedding beside ``z``, D a projection term (Miyato &
Koyama, 2018). ``spectral_norm: true`` normalises D's layers and drops its BatchNorm (SN-DCGAN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.image_gan import ImageGANRecipe

from .model import GANConfig


def _init_weights(m: nn.Module) -> None:
    # DCGAN's initialisation: N(0, 0.02) for convolutions, N(1, 0.02) for BatchNorm scales
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def _up(cin: int, cout: int, mode: str) -> list[nn.Module]:
    """x2 upsampling: a transposed convolution (classic DCGAN) or nearest-neighbour + 3x3
    convolution, which avoids checkerboard artefacts and quantises to int8 on onnxruntime's CPU."""
    if mode == "transpose":
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)]
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=False)]


def _check_size(name: str, size: int) -> int:
    if size not in (16, 32, 64, 128):
        raise ArtganError(f"{name}: image_size must be 16, 32, 64 or 128, got {size}")
    return int(math.log2(size)) - 2  # doublings between 4x4 and the image


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int = 100, image_size: int = 64, channels: int = 3,
                 width: int = 64, upsample: str = "transpose", num_classes: int = 0):
        super().__init__()
        self.latent_dim = latent_dim
        n_up = _check_size("dcgan", image_size)
        # conditional: a learned embedding of the label is concatenated to z
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        c = width * 2 ** (n_up - 1)
        cin = latent_dim * (2 if num_classes else 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(cin, c, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(n_up - 1):
            layers += [*_up(c, c // 2, upsample), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [*_up(c, channels, upsample), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64,
                 num_classes: int = 0, spectral_norm: bool = False):
        super().__init__()
        n_down = _check_size("dcgan", image_size)
        sn = _sn if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = [sn(nn.Conv2d(channels, width, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        c = width
        for _ in range(n_down - 1):
            if spectral_norm:  # SN replaces BatchNorm in D
                layers += [sn(nn.Conv2d(c, c * 2, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            else:
                layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2, True)]
            c *= 2
        layers += [sn(nn.Conv2d(c, 1, 4, 1, 0))]
        self.net = nn.Sequential(*layers)
        # projection discriminator: logit += <embed(y), features summed over the 4x4 map>
        self.embed = sn(nn.Embedding(num_classes, c)) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is None:
            return self.net(x).flatten()
        h = self.net[:-1](x)
        return self.net[-1](h).flatten() + (self.embed(y) * h.sum(dim=(2, 3))).sum(dim=1)


@dataclass
class DCGANConfig(GANConfig):
    """dcgan's knobs: :class:`~.model.GANConfig`'s, and how G upsamples and whether D is
    spectrally normalised."""

    upsample: str = "transpose"  # or "nearest" (+ a 3x3 convolution)
    spectral_norm: bool = False

    def check(self, who: str) -> None:
        super().check(who)
        if self.upsample not in ("transpose", "nearest"):
            raise ArtganError(f"{who}: upsample must be 'transpose' or 'nearest', got {self.upsample!r}")


class DCGANRecipe(ImageGANRecipe):
    """DCGAN with the non-saturating loss and Adam(2e-4, betas 0.5/0.999) by default.

    Switches (:class:`DCGANConfig`): ``conditional`` (class labels), ``spectral_norm`` (on D),
    ``ema`` (decay of a moving average of G's weights used for samples and export; 0 = off),
    ``r1`` (gamma of the R1 penalty; 0 = off), ``diffaugment`` ("color,translation,cutout"),
    ``g_lr``/``d_lr`` (separate learning rates), ``g_every`` (a G step every n D steps), ``pack``
    (PacGAN: D judges that many samples at once, which penalises a generator that repeats itself;
    Lin et al., 2018).
    """

    architecture = "dcgan"
    config_class = DCGANConfig

    contract_params = {"latent_dim": 16, "g_width": 8, "d_width": 8}  # artgan.testing builds it small

    def __init__(self, *, info: DatasetInfo, loss=None, **params):
        super().__init__()
        _check_size("dcgan", info.image_size)
        cfg = DCGANConfig.from_params("dcgan", params)
        k = info.num_classes if cfg.conditional else 0
        self.upsample = cfg.upsample
        self.G = DCGANGenerator(cfg.latent_dim, info.image_size, info.channels, cfg.g_width, cfg.upsample, k)
        self.D = DCGANDiscriminator(info.image_size, info.channels * cfg.pack, cfg.d_width, k, cfg.spectral_norm)
        self.G.apply(_init_weights)
        if not cfg.spectral_norm:  # SN layers keep PyTorch's default init (as in Miyato et al.)
            self.D.apply(_init_weights)
        self.setup(cfg, info, loss, conditional=cfg.conditional)
