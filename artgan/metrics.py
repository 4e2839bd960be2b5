"""Image-quality metrics on numpy arrays (no torch): PSNR and SSIM, on RGB or the Y channel.

Conventions follow the super-resolution literature: images are float in [0, 1] (HWC); the Y
channel is ITU-R BT.601 luma as MATLAB's rgb2ycbcr computes it (16..235 scaled back to [0, 1]);
``crop`` removes that many pixels from every border before comparing.
"""

from __future__ import annotations

import math

import numpy as np


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """float [0, 1] HWC RGB -> float [0, 1] HW luma (BT.601, as in MATLAB's rgb2ycbcr)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    y = (65.481 * image[..., 0] + 128.553 * image[..., 1] + 24.966 * image[..., 2] + 16.0) / 255.0
    return y


def _crop(a: np.ndarray, crop: int) -> np.ndarray:
    return a[crop:-crop, crop:-crop] if crop > 0 else a


def psnr(a: np.ndarray, b: np.ndarray, *, data_range: float = 1.0, crop: int = 0,
         mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB; ``mask`` (HW, truthy = counted) limits the pixels."""
    a, b = _crop(np.asarray(a, np.float64), crop), _crop(np.asarray(b, np.float64), crop)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ: {a.shape} vs {b.shape}")
    err = (a - b) ** 2
    if mask is not None:
        m = _crop(np.asarray(mask, bool), crop)
        err = err[m] if err.ndim == m.ndim else err[m, ...]
    mse = float(err.mean())
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def detail_ratio(a: np.ndarray, reference: np.ndarray, *, crop: int = 0) -> float:
    """Mean gradient magnitude of ``a`` over that of ``reference`` (single-channel HW images):
    1.0 = as much fine detail as the reference, below 1 = smoother (bicubic upscales sit well
    below), above 1 = extra edges or noise. PSNR rewards blur, so upscalers trained for texture
    (GAN fine-tunes) are compared on this as well."""
    def energy(x):
        x = _crop(np.asarray(x, np.float64), crop)
        return float(np.mean(np.hypot(np.diff(x, axis=0)[:, :-1], np.diff(x, axis=1)[:-1, :])))
    ref = energy(reference)
    return energy(a) / ref if ref > 0 else math.nan


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 1.0, crop: int = 0,
         mask: np.ndarray | None = None) -> float:
    """Structural similarity (Wang et al., 2004): 11x11 Gaussian window, sigma 1.5, K=(0.01, 0.03).

    Colour images are averaged over channels. ``mask`` (HW) averages the SSIM map over those pixels.
    """
    from scipy.ndimage import gaussian_filter

    a, b = _crop(np.asarray(a, np.float64), crop), _crop(np.asarray(b, np.float64), crop)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 3:
        maps = [_ssim_map(a[..., c], b[..., c], data_range, gaussian_filter) for c in range(a.shape[2])]
        smap = np.mean(maps, axis=0)
    else:
        smap = _ssim_map(a, b, data_range, gaussian_filter)
    if mask is not None:
        return float(smap[_crop(np.asarray(mask, bool), crop)].mean())
    return float(smap.mean())


def _ssim_map(a, b, data_range, gaussian_filter):
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    f = lambda x: gaussian_filter(x, sigma=1.5, truncate=3.5, mode="reflect")  # 11x11 window
    mu_a, mu_b = f(a), f(b)
    saa, sbb, sab = f(a * a) - mu_a**2, f(b * b) - mu_b**2, f(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
