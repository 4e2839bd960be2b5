"""Super-resolution networks (torch): a small residual generator and a patch discriminator.

The generator is EDSR-shaped (Lim et al., 2017) but small enough for CPUs: a 3x3 head, residual
blocks without BatchNorm, pixel-shuffle upsampling (Shi et al., 2016), and a 3x3 tail whose
output is added to a bicubic upscale of the input, so an untrained network already starts at
bicubic quality and only learns the missing detail. Images are NCHW in [-1, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

SCALES = (2, 3, 4)


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip; no BatchNorm (it hurts SR and slows CPUs)."""

    def __init__(self, width: int, res_scale: float = 1.0):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


def upsampler(width: int, scale: int) -> nn.Sequential:
    """x2 stages (x4 = two of them) or one x3 stage: conv to width*r^2 channels + pixel shuffle."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale}")
    stages = [3] if scale == 3 else [2] * int(math.log2(scale))
    layers: list[nn.Module] = []
    for r in stages:
        layers += [nn.Conv2d(width, width * r * r, 3, padding=1), nn.PixelShuffle(r), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class SRGenerator(nn.Module):
    """Low-resolution image (N, C, h, w) -> (N, C, h*scale, w*scale), both in [-1, 1].

    Any h and w work (the network is fully convolutional; nothing needs a multiple).
    """

    def __init__(self, scale: int = 2, width: int = 32, blocks: int = 8, channels: int = 3,
                 res_scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(channels, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width, res_scale) for _ in range(blocks)])
        self.body_tail = nn.Conv2d(width, width, 3, padding=1)
        self.upsample = upsampler(width, scale)
        self.tail = nn.Conv2d(width, channels, 3, padding=1)
        # Start as plain bicubic: the learned residual begins at zero.
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        features = self.head(lr)
        features = features + self.body_tail(self.body(features))  # global skip around the body
        return base + self.tail(self.upsample(features))


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al., 2017): one logit per overlapping patch, here with spectral norm
    (Miyato et al., 2018) instead of BatchNorm. ``layers=3`` sees 70x70-pixel patches.

    ``forward(x, features=True)`` also returns the intermediate activations, for the
    feature-matching term (Wang et al., 2018, pix2pixHD).
    """

    def __init__(self, channels: int = 3, width: int = 64, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = [nn.Sequential(spectral_norm(nn.Conv2d(channels, width, 4, 2, 1)),
                                                 nn.LeakyReLU(0.2, inplace=True))]
        c = width
        for i in range(1, layers + 1):
            c_out = min(width * 2**i, width * 8)
            stride = 2 if i < layers else 1
            blocks.append(nn.Sequential(spectral_norm(nn.Conv2d(c, c_out, 4, stride, 1)),
                                        nn.LeakyReLU(0.2, inplace=True)))
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.out = spectral_norm(nn.Conv2d(c, 1, 4, 1, 1))

    def forward(self, x: torch.Tensor, features: bool = False):
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        logits = self.out(x)
        return (logits, feats) if features else logits


def generator_from_onnx(path) -> SRGenerator:
    """Rebuild the PyTorch generator of an exported upscaler from the ``.onnx`` alone (its
    ``artgan.generator`` metadata and weights), e.g. to compare onnxruntime with PyTorch eager."""
    import json

    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    meta = {p.key: json.loads(p.value) for p in model.metadata_props if p.key.startswith("artgan.")}
    config = meta.get("artgan.generator")
    if not config:
        raise ValueError(f"{path}: no artgan.generator metadata; not a superres-gan export")
    g = SRGenerator(**config)
    state = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    g.load_state_dict({k: state[k] for k in g.state_dict()})
    return g.eval()
