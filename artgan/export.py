"""torch -> ONNX, through one small wrapper, verified against PyTorch.

Reads top to bottom: copy the module, put it in eval mode and check the export-mode contract
(deterministic, batch-independent: noise is an input, never an in-graph random op), trace it with
a dynamic batch axis (and dynamic height/width for image-to-image models), check the graph, turn
it into fp16 or int8 when asked, verify it with onnxruntime on fresh random inputs, stamp the
``artgan.*`` metadata and write a model card beside the file.

We use the TorchScript exporter (``dynamo=False``): about 0.3 s against about 3 s for the
torch.export-based one, which also needs onnxscript. It is deprecated but exports every
generator we ship faithfully, and the verification below would catch it if it did not.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import re
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import __version__
from .errors import ArtganError
from .files import atomic_path, write_json, write_text
from .recipe import ExportSpec

#: The newest opset the TorchScript exporter writes; onnxruntime >= 1.17 runs it.
DEFAULT_OPSET = 20
METADATA_PREFIX = "artgan."
PRECISIONS = ("fp32", "fp16")
QUANTIZATIONS = ("int8",)

#: Default (largest |onnxruntime - PyTorch|, smallest PSNR in dB) for each kind of export. int8 is
#: judged by PSNR alone: a few pixels may move by more than any sensible absolute bound.
TOLERANCES: dict[str, tuple[float | None, float | None]] = {
    "fp32": (1e-3, None), "fp16": (5e-2, 40.0), "int8": (None, 30.0)}

#: ONNX ops that draw random numbers. A generator takes its noise as an input instead, so the
#: same input always gives the same image, on every runtime.
RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
              "Bernoulli"}

#: Metadata every export of a task must carry (exports/README.md documents each key).
REQUIRED_METADATA = {"generate": ("latent_dim", "image_size", "channels", "value_range"),
                     "image-to-image": ("scale", "size_multiple", "channels", "value_range")}


def export_onnx(spec: ExportSpec, path: str | Path, *, opset: int = DEFAULT_OPSET, precision: str = "fp32",
                quantize: str | None = None, verify: bool = True, tolerance: float | None = None,
                min_psnr: float | None = None, extra_metadata: dict[str, Any] | None = None,
                seed: int = 0, calibration_samples: int = 256, optimize: bool = True) -> dict[str, Any]:
    """Export ``spec.module`` to ``path``; return the model card (also written beside it).

    ``precision`` "fp16" computes in half precision with float32 inputs and outputs (for GPUs);
    ``quantize`` "int8" quantises statically, calibrated on ``calibration_samples`` inputs drawn as
    the model sees them (for CPUs). With ``verify`` the file is compared with PyTorch on fresh
    random inputs and nothing is written when the largest absolute difference is above
    ``tolerance`` or the PSNR below ``min_psnr`` (defaults: :data:`TOLERANCES`). With
    ``optimize``, layer patterns with an exactly equivalent faster form are rewritten before
    tracing (:func:`fuse_upsample_conv`, :func:`one_channel_outputs_in_phases`,
    :func:`latent_projections_as_gemm`); verification still
    compares with the original module.
    Raises :class:`ArtganError` naming the problem (and the layer, where one is to blame).
    """
    import onnx

    if precision not in PRECISIONS:
        raise ArtganError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if quantize not in (None, *QUANTIZATIONS):
        raise ArtganError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    if quantize and precision != "fp32":
        raise ArtganError("--quantize int8 starts from an fp32 model; drop --precision fp16")
    kind = quantize or precision
    default_tol, default_psnr = TOLERANCES[kind]
    tolerance = default_tol if tolerance is None else tolerance
    min_psnr = default_psnr if min_psnr is None else min_psnr

    path = Path(path)
    module = copy.deepcopy(spec.module).cpu().eval().requires_grad_(False)
    inputs = {k: v.detach().cpu() for k, v in spec.inputs.items()}
    metadata = {**spec.metadata, **(extra_metadata or {})}
    task = metadata.get("task")
    _check_metadata(metadata)
    _record_class_names(metadata)
    with torch.no_grad():
        try:
            module(*inputs.values())  # lazy layers and shape errors surface here, in torch terms
        except Exception as exc:
            raise ArtganError(f"the module to export fails on its example inputs: {_first_line(exc)}") from None
    check_export_mode(module, inputs)
    dynamic_axes = _dynamic_axes(spec, task)
    # what is traced may be rewritten into an equivalent, faster form; what it is verified against
    # below is always the module as trained
    rewrites: list[str] = []
    to_export = module
    if optimize:
        to_export, fused = fuse_upsample_conv(copy.deepcopy(module))
        to_export, paired = one_channel_outputs_in_phases(to_export)
        to_export, projections = latent_projections_as_gemm(to_export, inputs)
        if fused:
            rewrites.append(f"{fused} nearest-upsample + 3x3 convolution pair(s) as sub-pixel convolutions")
        if paired:
            rewrites.append(f"{paired} one-channel output layer(s) computed before the previous pixel shuffle")
        if projections:
            rewrites.append(f"{projections} transposed convolution(s) of a 1x1 latent as matrix products")
    to_export = HalfPrecision(to_export) if precision == "fp16" else to_export

    with atomic_path(path) as tmp:
        _trace(to_export, inputs, spec.outputs, dynamic_axes, opset, tmp)
        model = onnx.load(str(tmp))
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise ArtganError(f"exported model fails onnx.checker: {_first_line(exc)}") from None
        check_graph(model)
        calibration, int8_layers = "", None
        if quantize == "int8":
            calibration = quantize_int8(tmp, _calibration_batches(spec, metadata, calibration_samples, seed))
            before, model = model, onnx.load(str(tmp))
            int8_layers = _int8_layers(before, model)
            calibration += f"; {int8_layers[0]} of {int8_layers[1]} weighted layers in int8"

        # fp16 by policy: NaN, Inf or a blank image refuse the export, --no-verify or not
        fp16 = fp16_check(module, inputs, metadata, seed=seed, onnx_path=tmp if precision == "fp16" else None)
        if precision == "fp16" and not fp16["safe"]:
            raise ArtganError(f"fp16 export refused: {fp16['problem']}; nothing written to {path}. "
                              f"Export in fp32 (the default) for this model")
        report: dict[str, Any] = {"verified": False}
        if verify:
            report = verify_export(module, tmp, inputs, seed=seed, metadata=metadata)
            report.update(precision=kind, tolerance=tolerance, min_psnr=min_psnr)
            _enforce(report, tolerance, min_psnr, path, kind)
        metadata.update({
            "precision": kind, "fp16_safe": fp16["safe"], "opset": opset, "version": __version__,
            "inputs": list(inputs), "outputs": list(spec.outputs),
            "input_dtypes": {k: _dtype_name(v) for k, v in inputs.items()},
        })
        metadata["fp16_check"] = {k: fp16[k] for k in ("checked_on", "psnr_db", "problem") if fp16.get(k)}
        if rewrites:
            metadata["rewrites"] = "; ".join(rewrites)
        if calibration:
            metadata["calibration"] = calibration
        if report.get("verified"):
            metadata["verification"] = {k: report[k] for k in ("max_abs_diff", "psnr_db", "inputs")}
        metadata = _json_safe(metadata)
        set_metadata(model, metadata)
        onnx.save(model, str(tmp))

    card = _json_safe({"file": path.name, "bytes": path.stat().st_size, "metadata": metadata,
                       "verification": report, "fp16_check": fp16, "int8_layers": int8_layers})
    write_json(path.with_suffix(".card.json"), card)
    write_text(path.with_suffix(".card.md"), model_card_markdown(card))
    return card


# -- the export-mode contract -------------------------------------------------------------------

def check_export_mode(module: nn.Module, inputs: dict[str, torch.Tensor]) -> None:
    """Refuse a module that is not a pure function of its inputs in eval mode, naming the layer.

    Two runs on the same inputs with different random states must agree (noise is an input, not a
    ``torch.randn`` inside ``forward``; dropout is off), and the first sample's output must not
    depend on the others in its batch (BatchNorm uses running statistics, not batch ones).
    """
    for name, m in module.named_modules():
        if m.training:
            raise ArtganError(f"layer {name or type(m).__name__!r} ({type(m).__name__}) stays in training "
                              f"mode after eval(); export needs eval mode throughout")
    # randomness: same inputs, two random states
    culprit = _first_divergent_layer(module, [inputs, inputs], seeds=(1, 2))
    if culprit:
        raise ArtganError(f"layer {culprit} draws random numbers inside forward(), so the same input gives "
                          f"different images; pass the noise in as a model input instead (export-mode contract)")
    # batch independence: sample 0 alone vs sample 0 in a batch of 3
    g = torch.Generator().manual_seed(123)
    batch = {k: _like(v, 3, g) for k, v in inputs.items()}
    alone = {k: v[:1] for k, v in batch.items()}
    culprit = _first_divergent_layer(module, [batch, alone], seeds=(1, 1), first_sample=True)
    if culprit:
        raise ArtganError(f"layer {culprit} mixes samples within a batch (BatchNorm with batch statistics?): "
                          f"one image depends on the others; use running statistics in eval mode "
                          f"(export-mode contract)")


def _first_divergent_layer(module: nn.Module, feeds: list[dict[str, torch.Tensor]], seeds: tuple[int, int],
                           first_sample: bool = False) -> str:
    """Run ``module`` on each of two feeds and return the first layer (in the order layers finish)
    whose inputs agree between the runs but whose outputs do not; '' when the outputs agree."""
    records: list[list[tuple[str, torch.Tensor | None, torch.Tensor | None]]] = [[], []]
    names = {id(m): n for n, m in module.named_modules()}

    def first_tensor(x):
        if isinstance(x, torch.Tensor):
            return x[:1].clone() if first_sample else x  # a copy: a view would keep the batch alive
        if isinstance(x, (tuple, list)):
            for item in x:
                t = first_tensor(item)
                if t is not None:
                    return t
        return None

    for run, (feed, seed) in enumerate(zip(feeds, seeds)):
        def hook(m, args, out, _run=run):
            records[_run].append((names.get(id(m), "?"), first_tensor(args), first_tensor(out)))
        handles = [m.register_forward_hook(hook) for m in module.modules()]
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                module(*feed.values())
        finally:
            for h in handles:
                h.remove()
    for (name, in_a, out_a), (_, in_b, out_b) in zip(*records):
        if _same(in_a, in_b, 1e-5) and not _same(out_a, out_b, 1e-3):
            cls = type(dict(module.named_modules())[name]).__name__ if name != "?" else "?"
            return f"{name or '(the whole module)'!r} ({cls})"
    return ""


def _same(a: torch.Tensor | None, b: torch.Tensor | None, rel: float) -> bool:
    if a is None or b is None or a.shape != b.shape:
        return a is None and b is None
    if not a.is_floating_point():
        return bool(torch.equal(a, b))
    scale = 1.0 + float(torch.maximum(a.abs().max(), b.abs().max()))
    return float((a - b).abs().max()) <= rel * scale


def check_graph(model) -> None:
    """The exported graph holds no random op and no training-mode BatchNorm or Dropout."""
    from onnx import helper

    for node in model.graph.node:
        where = f"layer {_layer_of(node.name)!r} (ONNX node {node.name or node.op_type})"
        if node.op_type in RANDOM_OPS:
            raise ArtganError(f"{where} is a random op ({node.op_type}); pass the noise in as a model "
                              f"input instead (export-mode contract)")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "BatchNormalization" and attrs.get("training_mode", 0):
            raise ArtganError(f"{where} is BatchNorm in training mode; export needs running statistics")
        if node.op_type == "Dropout" and len(node.input) >= 3 and node.input[2]:
            raise ArtganError(f"{where} is Dropout that may be active; export needs eval mode")


def _layer_of(node_name: str) -> str:
    """``/net/net.3/RandomNormalLike`` -> ``net.3``: TorchScript names nodes by module path."""
    parts = [p for p in node_name.split("/") if p]
    return parts[-2] if len(parts) >= 2 else (parts[0] if parts else "?")


# -- tracing ----------------------------------------------------------------------------------------

class HalfPrecision(nn.Module):
    """Runs ``module`` in float16 behind float32 inputs and outputs, so apps feed and read float32
    whatever the precision inside. Integer inputs (labels) pass through."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = copy.deepcopy(module).half()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        inputs = tuple(x.half() if x.is_floating_point() else x for x in inputs)
        out = self.module(*inputs)
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.float()


