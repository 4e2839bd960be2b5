"""torch -> ONNX, through one small wrapper: copy, eval, no grads, export, check, stamp the
metadata, verify against PyTorch with onnxruntime, write a model card beside the file.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .errors import ArtganError
from .files import atomic_path, write_json
from .recipe import ExportSpec

DEFAULT_OPSET = 17
METADATA_PREFIX = "artgan."


def export_onnx(spec: ExportSpec, path: str | Path, *, opset: int = DEFAULT_OPSET,
                verify: bool = True, tolerance: float = 1e-3, extra_metadata: dict[str, Any] | None = None,
                seed: int = 0) -> dict[str, Any]:
    """Export ``spec.module`` to ``path`` and return the verification report.

    Raises :class:`ArtganError` when the export fails or (with ``verify``) when onnxruntime's
    output differs from PyTorch's by more than ``tolerance`` (largest absolute difference).
    """
    import onnx

    path = Path(path)
    module = copy.deepcopy(spec.module).cpu().eval().requires_grad_(False)
    inputs = {k: v.detach().cpu() for k, v in spec.inputs.items()}
    with torch.no_grad():
        module(*inputs.values())  # warm-up: lazy layers and shape errors surface here, in torch terms

    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, tuple(inputs.values()), str(tmp), input_names=list(inputs),
                              output_names=spec.outputs, dynamic_axes=spec.dynamic_axes,
                              opset_version=opset, dynamo=False, do_constant_folding=True)
        except Exception as exc:
            raise ArtganError(f"ONNX export failed: {str(exc).splitlines()[0]}") from exc
        model = onnx.load(str(tmp))
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise ArtganError(f"exported model fails onnx.checker: {str(exc).splitlines()[0]}") from None
        metadata = {**spec.metadata, **(extra_metadata or {}), "version": __version__, "opset": opset}
        set_metadata(model, metadata)
        onnx.save(model, str(tmp))
        report: dict[str, Any] = {"verified": False}
        if verify:
            report = verify_export(module, tmp, inputs, seed=seed)
            if not report["max_abs_diff"] <= tolerance:
                raise ArtganError(
                    f"export verification failed: onnxruntime differs from PyTorch by "
                    f"{report['max_abs_diff']:.3g} (tolerance {tolerance:g}, PSNR "
                    f"{report['psnr_db']:.1f} dB); nothing written to {path}. Use --no-verify to keep it anyway")
    card = {"file": path.name, "metadata": metadata, "verification": report}
    write_json(path.with_suffix(".card.json"), card)
    return card


def set_metadata(model, metadata: dict[str, Any]) -> None:
    """Store each key as ``artgan.<key>`` with a JSON value (read back with json.loads)."""
    keep = [p for p in model.metadata_props if not p.key.startswith(METADATA_PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = METADATA_PREFIX + key, json.dumps(value)


def verify_export(module: torch.nn.Module, onnx_path: str | Path, example: dict[str, torch.Tensor],
                  *, seed: int = 0, batch: int = 4) -> dict[str, Any]:
    """Run fresh random inputs (shaped like ``example``, batch ``batch``) through both and compare."""
    import onnxruntime as ort

    g = torch.Generator().manual_seed(seed + 1)
    fresh = {}
    for k, v in example.items():
        shape = (batch, *v.shape[1:])
        if v.dtype.is_floating_point:
            fresh[k] = torch.randn(shape, generator=g, dtype=v.dtype) if v.min() < 0 else \
                torch.rand(shape, generator=g, dtype=v.dtype)
        else:
            fresh[k] = torch.randint(0, int(v.max()) + 1, shape, generator=g, dtype=v.dtype)
    with torch.no_grad():
        ref = module(*fresh.values())
    ref = (ref[0] if isinstance(ref, (tuple, list)) else ref).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {k: v.numpy() for k, v in fresh.items()})[0]
    if out.shape != ref.shape:
        raise ArtganError(f"export verification failed: onnxruntime output shape {out.shape} != "
                          f"PyTorch's {ref.shape}")
    diff = float(np.max(np.abs(out.astype(np.float64) - ref)))
    return {"verified": True, "inputs": "fresh random, seed %d, batch %d" % (seed + 1, batch),
            "max_abs_diff": diff, "psnr_db": psnr(out, ref, data_range=2.0)}


def psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)
