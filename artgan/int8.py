"""int8 quantisation (static, QDQ) of an ONNX file, with onnxruntime's quantiser: no torch, so the
export (calibrated on a recipe's inputs) and ``artgan web --int8`` (calibrated on photos) share it."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

import numpy as np

from .errors import ArtganError


def quantize_int8(path: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """Quantise ``path`` in place to int8 (QDQ, per-channel weights, static activation ranges from
    ``feeds``). ConvTranspose stays in float: onnxruntime's CPU kernels have no int8 version of
    it, and a quantised one only adds (de)quantisation around a float kernel. The metadata
    (``metadata_props``) is kept as it was."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)
    from onnxruntime.quantization.registry import QDQRegistry

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    root = logging.getLogger()
    stack = contextlib.ExitStack()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice to the root logger
    path = Path(path).resolve()
    prepared = path.with_name(path.name + ".pre.onnx")
    quantized = path.with_name(path.name + ".int8.onnx")
    try:
        # the quantiser writes scratch files (shape inference, calibration data) into the working
        # folder: give it one of its own
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="artgan-int8-"))
        stack.enter_context(contextlib.chdir(scratch))
        try:  # shape inference + fusions (BatchNorm into Conv) make more of the graph quantisable
            quant_pre_process(str(path), str(prepared))
            source = prepared
        except Exception:
            source = path
        quantize_static(str(source), str(quantized), Reader(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=[op for op in QDQRegistry if op != "ConvTranspose"],
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        import onnx

        model, before = onnx.load(str(quantized)), onnx.load(str(path))
        del model.metadata_props[:]
        model.metadata_props.extend(before.metadata_props)
        onnx.save(model, str(quantized))
        quantized.replace(path)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtganError(f"int8 quantisation failed: {first}") from None
    finally:
        stack.close()
        root.setLevel(level)
        for p in (prepared, quantized):
            p.unlink(missing_ok=True)
