"""The one training loop.

Reads top to bottom: set up (device, seed, data, fixed sample inputs, resume), then per step each
phase of the recipe (zero grads, losses, backward, optimiser step), then the periodic work
(metrics, samples, checkpoints). Everything it writes lands in the run folder, atomically.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from . import checkpoints
from .data import batches, tensor_to_float01
from .errors import ArtganError
from .files import append_jsonl
from .images import make_grid, save_image
from .recipe import GANRecipe


@dataclass
class TrainOptions:
    steps: int = 1000
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"  # auto: CUDA when present, else CPU
    log_every: int = 50
    checkpoint_every: int = 250  # a sample grid is written with every checkpoint
    num_workers: int = 0
    sample_count: int = 64


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArtganError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ArtganError(f"device {name!r} asked for, but PyTorch sees no CUDA GPU; use device: auto")
    return device


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints" / "last.pt"


def train(recipe: GANRecipe, dataset, run_dir: str | Path, options: TrainOptions, *,
          recipe_config: dict[str, Any], resume: bool = False, progress: bool = True,
          on_metrics: Callable[[int, dict[str, float]], None] | None = None,
          on_checkpoint: Callable[[int, Path], None] | None = None) -> dict[str, Any]:
    """Train ``recipe`` on ``dataset`` for ``options.steps`` steps into ``run_dir``.

    ``recipe_config`` (architecture, params, dataset info, loss) is stored in every checkpoint
    so the recipe can be rebuilt from it. Returns a summary (steps, seconds, last losses).
    """
    run_dir = Path(run_dir)
    (run_dir / "samples").mkdir(parents=True, exist_ok=True)
    ckpt_file = checkpoint_path(run_dir)
    metrics_file = run_dir / "metrics.jsonl"

    # -- set up: device, seed, fixed sample inputs, resume --------------------------------------
    device = pick_device(options.device)
    seed_everything(options.seed)
    fixed = recipe.fixed_inputs(options.sample_count, torch.Generator().manual_seed(options.seed))
    start, ckpt = 0, None
    if resume and ckpt_file.exists():
        ckpt = checkpoints.load(ckpt_file, map_location="cpu")
        recipe.load_state_dict(ckpt["state"])
        start = int(ckpt["step"])
    recipe.to(device).train(True)
    fixed = {k: v.to(device) for k, v in fixed.items()}
    phases = recipe.phases()
    # The batch order is a function of (seed, batch index), so a resumed run picks up the same
    # batches. Creating the loader draws from the global RNG: do it before restoring RNG state.
    data = batches(dataset, options.batch_size, options.seed, start_batch=start,
                   num_workers=options.num_workers, pin_memory=device.type == "cuda")
    if ckpt is not None:
        checkpoints.set_rng_state(ckpt["rng"])

    def save_checkpoint(step: int) -> None:
        checkpoints.save(ckpt_file, {
            "step": step, "recipe": recipe_config, "state": recipe.state_dict(),
            "rng": checkpoints.rng_state(), "options": asdict(options),
        })
        write_samples(step)
        if on_checkpoint:
            on_checkpoint(step, ckpt_file)

    def write_samples(step: int) -> None:
        recipe.train(False)
        images = tensor_to_float01(recipe.sample(fixed))
        recipe.train(True)
        save_image(run_dir / "samples" / f"step_{step:06d}.png", make_grid(images))

    # -- the loop ---------------------------------------------------------------------------
    bar = _progress(start, options.steps, progress)
    sums: dict[str, float] = {}
    count, t_interval, images_seen = 0, time.perf_counter(), 0
    t0 = time.perf_counter()
    step = start
    try:
        for step in range(start + 1, options.steps + 1):
            batch = {k: v.to(device, non_blocking=True) for k, v in next(data).items()}
            for phase in phases:
                if step % phase.every:
                    continue
                phase.optimizer.zero_grad(set_to_none=True)
                losses = phase.step(batch)
                loss = losses["loss"]
                if not torch.isfinite(loss):
                    raise ArtganError(
                        f"non-finite {phase.name} loss ({loss.item()}) at step {step}; training "
                        f"stopped, the last good checkpoint is {ckpt_file if ckpt_file.exists() else 'not written yet'}. "
                        f"Lower the learning rate or try another loss")
                loss.backward()
                phase.optimizer.step()
                for k, v in losses.items():
                    key = f"{phase.name}/{k}" if k != "loss" else f"{phase.name}_loss"
                    sums[key] = sums.get(key, 0.0) + float(v.detach())
            recipe.after_step(step)
            count += 1
            images_seen += next(iter(batch.values())).shape[0]
            bar.update(1)

            if step % options.log_every == 0 or step == options.steps:
                now = time.perf_counter()
                metrics = {k: v / count for k, v in sums.items()}
                metrics["images_per_s"] = images_seen / max(now - t_interval, 1e-9)
                append_jsonl(metrics_file, {"step": step, "time": time.time(), **metrics})
                bar.set_postfix({k: f"{v:.3f}" for k, v in metrics.items() if k.endswith("_loss")})
                if on_metrics:
                    on_metrics(step, metrics)
                sums, count, t_interval, images_seen = {}, 0, now, 0
            if step % options.checkpoint_every == 0 or step == options.steps:
                save_checkpoint(step)
    finally:
        bar.close()
    if start >= options.steps and not ckpt_file.exists():
        save_checkpoint(start)
    return {"steps": options.steps, "resumed_from": start, "seconds": time.perf_counter() - t0,
            "checkpoint": str(ckpt_file)}


def _progress(start: int, total: int, enabled: bool):
    from tqdm.auto import tqdm
    # in a log file (not a terminal) a bar that redraws ten times a second floods it: redraw rarely
    interval = 0.1 if sys.stderr.isatty() else 15.0
    return tqdm(total=total, initial=start, desc="train", unit="step", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True, leave=True, mininterval=interval)
