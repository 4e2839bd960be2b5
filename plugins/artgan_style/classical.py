"""Classical colour styling with numpy: Reinhard colour transfer in CIELAB and per-channel
histogram matching, both driven by a painting's :class:`Reference` statistics.

Fast baselines for the trained style step and finishing steps after it. They move colours only:
the local texture of the photo stays as it was.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

QUANTILE_LEVELS = 257  # 0, 1/256, ..., 1: enough to reproduce an 8-bit histogram

# sRGB (D65) <-> XYZ, and the D65 white point (IEC 61966-2-1; CIE 15)
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]], np.float64)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB float [0, 1] (..., 3) -> CIELAB (L in [0, 100], a/b roughly [-128, 127])."""
    rgb = np.asarray(rgb, np.float64)
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _RGB_TO_XYZ.T / _WHITE
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB -> sRGB float, clipped to [0, 1]."""
    lab = np.asarray(lab, np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    eps, kappa = 216 / 24389, 24389 / 27
    xyz = np.where(f**3 > eps, f**3, (116 * f - 16) / kappa) * _WHITE
    lin = np.clip(xyz @ _XYZ_TO_RGB.T, 0.0, 1.0)
    rgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(rgb, 0.0, 1.0)


@dataclass
class Reference:
    """What the classical steps need to know about a painting: CIELAB mean and standard deviation
    per channel, and per-channel RGB quantiles at ``QUANTILE_LEVELS`` evenly spaced levels."""

    name: str
    lab_mean: list[float]
    lab_std: list[float]
    rgb_quantiles: list[list[float]]  # 3 x QUANTILE_LEVELS

    @classmethod
    def from_image(cls, image: np.ndarray, name: str = "") -> "Reference":
        """From an HWC float [0, 1] RGB image (all of its pixels)."""
        pixels = np.asarray(image, np.float64).reshape(-1, 3)
        lab = rgb_to_lab(pixels)
        levels = np.linspace(0.0, 1.0, QUANTILE_LEVELS)
        q = np.quantile(pixels, levels, axis=0).T
        return cls(name=name, lab_mean=lab.mean(0).round(4).tolist(), lab_std=lab.std(0).round(4).tolist(),
                   rgb_quantiles=q.round(5).tolist())

    @classmethod
    def load(cls, path: str | Path) -> "Reference":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{k: data[k] for k in ("name", "lab_mean", "lab_std", "rgb_quantiles")})

    def save(self, path: str | Path) -> Path:
        from artgan.files import write_json
        write_json(path, {"format": "artgan-style-reference/1", **asdict(self)})
        return Path(path)


def color_transfer(image: np.ndarray, ref: Reference) -> np.ndarray:
    """Reinhard et al. (2001) colour transfer in CIELAB: each channel of the image is shifted and
    scaled to the painting's mean and standard deviation. HWC float [0, 1] in and out."""
    lab = rgb_to_lab(image)
    flat = lab.reshape(-1, 3)
    mean, std = flat.mean(0), flat.std(0)
    out = (lab - mean) * (np.asarray(ref.lab_std) / np.maximum(std, 1e-6)) + np.asarray(ref.lab_mean)
    return lab_to_rgb(out).astype(np.float32)


def histogram_match(image: np.ndarray, ref: Reference) -> np.ndarray:
    """Per-channel RGB histogram matching: each value goes to the painting's value at the same
    rank (quantile). HWC float [0, 1] in and out."""
    image = np.asarray(image, np.float32)
    out = np.empty_like(image)
    levels = np.linspace(0.0, 1.0, QUANTILE_LEVELS)
    for c in range(3):
        channel = image[..., c].ravel()
        # the rank of each value in the image, as a fraction (ties share the mean rank)
        values, inverse, counts = np.unique(channel, return_inverse=True, return_counts=True)
        cdf = (np.cumsum(counts) - 0.5 * counts) / channel.size
        out[..., c] = np.interp(cdf, levels, ref.rgb_quantiles[c])[inverse].reshape(image.shape[:2])
    return np.clip(out, 0.0, 1.0)


if __name__ == "__main__":  # python -m artgan_style.classical PAINTING OUT.reference.json
    import sys

    from artgan.images import load_image, to_float

    painting, out = sys.argv[1:3]
    ref = Reference.from_image(to_float(load_image(painting)), name=Path(painting).stem)
    print(ref.save(out))
