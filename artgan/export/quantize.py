"""int8 quantisation (static, QDQ) of an exported file, calibrated on inputs as the model meets them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ArtganError
from ..recipe import ExportSpec
from .common import _first_line, _like


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
