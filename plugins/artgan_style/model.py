"""Feed-forward style transfer trained by matching a painting's patch distribution.

No discriminator and no pretrained network: the generator is trained to make the distribution of
its output's small patches, at several scales, equal to the painting's, measured by a sliced
Wasserstein distance (GPDM, Elnekave & Weiss, ECCV 2022; wgenpatex, Houdard et al., 2023). Fresh
random projection directions are drawn every step, so over training every direction counts. The
terms, each aimed at one figure of ``artgan evaluate style`` (:mod:`.measure`):

* **texture**: SW distance between mean-removed grey 7x7 patches of the output and of the painting
  (exactly what the evaluation's texture ratio measures), at full resolution, for each image on its
  own (as the evaluation scores each photo);
* **style**: SW distance between raw RGB ``patch`` x ``patch`` patches at ``scales`` (average
  pooling by 1, 2, 4 ...): brush strokes, then the larger motifs;
* **colour**: SW distance between the pixel colours (the evaluation's colour ratio);
* **content**: 1 - SSIM between the Sobel edge maps (sigma-1 blur) of the photo and the output:
  the evaluation's edge SSIM, differentiable.

The three distances to the painting are divided by the photos' own distances to it (``ratios``,
estimated over the first training batches), which is what the evaluation reports, so one set of
weights serves every painting.

The optimal-transport step lives only in the loss (sorting projections), so the exported
generator is a plain small CNN: 512x512 runs in a fraction of a second on a CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.image_recipe import ImageSpec, ImageToImageRecipe
from artgan.recipe import Phase, RecipeConfig

LUMA = (0.299, 0.587, 0.114)  # BT.601, as measure.grey


# -- the generator ---------------------------------------------------------------------------

class ResidualBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.InstanceNorm2d(c, affine=True), nn.ReLU(True),
                                  nn.Conv2d(c, c, 3, 1, 1), nn.InstanceNorm2d(c, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class StyleNet(nn.Module):
    """Photo -> painted photo, same size (sides a multiple of 4), NCHW in [-1, 1].

    Two stride-2 convolutions, ``blocks`` residual blocks at 1/4 resolution with ``width``
    channels (where strokes and motifs are decided), two nearest x2 upsamplings + 3x3
    convolutions, and a 3x3 head that also sees the photo itself, so edges can pass straight
    through. Instance normalisation (Ulyanov et al., 2016): a style is the same for a dark photo
    and a bright one. Zero padding: cheaper than reflection in onnxruntime and in bf16 on CPU.
    """

    size_multiple = 4

    def __init__(self, width: int = 48, blocks: int = 5, channels: int = 3):
        super().__init__()
        w2, w4 = max(width // 2, 4), width

        def conv(cin, cout, k=3, s=1):
            return [nn.Conv2d(cin, cout, k, s, k // 2), nn.InstanceNorm2d(cout, affine=True), nn.ReLU(True)]

        self.down = nn.Sequential(*conv(channels, w2, 5), *conv(w2, w4, 3, 2), *conv(w4, w4, 3, 2))
        self.blocks = nn.Sequential(*[ResidualBlock(w4) for _ in range(blocks)])
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *conv(w4, w2),
                                nn.Upsample(scale_factor=2, mode="nearest"), *conv(w2, w2))
        self.head = nn.Conv2d(w2 + channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(self.blocks(self.down(x)))
        return torch.tanh(self.head(torch.cat([h, x], dim=1)))


# -- the losses (fp32: sorting bf16 values loses the small differences that matter) ------------

def _fp32(fn):
    def wrapped(*args, **kwargs):
        with torch.autocast(device_type="cuda" if args[0].is_cuda else "cpu", enabled=False):
            return fn(*[a.float() if isinstance(a, torch.Tensor) else a for a in args], **kwargs)
    wrapped.__doc__, wrapped.__name__ = fn.__doc__, fn.__name__
    return wrapped


def _directions(dim: int, count: int, like: torch.Tensor) -> torch.Tensor:
    return F.normalize(torch.randn(dim, count, device=like.device, dtype=like.dtype), dim=0)


def _sorted(x: torch.Tensor) -> torch.Tensor:
    """``x`` (K, N) sorted along its rows, differentiably. On the CPU through numpy, whose
    AVX-512 sorts are 2-6x faster than ``torch.sort`` (measured: 64 x 16384 float32 in 41 ms
    (argsort) / 18 ms (sort) against 104 ms); sorting is most of this loss's cost."""
    if x.device.type != "cpu":
        return torch.sort(x, dim=1).values
    import numpy as np

    if not x.requires_grad:
        return torch.from_numpy(np.sort(x.detach().numpy(), axis=1))
    order = torch.from_numpy(np.argsort(x.detach().numpy(), axis=1))
    return torch.gather(x, 1, order)


