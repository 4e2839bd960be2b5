"""CycleGAN (Zhu et al., 2017) for photo -> painting style, as a GAN recipe.

Two generators, G: photo -> art and F: art -> photo, and two PatchGAN discriminators (optionally
at several scales), D_art and D_photo. Each generator fools its discriminator (adversarial loss), and the round trips
photo -> art -> photo and art -> photo -> art must give back their input (cycle-consistency), which
keeps the content of the photo. An identity loss (G(art) ~ art) keeps colours from drifting.

Only G is exported. It is fully convolutional, so it runs at any image size (a multiple of 4; the
runtime pads). The generator is deliberately compact (16-32 base channels, a few residual blocks
at 1/4 resolution, nearest-neighbour upsampling + convolution) so a 512x512 image stylises in well
under a second on two CPU cores.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.recipe import AdversarialLoss, Phase, RecipeConfig

from .model import StyleRecipe, edge_map, ssim_loss  # the edge SSIM the evaluation measures, differentiable


def _norm(c: int) -> nn.Module:
    # InstanceNorm: style is per-image statistics; exports as ONNX InstanceNormalization
    return nn.InstanceNorm2d(c, affine=True)


class ResidualBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1, padding_mode="reflect"), _norm(c), nn.ReLU(True),
            nn.Conv2d(c, c, 3, 1, 1, padding_mode="reflect"), _norm(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class StyleGenerator(nn.Module):
    """ResNet generator: 7x7 stem, two stride-2 downsamplings, ``blocks`` residual blocks at 1/4
    resolution, two x2 nearest upsamplings + 3x3 convolution (no checkerboard), 7x7 head, tanh.
    Image NCHW in [-1, 1] (sides a multiple of 4) -> image of the same size in [-1, 1].

    Instance normalisation removes each image's mean colour and contrast at every layer, so a
    plain ResNet generator cannot tell a blue sky from a grey one, and the cycle back to the photo
    cannot be closed (in a test it could not even learn the identity: L1 stuck at 0.35). Two cheap
    paths give the absolute colours back: the 4x4-average input added at the bottleneck (where
    the style is decided) and the input itself beside the features at the head.
    """

    size_multiple = 4

    def __init__(self, width: int = 16, blocks: int = 8, channels: int = 3):
        super().__init__()
        w = width
        self.down = nn.Sequential(
            nn.Conv2d(channels, w, 7, 1, 3, padding_mode="reflect"), _norm(w), nn.ReLU(True),
            nn.Conv2d(w, w * 2, 3, 2, 1, padding_mode="reflect"), _norm(w * 2), nn.ReLU(True),
            nn.Conv2d(w * 2, w * 4, 3, 2, 1, padding_mode="reflect"), _norm(w * 4), nn.ReLU(True))
        self.colour = nn.Conv2d(channels, w * 4, 1)  # the input's local mean colour, at 1/4 size
        self.blocks = nn.Sequential(*[ResidualBlock(w * 4) for _ in range(blocks)])
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w * 4, w * 2, 3, 1, 1, padding_mode="reflect"),
            _norm(w * 2), nn.ReLU(True),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w * 2, w, 3, 1, 1, padding_mode="reflect"),
            _norm(w), nn.ReLU(True))
        self.head = nn.Conv2d(w + channels, channels, 7, 1, 3, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down(x) + self.colour(F.avg_pool2d(x, 4))
        h = self.up(self.blocks(h))
        return torch.tanh(self.head(torch.cat([h, x], dim=1)))


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al., 2017): one logit per overlapping patch (70x70 with 3 layers), so
    it judges texture and local style rather than the whole composition."""

    def __init__(self, width: int = 64, layers: int = 3, channels: int = 3):
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = width
        for i in range(1, layers + 1):
            c_next = width * min(2 ** i, 8)
            stride = 2 if i < layers else 1
            seq += [nn.Conv2d(c, c_next, 4, stride, 1), nn.InstanceNorm2d(c_next, affine=True),
                    nn.LeakyReLU(0.2, True)]
            c = c_next
        seq += [nn.Conv2d(c, 1, 4, 1, 1)]
        self.net = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiScaleDiscriminator(nn.Module):
    """PatchGANs on the image at full, 1/2, 1/4 ... resolution (pix2pixHD, Wang et al., 2018):
    the full-resolution one judges brushwork, the coarser ones the palette and the composition of
    larger regions. Returns one logit map per scale."""

    def __init__(self, width: int = 64, layers: int = 3, scales: int = 1, channels: int = 3):
        super().__init__()
        self.scales = nn.ModuleList([PatchDiscriminator(width, layers, channels) for _ in range(scales)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out


class ImagePool:
    """A history of generated images (Shrivastava et al., 2017): the discriminator sees a mix of
    current and older fakes, which damps oscillation. ``size=0`` passes images through."""

    def __init__(self, size: int = 50):
        self.size, self.images = size, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.random() < 0.5:
                k = random.randrange(self.size)
                out.append(self.images[k])
                self.images[k] = image
            else:
                out.append(image)
        return torch.stack(out)


def colour_distance(a: torch.Tensor, b: torch.Tensor, projections: int = 32) -> torch.Tensor:
    """Sliced Wasserstein-1 distance between the pixel colours of two same-sized batches in
    [-1, 1], measured in [0, 1] like ``artgan evaluate style``'s colour distance, along fresh random
    directions: the palette as a whole, which a patch discriminator judges only locally."""
    pa = a.permute(0, 2, 3, 1).reshape(-1, 3)
    pb = b.permute(0, 2, 3, 1).reshape(-1, 3)
    directions = F.normalize(torch.randn(3, projections, device=a.device, dtype=a.dtype), dim=0)
    qa = torch.sort(pa @ directions, dim=0).values
    qb = torch.sort(pb @ directions, dim=0).values
    return (qa - qb).abs().mean() / 2


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d):  # CycleGAN's initialisation: N(0, 0.02)
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


@dataclass
class CycleGANConfig(RecipeConfig):
    """cyclegan's knobs; :class:`RecipeConfig`'s with the paper's Adam betas and a linear
    learning-rate decay to 0 from ``decay_from`` to ``decay_to`` (0: constant)."""

    g_width: int = 16
    g_blocks: int = 8
    d_width: int = 64
    d_layers: int = 3
    d_scales: int = 1
    adv_weight: float = 1.0
    cycle_weight: float = 10.0
    identity_weight: float = 5.0
    edge_weight: float = 0.0
    colour_weight: float = 0.0
    pool_size: int = 50
    skip_grad_norm: float = 1e4

    def check(self, who: str) -> None:
        for name in ("g_width", "g_blocks", "d_width", "d_layers", "d_scales"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ArtganError(f"{who}: {name} must be a positive integer, got {v!r}")
        super().check(who)


class CycleGANRecipe(StyleRecipe):
    """Photo <-> art CycleGAN on ``unpaired-folders`` batches (``photo``, ``art``); knobs:
    :class:`CycleGANConfig`.

    Loss weights: ``adv_weight`` on each generator's adversarial loss, ``cycle_weight`` on each
    L1 round trip, ``identity_weight`` on L1(G(art), art) + L1(F(photo), photo), ``edge_weight``
    on 1 - SSIM between the edge maps of the photo and G(photo) (:func:`edge_map`; 0 = off), which
    lets the picture's structure through while its texture changes, and ``colour_weight`` on the
    :func:`colour_distance` between G(photo) and the art crops of the batch (0 = off). A higher
    adversarial and a lower identity weight than the paper's (1, 10, 5) let G change texture more,
    not only colour. The learning rate decays linearly to 0 from step ``decay_from`` to ``decay_to``
    (0: constant), as in the paper. An update whose gradient norm is not finite or above
    ``skip_grad_norm`` is skipped (counted in the ``G/skipped_updates`` metric). The default loss
    is least squares with G's term as the paper's code has it, (D(G(x)) - 1)^2 (an MSE).
    """

    config_class = CycleGANConfig
    architecture = "cyclegan"
    size_multiple = StyleGenerator.size_multiple
    default_loss = "least-squares"
    default_loss_params = {"generator_scale": 1.0}

    def __init__(self, *, info: DatasetInfo, loss: AdversarialLoss | None = None, **params):
        super().__init__()
        if info.channels != 3:
            raise ArtganError(f"cyclegan: needs RGB data (channels 3), got {info.channels}")
        if info.image_size % StyleGenerator.size_multiple:
            raise ArtganError(f"cyclegan: image_size must be a multiple of 4, got {info.image_size}")
        cfg = self.cfg = CycleGANConfig.from_params("cyclegan", params)
        self.info, self.loss = info, self.adversarial_loss(loss)
        self.adv_weight, self.cycle_weight, self.identity_weight = cfg.adv_weight, cfg.cycle_weight, cfg.identity_weight
        self.edge_weight, self.colour_weight = cfg.edge_weight, cfg.colour_weight
        self.G = StyleGenerator(cfg.g_width, cfg.g_blocks)          # photo -> art (exported)
        self.F = StyleGenerator(cfg.g_width, cfg.g_blocks)          # art -> photo (training only)
        self.D_art = MultiScaleDiscriminator(cfg.d_width, cfg.d_layers, cfg.d_scales)
        self.D_photo = MultiScaleDiscriminator(cfg.d_width, cfg.d_layers, cfg.d_scales)
        for m in (self.G, self.F, self.D_art, self.D_photo):
            m.apply(_init_weights)
        self.modules = {"photo_to_art": self.G, "art_to_photo": self.F,
                        "d_art": self.D_art, "d_photo": self.D_photo}
        self.keep_ema(self.G, cfg.ema)
        lr, betas = cfg.lr, cfg.betas
        self.optimizers = {
            "generators": torch.optim.Adam(itertools.chain(self.G.parameters(), self.F.parameters()), lr, betas=betas),
            "discriminators": torch.optim.Adam(itertools.chain(self.D_art.parameters(), self.D_photo.parameters()),
                                               lr, betas=betas),
        }
        self.set_lr_schedule(cfg.schedule())
        self.skip_grad_norm, self.skipped = cfg.skip_grad_norm, 0  # becomes a tensor (a count) on the device
        for opt in self.optimizers.values():
            opt.register_step_pre_hook(self._skip_bad_update)
        self.pool_art, self.pool_photo = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)
        self._fakes: dict[str, torch.Tensor] = {}

    def to(self, device):
        if torch.device(device).type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick the fastest kernels
        return super().to(device)

    def _skip_bad_update(self, optimizer, args, kwargs) -> None:
        """Before each optimiser step: drop the gradients when their norm is not finite or above
        ``skip_grad_norm``. Instance normalisation of a near-flat image can blow gradients up by
        orders of magnitude; one such step would poison Adam's moments for thousands of steps.
        Done with ``torch.where`` on the device, so the GPU never waits for the check."""
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            return
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        ok = torch.isfinite(norm) & (norm <= self.skip_grad_norm)
        for g in grads:
            g.copy_(torch.where(ok, g, torch.zeros_like(g)))
        self.skipped = self.skipped + (~ok).float()

    # -- one training step: generators, then discriminators on the same fakes --------------------
    def generator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        photo, art = batch["image"], batch["art"]  # "image": the photo (the dataset contract)
        self.keep_sample_inputs({"image": photo})
        for d in (self.D_art, self.D_photo):
            d.requires_grad_(False)  # G's step needs no discriminator gradients
        fake_art, fake_photo = self.G(photo), self.F(art)
        adv = self._g_adv(self.D_art(fake_art)) + self._g_adv(self.D_photo(fake_photo))
        cycle = F.l1_loss(self.F(fake_art), photo) + F.l1_loss(self.G(fake_photo), art)
        total = self.adv_weight * adv + self.cycle_weight * cycle
        out = {"adv": adv.detach(), "cycle": cycle.detach(),
               "skipped_updates": torch.as_tensor(self.skipped, dtype=torch.float32)}
        if self.identity_weight > 0:
            identity = F.l1_loss(self.G(art), art) + F.l1_loss(self.F(photo), photo)
            total = total + self.identity_weight * identity
            out["identity"] = identity.detach()
        if self.edge_weight > 0:
            edges = ssim_loss(edge_map(fake_art), edge_map(photo))
            total = total + self.edge_weight * edges
            out["edges"] = edges.detach()
        if self.colour_weight > 0:
            colour = colour_distance(fake_art, art)
            total = total + self.colour_weight * colour
            out["colour"] = colour.detach()
        self._fakes = {"art": fake_art.detach(), "photo": fake_photo.detach()}
        return {"loss": total, **out}

    def discriminator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for d in (self.D_art, self.D_photo):
            d.requires_grad_(True)
        fake_art = self.pool_art.query(self._fakes["art"])
        fake_photo = self.pool_photo.query(self._fakes["photo"])
        real_art_logits = self.D_art(batch["art"])
        d_art = self._d_adv(real_art_logits, self.D_art(fake_art))
        d_photo = self._d_adv(self.D_photo(batch["image"]), self.D_photo(fake_photo))
        return {"loss": d_art + d_photo, "d_art": d_art.detach(), "d_photo": d_photo.detach(),
                "real_art_score": real_art_logits[0].detach().mean()}

    # the adversarial losses, summed over the discriminator's scales
    def _g_adv(self, fake_logits: list[torch.Tensor]) -> torch.Tensor:
        return sum(self.loss.generator(f) for f in fake_logits)

    def _d_adv(self, real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
        return sum(self.loss.discriminator(r, f) for r, f in zip(real_logits, fake_logits))

    def phases(self) -> list[Phase]:
        return [Phase("G", self.optimizers["generators"], self.generator_step),
                Phase("D", self.optimizers["discriminators"], self.discriminator_step)]

    # after_iteration (the learning-rate schedule, the EMA of G when kept): the base's

    def sample_panels(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Photo | G(photo) | F(G(photo)): the round trip shows what the cycle keeps."""
        photos = inputs["image"]
        art = self.sampling_generator(photos)
        return [photos, art, self.F(art)]

    def own_metadata(self) -> dict:  # the photo -> art generator only is exported
        return {**super().own_metadata(), "g_width": self.G.down[0].out_channels, "g_blocks": len(self.G.blocks)}


def _contract_dataset(folder):
    """For artgan.testing's architecture check: unpaired photo/art batches."""
    from .data import UnpairedFoldersDataset, _contract_params

    return UnpairedFoldersDataset(**_contract_params(folder))


# a small network: the architecture check trains, checkpoints and exports it in a test
CycleGANRecipe.contract_params = {"g_width": 4, "g_blocks": 1, "d_width": 8}
CycleGANRecipe.contract_dataset = _contract_dataset