class SubPixelUpConv(nn.Module):
    """``Upsample(x2, nearest) -> Conv2d(3x3, padding 1) [-> BatchNorm2d] [-> ReLU or another
    element-wise activation]`` computed exactly, at the
    low resolution: one 3x3 convolution with four outputs per channel (one per output phase: even
    or odd row, even or odd column), then a pixel shuffle. Same multiply-adds, but no upsampled
    tensor in memory, no Resize op (slow in int8 on onnxruntime's CPU) and wider convolutions,
    which onnxruntime runs faster (1.5x fp32, 1.3x int8 for the quickstart generator, measured).

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
#: runs upsample + convolution faster: the 64 px DCGAN's 512->256 and 256->128 layers (19 and 4.7 MB
#: as sub-pixel kernels) left alone made it 1.3x faster at batch 1 and 1.2x at batch 64, while the
#: quickstart's 128->64 layer (1.2 MB) is 1.15x faster rewritten (measured on a 1 MB-L2 EPYC)
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
    multiply-adds, and drops a pixel shuffle of the largest hidden tensor. The quickstart generator
    at batch 64: 16% faster (5.06 to 4.27 ms, measured)."""

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
    (the quickstart's first layer at batch 64: 0.7 ms as ConvTranspose, measured)."""

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


def _dynamic_axes(spec: ExportSpec, task: str | None) -> dict[str, dict[int, str]]:
    """The spec's axes, plus a dynamic batch everywhere and dynamic height and width for the
    image inputs and outputs (rank 4) of image-to-image models."""
    axes = {k: dict(v) for k, v in spec.dynamic_axes.items()}
    ranks = {k: v.dim() for k, v in spec.inputs.items()}
    for name in [*spec.inputs, *spec.outputs]:
        a = axes.setdefault(name, {})
        a.setdefault(0, "batch")
        if task == "image-to-image" and ranks.get(name, 4) == 4:
            a.setdefault(2, "height")
            a.setdefault(3, "width")
    return axes


def _trace(module: nn.Module, inputs: dict[str, torch.Tensor], outputs: list[str],
           dynamic_axes: dict[str, dict[int, str]], opset: int, path: Path) -> None:
    with warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs),
                              output_names=outputs, dynamic_axes=dynamic_axes, opset_version=opset,
                              dynamo=False, do_constant_folding=True)
        except OSError as exc:  # the disk, not the model: no advice about ops
            from .errors import describe_os_error
            raise ArtganError(f"ONNX export could not write {path}: {describe_os_error(exc)}") from None
        except Exception as exc:
            msg = _first_line(exc)
            if re.search(r"no space left|disk quota|read-only file system|permission denied|"
                         r"failed writing|unexpected pos", msg, re.IGNORECASE):
                raise ArtganError(f"ONNX export could not write {path} ({msg}); free some space or write "
                                  f"somewhere else (files written before are kept)") from None
            op = re.search(r"operator '([\w:.]+)'", msg)
            layer = _layer_calling(module, inputs, op.group(1)) if op else ""
            advice = (" Replace that op with standard ones, or try another --opset" if op else
                      f" Choose an --opset the exporter supports (default {DEFAULT_OPSET})" if "opset" in msg else "")
            raise ArtganError(f"ONNX export failed{' in layer ' + layer if layer else ''}: {msg}.{advice}") from None


