"""``artgan doctor``: can this machine run artgan on its GPU, and if not, why not?

onnxruntime-gpu lists the CUDA and TensorRT providers whether or not their libraries are here,
and quietly runs on the CPU when they cannot start; PyTorch quietly trains on the CPU when it is a
CPU build. This module finds out what actually starts (by loading each provider's library and
running a tiny model on it) and turns every silent fallback into a plain warning.
"""

from __future__ import annotations

import base64
import ctypes
import os
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .runtime import GPU_PROVIDERS, _preload_pip_cuda, available_providers, choose_providers, provider_problem

#: A one-node ONNX model (Relu on a 1x4 float tensor), to see whether a provider really starts.
PROBE_MODEL = base64.b64decode(
    "CAcSBmFydGdhbjo/CgwKAXgSAXkiBFJlbHUSBXByb2JlWhMKAXgSDgoMCAESCAoCCAEKAggEYhMKAXkSDgoMCAESCAoCCAEKAggEQgQKABAN")


def diagnose(check_torch: bool = True) -> dict[str, Any]:
    """Everything ``artgan doctor`` reports, as data; ``warnings`` lists the problems in words."""
    report: dict[str, Any] = {"python": sys.version.split()[0], "gpu": _gpu(), "onnxruntime": _ort_info()}
    report["libraries"] = _libraries(report["onnxruntime"].get("cuda_version", ""))
    report["providers"] = [_provider(p) for p in available_providers()]
    report["generate_uses"] = _first_that_starts(report["providers"])
    report["torch"] = _torch() if check_torch else {"checked": False}
    report["warnings"] = _warnings(report)
    return report


def _gpu() -> dict[str, Any]:
    """Is there an NVIDIA GPU at all (driver visible), independent of any library?"""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
            names = [line.strip() for line in out.stdout.splitlines() if line.startswith("GPU")]
            if names:
                return {"present": True, "devices": names, "how": "nvidia-smi -L"}
        except (OSError, subprocess.SubprocessError):
            pass
    if os.path.exists("/dev/nvidia0"):
        return {"present": True, "devices": ["/dev/nvidia0"], "how": "device file"}
    return {"present": False, "devices": [], "how": "no nvidia-smi output, no /dev/nvidia0"}


def _dist_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def _ort_info() -> dict[str, Any]:
    import onnxruntime as ort
    info: dict[str, Any] = {"version": ort.__version__, "path": os.path.dirname(ort.__file__),
                            "packages": {d: v for d in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml",
                                                        "onnxruntime-openvino") if (v := _dist_version(d))}}
    try:
        from onnxruntime.capi import build_and_package_info as build
        info["cuda_version"] = getattr(build, "cuda_version", "")
    except ImportError:
        info["cuda_version"] = ""
    return info


def _libraries(cuda_version: str) -> list[dict[str, Any]]:
    """The CUDA, cuDNN and TensorRT libraries this onnxruntime build needs: found, and where."""
    if not sys.platform.startswith("linux"):
        return []
    major = cuda_version.split(".")[0] if cuda_version else "12"
    wanted = [("CUDA runtime", f"libcudart.so.{major}"), ("cuBLAS", f"libcublas.so.{major}"),
              ("cuBLASLt", f"libcublasLt.so.{major}"), ("cuFFT", f"libcufft.so.{int(major) - 1}" if major.isdigit() else "libcufft.so"),
              ("cuDNN", "libcudnn.so.9"), ("TensorRT", "libnvinfer.so.10")]
    _preload_pip_cuda()
    out = []
    for what, soname in wanted:
        try:
            ctypes.CDLL(soname)
            out.append({"name": what, "soname": soname, "found": True, "path": _loaded_path(soname)})
        except OSError:
            out.append({"name": what, "soname": soname, "found": False, "path": ""})
    return out


def _loaded_path(soname: str) -> str:
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                if soname in line:
                    return line.split()[-1]
    except OSError:
        pass
    return ""


def _provider(name: str) -> dict[str, Any]:
    """Does ``name`` start? Its library must load, and a session on it must keep it (onnxruntime
    drops a provider that fails at session start and carries on with the CPU)."""
    problem = provider_problem(name)
    entry: dict[str, Any] = {"name": name, "library": problem or "loads", "starts": False, "detail": ""}
    if problem:
        entry["detail"] = problem
        return entry
    import onnxruntime as ort
    import numpy as np
    ort.set_default_logger_severity(4)  # the probe's own failures are reported below, in one line
    try:
        providers = [name] if name == "CPUExecutionProvider" else [name, "CPUExecutionProvider"]
        sess = ort.InferenceSession(PROBE_MODEL, providers=providers)
        sess.run(None, {"x": np.ones((1, 4), np.float32)})
        started = sess.get_providers()
        entry["starts"] = started[0] == name
        if not entry["starts"]:
            entry["detail"] = f"onnxruntime dropped it at session start and used {started[0]}"
    except Exception as exc:
        entry["detail"] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    finally:
        ort.set_default_logger_severity(3)
    return entry


