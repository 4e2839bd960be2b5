"""The one training loop.

:func:`train` is one function over local state that reads top to bottom, in sections: set-up
(device, processes, run folder, seed), recipe and resume, data, random streams as the checkpoint
left them, precision and layout, clocks and outputs, then the loop: per iteration each phase of the
recipe (zero grads, losses, backward, gradient averaging across processes, optimiser step), then
what is due (metrics, diversity, evaluation, checkpoint and sample grid), and the report. The
helpers below it have one job each. Everything it writes lands in the run folder, atomically, and
only from the first process.

Data-parallel training: launch with ``torchrun --nproc-per-node N -m artgan run ...``. Every
process holds the whole recipe and its own slice of every global batch (``batch_size`` is per
process); after each phase's backward the gradients are averaged with one ``all_reduce`` over a
flattened bucket, the arithmetic of ``DistributedDataParallel``. We do not wrap modules in
``DistributedDataParallel`` itself: a GAN phase runs D twice before one backward and R1/WGAN-GP
need double backward, which its reducer does not support (StyleGAN3 averages gradients the same
way for the same reasons).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

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


# -- training --------------------------------------------------------------------------------

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
    log = log or (lambda line: None)
    run_dir = Path(run_dir)
    ckpt_file = checkpoint_path(run_dir)
    metrics_file, evals_file = run_dir / "metrics.jsonl", run_dir / "evaluations.jsonl"

    # -- set-up: device, processes, run folder, seed
    # The order below keeps a resumed run bit-identical: each draw from the global RNGs stays where it was.
    device = pick_device(options.device)
    procs = Processes.from_env(device)
    bar = tb = None
    try:
        if procs.main:
            (run_dir / "samples").mkdir(parents=True, exist_ok=True)
            for stale in ckpt_file.parent.glob(f".{ckpt_file.name}.*.tmp"):  # a save cut by a crash
                stale.unlink()
        seed_everything(options.seed)
        fixed = recipe.fixed_inputs(options.sample_count, torch.Generator().manual_seed(options.seed))

        # -- recipe and resume: weights from the checkpoint, then the same on every process
        # Modules go to the device before their state is loaded: Optimizer.load_state_dict puts each
        # state tensor beside its parameter, so a resumed CUDA run keeps Adam's moments on the GPU.
        recipe.to(device)
        ckpt = checkpoints.load(ckpt_file, map_location="cpu") if resume and ckpt_file.exists() else None
        start = int(ckpt["iteration"]) if ckpt is not None else 0  # the iteration resumed from
        if ckpt is not None:
            recipe.load_state_dict(ckpt["state"])
            if procs.main:  # records written after the checkpoint go: the resumed run writes them again
                _keep_until(metrics_file, start)
                _keep_until(evals_file, start)
        recipe.to(device).train(True)
        # every process starts from the first one's weights (they are seeded alike; this makes sure)
        procs.broadcast_([t for m in recipe.modules.values() for t in (*m.parameters(), *m.buffers())])
        fixed = {k: v.to(device) for k, v in fixed.items()}  # the sample grids' inputs, drawn once from the seed
        phases = recipe.phases()

        # -- data: the batch order is a function of (seed, batch index), so a resumed run picks up the
        # same batches. Creating the loader draws from the global RNG: do it before restoring RNG state.
        data = batches(dataset, options.batch_size, options.seed, start_batch=start,
                       num_workers=options.num_workers, rank=procs.rank, world_size=procs.world,
                       pin_memory=device.type == "cuda")

        # -- random streams, loss window and diversity record: as the checkpoint left them
        window = LossWindow()  # the logged losses since the last log iteration
        health = {"best_diversity": 0.0, "measured": 0, "warned": False}  # the sample diversity record
        if ckpt is not None:
            rngs = ckpt.get("rng_per_process") or [ckpt["rng"]]
            if len(rngs) == procs.world:
                checkpoints.set_rng_state(rngs[procs.rank])
            else:  # resumed with another number of processes: same weights, fresh noise streams
                warnings.warn(f"checkpoint was written by {len(rngs)} process(es), resuming with "
                              f"{procs.world}: random streams restart from the seed")
                seed_everything(options.seed + 7919 * procs.rank + start)
            window = LossWindow.from_record(ckpt.get("log_window", {}), device)
            health.update(ckpt.get("health", {}))
        elif procs.world > 1:  # a fresh multi-process run: each process draws its own noise
            seed_everything(options.seed + 7919 * procs.rank)

        # -- precision and layout: as resumed, else measured on the first batch (on a copy of the
        # recipe). The probe's seconds count against the time budget (a budget bounds the stage).
        probe_start = time.perf_counter()
        if ckpt is not None and ckpt.get("precision"):
            resumed = PrecisionChoice.from_record(ckpt["precision"])
            choice = dataclasses.replace(resumed, reason=f"as before the resume: {resumed.reason}")
        elif start < options.iterations:
            first = next(data)  # the batch the first iteration would draw anyway; the probe leaves RNGs alone
            timer = iteration_timer(recipe, {k: v.to(device) for k, v in first.items()}, device)
            choice = choose_precision(device, options.precision, options.channels_last, timer)
            if procs.world > 1:  # every process computes as the first one chose (their timings may differ)
                choice = PrecisionChoice.from_record(procs.gather(choice.as_record())[0])
            data = itertools.chain([first], data)
        else:  # nothing left to train: nothing to measure
            choice = choose_precision(device, options.precision, options.channels_last)
        set_up_seconds = time.perf_counter() - probe_start
        autocast = autocast_for(device, choice.bf16)  # the context each phase's forward pass runs in
        memory_format = torch.channels_last if choice.channels_last else torch.contiguous_format
        for m in recipe.modules.values():
            m.to(memory_format=memory_format)
        if procs.main and start < options.iterations:
            log(f"  precision: {choice.describe()}")
            append_jsonl(metrics_file, {"iteration": start, "time": time.time(), "precision": choice.as_record()})

        # -- clocks and outputs: the time budget spans resumes; images_seen and t_interval give the image rate
        trained_before = float(ckpt.get("train_seconds", 0.0)) if ckpt is not None else 0.0
        tb = _tensorboard(run_dir) if options.tensorboard and procs.main else None
        bar = TrainProgress(start=start, iterations=options.iterations, seconds=options.seconds,
                            trained_before=trained_before, enabled=progress and procs.main)
        t_interval = time.perf_counter()
        t0 = t_interval - set_up_seconds  # when this process began training, the probe included

        def trained_seconds() -> float:
            return trained_before + time.perf_counter() - t0

        images_seen = 0
        # on a GPU, any non-finite loss since the last check (a per-iteration check would cost a sync
        # each time; on the CPU it is free, so it is checked at once)
        nonfinite = torch.zeros((), dtype=torch.bool, device=device)

        def after_backward(phase: Phase, losses: dict[str, torch.Tensor]) -> None:
            # between a phase's backward and its optimiser step: average gradients across processes,
            # with the loss riding along so every process takes the same decision about a non-finite value
            grads = [p.grad for g in phase.optimizer.param_groups for p in g["params"] if p.grad is not None]
            shared = losses["loss"].detach().float().reshape(1)
            procs.average_([*grads, shared])
            if device.type == "cpu":
                if not torch.isfinite(shared).all():
                    raise _nonfinite_error(ckpt_file, f"{phase.name} loss ({shared.item()}) at iteration {iteration}")
            else:
                nonfinite.logical_or_(~torch.isfinite(shared).all())

        def save_checkpoint() -> None:
            """Weights, optimisers, RNG states of every process, the loss window and the diversity record
            as the loop has them now; then the sample grid. Never replaces a good checkpoint with a broken one."""
            for name, m in recipe.modules.items():
                if not all(bool(torch.isfinite(p).all()) for p in m.parameters()):
                    raise _nonfinite_error(ckpt_file, f"weights in {name} at iteration {iteration}")
            if procs.world > 1:
                _check_same_weights(procs, recipe, iteration)
            rngs = procs.gather(checkpoints.rng_state())
            if not procs.main:
                return
            checkpoints.save(ckpt_file, {
                "iteration": iteration, "recipe": recipe_config, "state": recipe.state_dict(),
                "precision": choice.as_record(), "train_seconds": trained_seconds(),
                "rng": rngs[0], "rng_per_process": rngs, "options": asdict(options),
                "log_window": window.as_record(), "health": dict(health),
            })
            grid = make_grid(tensor_to_float01(_generate_fixed(recipe, fixed, device)))
            save_image(run_dir / "samples" / f"iteration_{iteration:06d}.png", grid)
            if tb is not None:
                tb.add_image("samples", grid, iteration, dataformats="HWC")
            if on_checkpoint:
                on_checkpoint(iteration, ckpt_file)

        # -- the loop: until options.iterations, or the first checkpoint after the time budget
        iteration, stopped_by = start, "iterations"  # iteration: the iterations done
        if start < options.iterations and _out_of_time(procs, device, options.seconds, trained_seconds):
            stopped_by = "seconds"  # resumed with the budget already spent
        while iteration < options.iterations and stopped_by == "iterations":
            iteration += 1
            # one training iteration: every phase of the recipe that is due
            batch = {k: _to_device(v, device, memory_format) for k, v in next(data).items()}
            losses = run_phases(phases, batch, iteration, autocast=autocast, after_backward=after_backward)
            recipe.after_iteration(iteration)
            window.add(losses)
            images_seen += next(iter(batch.values())).shape[0] * procs.world
            bar.update(iteration, trained_seconds())

            # what is due at this iteration: a log line, a checkpoint, the end of the time budget
            log_now = iteration % options.log_every == 0 or iteration == options.iterations
            ckpt_now = iteration % options.checkpoint_every == 0 or iteration == options.iterations
            eval_now = options.eval_every and (iteration % options.eval_every == 0 or iteration == options.iterations)
            # a time budget ends the run at a checkpoint, as a normal end (export and the rest follow);
            # with several processes it is checked at log iterations only, where they synchronise anyway
            if (options.seconds and not ckpt_now and (procs.world == 1 or log_now)
                    and _out_of_time(procs, device, options.seconds, trained_seconds)):
                ckpt_now, stopped_by = True, "seconds"
            if (log_now or ckpt_now) and bool(nonfinite):
                raise _nonfinite_error(ckpt_file, f"loss between iterations {iteration - options.log_every + 1} "
                                                  f"and {iteration}")

            # -- metrics: the mean losses since the last log line (across processes), the image rate,
            # the sample diversity
            if log_now:
                metrics = window.means(procs)
                metrics["images_per_s"] = images_seen / max(time.perf_counter() - t_interval, 1e-9)
                window, t_interval, images_seen = LossWindow(), time.perf_counter(), 0
                if procs.main:
                    if options.collapse_ratio > 0:
                        diversity = sample_diversity(_generate_fixed(recipe, fixed, device, limit=16))  # 120 pairs
                        metrics["sample_diversity"] = diversity
                        health = _watch_collapse(health, diversity, options.collapse_ratio, iteration)
                    append_jsonl(metrics_file, {"iteration": iteration, "time": time.time(), **metrics})
                    bar.set_postfix({k: f"{v:.3f}" for k, v in metrics.items() if k.endswith("_loss")})
                    _add_scalars(tb, metrics, iteration)
                    if on_metrics:
                        on_metrics(iteration, metrics)

            # -- evaluation (first process only)
            if eval_now and procs.main:
                result = evaluate(lambda n, seed: sample_images(recipe, n, seed, device))
                append_jsonl(evals_file, {"iteration": iteration, **result})
                scalars = {f"eval/{k}": v for k, v in result.get("metrics", {}).items() if isinstance(v, (int, float))}
                append_jsonl(metrics_file, {"iteration": iteration, "time": time.time(), **scalars})
                _add_scalars(tb, scalars, iteration)

            # -- checkpoint and samples
            if ckpt_now:
                save_checkpoint()
            if stopped_by == "seconds":
                log(f"  time budget of {options.seconds:g} s reached at iteration {iteration}")

        # -- nothing trained (already at the last iteration, or out of time): still leave a checkpoint
        if iteration == start and not ckpt_file.exists():
            save_checkpoint()

        # -- report
        return {"iterations": iteration, "resumed_from": start, "seconds": time.perf_counter() - t0,
                "stopped_by": stopped_by, "checkpoint": str(ckpt_file), "processes": procs.world,
                "device": str(device), "bf16": choice.bf16, "channels_last": choice.channels_last,
                "precision": choice.describe()}
    finally:
        if bar is not None:
            bar.close()
        if tb is not None:
            tb.close()
        procs.close()


# -- the loop's helpers, one job each ---------------------------------------------------------

@dataclass
class LossWindow:
    """Running sums of the logged losses since the last log iteration (tensors: no sync per iteration)."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    count: int = 0  # iterations added

    def add(self, losses_by_phase: dict[str, dict[str, torch.Tensor]]) -> None:
        """One iteration's losses, as ``run_phases`` returns them."""
        for phase, losses in losses_by_phase.items():
            for k, v in losses.items():
                key = f"{phase}/{k}" if k != "loss" else f"{phase}_loss"
                prev = self.sums.get(key)
                v = v.detach().float()
                self.sums[key] = v if prev is None else prev + v
        self.count += 1

    def means(self, procs: Processes) -> dict[str, float]:
        """The mean of each loss over the window, averaged across processes."""
        keys = sorted(self.sums)
        values = [self.sums[k].reshape(1) for k in keys]
        procs.average_(values)
        return {k: float(v) / self.count for k, v in zip(keys, values)}

    def as_record(self) -> dict[str, Any]:
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "count": self.count}

    @classmethod
    def from_record(cls, record: dict[str, Any], device: torch.device) -> "LossWindow":
        return cls({k: torch.tensor(v, device=device) for k, v in record.get("sums", {}).items()},
                   record.get("count", 0))