def _layer_calling(module: nn.Module, inputs: dict[str, torch.Tensor], op: str) -> str:
    """Which layer calls ``op`` (e.g. ``aten::fft_fft2``), from the module scopes the exporter
    records while tracing; '' when that cannot be told (a private torch API, so: best effort)."""
    try:
        from torch.onnx._internal.torchscript_exporter import utils as ts_utils
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ts_utils._setup_trace_module_map(module, False)
            graph, _ = torch.jit._get_trace_graph(module, tuple(inputs.values()))
        for node in graph.nodes():
            if node.kind() == op:
                scope = node.scopeName().split("/")[-1]  # "pkg.Class::path.to.layer"
                cls, _, name = scope.partition("::")
                return f"{name or '(the top module)'!r} ({cls.rsplit('.', 1)[-1]})"
    except Exception:
        pass
    return ""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """The TorchScript exporter dumps its whole IR graph to stderr (C++) on a failure; our error
    names the op and the layer instead."""
    import os
    import sys
    import tempfile
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # captured (pytest, CliRunner): nothing to hide
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


# -- int8 -----------------------------------------------------------------------------------------

def quantize_int8(path: Path, batches: tuple[list[dict[str, np.ndarray]], str]) -> str:
    """Quantise ``path`` in place to int8 (QDQ, per-channel weights, static activation ranges from
    ``batches``). ConvTranspose stays in float: onnxruntime's CPU kernels have no int8 version of
    it, and a quantised one only adds (de)quantisation around a float kernel. Returns a line
    describing the calibration for the metadata."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)
    from onnxruntime.quantization.registry import QDQRegistry

    feeds, description = batches

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    prepared = path.with_name(path.name + ".pre.onnx")
    quantized = path.with_name(path.name + ".int8.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice to the root logger
    try:
        try:  # shape inference + fusions (BatchNorm into Conv) make more of the graph quantisable
            quant_pre_process(str(path), str(prepared))
            source = prepared
        except Exception:
            source = path
        quantize_static(str(source), str(quantized), Reader(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=[op for op in QDQRegistry if op != "ConvTranspose"],
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        quantized.replace(path)
    except Exception as exc:
        raise ArtganError(f"int8 quantisation failed: {_first_line(exc)}") from None
    finally:
        root.setLevel(level)
        for p in (prepared, quantized):
            p.unlink(missing_ok=True)
    return description


def _int8_layers(before, after) -> tuple[int, int]:
    """(weights that got a DequantizeLinear, layers with weights): how much of it is int8."""
    weighted = sum(n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") for n in before.graph.node)
    weights = {i.name for i in after.graph.initializer}
    quantised = sum(n.op_type == "DequantizeLinear" and n.input[0] in weights and len(
        next((i.dims for i in after.graph.initializer if i.name == n.input[0]), [])) > 1 for n in after.graph.node)
    return quantised, weighted


def _calibration_batches(spec: ExportSpec, metadata: dict[str, Any], n: int, seed: int,
                         batch: int = 16) -> tuple[list[dict[str, np.ndarray]], str]:
    """Inputs as the model sees them in use: the spec's own ``calibration`` when it has one (e.g.
    real image crops), else draws from each input's documented distribution (latents: standard
    normal, as ``artgan generate`` draws them)."""
    own = getattr(spec, "calibration", None)
    if own is not None:
        data = {k: v.detach().cpu() for k, v in own(n).items()}
        what = f"{n} inputs from the recipe's calibration set"
    else:
        g = torch.Generator().manual_seed(seed + 7)
        data = {k: _like(v, n, g, metadata.get("input_spec", {}).get(k)) for k, v in spec.inputs.items()}
        what = f"{n} random inputs drawn as documented in input_spec (seed {seed + 7})"
    total = len(next(iter(data.values())))
    feeds = [{k: v[i:i + batch].numpy() for k, v in data.items()} for i in range(0, total, batch)]
    return feeds, what


# -- verification -----------------------------------------------------------------------------------

def verify_export(module: nn.Module, onnx_path: str | Path, example: dict[str, torch.Tensor], *,
                  seed: int = 0, batch: int = 3, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run fresh random inputs (shaped like ``example``, batch ``batch``) through both and compare.
    Image-to-image models are also checked at a second height and width (their axes are dynamic)."""
    import onnxruntime as ort

    metadata = metadata or {}
    g = torch.Generator().manual_seed(seed + 1)
    specs = metadata.get("input_spec", {})
    feeds = [{k: _like(v, batch, g, specs.get(k)) for k, v in example.items()}]
    if metadata.get("task") == "image-to-image":
        m = int(metadata.get("size_multiple", 1) or 1)
        feeds.append({k: _like(v, 1, g, specs.get(k), grow=(m, 2 * m)) for k, v in example.items()})
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst, sq_err, count = 0.0, 0.0, 0
    for fresh in feeds:
        with torch.no_grad():
            ref = module(*fresh.values())
        ref = (ref[0] if isinstance(ref, (tuple, list)) else ref).float().numpy()
        out = sess.run(None, {k: v.numpy() for k, v in fresh.items()})[0]
        if out.shape != ref.shape:
            raise ArtganError(f"export verification failed: onnxruntime output shape {out.shape} != "
                              f"PyTorch's {ref.shape} (inputs {[tuple(v.shape) for v in fresh.values()]})")
        if not np.isfinite(out).all():
            raise ArtganError("export verification failed: onnxruntime output holds NaN or Inf")
        err = out.astype(np.float64) - ref
        worst = max(worst, float(np.max(np.abs(err))))
        sq_err, count = sq_err + float(np.sum(err**2)), count + err.size
    lo, hi = metadata.get("value_range", [-1.0, 1.0])
    mse = sq_err / max(count, 1)
    return {"verified": True, "inputs": f"fresh random, seed {seed + 1}, batch {batch}"
            + (", and a second height/width" if len(feeds) > 1 else ""),
            "max_abs_diff": worst, "psnr_db": math.inf if mse == 0 else 10 * math.log10((hi - lo) ** 2 / mse)}


