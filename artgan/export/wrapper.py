"""The export itself: copy, eval mode, the export-mode checks, optional rewrites, tracing, the
graph check, fp16 or int8, verification, the ``artgan.*`` metadata and the model card.

We use the TorchScript exporter (``dynamo=False``): about 0.3 s against about 3 s for the
torch.export-based one, which also needs onnxscript. It is deprecated but exports every
generator we ship faithfully, and the verification would catch it if it did not.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from .. import __version__
from ..cards import card_paths, card_texts
from ..errors import ArtganError, Interrupted
from ..files import atomic_paths
from ..recipe import ExportSpec
from .checks import check_export_mode, check_graph
from .common import (DEFAULT_OPSET, METADATA_PREFIX, PRECISIONS, QUANTIZATIONS, REQUIRED_METADATA, TOLERANCES,
                     HalfPrecision, _dtype_name, _first_line, _json_safe)
from ..int8 import quantize_int8
from .quantize import _calibration_batches, _int8_layers
from .graph_rewrites import cubic_upscale_as_subpixel
from .rewrites import optimized
from .verify import _enforce, fp16_check, verify_export


def export_onnx(spec: ExportSpec, path: str | Path, *, opset: int = DEFAULT_OPSET, precision: str = "fp32",
                quantize: str | None = None, verify: bool = True, tolerance: float | None = None,
                min_psnr: float | None = None, extra_metadata: dict[str, Any] | None = None,
                seed: int = 0, calibration_samples: int = 256, optimize: bool = True,
                target: str = "onnxruntime") -> dict[str, Any]:
    """Export ``spec.module`` to ``path``; return the model card (also written beside it).

    ``precision`` "fp16" computes in half precision with float32 inputs and outputs (for GPUs);
    ``quantize`` "int8" quantises statically, calibrated on ``calibration_samples`` inputs drawn as
    the model sees them (for CPUs). With ``verify`` the file is compared with PyTorch on fresh
    random inputs and nothing is written when the largest absolute difference is above
    ``tolerance`` or the PSNR below ``min_psnr`` (defaults: :data:`TOLERANCES`). With
    ``optimize``, layer patterns with an exactly equivalent faster form are rewritten before
    tracing (:func:`artgan.export.rewrites.optimized`) and in the traced graph
    (:func:`artgan.export.graph_rewrites.cubic_upscale_as_subpixel`); verification still
    compares with the original module.
    ``target`` "web" also makes the file pass onnxruntime-web's op check (:mod:`.web`), or
    refuses with the layer named.
    Raises :class:`ArtganError` naming the problem (and the layer, where one is to blame).
    """
    import onnx

    from . import web
    if target not in web.TARGETS:
        raise ArtganError(f"target must be one of {', '.join(web.TARGETS)}, got {target!r}")
    if target == "web":
        web.check_opset(opset)
        optimize = True  # the rewrites are what remove a latent's transposed convolution

    kind, tolerance, min_psnr = _checked_options(precision, quantize, tolerance, min_psnr)
    path = Path(path)
    module, inputs, metadata = _prepared(spec, extra_metadata)
    dynamic_axes = _dynamic_axes(spec, metadata.get("task"))
    # what is traced may be rewritten into an equivalent, faster form; what it is verified against
    # below is always the module as trained
    to_export, rewrites = optimized(module, inputs) if optimize else (module, [])
    if target == "web":
        to_export, subpixel = web.transposed_convs_as_subpixel(to_export)
        if subpixel:
            rewrites.append(f"{subpixel} transposed convolution(s) as sub-pixel convolutions (for the web)")
        web.check_module(to_export)
    to_export = HalfPrecision(to_export) if precision == "fp16" else to_export

    json_path, md_path = card_paths(path)
    try:
        # the card files and the model are renamed into place together, the model last: a new model
        # never sits beside an old card, and Ctrl-C is held off until all three are in place
        with atomic_paths(json_path, md_path, path) as (tmp_json, tmp_md, tmp):
            model = _traced_and_checked(to_export, inputs, spec.outputs, dynamic_axes, opset, tmp)
            if optimize and (cubic := cubic_upscale_as_subpixel(model)):
                onnx.save(model, str(tmp))  # what is verified and quantised below is the rewritten graph
                rewrites.append(f"{cubic} cubic upscale(s) as sub-pixel convolutions")
            if target == "web":
                web.check_graph(model)
                metadata["target"] = "web"
            calibration, int8_layers = "", None
            if quantize == "int8":
                model, calibration, int8_layers = _quantized(model, tmp, spec, metadata, calibration_samples, seed)

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
            metadata = _json_safe(_stamp(metadata, kind=kind, fp16=fp16, opset=opset, inputs=inputs,
                                         outputs=spec.outputs, rewrites=rewrites, calibration=calibration,
                                         report=report))
            set_metadata(model, metadata)
            onnx.save(model, str(tmp))
            card = _json_safe({"file": path.name, "bytes": tmp.stat().st_size, "metadata": metadata,
                               "verification": report, "fp16_check": fp16, "int8_layers": int8_layers})
            for (_, text), tmp_card in zip(card_texts(path, card), (tmp_json, tmp_md)):
                tmp_card.write_text(text, encoding="utf-8")
    except Interrupted as exc:  # after the renames: the new model and its card are in place
        raise Interrupted(f"interrupted after the export was written: {path} and its card are "
                          f"complete") from exc
    except KeyboardInterrupt:
        raise Interrupted(f"export interrupted: nothing written; {path} and its card are as they were") from None
    return card


def _checked_options(precision: str, quantize: str | None, tolerance: float | None,
                     min_psnr: float | None) -> tuple[str, float, float]:
    """(the export's kind: fp32, fp16 or int8; its tolerance; its minimum PSNR), defaults filled in."""
    if precision not in PRECISIONS:
        raise ArtganError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if quantize not in (None, *QUANTIZATIONS):
        raise ArtganError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    if quantize and precision != "fp32":
        raise ArtganError("--quantize int8 starts from an fp32 model; drop --precision fp16")
    kind = quantize or precision
    default_tol, default_psnr = TOLERANCES[kind]
    return (kind, default_tol if tolerance is None else tolerance,
            default_psnr if min_psnr is None else min_psnr)


def _prepared(spec: ExportSpec, extra_metadata: dict[str, Any] | None
              ) -> tuple[nn.Module, dict[str, torch.Tensor], dict[str, Any]]:
    """A CPU eval-mode copy of the module, its example inputs and its metadata, each checked."""
    module = copy.deepcopy(spec.module).cpu().eval().requires_grad_(False)
    inputs = {k: v.detach().cpu() for k, v in spec.inputs.items()}
    metadata = {**spec.metadata, **(extra_metadata or {})}
    _check_metadata(metadata)
    _record_class_names(metadata)
    with torch.no_grad():
        try:
            module(*inputs.values())  # lazy layers and shape errors surface here, in torch terms
        except Exception as exc:
            raise ArtganError(f"the module to export fails on its example inputs: {_first_line(exc)}") from None
    check_export_mode(module, inputs)
    return module, inputs, metadata


def _traced_and_checked(module: nn.Module, inputs: dict[str, torch.Tensor], outputs: list[str],
                        dynamic_axes: dict[str, dict[int, str]], opset: int, tmp: Path) -> Any:
    """Trace ``module`` into ``tmp``; the loaded ONNX model, through onnx.checker and the graph check."""
    import onnx

    _trace(module, inputs, outputs, dynamic_axes, opset, tmp)
    model = onnx.load(str(tmp))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ArtganError(f"exported model fails onnx.checker: {_first_line(exc)}") from None
    check_graph(model)
    return model


def _quantized(model: Any, tmp: Path, spec: ExportSpec, metadata: dict[str, Any], samples: int,
               seed: int) -> tuple[Any, str, tuple[int, int]]:
    """Quantise the model in ``tmp`` to int8 in place: (the new model, how it was calibrated,
    (int8 layers, weighted layers))."""
    import onnx

    feeds, calibration = _calibration_batches(spec, metadata, samples, seed)
    quantize_int8(tmp, feeds)
    quantized = onnx.load(str(tmp))
    int8_layers = _int8_layers(model, quantized)
    calibration += f"; {int8_layers[0]} of {int8_layers[1]} weighted layers in int8"
    return quantized, calibration, int8_layers


def _stamp(metadata: dict[str, Any], *, kind: str, fp16: dict[str, Any], opset: int,
           inputs: dict[str, torch.Tensor], outputs: list[str], rewrites: list[str], calibration: str,
           report: dict[str, Any]) -> dict[str, Any]:
    """The export's own facts added to the spec's metadata (``artgan.*`` in the file)."""
    metadata.update({
        "precision": kind, "fp16_safe": fp16["safe"], "opset": opset, "version": __version__,
        "inputs": list(inputs), "outputs": list(outputs),
        "input_dtypes": {k: _dtype_name(v) for k, v in inputs.items()},
    })
    metadata["fp16_check"] = {k: fp16[k] for k in ("checked_on", "psnr_db", "problem") if fp16.get(k)}
    if rewrites:
        metadata["rewrites"] = "; ".join(rewrites)
    if calibration:
        metadata["calibration"] = calibration
    if report.get("verified"):
        metadata["verification"] = {k: report[k] for k in ("max_abs_diff", "psnr_db", "inputs")}
    return metadata


# -- tracing ---------------------------------------------------------------------------------------

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
            from ..errors import describe_os_error
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


# -- metadata ---------------------------------------------------------------------------------------

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
