"""Exact graph rewrites applied before tracing: each replaces a layer pattern with an equivalent
form that onnxruntime runs faster; the export is verified against the module as trained."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F


class SubPixelUpConv(nn.Module):
    """``Upsample(x2, nearest) -> Conv2d(3x3, padding 1) [-> BatchNorm2d] [-> ReLU or another
    element-wise activation]`` computed exactly, at the
    low resolution: one 3x3 convolution with four outputs per channel (one per output phase: even
    or odd row, even or odd column), then a pixel shuffle. Same multiply-adds, but no upsampled
    tensor in memory, no Resize op (slow in int8 on onnxruntime's CPU) and wider convolutions,
    which onnxruntime runs faster (figures: benchmarks/README.md).

    Why it is exact: output row 2i reads upsampled rows 2i-1, 2i, 2i+1, which are low-resolution
    rows i-1, i, i; output row 2i+1 reads rows i, i, i+1. So each phase's 3x3 kernel over the low
    resolution image is the original kernel with its taps summed accordingly (``PHASES``).
    """

    #: PHASES[phase][low-resolution tap][original tap]: which original taps land on which tap
    PHASES = torch.tensor([[[1., 0., 0.], [0., 1., 1.], [0., 0., 0.]],
                           [[0., 0., 0.], [1., 1., 0.], [0., 0., 1.]]])

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None, act: nn.Module | None = None):
        super().__init__()
        w = conv.weight.detach()
        cout, cin = w.shape[:2]
        b = conv.bias.detach() if conv.bias is not None else torch.zeros(cout, dtype=w.dtype)
        if bn is not None:
            w, b = _fold_batchnorm(w, b, bn, out_axis=0)
        p = self.PHASES.to(w.dtype)
        phased = torch.einsum("ayk,bxl,oikl->oabiyx", p, p, w)  # (cout, row phase, col phase, cin, 3, 3)
        self.conv = nn.Conv2d(cin, 4 * cout, 3, 1, 1)
        self.conv.weight.data = phased.reshape(4 * cout, cin, 3, 3).contiguous()
        self.conv.bias.data = b.repeat_interleave(4)
        # an element-wise activation commutes with the shuffle: applied before it, onnxruntime fuses
        # it into the convolution instead of running it as one more pass over the large output
        self.act = act if act is not None else nn.Identity()
        self.shuffle = nn.PixelShuffle(2)  # channel 4c + 2a + b -> pixel (2i + a, 2j + b) of channel c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.act(self.conv(x)))


#: the largest sub-pixel kernel worth it (4x the 3x3 kernel's weights). Above it, onnxruntime's CPU
#: runs upsample + convolution faster: large kernels no longer fit the cache (figures for the 64 px
#: DCGAN and the quickstart, and the machine: benchmarks/README.md)
SUB_PIXEL_MAX_WEIGHT_BYTES = 2 * 2 ** 20


def fuse_upsample_conv(module: nn.Module) -> tuple[nn.Module, int]:
    """Replace, inside every ``nn.Sequential`` of ``module`` (in eval mode; changed in place),
    each nearest x2 upsample followed by a plain 3x3 convolution (then an optional BatchNorm and an
    optional element-wise activation) with a :class:`SubPixelUpConv`, where its kernel stays within
    :data:`SUB_PIXEL_MAX_WEIGHT_BYTES`. Returns the module and how many were replaced."""
    def is_up(m):
        return (isinstance(m, nn.Upsample) and m.mode == "nearest" and m.size is None
                and m.scale_factor in (2, 2.0, (2, 2), (2.0, 2.0)))

    def is_conv(m):
        return (type(m) is nn.Conv2d and m.kernel_size == (3, 3) and m.stride == (1, 1)
                and m.padding == (1, 1) and m.dilation == (1, 1) and m.groups == 1 and m.padding_mode == "zeros"
                and 4 * m.weight.numel() * m.weight.element_size() <= SUB_PIXEL_MAX_WEIGHT_BYTES)

    def is_bn(m):
        return type(m) is nn.BatchNorm2d and m.track_running_stats and m.running_mean is not None

    def is_pointwise(m):  # element-wise, so it commutes with the pixel shuffle
        return type(m) in (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.ELU, nn.GELU, nn.Hardtanh)

    def rewrite(layers):
        if len(layers) < 2 or not (is_up(layers[0]) and is_conv(layers[1])):
            return None
        j = 2
        bn = layers[j] if len(layers) > j and is_bn(layers[j]) else None
        j += bn is not None
        act = layers[j] if len(layers) > j and is_pointwise(layers[j]) else None
        j += act is not None
        return SubPixelUpConv(layers[1], bn, act), j

    return _rewrite_sequentials(module, rewrite)


class SubPixelPairToOneChannel(nn.Module):
    """Two consecutive :class:`SubPixelUpConv` layers, the second with a single output channel (a
    greyscale generator's last layer), computed without the first one's pixel shuffle: the second
    convolution applied to a pixel-shuffled tensor is itself a 3x3 convolution of the unshuffled
    tensor, with four times the outputs, and one 4x4 pixel shuffle then places all 16 phases.

    Why: onnxruntime's CPU computes convolutions in blocks of 16 (AVX-512) or 8 output channels, so
    the second layer's four outputs already cost 16; this form has 16 real ones for the same
    multiply-adds, and drops a pixel shuffle of the largest hidden tensor (figures:
    benchmarks/README.md)."""

    def __init__(self, first: SubPixelUpConv, second: SubPixelUpConv):
        super().__init__()
        self.first = nn.Sequential(first.conv, first.act)
        conv = second.conv
        n = 4 * conv.in_channels
        # read the equivalent kernel off the response to unit impulses (exact: it is linear and
        # shift-equivariant on the coarse grid, and reaches one coarse pixel each way)
        impulses = torch.zeros(n, n, 5, 5)
        impulses[torch.arange(n), torch.arange(n), 2, 2] = 1
        with torch.no_grad():
            response = F.conv2d(F.pixel_shuffle(impulses, 2), conv.weight, padding=1)
            response = F.pixel_unshuffle(response, 2)  # (n, 4 * out, 5, 5): the coarse grid
        weight = response[:, :, 1:4, 1:4].flip(2, 3).transpose(0, 1)
        bias = conv.bias.detach().repeat_interleave(4)
        # shuffle(2) then the second layer's shuffle(2) is one shuffle(4) of permuted channels
        k = weight.shape[0]
        source = second.shuffle(F.pixel_shuffle(torch.arange(k, dtype=weight.dtype).reshape(1, k, 1, 1), 2))
        order = F.pixel_unshuffle(source, 4).flatten().long()
        self.conv = nn.Conv2d(n, k, 3, 1, 1)
        self.conv.weight.data = weight[order].contiguous()
        self.conv.bias.data = bias[order].contiguous()
        self.act = second.act
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.act(self.conv(self.first(x))))


def one_channel_outputs_in_phases(module: nn.Module) -> tuple[nn.Module, int]:
    """Replace, inside every ``nn.Sequential`` of ``module`` (changed in place), each pair of
    :class:`SubPixelUpConv` layers whose second has one output channel with a
    :class:`SubPixelPairToOneChannel`. Returns the module and how many were replaced."""
    def rewrite(layers):
        if (len(layers) >= 2 and type(layers[0]) is SubPixelUpConv and type(layers[1]) is SubPixelUpConv
                and layers[1].conv.out_channels == 4):
            return SubPixelPairToOneChannel(layers[0], layers[1]), 2
        return None

    return _rewrite_sequentials(module, rewrite)


def _rewrite_sequentials(module: nn.Module, rewrite) -> tuple[nn.Module, int]:
    """In every ``nn.Sequential`` of ``module`` (changed in place), let ``rewrite(layers)`` (the
    layers from each position on) return ``(new layer, how many it replaces)`` or None; the new
    layer keeps the first replaced layer's name. Returns the module in eval mode and the count."""
    count = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        items, out, i = list(seq._modules.items()), [], 0
        while i < len(items):
            found = rewrite([m for _, m in items[i:]])
            if found is not None:
                out.append((items[i][0], found[0]))
                i += found[1]
                count += 1
            else:
                out.append(items[i])
                i += 1
        if len(out) != len(items):
            seq._modules.clear()
            seq._modules.update(out)
    return module.eval(), count


class LatentProjection(nn.Module):
    """``ConvTranspose2d`` applied to a 1x1 input (a DCGAN's first layer, projecting the latent to
    a k x k map) [-> BatchNorm2d], computed exactly as one matrix product and a reshape: onnxruntime
    runs a transposed convolution image by image, a Gemm as one product over the whole batch
    (figures: benchmarks/README.md)."""

    def __init__(self, deconv: nn.ConvTranspose2d, bn: nn.BatchNorm2d | None = None):
        super().__init__()
        w = deconv.weight.detach()  # (cin, cout, kh, kw): input pixel (0, 0) lands on output (y, x)
        cin, cout, kh, kw = w.shape
        b = deconv.bias.detach() if deconv.bias is not None else torch.zeros(cout, dtype=w.dtype)
        if bn is not None:
            w, b = _fold_batchnorm(w, b, bn, out_axis=1)
        self.shape = (cout, kh, kw)
        self.linear = nn.Linear(cin, cout * kh * kw)
        self.linear.weight.data = w.reshape(cin, -1).t().contiguous()
        self.linear.bias.data = b.repeat_interleave(kh * kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)).reshape(-1, *self.shape)


def _fold_batchnorm(w: torch.Tensor, b: torch.Tensor, bn: nn.BatchNorm2d, out_axis: int):
    """Eval-mode BatchNorm is a per-channel affine map: fold it into the weights and bias."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    scale = scale * bn.weight.detach() if bn.weight is not None else scale
    shift = bn.bias.detach() if bn.bias is not None else torch.zeros_like(scale)
    shape = [1] * w.dim()
    shape[out_axis] = -1
    return w * scale.reshape(shape), (b - bn.running_mean) * scale + shift


def latent_projections_as_gemm(module: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[nn.Module, int]:
    """Replace each transposed convolution (no padding, no dilation, one group; with an optional
    BatchNorm after it, inside an ``nn.Sequential``) whose input is 1x1 on ``inputs`` and does not
    depend on the inputs' height and width (a generator's latent) with a :class:`LatentProjection`.
    Returns the module and how many were replaced."""
    if any(x.dim() == 4 for x in inputs.values()):
        return module, 0  # image inputs: a layer's 1x1 input here could be larger on other images
    seen: dict[nn.Module, tuple[int, ...]] = {}

    def is_candidate(m):
        return (type(m) is nn.ConvTranspose2d and m.groups == 1 and m.padding == (0, 0)
                and m.output_padding == (0, 0) and m.dilation == (1, 1) and m.padding_mode == "zeros")

    handles = [m.register_forward_hook(lambda m, args, out: seen.__setitem__(m, tuple(args[0].shape[2:])))
               for m in module.modules() if is_candidate(m)]
    with torch.no_grad():
        module(*inputs.values())
    for h in handles:
        h.remove()
    def rewrite(layers):
        if not (is_candidate(layers[0]) and seen.get(layers[0]) == (1, 1)):
            return None
        nxt = layers[1] if len(layers) > 1 else None
        bn = nxt if type(nxt) is nn.BatchNorm2d and nxt.track_running_stats else None
        return LatentProjection(layers[0], bn), 2 if bn is not None else 1

    return _rewrite_sequentials(module, rewrite)


def optimized(module: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[nn.Module, list[str]]:
    """A copy of ``module`` with every exact rewrite applied, and a line per kind applied (for the
    metadata). The original is what the export is verified against."""
    done: list[str] = []
    out, fused = fuse_upsample_conv(copy.deepcopy(module))
    out, paired = one_channel_outputs_in_phases(out)
    out, projections = latent_projections_as_gemm(out, inputs)
    if fused:
        done.append(f"{fused} nearest-upsample + 3x3 convolution pair(s) as sub-pixel convolutions")
    if paired:
        done.append(f"{paired} one-channel output layer(s) computed before the previous pixel shuffle")
    if projections:
        done.append(f"{projections} transposed convolution(s) of a 1x1 latent as matrix products")
    return out, done
