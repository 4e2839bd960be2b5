"""The one training loop.

Reads top to bottom: set up (processes, device, seed, data, fixed sample inputs, resume), then per
iteration each phase of the recipe (zero grads, losses, backward, gradient averaging across processes,
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

import contextlib
import dataclasses
import itertools
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from . import checkpoints
from .data import batches, tensor_to_float01
from .errors import ArtganError
from .files import append_jsonl, read_jsonl, write_text
from .images import make_grid, save_image
from .precision import PrecisionChoice, autocast as autocast_for, choose_precision, iteration_timer
from .recipe import GANRecipe, Phase, run_phases
from .train_options import TrainOptions


class CollapseWarning(UserWarning):
    """Sample diversity fell sharply: the generator may be collapsing onto few modes."""


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


def _keep_until(path: Path, iteration: int) -> None:
    """Drop log records past ``iteration`` (written after the checkpoint a run resumes from)."""
    if path.exists():
        # a record without a number for its iteration is no record of this run's: it stays, and the
        # report leaves it out with a warning
        kept = [r for r in read_jsonl(path) if not isinstance(r.get("iteration"), (int, float))
                or isinstance(r.get("iteration"), bool) or r["iteration"] <= iteration]
        import json
        write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


# -- the state of one training run -------------------------------------------------------------

@dataclass
class LossWindow:
    """Running sums of the logged losses since the last log iteration (tensors: no sync per iteration)."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    count: int = 0

    def add(self, phase: str, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            key = f"{phase}/{k}" if k != "loss" else f"{phase}_loss"
            prev = self.sums.get(key)
            v = v.detach().float()
            self.sums[key] = v if prev is None else prev + v

    def as_record(self) -> dict[str, Any]:
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "count": self.count}

    @classmethod
    def from_record(cls, record: dict[str, Any], device: torch.device) -> "LossWindow":
        return cls({k: torch.tensor(v, device=device) for k, v in record.get("sums", {}).items()},
                   record.get("count", 0))


