"""Run exported models with onnxruntime and numpy only. Never imports torch.

``Model`` loads an ``.onnx`` file, reads its ``artgan.*`` metadata, and picks execution providers
(TensorRT, CUDA, CPU, in that order, among those that actually start). ``Generator`` turns seeds
into images. Images leave as float32 NHWC in [0, 1].
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .errors import ArtganError

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
METADATA_PREFIX = "artgan."


def read_metadata(session) -> dict[str, Any]:
    props = session.get_modelmeta().custom_metadata_map
    out = {}
    for key, value in props.items():
        if key.startswith(METADATA_PREFIX):
            try:
                out[key[len(METADATA_PREFIX):]] = json.loads(value)
            except json.JSONDecodeError:
                out[key[len(METADATA_PREFIX):]] = value
    return out


def _quiet_ort():
    import onnxruntime as ort
    # 3 = errors only: a provider that cannot start is reported by us, once, not in 40 log lines
    ort.set_default_logger_severity(3)
    return ort


class Model:
    """An exported artgan model on onnxruntime."""

    def __init__(self, path: str | Path, providers: Iterable[str] | None = None,
                 threads: int | None = None):
        ort = _quiet_ort()
        self.path = Path(path)
        if not self.path.exists():
            raise ArtganError(f"{self.path}: model file not found")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or int(os.environ.get("ARTGAN_THREADS", 0)) or _physical_cores()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        wanted = list(providers) if providers else choose_providers()
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=wanted)
        except Exception as exc:
            raise ArtganError(f"{self.path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})") from None
        self.metadata = read_metadata(self.session)
        if "task" not in self.metadata:
            raise ArtganError(f"{self.path}: no artgan metadata (artgan.task); export it with "
                              f"`artgan export` or add the metadata described in exports/README.md")
        self.providers = self.session.get_providers()  # what actually started, not what was asked
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def task(self) -> str:
        return self.metadata["task"]

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        for name, meta in self.inputs.items():
            if name not in feeds:
                raise ArtganError(f"{self.path.name}: missing input {name!r}; inputs: {', '.join(self.inputs)}")
            arr = feeds[name]
            want = _ORT_DTYPES.get(meta.type)
            if want is not None and arr.dtype != want:
                raise ArtganError(f"{self.path.name}: input {name!r} must be {np.dtype(want).name}, got {arr.dtype}")
            if len(arr.shape) != len(meta.shape) or any(
                    isinstance(d, int) and d != s for d, s in zip(meta.shape, arr.shape)):
                raise ArtganError(f"{self.path.name}: input {name!r} must have shape "
                                  f"{_shape_str(meta.shape)}, got {tuple(arr.shape)}")
        return self.session.run(self.output_names[:1], feeds)[0]


class Generator(Model):
    """A noise-to-image generator: ``generate(n, seed)`` -> float32 NHWC in [0, 1]."""

    def __init__(self, path: str | Path, **kwargs: Any):
        super().__init__(path, **kwargs)
        if self.task != "generate":
            raise ArtganError(f"{self.path.name}: task is {self.task!r}, not a generator")
        self.latent_dim = int(self.metadata["latent_dim"])
        self.num_classes = int(self.metadata.get("num_classes", 0))

    def latents(self, n: int, seed: int, truncation: float | None = None) -> np.ndarray:
        """Seeded standard-normal latents, the same for a seed whatever the batch size. With
        ``truncation`` (the BigGAN trick) values beyond +-truncation are redrawn: lower values
        trade variety for typical, cleaner images."""
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.latent_dim), dtype=np.float32)
        if truncation is not None:
            if truncation <= 0:
                raise ArtganError(f"truncation must be > 0, got {truncation}")
            bad = np.abs(z) > truncation
            while bad.any():
                z[bad] = rng.standard_normal(int(bad.sum()), dtype=np.float32)
                bad = np.abs(z) > truncation
        return z

    def from_latents(self, z: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 64,
                     progress: bool = False) -> np.ndarray:
        out = []
        chunks = range(0, len(z), batch_size)
        if progress:
            from tqdm.auto import tqdm
            chunks = tqdm(chunks, desc="generate", unit="batch", file=sys.stderr)
        for lo in chunks:
            feeds = {"z": z[lo:lo + batch_size]}
            if "label" in self.inputs:
                lab = labels[lo:lo + batch_size] if labels is not None else \
                    np.arange(lo, lo + len(feeds["z"])) % max(self.num_classes, 1)
                feeds["label"] = lab.astype(np.int64)
            out.append(self.run(feeds))
        return to_images(np.concatenate(out), self.metadata)

    def generate(self, n: int, seed: int = 0, *, batch_size: int = 64, truncation: float | None = None,
                 labels: np.ndarray | None = None, progress: bool = False) -> np.ndarray:
        return self.from_latents(self.latents(n, seed, truncation), labels, batch_size, progress)


def to_images(raw: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    """Model output (NCHW in the model's ``value_range``) -> float32 NHWC in [0, 1]."""
    lo, hi = metadata.get("value_range", [-1.0, 1.0])
    return np.clip((raw.transpose(0, 2, 3, 1) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def available_providers() -> list[str]:
    """Providers this onnxruntime build carries (not all can necessarily start here)."""
    return list(_quiet_ort().get_available_providers())


_PROVIDER_LIBS = {"CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
                  "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so"}


@functools.lru_cache(maxsize=None)
def provider_problem(provider: str) -> str:
    """Why ``provider`` cannot start here ('' when it can, as far as loading its library tells).

    onnxruntime-gpu lists CUDA and TensorRT even where their libraries are missing and then falls
    back to CPU with pages of logs; loading the provider's own library first names what is missing.
    """
    if provider not in available_providers():
        return "not in this onnxruntime build"
    lib = _PROVIDER_LIBS.get(provider)
    if lib is None or not sys.platform.startswith("linux"):
        return ""
    import ctypes
    import onnxruntime as ort
    capi = Path(ort.__file__).parent / "capi"
    try:
        ctypes.CDLL(str(capi / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(capi / lib))
    except OSError as exc:
        return str(exc)
    return ""


def choose_providers() -> list[str]:
    """TensorRT, CUDA, CPU: those that can start here, in that order (``ARTGAN_PROVIDERS``, a
    comma list, overrides). ``Model.providers`` tells what actually runs."""
    forced = os.environ.get("ARTGAN_PROVIDERS")
    if forced:
        return [p.strip() for p in forced.split(",") if p.strip()]
    return [p for p in PROVIDER_ORDER if p == "CPUExecutionProvider" or not provider_problem(p)]


def _physical_cores() -> int:
    n = os.cpu_count() or 1
    return max(1, n)


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8}
