"""The export's int8 quantisation (:func:`artgan.int8.quantize_int8`): calibration inputs as the
model meets them, and how much of it ended in int8."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..recipe import ExportSpec
from .common import _like


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
