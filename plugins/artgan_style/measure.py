"""How far an image is from a painting's style, and how much of its content it kept (numpy only).

Three figures, none needing a downloaded network:

* **colour distance**: sliced Wasserstein distance (SW1) between the image's pixel colours (RGB in
  [0, 1]) and the painting's;
* **texture distance**: SW1 between the image's small grey patches, each with its own mean removed
  (so only local structure counts, not brightness), and the painting's;
* **edge SSIM** (content kept): SSIM between the Sobel edge maps of the input and the output,
  taken after a light Gaussian blur (sigma ``EDGE_SIGMA`` = 1 px), so that it measures the picture's
  structure rather than its pixel-level grain. Without the blur (``edge_ssim_fine``, also reported)
  any brushwork at the scale of the 7x7 texture patches counts as lost content: on BSD68 a stylised
  photo whose layout is plainly intact scored 0.36, barely above two unrelated photos (0.23), and
  the photo plus N(0, 0.05) noise scored 0.70. With sigma 1: unrelated photos 0.35, noise 0.90,
  colour transfer 0.90 (16 training-split photos, Starry Night).

* **tone** (light and dark kept): the Pearson correlation between the input's and the output's
  BT.601 luminance, each blurred by a Gaussian of sigma ``TONE_SIGMA`` = 3 px first. A photographic
  negative scores near -1, a colour transfer near 1; a painting's strokes over the photo's light and
  dark 0.5-0.9 (Johnson et al.'s networks 0.57-0.87, Magenta's any-painting network 0.46-0.76).

Style figures are reported as ratios output/input: 1 means no closer to the painting than the
photo was, 0.5 means half the distance. Everything is seeded, so a re-run gives the same numbers.

The protocol, exactly (:data:`PROTOCOL`, written into the results and model cards, says it in one line):

* grey = BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of RGB in [0, 1];
* the painting is read at its file resolution; from the whole painting ``PIXEL_SAMPLES`` pixels and
  ``PATCH_SAMPLES`` patches of ``PATCH`` x ``PATCH`` grey pixels are drawn uniformly (with
  replacement) by ``numpy.random.default_rng(SAMPLE_SEED)``; an image under test is sampled the
  same way with the same seed (at its own size);
* SW1 = the mean over ``COLOR_PROJECTIONS`` (colour, seed ``COLOR_DIR_SEED``) or
  ``TEXTURE_PROJECTIONS`` (texture, seed ``TEXTURE_DIR_SEED``) random unit directions (Gaussian,
  normalised) of the 1-D Wasserstein-1 distance between the projected samples, computed on
  ``QUANTILES`` mid-point quantiles ``(k + 0.5) / QUANTILES``;
* edges = ``clip(hypot(sobel_x, sobel_y) / 4, 0, 1)`` of grey smoothed by
  ``scipy.ndimage.gaussian_filter(sigma=EDGE_SIGMA)`` (scipy.ndimage.sobel; reflect borders; /4
  makes a black-to-white step edge 1.0), compared with :func:`artgan.metrics.ssim` (11x11
  Gaussian window, data range 1); ``edge_ssim_fine`` is the same without the smoothing.

Photos are held out by :mod:`artgan.splits` (every 4th sorted file, from index 3); training uses
the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

PATCH = 7
PIXEL_SAMPLES = 65536
PATCH_SAMPLES = 16384
SAMPLE_SEED = 0
COLOR_PROJECTIONS = 64
TEXTURE_PROJECTIONS = 128
COLOR_DIR_SEED = 1
TEXTURE_DIR_SEED = 2
QUANTILES = 256
EDGE_SIGMA = 1.0
TONE_SIGMA = 3.0

#: the protocol in one line, for the results JSON and the model cards (the module doc has it in full)
PROTOCOL = (f"colour/texture ratio: sliced Wasserstein-1 ({QUANTILES} mid-point quantiles) to the painting of "
            f"{PIXEL_SAMPLES} RGB pixels ({COLOR_PROJECTIONS} projections, seed {COLOR_DIR_SEED}) / {PATCH_SAMPLES} "
            f"mean-removed {PATCH}x{PATCH} BT.601 grey patches ({TEXTURE_PROJECTIONS} projections, seed "
            f"{TEXTURE_DIR_SEED}), drawn with seed {SAMPLE_SEED}, output over input per photo; edge SSIM: Sobel "
            f"edges of grey blurred by sigma {EDGE_SIGMA:g} px (no blur: the 'no blur' column), 11x11 Gaussian SSIM; "
            f"tone: Pearson correlation of input and output grey, each blurred by sigma {TONE_SIGMA:g} px")


def grey(image: np.ndarray) -> np.ndarray:
    """HWC RGB float [0, 1] -> HW luma."""
    image = np.asarray(image, np.float32)
    if image.shape[-1] == 1:
        return image[..., 0]
    return image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114


def sample_pixels(image: np.ndarray, n: int = PIXEL_SAMPLES, seed: int = SAMPLE_SEED) -> np.ndarray:
    """(n, 3) colours drawn uniformly from an HWC image."""
    flat = np.asarray(image, np.float32).reshape(-1, image.shape[-1])
    idx = np.random.default_rng(seed).integers(0, len(flat), n)
    return flat[idx]


def sample_patches(image: np.ndarray, n: int = PATCH_SAMPLES, size: int = PATCH,
                   seed: int = SAMPLE_SEED) -> np.ndarray:
    """(n, size*size) grey patches drawn uniformly from an HWC image, each minus its own mean."""
    g = grey(image)
    h, w = g.shape
    if h < size or w < size:
        raise ValueError(f"image {w}x{h} is smaller than a {size}x{size} patch")
    rng = np.random.default_rng(seed)
    ys = rng.integers(0, h - size + 1, n)
    xs = rng.integers(0, w - size + 1, n)
    d = np.arange(size)
    patches = g[ys[:, None, None] + d[None, :, None], xs[:, None, None] + d[None, None, :]]
    patches = patches.reshape(n, size * size)
    return patches - patches.mean(axis=1, keepdims=True)


@lru_cache(maxsize=8)
def directions(dim: int, count: int, seed: int) -> np.ndarray:
    """(count, dim) random unit vectors."""
    v = np.random.default_rng(seed).standard_normal((count, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def projected_quantiles(samples: np.ndarray, dirs: np.ndarray, q: int = QUANTILES) -> np.ndarray:
    """(q, projections): the mid-point quantiles of the samples along each direction."""
    proj = np.sort(samples.astype(np.float32) @ dirs.T, axis=0)
    # numpy's default ("linear") quantile, written out: np.quantile is ~10x slower here
    pos = (np.arange(q) + 0.5) / q * (len(proj) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(proj) - 1)
    frac = (pos - lo).astype(np.float32)[:, None]
    return proj[lo] * (1 - frac) + proj[hi] * frac


def sliced_w1(qa: np.ndarray, qb: np.ndarray) -> float:
    """Sliced Wasserstein-1 distance from two :func:`projected_quantiles` tables."""
    return float(np.abs(qa - qb).mean())


@dataclass
class StyleSignature:
    """The quantile tables of one image (or painting): what the distances compare."""

    color: np.ndarray
    texture: np.ndarray

    @classmethod
    def of(cls, image: np.ndarray) -> "StyleSignature":
        image = np.asarray(image, np.float32)
        return cls(
            color=projected_quantiles(sample_pixels(image), directions(3, COLOR_PROJECTIONS, COLOR_DIR_SEED)),
            texture=projected_quantiles(sample_patches(image),
                                        directions(PATCH * PATCH, TEXTURE_PROJECTIONS, TEXTURE_DIR_SEED)),
        )

    def distances(self, other: "StyleSignature") -> dict[str, float]:
        return {"color": sliced_w1(self.color, other.color), "texture": sliced_w1(self.texture, other.texture)}


def edge_map(image: np.ndarray, sigma: float = EDGE_SIGMA) -> np.ndarray:
    """Sobel gradient magnitude of the grey image (smoothed by ``sigma`` px first), a
    black-to-white step edge = 1."""
    from scipy.ndimage import gaussian_filter, sobel

    g = grey(image).astype(np.float64)
    if sigma > 0:
        g = gaussian_filter(g, sigma, mode="reflect")
    return np.clip(np.hypot(sobel(g, axis=1, mode="reflect"), sobel(g, axis=0, mode="reflect")) / 4.0, 0.0, 1.0)


def edge_ssim(a: np.ndarray, b: np.ndarray, sigma: float = EDGE_SIGMA) -> float:
    """SSIM between the Sobel edge maps of two same-sized HWC images (content kept)."""
    from artgan.metrics import ssim

    return ssim(edge_map(a, sigma), edge_map(b, sigma), data_range=1.0)


def tone(a: np.ndarray, b: np.ndarray, sigma: float = TONE_SIGMA) -> float:
    """Pearson correlation between the blurred luminances of two same-sized HWC images (1: light
    and dark in the same places; -1: a negative)."""
    from scipy.ndimage import gaussian_filter

    ga = gaussian_filter(grey(a).astype(np.float64), sigma, mode="reflect").ravel()
    gb = gaussian_filter(grey(b).astype(np.float64), sigma, mode="reflect").ravel()
    ga, gb = ga - ga.mean(), gb - gb.mean()
    norm = np.sqrt((ga * ga).sum() * (gb * gb).sum())
    return float((ga * gb).sum() / norm) if norm > 0 else 0.0


def score(inp: np.ndarray, out: np.ndarray, painting: StyleSignature,
          inp_sig: StyleSignature | None = None) -> dict[str, float]:
    """All figures for one (input, output) pair against a painting."""
    inp_sig = inp_sig or StyleSignature.of(inp)
    d_in = inp_sig.distances(painting)
    d_out = StyleSignature.of(out).distances(painting)
    return {
        "color_ratio": d_out["color"] / max(d_in["color"], 1e-12),
        "texture_ratio": d_out["texture"] / max(d_in["texture"], 1e-12),
        "tone": tone(inp, out),
        "edge_ssim": edge_ssim(inp, out),
        "edge_ssim_fine": edge_ssim(inp, out, sigma=0.0),
        "color_distance": d_out["color"], "texture_distance": d_out["texture"],
        "input_color_distance": d_in["color"], "input_texture_distance": d_in["texture"],
    }
