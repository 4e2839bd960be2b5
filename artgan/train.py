"""The one training loop.

Reads top to bottom: set up (processes, device, seed, data, fixed sample inputs, resume), then per
step each phase of the recipe (zero grads, losses, backward, gradient averaging across processes,
optimiser step), then the periodic work (metrics, diversity, evaluation, samples, checkpoints).
Everything it writes lands in the run folder, atomically, and only from the first process.

Data-parallel training: launch with ``torchrun --nproc-per-node N -m artgan run ...``. Every
process holds the whole recipe and its own slice of every global batch (``batch_size`` is per
process); after each phase's backward the gradients are averaged with one ``all_reduce`` over a
flattened bucket, the arithmetic of ``DistributedDataParallel``. We do not wrap modules in
``DistributedDataParallel`` itself: a GAN phase runs D twice before one backward and R1/WGAN-GP
need double backward, which its reducer does not support (StyleGAN3 averages gradients the same
way for the same reasons).
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import checkpoints
from .data import batches, tensor_to_float01
from .errors import ArtganError
from .files import append_jsonl, read_jsonl, write_text
from .images import make_grid, save_image
from .precision import PrecisionChoice, autocast as autocast_for, choose_precision, step_timer
from .recipe import GANRecipe


class CollapseWarning(UserWarning):
    """Sample diversity fell sharply: the generator may be collapsing onto few modes."""


@dataclass
class TrainOptions:
    steps: int = 1000
    batch_size: int = 64  # per process
    seed: int = 0
    device: str = "auto"  # auto: CUDA when present (cuda:LOCAL_RANK under torchrun), else CPU
    log_every: int = 50
    checkpoint_every: int = 250  # a sample grid is written with every checkpoint
    num_workers: int = 0
    sample_count: int = 64
    precision: str = "auto"  # auto: bf16 autocast where measured faster (artgan.precision); fp32; bf16
    channels_last: bool | None = None  # None: on for CUDA, measured on CPU; true/false forces it
    seconds: float = 0  # time budget: end at a checkpoint once training has run this long; 0: none
    eval_every: int = 0  # run the dataset's metrics every n steps (and at the end); 0: never
    eval_samples: int = 5000  # generated images per evaluation during training
    collapse_ratio: float = 0.5  # warn when sample diversity drops below this x its best; 0: off
    tensorboard: bool = False  # also log to run_dir/tensorboard (needs `pip install tensorboard`)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArtganError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ArtganError(f"device {name!r} asked for, but PyTorch sees no CUDA GPU; use device: auto")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints" / "last.pt"


# -- processes ---------------------------------------------------------------------------------

@dataclass
class Processes:
    """This process's place in a data-parallel run (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    started_here: bool = False  # we initialised the process group, so we tear it down

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> "Processes":
        import torch.distributed as dist

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        started = False
        if not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            started = True
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), started_here=started)

    def average_(self, tensors: list[torch.Tensor]) -> None:
        """Average ``tensors`` across processes in place, with one all_reduce."""
        if self.world == 1 or not tensors:
            return
        import torch.distributed as dist

        flat = torch.cat([t.reshape(-1).float() for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world
        for t, chunk in zip(tensors, flat.split([t.numel() for t in tensors])):
            t.copy_(chunk.view_as(t))

    def broadcast_(self, tensors: list[torch.Tensor]) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist

        for t in tensors:
            dist.broadcast(t, src=0)

    def gather(self, obj: Any) -> list[Any]:
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.started_here:
            import torch.distributed as dist
            dist.destroy_process_group()


# -- helpers the CLI and the metrics use too ---------------------------------------------------------

@torch.no_grad()
def sample_images(recipe: GANRecipe, n: int, seed: int, device: torch.device | str = "cpu",
                  batch_size: int = 500) -> np.ndarray:
    """``n`` images (float32 NHWC in [0, 1]) from the recipe's sampling path, seeded: the
    inputs come from ``recipe.fixed_inputs(n, Generator(seed))``. Leaves RNG states untouched."""
    device = torch.device(device)
    inputs = recipe.fixed_inputs(n, torch.Generator().manual_seed(seed))
    modes = {k: m.training for k, m in recipe.modules.items()}
    recipe.train(False)
    out = []
    try:
        with _rng_fork(device):
            for lo in range(0, n, batch_size):
                chunk = {k: v[lo:lo + batch_size].to(device) for k, v in inputs.items()}
                out.append(tensor_to_float01(recipe.sample(chunk)))
    finally:
        for k, m in recipe.modules.items():
            m.train(modes[k])
    return np.concatenate(out)


def _rng_fork(device: torch.device):
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


def sample_diversity(images: torch.Tensor) -> float:
    """Mean pairwise RMS distance between images (downsampled to at most 16x16): near 0 when
    the generator makes the same picture for every input."""
    x = images.detach().float()
    if x.shape[-1] > 16:
        x = torch.nn.functional.adaptive_avg_pool2d(x, 16)
    x = x.flatten(1)
    if len(x) < 2:
        return 0.0
    return float(torch.pdist(x).mean() / math.sqrt(x.shape[1]))


def _keep_until(path: Path, step: int) -> None:
    """Drop log records past ``step`` (written after the checkpoint a run resumes from)."""
    if path.exists():
        kept = [r for r in read_jsonl(path) if int(r.get("step", 0)) <= step]
        import json
        write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def train(recipe: GANRecipe, dataset, run_dir: str | Path, options: TrainOptions, *,
          recipe_config: dict[str, Any], resume: bool = False, progress: bool = True,
          on_metrics: Callable[[int, dict[str, float]], None] | None = None,
          on_checkpoint: Callable[[int, Path], None] | None = None,
          evaluate: Callable[[Callable[[int, int], np.ndarray]], dict[str, Any]] | None = None,
          log: Callable[[str], None] | None = None,
          ) -> dict[str, Any]:
    """Train ``recipe`` on ``dataset`` for ``options.steps`` steps into ``run_dir``.

    ``recipe_config`` (architecture, params, dataset info, loss) is stored in every checkpoint
    so the recipe can be rebuilt from it. ``evaluate(sample_fn)`` (optional) computes metrics
    from ``sample_fn(n, seed)`` -> images; it runs every ``options.eval_every`` steps and returns
    ``{"metrics": {name: number}, ...}``. ``log(line)`` (optional) receives what a person should
    read in the run's log (the precision chosen, and why). Training ends after ``options.steps``
    steps, or at the first checkpoint once ``options.seconds`` of training have passed (counted
    across resumes). Returns a summary (steps, seconds, checkpoint, precision, stopped_by).
    """
    run_dir = Path(run_dir)
    ckpt_file = checkpoint_path(run_dir)
    metrics_file, evals_file = run_dir / "metrics.jsonl", run_dir / "evaluations.jsonl"
    if options.seconds < 0:
        raise ArtganError(f"train.seconds must be >= 0 (0: no time budget), got {options.seconds}")
    if options.eval_every and evaluate is None:
        raise ArtganError("eval_every is set but no metrics exist for this dataset; set eval_every: 0")

    # -- set up: processes, device, seed, fixed sample inputs, resume ------------------------------
    device = pick_device(options.device)
    procs = Processes.from_env(device)
    try:
        return _train(recipe, dataset, run_dir, options, recipe_config, resume, progress, on_metrics,
                      on_checkpoint, evaluate, device, procs, ckpt_file, metrics_file, evals_file,
                      log or (lambda line: None))
    finally:
        procs.close()


def _train(recipe, dataset, run_dir, options, recipe_config, resume, progress, on_metrics,
           on_checkpoint, evaluate, device, procs, ckpt_file, metrics_file, evals_file, log):
    if procs.main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        for stale in ckpt_file.parent.glob(f".{ckpt_file.name}.*.tmp"):  # a save cut by a crash
            stale.unlink()
    seed_everything(options.seed)
    fixed = recipe.fixed_inputs(options.sample_count, torch.Generator().manual_seed(options.seed))
    start, ckpt = 0, None
    # Modules go to the device before their state is loaded: Optimizer.load_state_dict puts each
    # state tensor beside its parameter, so a resumed CUDA run keeps Adam's moments on the GPU.
    recipe.to(device)
    if resume and ckpt_file.exists():
        ckpt = checkpoints.load(ckpt_file, map_location="cpu")
        recipe.load_state_dict(ckpt["state"])
        start = int(ckpt["step"])
        if procs.main:
            _keep_until(metrics_file, start)
            _keep_until(evals_file, start)
    recipe.to(device).train(True)
    # every process starts from the first one's weights (they are seeded alike; this makes sure)
    procs.broadcast_([t for m in recipe.modules.values() for t in (*m.parameters(), *m.buffers())])
    fixed = {k: v.to(device) for k, v in fixed.items()}
    phases = recipe.phases()
    # The batch order is a function of (seed, batch index), so a resumed run picks up the same
    # batches. Creating the loader draws from the global RNG: do it before restoring RNG state.
    data = batches(dataset, options.batch_size, options.seed, start_batch=start,
                   num_workers=options.num_workers, rank=procs.rank, world_size=procs.world,
                   pin_memory=device.type == "cuda")
    window: dict[str, Any] = {"sums": {}, "count": 0}
    health = {"best_diversity": 0.0, "measured": 0, "warned": False}
    if ckpt is not None:
        rngs = ckpt.get("rng_per_process") or [ckpt["rng"]]
        if len(rngs) == procs.world:
            checkpoints.set_rng_state(rngs[procs.rank])
        else:  # resumed with another number of processes: same weights, fresh noise streams
            warnings.warn(f"checkpoint was written by {len(rngs)} process(es), resuming with "
                          f"{procs.world}: random streams restart from the seed", stacklevel=2)
            seed_everything(options.seed + 7919 * procs.rank + start)
        window = {"sums": {k: torch.tensor(v, device=device) for k, v in ckpt.get("log_window", {}).get("sums", {}).items()},
                  "count": ckpt.get("log_window", {}).get("count", 0)}
        health.update(ckpt.get("health", {}))
    elif procs.world > 1:  # each process draws its own noise
        seed_everything(options.seed + 7919 * procs.rank)
    # -- precision and layout: measured on the first batch (on a copy of the recipe), or as resumed --
    if ckpt is not None and ckpt.get("precision"):
        choice = PrecisionChoice.from_record(ckpt["precision"])
        choice = PrecisionChoice(choice.bf16, choice.channels_last, f"as before the resume: {choice.reason}",
                                 choice.measured)
    elif start < options.steps:
        first = next(data)  # the batch the first step would draw anyway; the probe leaves RNGs alone
        data = itertools.chain([first], data)
        probe_batch = {k: v.to(device) for k, v in first.items()}
        choice = _agree(procs, choose_precision(device, options.precision, options.channels_last,
                                                step_timer(recipe, probe_batch, device)))
    else:
        choice = choose_precision(device, options.precision, options.channels_last)
    fmt = torch.channels_last if choice.channels_last else torch.contiguous_format
    for m in recipe.modules.values():
        m.to(memory_format=fmt)
    autocast = autocast_for(device, choice.bf16)
    if procs.main and start < options.steps:
        log(f"  precision: {choice.describe()}")
        append_jsonl(metrics_file, {"step": start, "time": time.time(), "precision": choice.as_record()})
    trained_before = float(ckpt.get("train_seconds", 0.0)) if ckpt is not None else 0.0
    tb = _tensorboard(run_dir) if options.tensorboard and procs.main else None
    check_every_step = device.type == "cpu"  # a per-step check costs a GPU sync; on CPU it is free
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)

    def stop_nonfinite(what: str) -> ArtganError:
        return ArtganError(
            f"non-finite {what}; training stopped, the last good checkpoint is "
            f"{ckpt_file if ckpt_file.exists() else 'not written yet'}. Lower the learning rate, "
            f"try another loss (hinge, wgan-gp) or a regulariser (spectral_norm, r1), then --resume")

    def save_checkpoint(step: int) -> None:
        for name, m in recipe.modules.items():  # never replace a good checkpoint with a broken one
            if not all(bool(torch.isfinite(p).all()) for p in m.parameters()):
                raise stop_nonfinite(f"weights in {name} at step {step}")
        if procs.world > 1:  # every process must hold the same weights; say so loudly if not
            sums = torch.stack([p.detach().float().sum() for m in recipe.modules.values() for p in m.parameters()])
            ref = sums.clone()
            procs.broadcast_([ref])
            differs = torch.tensor([0.0 if torch.equal(ref, sums) else 1.0], device=sums.device)
            procs.average_([differs])
            if float(differs) > 0:
                raise ArtganError(f"step {step}: the processes' weights have diverged (a non-deterministic "
                                  f"op or an unsynchronised update); the checkpoint was not written")
        rngs = procs.gather(checkpoints.rng_state())
        if procs.main:
            checkpoints.save(ckpt_file, {
                "step": step, "recipe": recipe_config, "state": recipe.state_dict(),
                "precision": choice.as_record(), "train_seconds": trained_seconds(),
                "rng": rngs[0], "rng_per_process": rngs, "options": asdict(options),
                "log_window": {"sums": {k: float(v) for k, v in window["sums"].items()},
                               "count": window["count"]},
                "health": dict(health),
            })
            write_samples(step)
            if on_checkpoint:
                on_checkpoint(step, ckpt_file)

    def generate_fixed(limit: int | None = None) -> torch.Tensor:
        inputs = fixed if limit is None else {k: v[:limit] for k, v in fixed.items()}
        recipe.train(False)
        try:
            with _rng_fork(device), torch.no_grad():
                return recipe.sample(inputs)
        finally:
            recipe.train(True)

    def write_samples(step: int) -> None:
        grid = make_grid(tensor_to_float01(generate_fixed()))
        save_image(run_dir / "samples" / f"step_{step:06d}.png", grid)
        if tb is not None:
            tb.add_image("samples", grid, step, dataformats="HWC")

    def check_diversity(step: int, metrics: dict[str, float]) -> None:
        d = sample_diversity(generate_fixed(limit=16))  # 120 pairs: enough, and cheap
        metrics["sample_diversity"] = d
        health["measured"] += 1
        best = health["best_diversity"] = max(health["best_diversity"], d)
        collapsed = health["measured"] >= 3 and d < options.collapse_ratio * best
        if collapsed and not health["warned"]:
            warnings.warn(f"step {step}: sample diversity fell to {d:.3f}, under "
                          f"{options.collapse_ratio:g} x its best ({best:.3f}); the generator may be "
                          f"collapsing. Try spectral_norm, r1, ema, diffaugment or a lower lr", CollapseWarning, stacklevel=2)
        health["warned"] = collapsed

    def run_evaluation(step: int) -> None:
        result = evaluate(lambda n, seed: sample_images(recipe, n, seed, device))
        record = {"step": step, **result}
        append_jsonl(evals_file, record)
        scalars = {f"eval/{k}": v for k, v in result.get("metrics", {}).items() if isinstance(v, (int, float))}
        append_jsonl(metrics_file, {"step": step, "time": time.time(), **scalars})
        if tb is not None:
            for k, v in scalars.items():
                tb.add_scalar(k, v, step)

    # -- the loop ---------------------------------------------------------------------------
    bar = _progress(start, options.steps, progress and procs.main)
    t_interval, images_seen = time.perf_counter(), 0
    t0 = time.perf_counter()
    step, stopped_by = start, "steps"

    def trained_seconds() -> float:  # across resumes: the budget is for the whole training
        return trained_before + time.perf_counter() - t0

    def out_of_time() -> bool:  # every process takes rank 0's decision
        flag = torch.tensor([1.0 if options.seconds and trained_seconds() >= options.seconds else 0.0],
                            device=device)
        procs.broadcast_([flag])
        return bool(flag)

    try:
        for step in range(start + 1, options.steps + 1):
            if step == start + 1 and out_of_time():  # resumed with the budget already spent
                step, stopped_by = start, "seconds"
                break
            batch = {k: _to_device(v, device, fmt) for k, v in next(data).items()}
            for phase in phases:
                if step % phase.every:
                    continue
                phase.optimizer.zero_grad(set_to_none=True)
                with autocast():
                    losses = phase.step(batch)
                loss = losses["loss"]
                loss.backward()
                # average gradients across processes, with the loss riding along so every process
                # takes the same decision about a non-finite value
                grads = [p.grad for g in phase.optimizer.param_groups for p in g["params"] if p.grad is not None]
                shared = loss.detach().float().reshape(1)
                procs.average_([*grads, shared])
                if check_every_step:
                    if not torch.isfinite(shared).all():
                        raise stop_nonfinite(f"{phase.name} loss ({shared.item()}) at step {step}")
                else:
                    nonfinite |= ~torch.isfinite(shared).all()
                phase.optimizer.step()
                for k, v in losses.items():
                    key = f"{phase.name}/{k}" if k != "loss" else f"{phase.name}_loss"
                    prev = window["sums"].get(key)
                    v = v.detach().float()
                    window["sums"][key] = v if prev is None else prev + v
            recipe.after_step(step)
            window["count"] += 1
            images_seen += next(iter(batch.values())).shape[0] * procs.world
            bar.update(1)

            log_now = step % options.log_every == 0 or step == options.steps
            ckpt_now = step % options.checkpoint_every == 0 or step == options.steps
            # a time budget ends the run at a checkpoint, as a normal end (export and the rest follow);
            # with several processes it is checked at log steps only, where they synchronise anyway
            if options.seconds and not ckpt_now and (procs.world == 1 or log_now) and out_of_time():
                ckpt_now, stopped_by = True, "seconds"
            if (log_now or ckpt_now) and not check_every_step and bool(nonfinite):
                raise stop_nonfinite(f"loss between steps {step - options.log_every + 1} and {step}")
            if log_now:
                now = time.perf_counter()
                keys = sorted(window["sums"])
                values = [window["sums"][k].reshape(1) for k in keys]
                procs.average_(values)
                metrics = {k: float(v) / window["count"] for k, v in zip(keys, values)}
                metrics["images_per_s"] = images_seen / max(now - t_interval, 1e-9)
                if procs.main:
                    if options.collapse_ratio > 0:
                        check_diversity(step, metrics)
                    append_jsonl(metrics_file, {"step": step, "time": time.time(), **metrics})
                    bar.set_postfix({k: f"{v:.3f}" for k, v in metrics.items() if k.endswith("_loss")})
                    if tb is not None:
                        for k, v in metrics.items():
                            tb.add_scalar(k, v, step)
                    if on_metrics:
                        on_metrics(step, metrics)
                window = {"sums": {}, "count": 0}
                t_interval, images_seen = time.perf_counter(), 0
            if options.eval_every and procs.main and (step % options.eval_every == 0 or step == options.steps):
                run_evaluation(step)
            if ckpt_now:
                save_checkpoint(step)
            if stopped_by == "seconds":
                log(f"  time budget of {options.seconds:g} s reached at step {step}")
                break
    finally:
        bar.close()
        if tb is not None:
            tb.close()
    if (start >= options.steps or step == start) and not ckpt_file.exists():
        save_checkpoint(start)
    seconds = time.perf_counter() - t0
    return {"steps": step, "resumed_from": start, "seconds": seconds, "stopped_by": stopped_by,
            "checkpoint": str(ckpt_file), "processes": procs.world, "device": str(device),
            "bf16": choice.bf16, "channels_last": choice.channels_last, "precision": choice.describe()}


def _agree(procs: Processes, choice: PrecisionChoice) -> PrecisionChoice:
    """Every process computes as the first one chose (their timings may differ)."""
    return PrecisionChoice.from_record(procs.gather(choice.as_record())[0]) if procs.world > 1 else choice


def _to_device(v: torch.Tensor, device: torch.device, fmt: torch.memory_format) -> torch.Tensor:
    v = v.to(device, non_blocking=True)
    if v.dim() == 4 and v.is_floating_point() and fmt is torch.channels_last:
        v = v.contiguous(memory_format=fmt)
    return v


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ArtganError("tensorboard: true needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _progress(start: int, total: int, enabled: bool):
    from tqdm.auto import tqdm
    # in a log file (not a terminal) a bar that redraws ten times a second floods it: redraw rarely
    interval = 0.1 if sys.stderr.isatty() else 15.0
    return tqdm(total=total, initial=start, desc="train", unit="step", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True, leave=True, mininterval=interval)