@dataclass
class Run:
    """What the loop works with, fixed once set up, and what it changes as it goes (the iteration,
    the loss window, the diversity record, timers). Helpers take it instead of closing over
    shared dicts, so each reads on its own."""

    # -- fixed at set-up
    recipe: GANRecipe
    options: TrainOptions
    run_dir: Path
    recipe_config: dict[str, Any]
    device: torch.device
    procs: Processes
    phases: list[Phase]
    fixed: dict[str, torch.Tensor]  # inputs of the sample grids, drawn once from the seed
    choice: PrecisionChoice | None  # bf16 or fp32, channels_last or NCHW: chosen once set up
    log: Callable[[str], None]
    on_metrics: Callable[[int, dict[str, float]], None] | None = None
    on_checkpoint: Callable[[int, Path], None] | None = None
    evaluate: Callable[[Callable[[int, int], np.ndarray]], dict[str, Any]] | None = None
    tb: Any = None  # a tensorboard SummaryWriter, or None
    # -- changed as it runs
    start: int = 0  # the iteration resumed from (0: a fresh run)
    iteration: int = 0
    stopped_by: str = "iterations"
    window: LossWindow = field(default_factory=LossWindow)
    health: dict[str, Any] = field(default_factory=lambda: {"best_diversity": 0.0, "measured": 0, "warned": False})
    trained_before: float = 0.0  # seconds of training before this resume (the budget spans resumes)
    t0: float = 0.0  # perf_counter when this process began training (less set_up_seconds)
    set_up_seconds: float = 0.0  # the precision probe's, counted as training time
    t_interval: float = 0.0  # perf_counter at the last log iteration
    images_seen: int = 0  # since the last log iteration, across processes
    nonfinite: torch.Tensor | None = None  # on a GPU: any non-finite loss since the last check

    @property
    def checkpoint(self) -> Path:
        return checkpoint_path(self.run_dir)

    @property
    def metrics_file(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    @property
    def evals_file(self) -> Path:
        return self.run_dir / "evaluations.jsonl"

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.choice.channels_last else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context each phase's forward pass runs in (bf16 autocast, or nothing)."""
        return autocast_for(self.device, self.choice.bf16)()

    @property
    def check_every_iteration(self) -> bool:
        return self.device.type == "cpu"  # a per-iteration check costs a GPU sync; on CPU it is free

    def trained_seconds(self) -> float:
        return self.trained_before + time.perf_counter() - self.t0


# -- the loop ----------------------------------------------------------------------------------

def train(recipe: GANRecipe, dataset, run_dir: str | Path, options: TrainOptions, *,
          recipe_config: dict[str, Any], resume: bool = False, progress: bool = True,
          on_metrics: Callable[[int, dict[str, float]], None] | None = None,
          on_checkpoint: Callable[[int, Path], None] | None = None,
          evaluate: Callable[[Callable[[int, int], np.ndarray]], dict[str, Any]] | None = None,
          log: Callable[[str], None] | None = None,
          ) -> dict[str, Any]:
    """Train ``recipe`` on ``dataset`` for ``options.iterations`` iterations into ``run_dir``.

    ``recipe_config`` (architecture, params, dataset info, loss) is stored in every checkpoint
    so the recipe can be rebuilt from it. ``evaluate(sample_fn)`` (optional) computes metrics
    from ``sample_fn(n, seed)`` -> images; it runs every ``options.eval_every`` iterations and returns
    ``{"metrics": {name: number}, ...}``. ``log(line)`` (optional) receives what a person should
    read in the run's log (the precision chosen, and why). Training ends after ``options.iterations``
    iterations, or at the first checkpoint once ``options.seconds`` of training have passed (counted
    across resumes). Returns a summary (iterations, seconds, checkpoint, precision, stopped_by).
    """
    if options.seed is None:  # outside a pipeline, which gives its own seed
        options = dataclasses.replace(options, seed=0)
    if options.seconds < 0:
        raise ArtganError(f"train.seconds must be >= 0 (0: no time budget), got {options.seconds}")
    if options.eval_every and evaluate is None:
        raise ArtganError("eval_every is set but no metrics exist for this dataset; set eval_every: 0")
    device = pick_device(options.device)
    procs = Processes.from_env(device)
    try:
        run, data = _set_up(recipe, dataset, Path(run_dir), options, recipe_config, resume, device, procs,
                            log or (lambda line: None))
        run.on_metrics, run.on_checkpoint, run.evaluate = on_metrics, on_checkpoint, evaluate
        return _loop(run, data, progress)
    finally:
        procs.close()


def _loop(run: Run, data: Iterator[dict[str, torch.Tensor]], progress: bool) -> dict[str, Any]:
    """Iterate until ``options.iterations`` or the time budget; log, evaluate and checkpoint on schedule."""
    options, procs = run.options, run.procs
    run.tb = _tensorboard(run.run_dir) if options.tensorboard and procs.main else None
    bar = TrainProgress(start=run.start, iterations=options.iterations, seconds=options.seconds,
                        trained_before=run.trained_before, enabled=progress and procs.main)
    run.t_interval = time.perf_counter()
    run.t0 = run.t_interval - run.set_up_seconds
    run.iteration = run.start
    try:
        for iteration in range(run.start + 1, options.iterations + 1):
            if iteration == run.start + 1 and _out_of_time(run):  # resumed with the budget already spent
                run.stopped_by = "seconds"
                break
            run.iteration = iteration
            # -- one training iteration: every phase of the recipe that is due
            batch = {k: _to_device(v, run.device, run.memory_format) for k, v in next(data).items()}
            run_phases(run.phases, batch, iteration, autocast=run.autocast,
                       after_backward=lambda phase, losses: _after_backward(run, phase, losses))
            run.recipe.after_iteration(iteration)
            run.window.count += 1
            run.images_seen += next(iter(batch.values())).shape[0] * procs.world
            bar.update(iteration, run.trained_seconds())

            # -- what is due at this iteration: a log line, a checkpoint, the end of the time budget
            log_now = iteration % options.log_every == 0 or iteration == options.iterations
            ckpt_now = iteration % options.checkpoint_every == 0 or iteration == options.iterations
            # a time budget ends the run at a checkpoint, as a normal end (export and the rest follow);
            # with several processes it is checked at log iterations only, where they synchronise anyway
            if options.seconds and not ckpt_now and (procs.world == 1 or log_now) and _out_of_time(run):
                ckpt_now, run.stopped_by = True, "seconds"
            if (log_now or ckpt_now) and not run.check_every_iteration and bool(run.nonfinite):
                raise _nonfinite_error(run, f"loss between iterations {iteration - options.log_every + 1} and {iteration}")

            # -- periodic work
            if log_now:
                metrics = _window_metrics(run)
                if procs.main:
                    _log_metrics(run, metrics, bar)
            if options.eval_every and procs.main and (iteration % options.eval_every == 0 or iteration == options.iterations):
                _run_evaluation(run)
            if ckpt_now:
                _save_checkpoint(run)
            if run.stopped_by == "seconds":
                run.log(f"  time budget of {options.seconds:g} s reached at iteration {iteration}")
                break
    finally:
        bar.close()
        if run.tb is not None:
            run.tb.close()
    # -- nothing trained (already at the last iteration, or out of time): still leave a checkpoint
    if run.iteration == run.start and not run.checkpoint.exists():
        _save_checkpoint(run)
    return {"iterations": run.iteration, "resumed_from": run.start, "seconds": time.perf_counter() - run.t0,
            "stopped_by": run.stopped_by, "checkpoint": str(run.checkpoint), "processes": procs.world,
            "device": str(run.device), "bf16": run.choice.bf16, "channels_last": run.choice.channels_last,
            "precision": run.choice.describe()}


# -- set-up ------------------------------------------------------------------------------------

def _set_up(recipe: GANRecipe, dataset, run_dir: Path, options: TrainOptions, recipe_config: dict[str, Any],
            resume: bool, device: torch.device, procs: Processes, log: Callable[[str], None],
            ) -> tuple[Run, Iterator[dict[str, torch.Tensor]]]:
    """The run folder, seed, fixed sample inputs, resumed state, data and precision, in the order
    that keeps a resumed run bit-identical (each draw from the global RNGs stays where it was)."""
    ckpt_file = checkpoint_path(run_dir)
    if procs.main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        for stale in ckpt_file.parent.glob(f".{ckpt_file.name}.*.tmp"):  # a save cut by a crash
            stale.unlink()
    seed_everything(options.seed)
    fixed = recipe.fixed_inputs(options.sample_count, torch.Generator().manual_seed(options.seed))
    # -- weights: resumed from the checkpoint, then the same on every process
    # Modules go to the device before their state is loaded: Optimizer.load_state_dict puts each
    # state tensor beside its parameter, so a resumed CUDA run keeps Adam's moments on the GPU.
    recipe.to(device)
    ckpt = checkpoints.load(ckpt_file, map_location="cpu") if resume and ckpt_file.exists() else None
    start = int(ckpt["iteration"]) if ckpt is not None else 0
    if ckpt is not None:
        recipe.load_state_dict(ckpt["state"])
        if procs.main:
            _keep_until(run_dir / "metrics.jsonl", start)
            _keep_until(run_dir / "evaluations.jsonl", start)
    recipe.to(device).train(True)
    # every process starts from the first one's weights (they are seeded alike; this makes sure)
    procs.broadcast_([t for m in recipe.modules.values() for t in (*m.parameters(), *m.buffers())])
    fixed = {k: v.to(device) for k, v in fixed.items()}
    phases = recipe.phases()
    # -- data: the batch order is a function of (seed, batch index), so a resumed run picks up the
    # same batches. Creating the loader draws from the global RNG: do it before restoring RNG state.
    data = batches(dataset, options.batch_size, options.seed, start_batch=start,
                   num_workers=options.num_workers, rank=procs.rank, world_size=procs.world,
                   pin_memory=device.type == "cuda")
    run = Run(recipe, options, run_dir, recipe_config, device, procs, phases, fixed, choice=None, log=log,
              start=start)
    _restore_streams(run, ckpt)
    # -- precision and layout: measured on the first batch (on a copy of the recipe), or as resumed;
    # the probe's seconds count against the time budget (a budget bounds the stage, not just its loop)
    probe_start = time.perf_counter()
    run.choice, data = _choose_precision(run, ckpt, data)
    run.set_up_seconds = time.perf_counter() - probe_start
    for m in recipe.modules.values():
        m.to(memory_format=run.memory_format)
    if procs.main and start < options.iterations:
        log(f"  precision: {run.choice.describe()}")
        append_jsonl(run.metrics_file, {"iteration": start, "time": time.time(), "precision": run.choice.as_record()})
    run.trained_before = float(ckpt.get("train_seconds", 0.0)) if ckpt is not None else 0.0
    run.nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    return run, data


def _restore_streams(run: Run, ckpt: dict[str, Any] | None) -> None:
    """Random streams, the loss window and the diversity record as the checkpoint left them;
    a fresh multi-process run gives each process its own noise."""
    procs, options = run.procs, run.options
    if ckpt is not None:
        rngs = ckpt.get("rng_per_process") or [ckpt["rng"]]
        if len(rngs) == procs.world:
            checkpoints.set_rng_state(rngs[procs.rank])
        else:  # resumed with another number of processes: same weights, fresh noise streams
            warnings.warn(f"checkpoint was written by {len(rngs)} process(es), resuming with "
                          f"{procs.world}: random streams restart from the seed", stacklevel=3)
            seed_everything(options.seed + 7919 * procs.rank + run.start)
        run.window = LossWindow.from_record(ckpt.get("log_window", {}), run.device)
        run.health.update(ckpt.get("health", {}))
    elif procs.world > 1:  # each process draws its own noise
        seed_everything(options.seed + 7919 * procs.rank)


def _choose_precision(run: Run, ckpt: dict[str, Any] | None, data: Iterator[dict[str, torch.Tensor]],
                      ) -> tuple[PrecisionChoice, Iterator[dict[str, torch.Tensor]]]:
    """As resumed, else measured on the first batch (which the loop then still gets)."""
    options, device = run.options, run.device
    if ckpt is not None and ckpt.get("precision"):
        choice = PrecisionChoice.from_record(ckpt["precision"])
        return PrecisionChoice(choice.bf16, choice.channels_last, f"as before the resume: {choice.reason}",
                               choice.measured), data
    if run.start < options.iterations:
        first = next(data)  # the batch the first iteration would draw anyway; the probe leaves RNGs alone
        probe_batch = {k: v.to(device) for k, v in first.items()}
        choice = _agree(run.procs, choose_precision(device, options.precision, options.channels_last,
                                                    iteration_timer(run.recipe, probe_batch, device)))
        return choice, itertools.chain([first], data)
    return choose_precision(device, options.precision, options.channels_last), data


# -- between a phase's backward and its optimiser step ----------------------------------------------

def _after_backward(run: Run, phase: Phase, losses: dict[str, torch.Tensor]) -> None:
    """Gradients averaged across processes, the non-finite guard (before the update), and the
    losses into the log window."""
    loss = losses["loss"]
    # average gradients across processes, with the loss riding along so every process takes the
    # same decision about a non-finite value
    grads = [p.grad for g in phase.optimizer.param_groups for p in g["params"] if p.grad is not None]
    shared = loss.detach().float().reshape(1)
    run.procs.average_([*grads, shared])
    if run.check_every_iteration:
        if not torch.isfinite(shared).all():
            raise _nonfinite_error(run, f"{phase.name} loss ({shared.item()}) at iteration {run.iteration}")
    else:
        run.nonfinite |= ~torch.isfinite(shared).all()
    run.window.add(phase.name, losses)


def _out_of_time(run: Run) -> bool:
    """Whether the time budget is spent; every process takes rank 0's decision."""
    spent = run.options.seconds and run.trained_seconds() >= run.options.seconds
    flag = torch.tensor([1.0 if spent else 0.0], device=run.device)
    run.procs.broadcast_([flag])
    return bool(flag)


def _nonfinite_error(run: Run, what: str) -> ArtganError:
    return ArtganError(
        f"non-finite {what}; training stopped, the last good checkpoint is "
        f"{run.checkpoint if run.checkpoint.exists() else 'not written yet'}. Lower the learning rate, "
        f"try another loss (hinge, wgan-gp) or a regulariser (spectral_norm, r1), then --resume")


# -- periodic work: metrics, diversity, evaluation, samples, checkpoints -----------------------

def _window_metrics(run: Run) -> dict[str, float]:
    """The mean of each loss since the last log iteration (across processes) and the image rate;
    starts a new window."""
    keys = sorted(run.window.sums)
    values = [run.window.sums[k].reshape(1) for k in keys]
    run.procs.average_(values)
    metrics = {k: float(v) / run.window.count for k, v in zip(keys, values)}
    metrics["images_per_s"] = run.images_seen / max(time.perf_counter() - run.t_interval, 1e-9)
    run.window = LossWindow()
    run.t_interval, run.images_seen = time.perf_counter(), 0
    return metrics


def _log_metrics(run: Run, metrics: dict[str, float], bar) -> None:
    if run.options.collapse_ratio > 0:
        _check_diversity(run, metrics)
    append_jsonl(run.metrics_file, {"iteration": run.iteration, "time": time.time(), **metrics})
    bar.set_postfix({k: f"{v:.3f}" for k, v in metrics.items() if k.endswith("_loss")})
    if run.tb is not None:
        for k, v in metrics.items():
            run.tb.add_scalar(k, v, run.iteration)
    if run.on_metrics:
        run.on_metrics(run.iteration, metrics)


def _check_diversity(run: Run, metrics: dict[str, float]) -> None:
    """Record sample diversity; warn once when it falls under ``collapse_ratio`` x its best."""
    d = sample_diversity(_generate_fixed(run, limit=16))  # 120 pairs: enough, and cheap
    metrics["sample_diversity"] = d
    health, ratio = run.health, run.options.collapse_ratio
    health["measured"] += 1
    best = health["best_diversity"] = max(health["best_diversity"], d)
    collapsed = health["measured"] >= 3 and d < ratio * best
    if collapsed and not health["warned"]:
        warnings.warn(f"iteration {run.iteration}: sample diversity fell to {d:.3f}, under {ratio:g} x its best "
                      f"({best:.3f}); the generator may be collapsing. Try spectral_norm, r1, ema, "
                      f"diffaugment or a lower lr", CollapseWarning, stacklevel=4)
    health["warned"] = collapsed


def _run_evaluation(run: Run) -> None:
    result = run.evaluate(lambda n, seed: sample_images(run.recipe, n, seed, run.device))
    append_jsonl(run.evals_file, {"iteration": run.iteration, **result})
    scalars = {f"eval/{k}": v for k, v in result.get("metrics", {}).items() if isinstance(v, (int, float))}
    append_jsonl(run.metrics_file, {"iteration": run.iteration, "time": time.time(), **scalars})
    if run.tb is not None:
        for k, v in scalars.items():
            run.tb.add_scalar(k, v, run.iteration)


def _save_checkpoint(run: Run) -> None:
    """Weights, optimisers, RNG states of every process, the log window and the diversity record;
    then the sample grid. Never replaces a good checkpoint with a broken one."""
    for name, m in run.recipe.modules.items():
        if not all(bool(torch.isfinite(p).all()) for p in m.parameters()):
            raise _nonfinite_error(run, f"weights in {name} at iteration {run.iteration}")
    if run.procs.world > 1:
        _check_same_weights(run)
    rngs = run.procs.gather(checkpoints.rng_state())
    if not run.procs.main:
        return
    checkpoints.save(run.checkpoint, {
        "iteration": run.iteration, "recipe": run.recipe_config, "state": run.recipe.state_dict(),
        "precision": run.choice.as_record(), "train_seconds": run.trained_seconds(),
        "rng": rngs[0], "rng_per_process": rngs, "options": asdict(run.options),
        "log_window": run.window.as_record(), "health": dict(run.health),
    })
    grid = make_grid(tensor_to_float01(_generate_fixed(run)))
    save_image(run.run_dir / "samples" / f"iteration_{run.iteration:06d}.png", grid)
    if run.tb is not None:
        run.tb.add_image("samples", grid, run.iteration, dataformats="HWC")
    if run.on_checkpoint:
        run.on_checkpoint(run.iteration, run.checkpoint)


def _check_same_weights(run: Run) -> None:
    """Every process must hold the same weights; say so loudly if not."""
    sums = torch.stack([p.detach().float().sum() for m in run.recipe.modules.values() for p in m.parameters()])
    ref = sums.clone()
    run.procs.broadcast_([ref])
    differs = torch.tensor([0.0 if torch.equal(ref, sums) else 1.0], device=sums.device)
    run.procs.average_([differs])
    if float(differs) > 0:
        raise ArtganError(f"iteration {run.iteration}: the processes' weights have diverged (a non-deterministic "
                          f"op or an unsynchronised update); the checkpoint was not written")


def _generate_fixed(run: Run, limit: int | None = None) -> torch.Tensor:
    """Images for the fixed sample inputs (the first ``limit``), in eval mode, RNGs untouched."""
    inputs = run.fixed if limit is None else {k: v[:limit] for k, v in run.fixed.items()}
    run.recipe.train(False)
    try:
        with _rng_fork(run.device), torch.no_grad():
            return run.recipe.sample(inputs)
    finally:
        run.recipe.train(True)


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


class TrainProgress:
    """The training bar on stderr. Without a time budget: iterations done out of ``iterations``. Under one
    (``seconds``): seconds trained out of the budget, counted across resumes, with the iteration in
    the description, because a budgeted run's ``iterations`` is only a ceiling (``artgan style
    train`` sets 1,000,000) and a bar out of it would never move."""

    def __init__(self, *, start: int, iterations: int, seconds: float = 0, trained_before: float = 0.0,
                 enabled: bool = True, file=None):
        from tqdm.auto import tqdm

        file = file or sys.stderr
        # in a log file (not a terminal) a bar that redraws ten times a second floods it: redraw rarely
        interval = 0.1 if file.isatty() else 15.0
        common = dict(desc="train", file=file, disable=not enabled, dynamic_ncols=True, leave=True,
                      mininterval=interval)
        self.seconds = float(seconds)
        if self.seconds:
            self.bar = tqdm(total=self.seconds, initial=min(trained_before, self.seconds), unit="s",
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of the time "
                                       "budget [{elapsed}<{remaining}{postfix}]", **common)
            self.bar.set_description_str(f"train iteration {start}", refresh=False)
        else:
            self.bar = tqdm(total=iterations, initial=start, unit="it", **common)

    def update(self, iteration: int, trained_seconds: float) -> None:
        """After each training iteration: ``iteration`` done, ``trained_seconds`` of the budget spent."""
        if self.seconds:
            self.bar.set_description_str(f"train iteration {iteration}", refresh=False)
            self.bar.update(max(0.0, min(trained_seconds, self.seconds) - self.bar.n))
        else:
            self.bar.update(1)

    def set_postfix(self, values: dict[str, str]) -> None:
        self.bar.set_postfix(values)

    def close(self) -> None:
        self.bar.close()
