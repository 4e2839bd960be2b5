"""Run exported models with onnxruntime and numpy only. Never imports torch.

``Model`` loads an ``.onnx`` file, reads its ``artgan.*`` metadata (exports/README.md) and
configures itself from it: execution providers (TensorRT, CUDA, CPU, in that order, among those
that can start here, falling back with a note saying why), threads, I/O binding on CUDA, input
checks that name the input and the expected shape and dtype. ``Generator`` turns seeds into
images, deterministically: the same seed gives the same latent whatever the batch size or count.
Images leave as float32 NHWC in [0, 1].
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .errors import ArtganError

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
METADATA_PREFIX = "artgan."
#: ARTGAN_THREADS above this many threads per usable CPU is refused (more only queue on the CPUs)
MAX_THREADS_PER_CPU = 4


def read_metadata(session) -> dict[str, Any]:
    """The ``artgan.*`` metadata of an onnxruntime session, keys without the prefix, values
    parsed as JSON (a value that is not JSON is kept as its string)."""
    props = session.get_modelmeta().custom_metadata_map
    out = {}
    for key, value in props.items():
        if key.startswith(METADATA_PREFIX):
            try:
                out[key[len(METADATA_PREFIX):]] = json.loads(value)
            except json.JSONDecodeError:
                out[key[len(METADATA_PREFIX):]] = value
    return out


def _bad_metadata(path: Path, key: str, message: str) -> ArtganError:
    return ArtganError(f"{path}: metadata artgan.{key} {message}; re-export the model with `artgan export` "
                       f"(exports/README.md lists the keys)")


def check_metadata(md: dict[str, Any], path: Path, session=None) -> None:
    """The ``artgan.*`` keys the runtime configures itself from have sane values and agree with
    the graph's inputs where it says (a fixed latent width): a malformed or lying file is one
    line naming the key, not a crash or silently wrong images later."""
    def whole(key: str, low: int, high: int | None = None) -> None:
        if key not in md:
            return
        v = md[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise _bad_metadata(path, key, f"must be a whole number {bound}, got {v!r}")

    if not isinstance(md["task"], str) or md["task"] not in ("generate", "image-to-image"):
        raise _bad_metadata(path, "task", f"must be 'generate' or 'image-to-image', got {md['task']!r}")
    whole("latent_dim", 1)
    whole("num_classes", 0)
    whole("scale", 1, 64)
    whole("size_multiple", 1, 4096)
    whole("channels", 1, 4)
    whole("image_size", 1, 65536)
    if "value_range" in md:
        vr = md["value_range"]
        ok = (isinstance(vr, (list, tuple)) and len(vr) == 2
              and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in vr)
              and vr[0] < vr[1])
        if not ok:
            raise _bad_metadata(path, "value_range", f"must be [low, high] with low < high, got {vr!r}")
    if session is not None and not session.get_inputs():
        raise ArtganError(f"{path}: the model takes no inputs, so it is not an artgan {md['task']} model; "
                          f"re-export it with `artgan export`")
    first = session.get_inputs()[0] if session is not None else None
    if md["task"] == "image-to-image" and first is not None and len(first.shape) == 4:
        c = first.shape[1]
        if isinstance(c, int) and isinstance(md.get("channels"), int) and c != md["channels"]:
            raise _bad_metadata(path, "channels", f"says {md['channels']} but the model's input {first.name!r} "
                                                  f"takes {c} channels")
    if md["task"] == "generate":
        if "latent_dim" not in md:
            raise _bad_metadata(path, "latent_dim", "is missing (a generator needs it)")
        if session is not None:
            inputs = session.get_inputs()
            z = next((i for i in inputs if i.name == "z"), inputs[0] if inputs else None)
            width = z.shape[-1] if z is not None and z.shape else None
            if isinstance(width, int) and width != md["latent_dim"]:
                raise _bad_metadata(path, "latent_dim", f"says {md['latent_dim']} but the model's input "
                                                        f"{z.name!r} takes {width} values")


def _quiet_ort():
    import onnxruntime as ort
    # 3 = errors only: a provider that cannot start is reported by us, once, not in 40 log lines
    ort.set_default_logger_severity(3)
    return ort


def cpu_session(model: bytes | str | Path, threads: int | None = None):
    """An onnxruntime session on the CPU with artgan's settings (errors-only logging, threads as
    :class:`Model` chooses them, no spin-waiting), for an ONNX graph that is not an artgan export,
    such as a network a plugin ships (``model``: the file's path or its bytes)."""
    ort = _quiet_ort()
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model),
                                sess_options=_session_options(ort, threads), providers=["CPUExecutionProvider"])


