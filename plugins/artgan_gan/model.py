"""What dcgan (:mod:`.dcgan`) and sngan (:mod:`.sngan`) share besides the core's image-GAN
recipe (:mod:`artgan.image_gan`): their networks' widths and the class-conditional switch
(:class:`GANConfig`). Each architecture's networks and recipe are in its own module."""

from __future__ import annotations

from dataclasses import dataclass

from artgan.errors import ArtganError
from artgan.image_gan import ImageGANConfig


@dataclass
class GANConfig(ImageGANConfig):
    """Knobs of dcgan and sngan: :class:`~artgan.image_gan.ImageGANConfig`'s, the widths of G and
    D, and ``conditional`` (both networks take the class label)."""

    g_width: int = 64
    d_width: int = 64
    conditional: bool = False

    def check(self, who: str) -> None:
        super().check(who)
        for name in ("g_width", "d_width"):  # 0 built a model of empty layers
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArtganError(f"{who}: {name} must be an integer >= 1, got {value!r}")