def _subsample(x: torch.Tensor, n: int) -> torch.Tensor:
    return x if len(x) <= n else x[torch.randint(len(x), (n,), device=x.device)]


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 64,
                       max_points: int = 8192) -> torch.Tensor:
    """Sliced Wasserstein-1 distance between two point sets (N, d) and (M, d), along
    ``projections`` fresh random unit directions. Both sets are subsampled at random to the same
    size (at most ``max_points``), so the sorted projections pair up one to one."""
    n = min(len(a), len(b), max_points)
    return paired_sliced_wasserstein(_subsample(a, n)[None], _subsample(b, n)[None], projections)


def paired_sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 64) -> torch.Tensor:
    """Mean over i of the sliced Wasserstein-1 distance between the point sets ``a[i]`` and ``b[i]``
    (both (N, M, d)), along the same ``projections`` fresh random unit directions: N distances for
    the price of one sort of N * M points per direction."""
    dirs = _directions(a.shape[-1], projections, a)
    n, m, _ = a.shape
    qa = _sorted((a @ dirs).transpose(1, 2).reshape(n * projections, m).contiguous())
    qb = _sorted((b @ dirs).transpose(1, 2).reshape(n * projections, m).contiguous())
    return (qa - qb).abs().mean()


def random_patches(images: torch.Tensor, size: int, count: int, per_image: bool = False) -> torch.Tensor:
    """(N, C, H, W) -> (count, size * size * C), values in (dy, dx, c) order: patches at uniformly
    random places (with replacement), gathered directly from the flattened images by one index per
    value (cheaper than unfolding every patch and subsampling, and than advanced indexing, whose
    backward is several times slower than ``gather``'s). With ``per_image``:
    (N, count, size * size * C), ``count`` patches of each image."""
    n, c, h, w = images.shape
    dev = images.device
    total = n * count if per_image else count
    b = (torch.arange(n, device=dev).repeat_interleave(count) if per_image
         else torch.randint(n, (count,), device=dev))
    y = torch.randint(h - size + 1, (total,), device=dev)
    x = torch.randint(w - size + 1, (total,), device=dev)
    d = torch.arange(size, device=dev)
    ch = torch.arange(c, device=dev)
    # flat index of value (patch, dy, dx, channel) in the contiguous (N, C, H, W) images
    start = (b * c * h + y) * w + x
    offset = (ch.view(1, 1, -1) * h + d.view(-1, 1, 1)) * w + d.view(1, -1, 1)
    index = (start.view(-1, 1, 1, 1) + offset).reshape(-1)
    patches = images.contiguous().view(-1).gather(0, index).view(total, -1)
    return patches.view(n, count, -1) if per_image else patches


