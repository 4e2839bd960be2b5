"""What every part of the export shares: its constants, the fresh random inputs it checks with,
and small helpers."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from ..config import MAX_OPSET

#: The newest opset the TorchScript exporter writes; onnxruntime >= 1.17 runs it.
DEFAULT_OPSET = MAX_OPSET
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
