"""``artgan export --target web``: a model onnxruntime-web runs on both its backends (WASM and
WebGPU): no transposed convolution left after the exact rewrites (the WebGPU backend fails on
them, see :mod:`artgan.web.ops`), an opset onnxruntime-web knows, and every op in its tables.
fp16 stays opt-in (``--precision fp16``), under the same quality check as any fp16 export."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ArtganError
from ..web.ops import MAX_OPSET, ORT_WEB_VERSION, check_model

TARGETS = ("onnxruntime", "web")


def check_opset(opset: int) -> None:
    if opset > MAX_OPSET:
        raise ArtganError(f"--target web: opset {opset} is newer than onnxruntime-web {ORT_WEB_VERSION} runs "
                          f"(up to {MAX_OPSET}); drop --opset or give one up to {MAX_OPSET}")


class SubPixelTransposedConv(nn.Module):
    """``ConvTranspose2d`` (equal strides, no dilation, one group) computed exactly as a
    zero-padded convolution into stride**2 phases, a pixel shuffle and a crop: the ops every
    onnxruntime-web backend runs (Pad, Conv, DepthToSpace, Slice), the same multiply-adds.

    Per axis, output pixel ``o`` of the transposed convolution gathers ``x[q - j] * w[r + s*j]``
    with ``o + padding = s*q + r``: phase ``r`` is a convolution of ``x`` (left-padded by J-1,
    J = ceil(k/s)) with the taps ``w[r + s*(J-1-m)]``.
    """

    def __init__(self, deconv: nn.ConvTranspose2d):
        super().__init__()
        w = deconv.weight.detach()  # (cin, cout, kh, kw)
        cin, cout, kh, kw = w.shape
        s = deconv.stride[0]
        self.s, self.pad = s, deconv.padding
        self.extra = deconv.output_padding
        self.k = (kh, kw)
        self.taps = (-(-kh // s), -(-kw // s))
        jy, jx = self.taps
        weight = torch.zeros(cout, s, s, cin, jy, jx, dtype=w.dtype)
        for ry in range(s):
            for rx in range(s):
                for my in range(jy):
                    for mx in range(jx):
                        ty, tx = ry + s * (jy - 1 - my), rx + s * (jx - 1 - mx)
                        if ty < kh and tx < kw:
                            weight[:, ry, rx, :, my, mx] = w[:, :, ty, tx].t()
        self.conv = nn.Conv2d(cin, cout * s * s, (jy, jx))
        self.conv.weight.data = weight.reshape(cout * s * s, cin, jy, jx)
        bias = deconv.bias.detach() if deconv.bias is not None else torch.zeros(cout, dtype=w.dtype)
        self.conv.bias.data = bias.repeat_interleave(s * s)
        self.shuffle = nn.PixelShuffle(s)

        # pads and crops depend on the layer alone, not on the input's size: the traced graph has
        # no shape arithmetic (right pad R = ceil((k - p + output_padding) / s) - 1, and the crop
        # drops p pixels before and s*(R+1) - k + p - output_padding after)
        self.right = tuple(-(-(k - p + e) // s) - 1 for k, p, e in zip(self.k, self.pad, self.extra))
        self.tail = tuple(s * (r + 1) - k + p - e for r, k, p, e in zip(self.right, self.k, self.pad, self.extra))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (jy, jx), (ry, rx), (py, px), (ty, tx) = self.taps, self.right, self.pad, self.tail
        y = self.shuffle(self.conv(F.pad(x, (jx - 1, rx, jy - 1, ry))))
        return y[..., py:y.shape[-2] - ty, px:y.shape[-1] - tx]


def transposed_convs_as_subpixel(module: nn.Module) -> tuple[nn.Module, int]:
    """Replace each ``ConvTranspose2d`` the sub-pixel form computes exactly (equal strides,
    dilation 1, one group, zero padding mode); return the module and how many were replaced."""
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if (type(child) is nn.ConvTranspose2d and child.stride[0] == child.stride[1] and child.groups == 1
                    and child.dilation == (1, 1) and child.padding_mode == "zeros"):
                setattr(parent, name, SubPixelTransposedConv(child))
                count += 1
    return module, count


def check_module(module: nn.Module) -> None:
    """Refuse, naming the layer, a transposed convolution the rewrites did not turn into an
    equivalent form (unequal strides, dilation, groups, 1-D or 3-D)."""
    for name, layer in module.named_modules():
        if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            raise ArtganError(f"--target web: layer {name!r} ({type(layer).__name__}) exports as ConvTranspose, "
                              f"which onnxruntime-web's WebGPU backend fails on, and has no exact rewrite "
                              f"(unequal strides, dilation or groups); use nearest upsampling + convolution "
                              f"(dcgan: `upsample: nearest`)")


def check_graph(model: Any) -> dict[str, Any]:
    """The exported graph through the same op check `artgan web` runs."""
    return check_model(model, "the exported model")