def _keep_until(path: Path, iteration: int) -> None:
    """Drop log records past ``iteration`` (written after the checkpoint a run resumes from)."""
    if path.exists():
        # a record without a number for its iteration is no record of this run's: it stays, and the
        # report leaves it out with a warning
        kept = [r for r in read_jsonl(path) if not isinstance(r.get("iteration"), (int, float))
                or isinstance(r.get("iteration"), bool) or r["iteration"] <= iteration]
        write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def _out_of_time(procs: Processes, device: torch.device, seconds: float, trained_seconds: Callable[[], float]) -> bool:
    """Whether the time budget is spent; every process takes rank 0's decision."""
    spent = seconds and trained_seconds() >= seconds
    flag = torch.tensor([1.0 if spent else 0.0], device=device)
    procs.broadcast_([flag])
    return bool(flag)


def _nonfinite_error(ckpt_file: Path, what: str) -> ArtganError:
    return ArtganError(
        f"non-finite {what}; training stopped, the last good checkpoint is "
        f"{ckpt_file if ckpt_file.exists() else 'not written yet'}. Lower the learning rate, "
        f"try another loss (hinge, wgan-gp) or a regulariser (spectral_norm, r1), then --resume")


def _watch_collapse(health: dict[str, Any], diversity: float, ratio: float, iteration: int) -> dict[str, Any]:
    """The diversity record with one more measurement; warns once when the diversity falls under
    ``ratio`` x its best."""
    measured = health["measured"] + 1
    best = max(health["best_diversity"], diversity)
    collapsed = measured >= 3 and diversity < ratio * best
    if collapsed and not health["warned"]:
        warnings.warn(f"iteration {iteration}: sample diversity fell to {diversity:.3f}, under {ratio:g} x its best "
                      f"({best:.3f}); the generator may be collapsing. Try spectral_norm, r1, ema, "
                      f"diffaugment or a lower lr", CollapseWarning, stacklevel=2)
    return {**health, "best_diversity": best, "measured": measured, "warned": collapsed}