def _session_options(ort, threads: int | None):
    """The settings every artgan session has: its CPU threads, no spin-waiting, errors-only logs."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or _env_threads() or cpu_count()
    # No spin-waiting between ops: a spinning pool steals the CPU from the next session of a
    # chain of steps and from everything else on a shared machine (figures: benchmarks/README.md).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


#: who is told of every :meth:`Model.run` now (:func:`observing_runs`)
_RUN_OBSERVERS: list[Callable[["Model", dict[str, np.ndarray]], None]] = []


@contextlib.contextmanager
def observing_runs(observer: Callable[["Model", dict[str, np.ndarray]], None]) -> Iterator[None]:
    """Within the block, ``observer(model, feeds)`` sees the inputs of every :meth:`Model.run`
    (before it runs). ``artgan build`` takes a model's real inputs so, as its task's step makes
    them, without knowing the step."""
    _RUN_OBSERVERS.append(observer)
    try:
        yield
    finally:
        _RUN_OBSERVERS.remove(observer)


class Model:
    """An exported artgan model on onnxruntime.

    ``providers`` overrides the choice (default: :func:`choose_providers`); ``threads`` the CPU
    threads (default: ``ARTGAN_THREADS``, else the CPUs this process may use); ``io_binding``
    forces I/O binding on or off (default: on for CUDA and TensorRT). After loading,
    ``providers`` lists what actually runs and ``fallback`` says why a GPU provider did not.
    """

    def __init__(self, path: str | Path, providers: Iterable[str] | None = None,
                 threads: int | None = None, io_binding: bool | None = None):
        ort = _quiet_ort()
        self.path = Path(path)
        if not self.path.is_file():
            raise ArtganError(f"{self.path}: model file not found")
        opts = _session_options(ort, threads)
        opts.inter_op_num_threads = 1  # generators are chains of layers: nothing to run side by side
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        wanted = list(providers) if providers else choose_providers()
        # a GPU provider whose libraries are missing is dropped here, with the reason, rather than
        # handed to onnxruntime, which prints pages of errors (some on stdout) before falling back
        dropped = [p for p in wanted if p in GPU_PROVIDERS and provider_problem(p)]
        usable = [p for p in wanted if p not in dropped] or ["CPUExecutionProvider"]
        self.fallback = f"{dropped[0]} could not start: {provider_problem(dropped[0])}" if dropped else ""
        wanted = usable
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                providers=_with_options(wanted, self.path))
        except Exception as exc:
            if wanted == ["CPUExecutionProvider"]:
                raise ArtganError(f"{self.path}: onnxruntime cannot load it ({_first_line(exc)})") from None
            # a GPU provider that fails while building the session: say so and run on the CPU
            self.fallback = f"{wanted[0]} failed to start ({_first_line(exc)})"
            try:
                self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                    providers=["CPUExecutionProvider"])
            except Exception as exc2:
                raise ArtganError(f"{self.path}: onnxruntime cannot load it ({_first_line(exc2)})") from None
        self.metadata = read_metadata(self.session)
        if "task" not in self.metadata:
            raise ArtganError(f"{self.path}: no artgan metadata (artgan.task); export it with "
                              f"`artgan export` or add the metadata described in exports/README.md")
        check_metadata(self.metadata, self.path, self.session)
        self.providers = self.session.get_providers()  # what actually started, not what was asked
        if not self.fallback:
            self.fallback = _fallback_note(wanted, self.providers)
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.io_binding = self.providers[0] in GPU_PROVIDERS if io_binding is None else io_binding

    @property
    def task(self) -> str:
        """The model's task from its metadata: ``generate`` or ``image-to-image``."""
        return self.metadata["task"]

    @property
    def provider(self) -> str:
        """The provider that runs the model (onnxruntime puts the others in as fallbacks per node)."""
        return self.providers[0]

    def describe(self) -> str:
        """``CPUExecutionProvider (CUDAExecutionProvider could not start: ...)``: for logs."""
        notes = [self.fallback] if self.fallback else []
        if self.metadata.get("precision") == "fp16" and self.provider == "CPUExecutionProvider":
            notes.append("an fp16 model on the CPU runs slower than its fp32 export")
        return self.provider + (f" ({'; '.join(notes)})" if notes else "")

    def check_feeds(self, feeds: dict[str, np.ndarray]) -> None:
        """Raise :class:`ArtganError` naming the input when a feed is missing, unknown, of the
        wrong dtype or shape; onnxruntime's own messages are much harder to act on."""
        unknown = [k for k in feeds if k not in self.inputs]
        if unknown:
            raise ArtganError(f"{self.path.name}: unknown input(s) {', '.join(map(repr, unknown))}; "
                              f"inputs: {', '.join(self.inputs)}")
        for name, meta in self.inputs.items():
            if name not in feeds:
                raise ArtganError(f"{self.path.name}: missing input {name!r}; inputs: {', '.join(self.inputs)}")
            arr = feeds[name]
            if not isinstance(arr, np.ndarray):
                raise ArtganError(f"{self.path.name}: input {name!r} must be a numpy array, got {type(arr).__name__}")
            want = _ORT_DTYPES.get(meta.type)
            if want is not None and arr.dtype != want:
                raise ArtganError(f"{self.path.name}: input {name!r} must be {np.dtype(want).name}, got "
                                  f"{arr.dtype} (convert with .astype(np.{np.dtype(want).name}))")
            if len(arr.shape) != len(meta.shape) or any(
                    isinstance(d, int) and d != s for d, s in zip(meta.shape, arr.shape)):
                raise ArtganError(f"{self.path.name}: input {name!r} must have shape "
                                  f"{_shape_str(meta.shape)}, got {tuple(arr.shape)}")

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The first output for ``feeds`` (input name -> array), after :meth:`check_feeds`."""
        self.check_feeds(feeds)
        for observe in _RUN_OBSERVERS:
            observe(self, feeds)
        try:
            if self.io_binding:
                return self._run_bound(feeds)
            return self.session.run(self.output_names[:1], feeds)[0]
        except Exception as exc:
            shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in feeds.items())
            hint = ""
            m = int(self.metadata.get("size_multiple", 1) or 1)
            if m > 1 and any(v.ndim == 4 and (v.shape[2] % m or v.shape[3] % m) for v in feeds.values()):
                hint = f" (height and width must be multiples of {m}: pad the image, or let a step tile it)"
            raise ArtganError(f"{self.path.name}: onnxruntime failed on inputs {shapes}{hint}: "
                              f"{_first_line(exc)}") from None

    def _run_bound(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        # I/O binding: inputs are copied to the device once, the output is written on the device
        # and copied back once, instead of onnxruntime staging each through extra buffers.
        device = "cuda" if self.provider in GPU_PROVIDERS else "cpu"
        binding = self.session.io_binding()
        for name, arr in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(arr))
        binding.bind_output(self.output_names[0], device)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]


class Generator(Model):
    """A noise-to-image generator: ``generate(n, seed)`` -> float32 NHWC in [0, 1]."""

    def __init__(self, path: str | Path, **kwargs: Any):
        super().__init__(path, **kwargs)
        if self.task != "generate":
            raise ArtganError(f"{self.path.name}: task is {self.task!r}, not a generator")
        if "latent_dim" not in self.metadata:
            raise ArtganError(f"{self.path.name}: metadata lacks latent_dim; re-export it with `artgan export`")
        self.latent_dim = int(self.metadata["latent_dim"])
        self.num_classes = int(self.metadata.get("num_classes", 0) or 0)
        names = list(self.inputs)
        self.latent_input = "z" if "z" in self.inputs else names[0]
        self.label_input = "label" if "label" in self.inputs else None

    def check_output(self, raw: Any, count: int) -> np.ndarray:
        """The generator contract, checked on every batch: ``count`` NCHW images of the
        metadata's channels (and size, where it says), finite. A broken export is one line
        naming the model, never a black or saturated image written with exit 0, nor an error
        blamed on the step after it."""
        who = f"{self.path.name}: the generator"
        fix = "the model is broken or not an artgan generator; re-export it with `artgan export`"
        shape = getattr(raw, "shape", None)
        if not isinstance(raw, np.ndarray) or raw.ndim != 4:
            raise ArtganError(f"{who} returned {'shape ' + str(tuple(shape)) if shape is not None else type(raw).__name__} "
                              f"for {count} latents, not NCHW images; {fix}")
        if len(raw) != count:
            raise ArtganError(f"{who} returned {len(raw)} image(s) for {count} latents; {fix}")
        channels, size = self.metadata.get("channels"), self.metadata.get("image_size")
        if isinstance(channels, int) and raw.shape[1] != channels:
            raise ArtganError(f"{who} returned {raw.shape[1]} channel(s), its metadata says {channels}; {fix}")
        if isinstance(size, int) and raw.shape[2:] != (size, size):
            raise ArtganError(f"{who} returned {raw.shape[2]}x{raw.shape[3]} images, its metadata says "
                              f"{size}x{size}; {fix}")
        if raw.size and not np.isfinite(raw).all():
            bad = int((~np.isfinite(raw)).reshape(len(raw), -1).any(axis=1).sum())
            raise ArtganError(f"{who} returned NaN or infinite values in {bad} of {count} image(s) (nothing was "
                              f"written for them); {fix}, or train it again (a diverged run)")
        return raw

    def latents(self, n: int, seed: int, truncation: float | None = None) -> np.ndarray:
        """Seeded standard-normal latents: row i is the same for a seed whatever ``n``. With
        ``truncation`` (the BigGAN trick) values beyond +-truncation are redrawn: lower values
        trade variety for typical, cleaner images."""
        z = np.random.default_rng(seed).standard_normal((n, self.latent_dim), dtype=np.float32)
        if truncation is None:
            return z
        if not truncation > 0:
            raise ArtganError(f"truncation must be > 0, got {truncation}")
        bad = np.abs(z) > truncation
        # round r redraws from its own stream seeded (seed, r): a value's redraws depend on its
        # position alone, so row i stays the same whatever n
        for r in range(1, 10_000):
            if not bad.any():
                break
            fresh = np.random.default_rng([seed, r]).standard_normal((n, self.latent_dim), dtype=np.float32)
            z = np.where(bad, fresh, z)
            bad = np.abs(z) > truncation
        return np.clip(z, -truncation, truncation)  # only reached for absurdly small truncation

    def from_latents(self, z: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 64,
                     progress: bool = False) -> np.ndarray:
        """Images for latents ``z`` (N, latent_dim), ``batch_size`` at a time."""
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ArtganError(f"{self.path.name}: latents must have shape (n, {self.latent_dim}), got {z.shape}")
        if batch_size < 1:
            raise ArtganError(f"batch size must be >= 1, got {batch_size}")
        z = z.astype(np.float32, copy=False)
        starts = range(0, len(z), batch_size)
        out = []
        for lo in _progress(starts, progress and len(starts) > 1):
            feeds = {self.latent_input: z[lo:lo + batch_size]}
            if self.label_input:
                lab = labels[lo:lo + batch_size] if labels is not None else \
                    np.arange(lo, lo + len(feeds[self.latent_input])) % max(self.num_classes, 1)
                feeds[self.label_input] = np.asarray(lab).astype(np.int64)
            out.append(self.check_output(self.run(feeds), len(feeds[self.latent_input])))
        if not out:
            return np.zeros((0, *self.image_shape()), np.float32)
        return to_images(np.concatenate(out), self.metadata)

    def generate(self, n: int, seed: int = 0, *, batch_size: int = 64, truncation: float | None = None,
                 labels: np.ndarray | None = None, progress: bool = False) -> np.ndarray:
        """``n`` images for ``seed``: float32 NHWC in [0, 1]."""
        return self.from_latents(self.latents(n, seed, truncation), labels, batch_size, progress)

    def __call__(self, n: int = 16, seed: int = 0, *, truncation: float | None = None,
                 labels: np.ndarray | None = None, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """``n`` images for ``seed`` as uint8 NHWC (``generate`` gives float32 in [0, 1]): what
        ``artgan generate`` writes."""
        from .images import to_uint8

        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ArtganError(f"n must be a whole number >= 1, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ArtganError(f"seed must be a whole number >= 0, got {seed!r}")
        return to_uint8(self.generate(int(n), int(seed), batch_size=batch_size, truncation=truncation,
                                      labels=labels, progress=progress))

    def interpolate(self, seeds: Sequence[int], frames: int = 24, *, truncation: float | None = None,
                    loop: bool = True, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """A walk through latent space: ``frames`` images from each seed's latent to the next
        one's along the great circle (spherical interpolation keeps every frame as likely as a
        real latent; straight lines pass through the low-norm middle, giving washed-out frames).
        With ``loop`` the walk returns to the first seed, for an animation that repeats smoothly."""
        if len(seeds) < 2:
            raise ArtganError("interpolation needs at least two seeds, e.g. 1,2,3")
        if frames < 1:
            raise ArtganError(f"frames must be >= 1, got {frames}")
        keys = [self.latents(1, s, truncation)[0] for s in seeds]
        if loop:
            keys.append(keys[0])
        ts = np.arange(frames, dtype=np.float64) / frames
        path = [slerp(a, b, t) for a, b in zip(keys[:-1], keys[1:]) for t in ts]
        if not loop:
            path.append(keys[-1])
        return self.from_latents(np.stack(path).astype(np.float32), None, batch_size, progress)

    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one generated image, from the model's metadata."""
        s = int(self.metadata.get("image_size", 0))
        return (s, s, int(self.metadata.get("channels", 3)))


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1); the norm moves linearly."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na == 0 or nb == 0:
        return ((1 - t) * a64 + t * b64).astype(a.dtype)
    ua, ub = a64 / na, b64 / nb
    omega = math.acos(float(np.clip(ua @ ub, -1.0, 1.0)))
    if omega < 1e-6:
        direction = ua
    else:
        direction = (math.sin((1 - t) * omega) * ua + math.sin(t * omega) * ub) / math.sin(omega)
    return (direction * ((1 - t) * na + t * nb)).astype(a.dtype)


