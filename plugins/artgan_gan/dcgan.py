"""DCGAN (Radford et al., 2016) for 32 and 64 px images, as a GAN recipe.

The generator maps a latent vector ``z`` (N, latent_dim) to an image (N, C, S, S) in [-1, 1];
the discriminator maps an image to one logit per sample.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.recipe import ExportSpec, GANRecipe, Phase


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


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int = 100, image_size: int = 64, channels: int = 3,
                 width: int = 64, upsample: str = "transpose"):
        super().__init__()
        self.latent_dim = latent_dim
        n_up = int(math.log2(image_size)) - 2  # 4x4 -> image_size
        c = width * 2 ** (n_up - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, c, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(n_up - 1):
            layers += [*_up(c, c // 2, upsample), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [*_up(c, channels, upsample), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64):
        super().__init__()
        n_down = int(math.log2(image_size)) - 2  # image_size -> 4x4
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = width
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2, True)]
            c *= 2
        layers += [nn.Conv2d(c, 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


class DCGANRecipe(GANRecipe):
    """DCGAN with the non-saturating loss and Adam(2e-4, betas 0.5/0.999) by default."""

    contract_params = {"latent_dim": 16, "g_width": 8, "d_width": 8}  # artgan.testing builds it small

    def __init__(self, *, info: DatasetInfo, loss=None, latent_dim: int = 100, g_width: int = 64,
                 d_width: int = 64, lr: float = 2e-4, g_lr: float | None = None,
                 d_lr: float | None = None, beta1: float = 0.5, beta2: float = 0.999,
                 upsample: str = "transpose"):
        super().__init__()
        if info.image_size not in (32, 64):
            raise ArtganError(f"dcgan: image_size must be 32 or 64, got {info.image_size}")
        if upsample not in ("transpose", "nearest"):
            raise ArtganError(f"dcgan: upsample must be 'transpose' or 'nearest', got {upsample!r}")
        if loss is None:
            from .losses import NonSaturatingLoss
            loss = NonSaturatingLoss()
        self.info, self.loss, self.latent_dim = info, loss, latent_dim
        self.upsample = upsample
        self.G = DCGANGenerator(latent_dim, info.image_size, info.channels, g_width, upsample)
        self.D = DCGANDiscriminator(info.image_size, info.channels, d_width)
        self.G.apply(_init_weights)
        self.D.apply(_init_weights)
        self.modules = {"generator": self.G, "discriminator": self.D}
        self.optimizers = {
            "generator": torch.optim.Adam(self.G.parameters(), lr=g_lr or lr, betas=(beta1, beta2)),
            "discriminator": torch.optim.Adam(self.D.parameters(), lr=d_lr or lr, betas=(beta1, beta2)),
        }

    def _noise(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=device)

    def discriminator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real = batch["image"]
        with torch.no_grad():
            fake = self.G(self._noise(real.shape[0], real.device))
        real_logits, fake_logits = self.D(real), self.D(fake)
        loss = self.loss.discriminator(real_logits, fake_logits)
        return {"loss": loss, "real_score": torch.sigmoid(real_logits).mean(),
                "fake_score": torch.sigmoid(fake_logits).mean()}

    def generator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real = batch["image"]
        fake_logits = self.D(self.G(self._noise(real.shape[0], real.device)))
        return {"loss": self.loss.generator(fake_logits)}

    def phases(self) -> list[Phase]:
        return [Phase("D", self.optimizers["discriminator"], self.discriminator_step),
                Phase("G", self.optimizers["generator"], self.generator_step)]

    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"z": torch.randn(n, self.latent_dim, generator=generator)}

    @torch.no_grad()
    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.G(inputs["z"])

    def export_spec(self) -> ExportSpec:
        info = self.info
        return ExportSpec(
            module=self.G,
            inputs={"z": torch.randn(1, self.latent_dim)},
            outputs=["image"],
            dynamic_axes={"z": {0: "batch"}, "image": {0: "batch"}},
            metadata={
                "task": "generate", "architecture": "dcgan", "latent_dim": self.latent_dim,
                "image_size": info.image_size, "channels": info.channels,
                "color_order": "RGB" if info.channels == 3 else "L",
                "value_range": [-1.0, 1.0], "layout": "NCHW", "num_classes": 0,
                "input_spec": {"z": {"shape": ["batch", self.latent_dim], "dtype": "float32",
                                     "distribution": "standard normal"}},
                "output_spec": {"image": {"shape": ["batch", info.channels, info.image_size, info.image_size],
                                          "dtype": "float32", "range": [-1.0, 1.0]}},
                "dataset": info.name,
            },
        )