def _enforce(report: dict[str, Any], tolerance: float | None, min_psnr: float | None, path: Path,
             kind: str) -> None:
    problems = []
    if tolerance is not None and not report["max_abs_diff"] <= tolerance:
        problems.append(f"largest |onnxruntime - PyTorch| is {report['max_abs_diff']:.3g} > tolerance {tolerance:g}")
    if min_psnr is not None and not report["psnr_db"] >= min_psnr:
        problems.append(f"PSNR {report['psnr_db']:.1f} dB < {min_psnr:g} dB")
    if problems:
        raise ArtganError(f"export verification failed ({kind}): {'; '.join(problems)} on fresh random inputs; "
                          f"nothing written to {path}. Loosen --tolerance/--min-psnr if that is expected, "
                          f"or --no-verify to keep it anyway")


def fp16_check(module: nn.Module, example: dict[str, torch.Tensor], metadata: dict[str, Any], *,
               seed: int = 0, onnx_path: Path | None = None, batch: int = 4) -> dict[str, Any]:
    """Is half precision safe for this model? Fresh inputs through the model in float16 must give
    no NaN or Inf, no blank output (a signal the float32 model has, lost), and stay close
    (PSNR >= 40 dB) to float32. Runs the fp16 ONNX file when given (on the best onnxruntime
    provider here), else the module itself in half precision on the CPU."""
    g = torch.Generator().manual_seed(seed + 3)
    specs = metadata.get("input_spec", {})
    fresh = {k: _like(v, batch, g, specs.get(k)) for k, v in example.items()}
    with torch.no_grad():
        ref = module(*fresh.values())
        ref = (ref[0] if isinstance(ref, (tuple, list)) else ref).float().numpy()
        try:
            if onnx_path is not None:
                out, where = _run_best_provider(onnx_path, {k: v.numpy() for k, v in fresh.items()})
            else:
                out = HalfPrecision(module)(*fresh.values()).numpy()
                where = "PyTorch float16 on the CPU"
        except Exception as exc:
            return {"safe": None, "problem": f"not checked: {_first_line(exc)}", "checked_on": ""}
    lo, hi = metadata.get("value_range", [-1.0, 1.0])
    result: dict[str, Any] = {"safe": True, "problem": "", "checked_on": where}
    if not np.isfinite(out).all():
        result.update(safe=False, problem="float16 output holds NaN or Inf (overflow)")
        return result
    ref_std, out_std = float(ref.std()), float(out.std())
    if out_std == 0.0 or (ref_std > 1e-6 and out_std < 0.1 * ref_std):
        result.update(safe=False, problem=f"float16 output is blank (std {out_std:.3g} against {ref_std:.3g} "
                                          f"in float32)")
        return result
    mse = float(np.mean((out.astype(np.float64) - ref) ** 2))
    result["psnr_db"] = math.inf if mse == 0 else 10 * math.log10((hi - lo) ** 2 / mse)
    result["max_abs_diff"] = float(np.max(np.abs(out - ref)))
    if result["psnr_db"] < 40.0:
        result.update(safe=False, problem=f"float16 output is {result['psnr_db']:.1f} dB from float32 (< 40 dB)")
    return result


