"""What ``artgan build`` writes into a model's card besides the export's sections and the
evaluation's table, the same way for every task:

- ``summary``: the task, the model's name, what its pipeline says it is, how to run it;
- ``training``: the data and recipe as trained, iterations, time, precision, the machine, the
  exported module's parameters and the last logged losses (from the run);
- ``real_inputs``: ONNX against PyTorch on the inputs the task's step gives the model for the
  first evaluation image (:func:`artgan.export.verify_on_real_inputs`);
- ``speed``: that step's seconds per image at 512x512, on the same image resized.

The real inputs come from the task's own evaluation: its ``load`` of the image and its method for
the model (the step as a user runs it, pre-processing included), seen on their way into
onnxruntime (:func:`artgan.runtime.observing_runs`). So no task needs a card script of its own.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

SPEED_SIZE = 512
SPEED_RUNS = 5
#: ONNX against PyTorch on real inputs, for an fp32 export (whose random-input check sets no PSNR):
#: they agree to 150 dB and more on photos; below 50 dB something differs that random inputs miss
REAL_INPUTS_MIN_PSNR = 50.0


def summary(task: Any, name: str, description: str) -> dict[str, Any]:
    """The card's title and what the model is: the task's one line, its pipeline's description."""
    lines = [description, ""] if description else []
    if task.step:
        lines.append(f"- use: `artgan process IMAGES --step {task.step}:model={name} --out DIR`")
    return {"title": f"{task.name} `{name}`: {task.summary}", "lines": lines}


def training(run_dir: Path, pipeline: dict[str, Any], trained: dict[str, Any], parameters: int) -> dict[str, Any]:
    """The ``training`` section: what the run trained on and how (``pipeline``: the resolved
    mapping; ``trained``: the train stage's result), and the lines the card shows."""
    from .files import read_jsonl

    train = next(stage["train"] for stage in pipeline["stages"] if "train" in stage)
    metrics = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    last = {k: round(v, 4) for k, v in (metrics[-1] if metrics else {}).items()
            if k != "time" and isinstance(v, (int, float))}
    facts = {"pipeline": pipeline.get("name"), "dataset": train["dataset"], "architecture": train["architecture"],
             "iterations": trained["iterations"], "batch_size": train.get("batch_size"),
             "seconds": round(trained["seconds"]), "stopped_by": trained["stopped_by"],
             "precision": trained["precision"], "machine": machine(), "parameters": parameters,
             "last_logged_metrics": last, "run": run_dir.name}
    data_name, data = _named(train["dataset"])
    recipe_name, recipe = _named(train["architecture"])
    seconds = facts["seconds"]
    took = f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds} s"
    lines = [f"- data: `{data_name}` on `{Path(str(data.pop('path', ''))).name}`"
             + (f" ({json.dumps(data)})" if data else ""),
             f"- training: pipeline `{facts['pipeline']}`, {facts['iterations']} iterations of batch "
             f"{facts['batch_size']} in {took}" + (" (its time budget)" if facts["stopped_by"] == "seconds" else "")
             + f" on {facts['machine']}, {facts['precision']}",
             f"- recipe: `{recipe_name}` {json.dumps(recipe)}; {parameters:,} parameters exported",
             f"- last logged metrics: {json.dumps(last)}"]
    return {**facts, "lines": lines}


def _named(entry: Any) -> tuple[str, dict[str, Any]]:
    """A pipeline's ``{name: ..., params}`` (or a bare name) -> (name, params but paths of images)."""
    if not isinstance(entry, dict):
        return str(entry), {}
    hidden = ("name", "sample_images")  # where the sample grids' images came from: not the model's data
    return str(entry.get("name")), {k: v for k, v in entry.items() if k not in hidden}


def machine() -> str:
    """What ran it, in words: the CPU model and its core count, and the GPU if there is one."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch
        gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    except ImportError:
        gpu = ""
    return f"{cpu}, {os.cpu_count()} CPU cores{gpu}"


def real_inputs(module: Any, model: Path, method: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray,
                describe: str, min_psnr: float | None) -> dict[str, Any] | None:
    """ONNX (``model``) against PyTorch (``module``) on what ``method`` feeds the model for
    ``inputs``, recorded in the card as ``real_inputs``; None when the method did not run the model
    through :mod:`artgan.runtime` (nothing seen to compare on)."""
    from .export import verify_on_real_inputs
    from .runtime import observing_runs

    feeds: list[dict[str, np.ndarray]] = []

    def keep(runner: Any, feed: dict[str, np.ndarray]) -> None:
        if runner.path.resolve() == model.resolve():
            feeds.append({k: np.array(v, copy=True) for k, v in feed.items()})

    with observing_runs(keep):
        method(inputs)
    if not feeds:
        return None
    shapes = sorted({f"{image.shape[-1]}x{image.shape[-2]}" for image in (next(iter(f.values())) for f in feeds)})
    return verify_on_real_inputs(module, model, feeds, min_psnr=min_psnr,
                                 describe=f"{describe}: {len(feeds)} input(s) of {', '.join(shapes)} (WxH) as the "
                                          f"step makes them")


def speed(method: Callable[[np.ndarray], np.ndarray], inputs: Any, runs: int = SPEED_RUNS) -> dict[str, Any] | None:
    """Seconds per image of ``method`` (the step, pre- and post-processing included) on ``inputs``
    resized to 512x512: the median and the fastest of ``runs``, after one warm-up run (onnxruntime
    plans its kernels for a size on the first). None for inputs that are no batch of NHWC images
    (nothing to resize)."""
    if not (isinstance(inputs, np.ndarray) and inputs.ndim == 4):
        return None
    n, h, w = inputs.shape[:3]
    rows, cols = np.arange(SPEED_SIZE) * h // SPEED_SIZE, np.arange(SPEED_SIZE) * w // SPEED_SIZE
    resized = np.ascontiguousarray(inputs[:, rows][:, :, cols])  # nearest: masks stay masks
    method(resized)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        method(resized)
        times.append((time.perf_counter() - start) / n)
    return {"size": [SPEED_SIZE, SPEED_SIZE], "images": n, "median_s": round(float(np.median(times)), 3),
            "fastest_s": round(min(times), 3), "runs": runs,
            "threads": os.environ.get("ARTGAN_THREADS", "onnxruntime's default"), "machine": machine()}


def speed_lines(step: str, image: str, timing: dict[str, Any]) -> list[str]:
    """The ``speed`` section's lines for :func:`speed`'s figures of ``step`` on ``image``."""
    return [f"- the `{step}` step on {image} resized to {SPEED_SIZE}x{SPEED_SIZE}: {timing['median_s']} s per "
            f"image (median of {timing['runs']}; fastest {timing['fastest_s']} s), ARTGAN_THREADS "
            f"{timing['threads']}, on {timing['machine']}"]