def to_images(raw: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    """Model output (NCHW in the model's ``value_range``) -> float32 NHWC in [0, 1]."""
    lo, hi = metadata.get("value_range", [-1.0, 1.0])
    return np.clip((raw.transpose(0, 2, 3, 1) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _progress(items, enabled: bool):
    if not enabled:
        return items
    from tqdm.auto import tqdm  # only when there is progress to show: importing it costs start-up time
    return tqdm(items, desc="generate", unit="batch", file=sys.stderr)


# -- providers ----------------------------------------------------------------------------------

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
    Where pip's nvidia-* packages (as PyTorch installs them) hold the CUDA libraries, they are
    preloaded first, as onnxruntime's ``preload_dlls`` does.
    """
    if provider not in available_providers():
        return "not in this onnxruntime build"
    lib = _PROVIDER_LIBS.get(provider)
    if lib is None or not sys.platform.startswith("linux"):
        return ""
    import ctypes
    import onnxruntime as ort
    capi = Path(ort.__file__).parent / "capi"
    _preload_pip_cuda()
    try:
        ctypes.CDLL(str(capi / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(capi / lib))
    except OSError as exc:
        return str(exc)
    return ""


@functools.lru_cache(maxsize=None)
def _preload_pip_cuda() -> bool:
    """Load CUDA/cuDNN from pip's ``nvidia`` packages when there are some (onnxruntime does not
    look there by itself unless torch was imported first)."""
    import importlib.util
    import onnxruntime as ort
    if importlib.util.find_spec("nvidia") is None or not hasattr(ort, "preload_dlls"):
        return False
    import contextlib
    import io
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its warnings
            ort.preload_dlls(directory="")
    except Exception:
        return False
    return True


def choose_providers() -> list[str]:
    """TensorRT, CUDA, CPU: those that can start here, in that order (``ARTGAN_PROVIDERS``, a
    comma list, overrides). ``Model.providers`` tells what actually runs."""
    forced = os.environ.get("ARTGAN_PROVIDERS")
    if forced:
        wanted = [p.strip() for p in forced.split(",") if p.strip()]
        known = available_providers()
        unknown = [p for p in wanted if p not in known]
        if unknown or not wanted:  # onnxruntime would print its banner of errors, then fall back
            raise ArtganError(f"ARTGAN_PROVIDERS: unknown provider {(unknown or [forced])[0][:60]!r}; this onnxruntime "
                              f"has {', '.join(known)} (a comma list of them, or unset it)")
        return wanted
    return [p for p in PROVIDER_ORDER if p == "CPUExecutionProvider" or not provider_problem(p)]


def _with_options(providers: list[str], model_path: Path) -> list:
    """TensorRT builds an engine per model on first use (tens of seconds): cache it beside the
    user's other caches so the second start is fast."""
    out: list = []
    for p in providers:
        if p == "TensorrtExecutionProvider":
            cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "artgan" / "tensorrt"
            out.append((p, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}))
        else:
            out.append(p)
    return out


def _fallback_note(wanted: list[str], started: list[str]) -> str:
    """'' when the first provider asked for runs; else which one did not and why (as far as known)."""
    if not wanted or not started or started[0] == wanted[0]:
        return ""
    missing = [p for p in wanted if p not in started and p in GPU_PROVIDERS]
    if not missing:
        return ""
    why = provider_problem(missing[0]) if missing[0] in available_providers() else "not in this build"
    return f"{missing[0]} could not start" + (f": {why}" if why else "; run `artgan doctor`")


def _env_threads() -> int:
    value = os.environ.get("ARTGAN_THREADS", "").strip()
    if not value:
        return 0
    most = max(MAX_THREADS_PER_CPU * cpu_count(), 16)
    if not value.isdigit() or len(value) > 9 or int(value) > most:
        # thousands of threads do not start in reasonable time (ARTGAN_THREADS=100000 hung)
        raise ArtganError(f"ARTGAN_THREADS must be a whole number of threads from 1 to {most} (this machine has "
                          f"{cpu_count()} CPU(s)), got {value[:40]!r}")
    return int(value)


def cpu_count() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (containers)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" or "200000 100000"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _first_line(exc: BaseException) -> str:
    """The useful part of an exception's message: onnxruntime's status prefix and the C++
    function signatures it embeds are dropped."""
    import re
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(exc).strip())
    text = re.sub(r"/onnxruntime_src/\S+ [\w:~]+\((?:[^()]|\([^()]*\))*\)\s*", " ", text)
    return text.splitlines()[0].strip() if text else type(exc).__name__


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8}