def grey(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, 1, H, W) BT.601 luma in [0, 1]."""
    return ((images + 1) / 2 * images.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


@_fp32
def texture_distance(out: torch.Tensor, art: torch.Tensor, size: int = 7, projections: int = 64,
                     points: int = 8192, per_image: bool = True) -> torch.Tensor:
    """SW distance between mean-removed grey ``size`` x ``size`` patches: the evaluation's
    texture distance (:func:`artgan_style.measure.sample_patches`), ``points`` random patches a side.

    ``per_image`` (the default): the mean over the images of ``out`` of each one's distance
    (``points / N`` patches of it against as many of the painting's), as the evaluation scores every
    photo on its own. Pooled over the batch instead, a batch can match the painting on average with
    some images still photo-like and others overdone."""
    def centred(p):
        return p - p.mean(-1, keepdim=True)

    if per_image and len(out) > 1:
        n = len(out)
        count = max(points // n, 64)
        pa = random_patches(grey(out), size, count, per_image=True)
        pb = random_patches(grey(art), size, n * count).view(n, count, -1)
        return paired_sliced_wasserstein(centred(pa), centred(pb), projections)
    pa, pb = random_patches(grey(out), size, points), random_patches(grey(art), size, points)
    return sliced_wasserstein(centred(pa), centred(pb), projections, points)


@_fp32
def multiscale_patch_distance(out: torch.Tensor, art: torch.Tensor, size: int = 5, scales: int = 3,
                              projections: int = 64, points: int = 4096) -> torch.Tensor:
    """Mean over ``scales`` (average pooling by 1, 2, 4 ...) of the SW distance between raw RGB
    patches (in [0, 1] units), ``points`` random patches per side and scale."""
    total = out.new_zeros(())
    for s in range(scales):
        if s:
            out, art = F.avg_pool2d(out, 2), F.avg_pool2d(art, 2)
        if min(out.shape[-2:]) < size or min(art.shape[-2:]) < size:
            break
        total = total + sliced_wasserstein(random_patches(out, size, points) / 2,
                                           random_patches(art, size, points) / 2, projections, points)
    return total / scales


@_fp32
def colour_distance(out: torch.Tensor, art: torch.Tensor, projections: int = 16, points: int = 8192) -> torch.Tensor:
    """SW distance between pixel colours in [0, 1]: the evaluation's colour distance."""
    return sliced_wasserstein(out.permute(0, 2, 3, 1).reshape(-1, 3) / 2,
                              art.permute(0, 2, 3, 1).reshape(-1, 3) / 2, projections, points)


def _gaussian(sigma: float, radius: int) -> list[float]:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return (g / g.sum()).tolist()


def _correlate(x: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """Valid 1-D cross-correlation of ``x`` with ``taps`` along ``dim`` (-1 or -2), as a product with
    a banded matrix: the same numbers as a 1-channel ``conv2d``, but several times cheaper forward
    and backward on a CPU, where single-channel convolutions take slow kernels."""
    length, k = x.shape[dim], len(taps)
    band = x.new_zeros(length, length - k + 1)
    for i, w in enumerate(taps):
        band.diagonal(-i).fill_(w)  # band[j + i, j] = taps[i]
    return x @ band if dim == -1 else band.t() @ x


def edge_map(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, 1, H, W): the Sobel edge map that ``artgan evaluate style``
    compares (:func:`artgan_style.measure.edge_map`): BT.601 grey, Gaussian blur sigma 1, Sobel
    magnitude / 4 clipped to [0, 1]; differentiable, with replicated borders."""
    g = _gaussian(1.0, 4)
    x = grey(image)
    x = _correlate(F.pad(x, (4, 4, 0, 0), mode="replicate"), g, -1)
    x = _correlate(F.pad(x, (0, 0, 4, 4), mode="replicate"), g, -2)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    # Sobel, separably: [1, 2, 1] smoothing across the derivative [-1, 0, 1]
    gx = _correlate(_correlate(padded, [1.0, 2.0, 1.0], -2), [-1.0, 0.0, 1.0], -1)
    gy = _correlate(_correlate(padded, [-1.0, 0.0, 1.0], -2), [1.0, 2.0, 1.0], -1)
    return (torch.sqrt(gx ** 2 + gy ** 2 + 1e-12) / 4).clamp(0, 1)


@_fp32
def edge_loss(out: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """1 - SSIM between the edge maps of ``out`` and ``photo``: the evaluation's edge SSIM."""
    a = edge_map(out)
    with torch.no_grad():
        b = edge_map(photo)
    return ssim_loss(a, b)


def ssim_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - SSIM of two (N, 1, H, W) maps in [0, 1] (11x11 Gaussian window, sigma 1.5)."""
    g = _gaussian(1.5, 5)
    # the five local means in one separable pass over 5 channels
    stats = torch.cat([a, b, a * a, b * b, a * b], dim=1)
    mu_a, mu_b, aa, bb, ab = _correlate(_correlate(stats, g, -1), g, -2).unbind(1)
    var_a, var_b, cov = aa - mu_a ** 2, bb - mu_b ** 2, ab - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return 1 - ssim.mean()


class ReferenceDistances:
    """The photos' own distance to the painting for each loss term: the mean over the first
    ``steps`` training batches (no gradient), then fixed. Kept in the checkpoint, so a resumed run
    divides by the same numbers."""

    def __init__(self, steps: int = 16):
        self.steps = steps
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def update(self, name: str, photo: torch.Tensor, distance) -> float:
        if self.counts.get(name, 0) < self.steps:
            with torch.no_grad():
                self.sums[name] = self.sums.get(name, 0.0) + float(distance(photo))
            self.counts[name] = self.counts.get(name, 0) + 1
        return max(self.sums[name] / self.counts[name], 1e-6)

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        self.sums = dict(state.get("sums", {}))
        self.counts = dict(state.get("counts", {}))


# -- the recipes ----------------------------------------------------------------------------

class StyleRecipe(ImageToImageRecipe):
    """What every photo -> painting recipe shares: its exported model (``image`` -> ``stylized``,
    sides a multiple of 4, run by the ``style`` step, the painting's name as ``style``) and its
    sample grids (photo | painted photo), from the first training batch's photos: there is no
    held-out set of photos. A subclass keeps them (:meth:`keep_sample_inputs`) and adds its own
    metadata to :meth:`own_metadata`'s."""

    step = "style"
    size_multiple = StyleNet.size_multiple
    example_size = (128, 128)

    def image_inputs(self) -> dict[str, ImageSpec]:
        return {"image": ImageSpec(3, size_multiple=self.size_multiple)}

    def image_outputs(self) -> dict[str, ImageSpec]:
        return {"stylized": ImageSpec(3)}

    def own_metadata(self) -> dict:
        name = self.info.name.split("->")[-1] if "->" in self.info.name else self.info.name
        return {"style": name, "dataset": self.info.name, "train_crop": self.info.image_size}


@dataclass
class PatchStyleConfig(RecipeConfig):
    """Every knob of :class:`PatchStyleRecipe`, with the defaults ``artgan style train`` uses
    (:class:`RecipeConfig`'s too: Adam betas 0.9/0.99, and the learning rate falls linearly to
    ``lr_final`` = lr/10 from ``decay_from`` to ``decay_to``)."""

    width: int = 48              # channels at 1/4 resolution
    blocks: int = 5              # residual blocks there
    lr: float = 2e-3
    decay_from: int = 0          # the learning rate falls linearly to lr/10 from this step ...
    decay_to: int = 0            # ... to this one (0: constant)
    # With ``ratios`` on, each painting distance is divided by the photos' own distance to the
    # painting, as the evaluation's ratios are, so that a weight means the same for every painting:
    # Great Wave's texture distance from photos is a quarter of Starry Night's, and with raw distances
    # its texture term barely moved the model (BSD68 texture ratio 0.92). Style and colour weights are
    # the old raw ones (1, 2) times Starry Night's reference distances (0.133, 0.144). Texture's was
    # raised with Great Wave's BSD68 held-out figures (15-minute runs): 0.37 (4 x 0.092, the old
    # weight) gave texture 0.735 / edge SSIM 0.889; 1.1 (kept) 0.596 / 0.718; 2.5 gave 0.614 / 0.529:
    # past 1.1 the photos' edges go and the texture figure on new photos does not improve. Neither did
    # 30 minutes in place of 15 (0.633): the pooled texture term was flat after 800 iterations,
    # matched on average over the batch while textured photos kept their own texture. Scored per image
    # (texture_per_image, as the evaluation scores each photo), 15 minutes: texture 0.354, colour
    # 0.154, edge SSIM 0.658 on the same photos.
    ratios: bool = True
    texture_weight: float = 1.1   # grey 7x7 mean-removed patches (the evaluation's texture)
    texture_per_image: bool = True  # each output image against the painting, as the evaluation scores
    style_weight: float = 0.13    # multi-scale raw RGB patches
    style_patch: int = 5
    style_scales: int = 3
    colour_weight: float = 0.29   # pixel colours
    edge_weight: float = 0.3      # 1 - edge SSIM to the photo (not a distance to the painting: no ratio)
    projections: int = 64
    betas: tuple[float, float] = (0.9, 0.99)
    lr_final: float = 0.1

    def check(self, who: str = "patch-style") -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("int", int) and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ArtganError(f"{who}: {f.name} must be a non-negative integer, got {v!r}")
            if f.type in ("float", float) and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
                raise ArtganError(f"{who}: {f.name} must be a non-negative number, got {v!r}")
        for name in ("width", "blocks", "style_patch", "style_scales", "projections"):
            if getattr(self, name) < 1:
                raise ArtganError(f"{who}: {name} must be at least 1, got {getattr(self, name)}")
        super().check(who)


class PatchStyleRecipe(StyleRecipe):
    """One generator, one Adam optimiser, one phase; batches ``{"image": photo crops, "art":
    painting crops}`` (the ``unpaired-folders`` dataset). Parameters: :class:`PatchStyleConfig`."""

    config_class = PatchStyleConfig
    architecture = "patch-style"

    def __init__(self, *, info: DatasetInfo, loss=None, **params):
        super().__init__()
        if loss is not None:
            raise ArtganError("patch-style: takes no adversarial loss (it matches patch distributions); "
                              "remove train.loss")
        if info.channels != 3:
            raise ArtganError(f"patch-style: needs RGB data (channels 3), got {info.channels}")
        self.cfg = PatchStyleConfig.from_params("patch-style", params)
        self.info = info
        self.G = StyleNet(self.cfg.width, self.cfg.blocks)
        self.modules = {"generator": self.G}
        self.keep_ema(self.G, self.cfg.ema)
        self.optimizers = {"generator": torch.optim.Adam(self.G.parameters(), self.cfg.lr, betas=self.cfg.betas)}
        self.set_lr_schedule(self.cfg.schedule())
        self.reference = ReferenceDistances()

    def generator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        photo, art = batch["image"], batch["art"]
        self.keep_sample_inputs({"image": photo})
        out = self.G(photo)
        c = self.cfg
        distances = {
            "texture": (c.texture_weight, lambda x: texture_distance(x, art, projections=c.projections,
                                                                       per_image=c.texture_per_image)),
            "style": (c.style_weight, lambda x: multiscale_patch_distance(x, art, c.style_patch, c.style_scales,
                                                                         c.projections)),
            "colour": (c.colour_weight, lambda x: colour_distance(x, art)),
        }
        terms = {}
        for name, (weight, distance) in distances.items():
            if weight:
                scale = self.reference.update(name, photo, distance) if c.ratios else 1.0
                terms[name] = (weight / scale, distance(out))
        if c.edge_weight:
            terms["edges"] = (c.edge_weight, edge_loss(out, photo))
        total = sum(w * v for w, v in terms.values())
        return {"loss": total, **{k: v.detach() for k, (_, v) in terms.items()}}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "reference_distances": self.reference.state_dict()}

    def load_state_dict(self, state: dict, *, optimizers: bool = True) -> None:
        super().load_state_dict(state, optimizers=optimizers)
        self.reference.load_state_dict(state.get("reference_distances", {}))

    def phases(self) -> list[Phase]:
        return [Phase("G", self.optimizers["generator"], self.generator_step)]

    # after_iteration (the learning-rate schedule, the EMA when kept), the sample grids: the base's

    def own_metadata(self) -> dict:
        return {**super().own_metadata(), "g_width": self.cfg.width, "g_blocks": self.cfg.blocks,
                "recipe": asdict(self.cfg)}


def _contract_dataset(folder):
    """For artgan.testing's architecture check: photo/painting batches."""
    from .data import UnpairedFoldersDataset, _contract_params

    return UnpairedFoldersDataset(**_contract_params(folder))


# a small network: the architecture check trains, checkpoints and exports it in a test
PatchStyleRecipe.contract_params = {"width": 8, "blocks": 1, "style_scales": 2}
PatchStyleRecipe.contract_dataset = _contract_dataset