def _first_that_starts(providers: list[dict[str, Any]]) -> str:
    chosen = choose_providers()
    ok = {p["name"] for p in providers if p["starts"]}
    for p in chosen:
        if p in ok:
            return p
    return chosen[-1] if chosen else "CPUExecutionProvider"


def _torch() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"installed": False}
    info: dict[str, Any] = {"installed": True, "version": torch.__version__, "cuda_build": torch.version.cuda or "",
                            "cuda_available": bool(torch.cuda.is_available()), "devices": [],
                            "threads": torch.get_num_threads()}
    if info["cuda_available"]:
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cudnn"] = str(torch.backends.cudnn.version() or "")
    return info


def _warnings(r: dict[str, Any]) -> list[str]:
    out = []
    gpu_present = r["gpu"]["present"]
    listed = [p for p in r["providers"] if p["name"] in GPU_PROVIDERS]
    starting = [p["name"] for p in listed if p["starts"]]
    for p in listed:
        if not p["starts"]:
            why = p["detail"] or p["library"]
            out.append(f"{p['name']} is listed by onnxruntime but cannot start here ({why}): GPU work asked of it "
                       f"falls back to the CPU" + ("" if gpu_present else " (no NVIDIA GPU is visible on this machine)"))
    if gpu_present and not starting:
        fix = ("install onnxruntime-gpu" if not listed else
               f"install the CUDA {r['onnxruntime'].get('cuda_version') or ''} and cuDNN 9 libraries onnxruntime "
               f"needs (e.g. pip install nvidia-cudnn-cu{(r['onnxruntime'].get('cuda_version') or '12').split('.')[0]}), "
               f"or an onnxruntime-gpu built for the CUDA you have")
        out.append(f"a GPU is here but onnxruntime cannot use it: `artgan generate` and trained steps run on the "
                   f"CPU. Fix: {fix}")
    t = r["torch"]
    if t.get("installed") and gpu_present and not t.get("cuda_available"):
        why = "a CPU-only build" if not t.get("cuda_build") else f"built for CUDA {t['cuda_build']} but sees no GPU"
        out.append(f"PyTorch {t['version']} is {why}: training silently runs on the CPU (device: auto)")
    ort_major = (r["onnxruntime"].get("cuda_version") or "").split(".")[0]
    torch_major = (t.get("cuda_build") or "").split(".")[0]
    if ort_major and torch_major and ort_major != torch_major and gpu_present:
        out.append(f"onnxruntime-gpu is built for CUDA {ort_major}.x, PyTorch for CUDA {torch_major}.x: they cannot "
                   f"share one set of CUDA libraries")
    if len(r["onnxruntime"]["packages"]) > 1:
        out.append(f"several onnxruntime packages are installed ({', '.join(r['onnxruntime']['packages'])}); they "
                   f"overwrite each other's files: keep one (pip uninstall the others, then reinstall it)")
    if os.environ.get("ARTGAN_PROVIDERS"):
        out.append(f"ARTGAN_PROVIDERS={os.environ['ARTGAN_PROVIDERS']} overrides the automatic provider choice")
    return out


def format_report(r: dict[str, Any]) -> str:
    ort = r["onnxruntime"]
    lines = [f"python        {r['python']} ({sys.executable})",
             f"GPU           {', '.join(r['gpu']['devices']) if r['gpu']['present'] else 'none visible'}",
             f"onnxruntime   {ort['version']} ({', '.join(f'{k} {v}' for k, v in ort['packages'].items()) or '?'})"
             + (f", built for CUDA {ort['cuda_version']}" if ort.get("cuda_version") else ""),
             "", "onnxruntime providers (in artgan's order of preference):"]
    for p in r["providers"]:
        state = "starts" if p["starts"] else "cannot start"
        lines.append(f"  {p['name']:<28} {state}" + (f"  ({p['detail']})" if p["detail"] else ""))
    if r["libraries"]:
        lines += ["", "GPU libraries onnxruntime looks for:"]
        for lib in r["libraries"]:
            lines.append(f"  {lib['name']:<13} {lib['soname']:<20} "
                         + (f"found {lib['path']}" if lib["found"] else "not found"))
    lines += ["", f"artgan generate runs on: {r['generate_uses']}", ""]
    t = r["torch"]
    if not t.get("checked", True):
        lines.append("torch         not checked")
    elif not t.get("installed"):
        lines.append("torch         not installed (fine for running exported models; needed to train and export)")
    else:
        dev = f"CUDA {', '.join(t['devices'])}" if t["cuda_available"] else "CPU only"
        lines.append(f"torch         {t['version']} (CUDA build: {t['cuda_build'] or 'none'}); trains on: {dev}; "
                     f"{t['threads']} CPU threads")
    lines.append("")
    if r["warnings"]:
        lines += [f"warning: {w}" for w in r["warnings"]]
    else:
        lines.append("no problems found")
    return "\n".join(lines)