def _check_same_weights(procs: Processes, recipe: GANRecipe, iteration: int) -> None:
    """Every process must hold the same weights; say so loudly if not."""
    sums = torch.stack([p.detach().float().sum() for m in recipe.modules.values() for p in m.parameters()])
    ref = sums.clone()
    procs.broadcast_([ref])
    differs = torch.tensor([0.0 if torch.equal(ref, sums) else 1.0], device=sums.device)
    procs.average_([differs])
    if float(differs) > 0:
        raise ArtganError(f"iteration {iteration}: the processes' weights have diverged (a non-deterministic "
                          f"op or an unsynchronised update); the checkpoint was not written")


def _generate_fixed(recipe: GANRecipe, fixed: dict[str, torch.Tensor], device: torch.device,
                    limit: int | None = None) -> torch.Tensor:
    """Images for the fixed sample inputs (the first ``limit``), in eval mode, RNGs untouched."""
    inputs = fixed if limit is None else {k: v[:limit] for k, v in fixed.items()}
    recipe.train(False)
    try:
        with _rng_fork(device), torch.no_grad():
            return recipe.sample(inputs)
    finally:
        recipe.train(True)


def _add_scalars(tb, scalars: dict[str, float], iteration: int) -> None:
    if tb is not None:
        for k, v in scalars.items():
            tb.add_scalar(k, v, iteration)


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
