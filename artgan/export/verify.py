"""onnxruntime against PyTorch: on fresh random inputs (every export), in float16 (is half precision
safe?), and on real inputs a caller gives (:func:`verify_on_real_inputs`: a photo, a held-out
image), recorded in the model card. One PSNR everywhere: :func:`artgan.metrics.psnr`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ArtganError
from ..metrics import psnr
from .common import HalfPrecision, _first_line, _like


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
    mse = sq_err / max(count, 1)  # pooled over feeds of different shapes, so not artgan.metrics.psnr
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
    result["psnr_db"] = psnr(out, ref, data_range=hi - lo)
    result["max_abs_diff"] = float(np.max(np.abs(out - ref)))
    if result["psnr_db"] < 40.0:
        result.update(safe=False, problem=f"float16 output is {result['psnr_db']:.1f} dB from float32 (< 40 dB)")
    return result


def _run_best_provider(path: Path, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    import onnxruntime as ort

    from ..runtime import choose_providers
    sess = ort.InferenceSession(str(path), providers=choose_providers())
    out = sess.run(None, feeds)[0]
    return out, f"onnxruntime {sess.get_providers()[0]}"


def verify_on_real_inputs(module: nn.Module, onnx_path: str | Path,
                          inputs: Sequence[dict[str, np.ndarray | torch.Tensor]], *, describe: str,
                          min_psnr: float | None = None, record: bool = True) -> dict[str, Any]:
    """Compare the exported file with ``module`` on real inputs: each item of ``inputs`` maps
    input names to arrays (NCHW, in the model's ``value_range``, as the model meets them in use:
    a photo at its own size, a real mask). Runs ``module`` in PyTorch (eval mode, on the CPU) and
    the file in onnxruntime (CPU) and reports the largest difference and the PSNR between the
    two (over the model's value range) per input: its minimum and mean. ``describe`` says what
    the inputs are (``"baby.png, 512x512"``). With ``record`` the report is written into the
    model card as ``real_inputs``; below ``min_psnr`` dB it is an :class:`ArtganError`."""
    import copy
    import json

    import onnxruntime as ort

    from ..cards import update_card
    from .common import _json_safe

    if not inputs:
        raise ArtganError(f"verify on real inputs: no inputs given for {onnx_path}")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    lo, hi = json.loads(meta.get("artgan.value_range", "[-1.0, 1.0]"))
    module = copy.deepcopy(module).cpu().eval()
    worst, psnrs = 0.0, []
    for feed in inputs:
        arrays = {k: np.ascontiguousarray(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v)
                  for k, v in feed.items()}
        with torch.no_grad():
            ref = module(*(torch.from_numpy(a) for a in arrays.values()))
        ref = (ref[0] if isinstance(ref, (tuple, list)) else ref).float().numpy()
        out = sess.run(None, arrays)[0]
        if out.shape != ref.shape:
            raise ArtganError(f"verify on real inputs ({describe}): onnxruntime output shape {out.shape} != "
                              f"PyTorch's {ref.shape}")
        worst = max(worst, float(np.max(np.abs(out.astype(np.float64) - ref))))
        psnrs.append(psnr(out, ref, data_range=hi - lo))
    report = _json_safe({"inputs": describe, "count": len(psnrs), "max_abs_diff": worst,
                         "min_psnr_db": min(psnrs), "mean_psnr_db": float(np.mean(psnrs)), "min_psnr": min_psnr})
    if min_psnr is not None and min(psnrs) < min_psnr:
        raise ArtganError(f"ONNX and PyTorch differ on real inputs ({describe}): PSNR {min(psnrs):.1f} dB < "
                          f"{min_psnr:g} dB; the export is not faithful on real data, check the layers "
                          f"its random-input check cannot reach (data-dependent branches, value ranges)")
    if record:
        update_card(onnx_path, "real_inputs", report)
    return report