def _run_best_provider(path: Path, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    import onnxruntime as ort

    from .runtime import choose_providers
    sess = ort.InferenceSession(str(path), providers=choose_providers())
    out = sess.run(None, feeds)[0]
    return out, f"onnxruntime {sess.get_providers()[0]}"


def _like(example: torch.Tensor, batch: int, g: torch.Generator, spec: dict[str, Any] | None = None,
          grow: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """A fresh random tensor shaped like ``example`` with ``batch`` rows (H and W grown by
    ``grow``), drawn as ``spec`` documents it: ``range`` [lo, hi] uniform, else standard normal
    for values that go negative, uniform [0, 1) otherwise; integers below ``num_classes``."""
    shape = [batch, *example.shape[1:]]
    if example.dim() == 4:
        shape[2] += grow[0]
        shape[3] += grow[1]
    spec = spec or {}
    if not example.dtype.is_floating_point:
        high = int(spec.get("num_classes") or int(example.max()) + 1)
        return torch.randint(0, max(high, 1), shape, generator=g, dtype=example.dtype)
    if "range" in spec:
        lo, hi = spec["range"]
        return torch.rand(shape, generator=g, dtype=example.dtype) * (hi - lo) + lo
    if "normal" in str(spec.get("distribution", "")) or example.min() < 0:
        return torch.randn(shape, generator=g, dtype=example.dtype)
    return torch.rand(shape, generator=g, dtype=example.dtype)


# -- metadata and the model card --------------------------------------------------------------------

def _check_metadata(metadata: dict[str, Any]) -> None:
    task = metadata.get("task")
    if task is None:
        raise ArtganError("the recipe's export_spec() metadata has no 'task' (generate or image-to-image); "
                          "see exports/README.md")
    missing = [k for k in REQUIRED_METADATA.get(task, ()) if k not in metadata]
    if missing:
        raise ArtganError(f"the recipe's export_spec() metadata lacks {', '.join(missing)} (needed for task "
                          f"{task!r}); see exports/README.md")
    try:
        json.dumps(metadata)
    except TypeError as exc:
        raise ArtganError(f"export metadata must be JSON: {exc}") from None


def _record_class_names(metadata: dict[str, Any]) -> None:
    """A conditional generator carries ``class_names``, what each label means (``artgan synth``
    names its folders by them): the dataset's names when the recipe passes them on, else the
    label numbers ("0", "1", ...). Unconditional models carry none."""
    k = int(metadata.get("num_classes") or 0)
    names = metadata.get("class_names")
    if k == 0:
        metadata.pop("class_names", None)
        return
    if names is None:
        names = [str(i) for i in range(k)]
    if not isinstance(names, (list, tuple)) or len(names) != k or len(set(map(str, names))) != k:
        raise ArtganError(f"class_names must be {k} distinct names, one per class (num_classes is {k}), "
                          f"got {names!r}; fix the dataset's info.class_names")
    metadata["class_names"] = [str(n) for n in names]


def set_metadata(model, metadata: dict[str, Any]) -> None:
    """Store each key as ``artgan.<key>`` with a JSON value (read back with json.loads)."""
    keep = [p for p in model.metadata_props if not p.key.startswith(METADATA_PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = METADATA_PREFIX + key, json.dumps(value)


def model_card_markdown(card: dict[str, Any]) -> str:
    md, v, f = card["metadata"], card["verification"], card["fp16_check"]
    inputs = ", ".join(f"`{k}` {md['input_dtypes'][k]}" for k in md["inputs"])
    lines = [f"# {card['file']}", "",
             f"An artgan {md.get('architecture', '')} model, task `{md['task']}`, exported from run "
             f"`{md.get('run', '?')}` (step {md.get('train_steps', '?')}) by artgan {md['version']}.", "",
             "| | |", "|---|---|",
             f"| precision | {md['precision']} (inputs and outputs float32) |",
             f"| inputs | {inputs} |",
             f"| output | `{md['outputs'][0]}` float32 NCHW in {md['value_range']} |"]
    if md["task"] == "generate":
        lines.append(f"| latent | {md['latent_dim']} values, standard normal |")
        lines.append(f"| image | {md['image_size']} px, {md['channels']} channel(s), {md.get('color_order', '?')} |")
        if md.get("class_names"):
            lines.append(f"| classes | {md['num_classes']}: {', '.join(md['class_names'])} (input `label` = index) |")
    else:
        lines.append(f"| scale / size multiple | x{md['scale']} / {md['size_multiple']} px |")
    lines.append(f"| fp16 safe | {f['safe']} ({f.get('checked_on') or f.get('problem')}) |")
    lines.append(f"| opset / size | {md['opset']} / {card['bytes'] / 1e6:.2f} MB |")
    if md.get("calibration"):
        lines.append(f"| int8 calibration | {md['calibration']} |")
    lines += ["", "## Verification against PyTorch", ""]
    if v.get("verified"):
        psnr_text = "identical outputs" if v["psnr_db"] is None else f"PSNR {v['psnr_db']:.1f} dB"
        lines.append(f"On {v['inputs']}: largest |onnxruntime - PyTorch| = {v['max_abs_diff']:.3g}, "
                     f"{psnr_text} (limits: {v['tolerance']}, {v['min_psnr']} dB).")
    else:
        lines.append("Not verified (exported with --no-verify).")
    lines += ["", "How to run it without PyTorch: see exports/README.md in the artgan repository.", ""]
    return "\n".join(lines)


def _json_safe(x: Any) -> Any:
    """JSON for every language: an infinite PSNR (identical outputs) is stored as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)
