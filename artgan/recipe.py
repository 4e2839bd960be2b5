"""The contract between the trainer and an architecture plugin: a GAN recipe.

A recipe owns its networks and optimisers and knows how to take one training iteration; the one
trainer in :mod:`artgan.train` owns everything else (device, data, backward passes, checkpoints,
samples, logging). Unconditional and conditional GANs, super-resolution, inpainting and CycleGAN
all fit: each is a list of :class:`Phase` objects, one per optimiser. A recipe whose model maps
images to images (super-resolution, inpainting, style) extends
:class:`artgan.image_recipe.ImageToImageRecipe`.

A recipe takes its knobs as one config dataclass (a subclass of :class:`RecipeConfig`, in
nanoGPT's manner); the knobs every recipe shares (``lr``, ``betas``, ``ema``, the learning-rate
schedule) have one name everywhere, and :class:`GANRecipe` does the chores they drive (the EMA
of the generator, the schedule, the default adversarial loss by its registry name).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from .errors import ArtganError
from .training_tricks import EMA, LRSchedule


class AdversarialLoss:
    """Base class of the losses registered through ``artgan_register_losses``.

    Subclasses implement both methods; each receives raw discriminator outputs (logits) and
    returns a scalar tensor to minimise.
    """

    name = "loss"

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """D's loss (a scalar) from its logits on real and on generated images."""
        raise NotImplementedError

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """G's loss (a scalar) from D's logits on generated images."""
        raise NotImplementedError

    def discriminator_penalty(self, critic: Callable[[torch.Tensor], torch.Tensor],
                              real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """An extra term for D's loss that needs D itself (e.g. WGAN-GP's gradient penalty), or
        ``None`` (the default). ``critic`` maps images to logits; recipes add what it returns."""
        return None


@dataclass
class Phase:
    """One optimiser's turn in a training iteration.

    ``losses(batch)`` computes this phase's losses and returns them by name; ``"loss"`` is the one
    the trainer back-propagates through ``optimizer``; the others are logged. The trainer zeroes
    the gradients, calls ``losses``, runs ``backward`` and steps the optimiser.
    """

    name: str
    optimizer: torch.optim.Optimizer
    losses: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    every: int = 1  # take this phase on every n-th training iteration (e.g. several D updates per G)


def run_phases(phases: list[Phase], batch: dict[str, torch.Tensor], iteration: int | None = None, *,
               autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
               after_backward: Callable[[Phase, dict[str, torch.Tensor]], None] | None = None,
               update: bool = True) -> dict[str, dict[str, torch.Tensor]]:
    """One training iteration of ``phases`` on ``batch``, the one place that runs them (the
    trainer, the precision probe and benchmarks/training.py). For each phase due at ``iteration``
    (every phase when it is None): zero its gradients, compute its losses in ``autocast()``,
    back-propagate ``"loss"``, call ``after_backward(phase, losses)`` (the trainer averages the
    gradients across processes and guards against non-finite values there), then the optimiser's
    update, unless ``update`` is False (the probe times forward and backward only). Returns each
    phase's losses by phase name."""
    taken = {}
    for phase in phases:
        if iteration is not None and iteration % phase.every:
            continue
        phase.optimizer.zero_grad(set_to_none=True)
        with autocast():
            losses = phase.losses(batch)
        losses["loss"].backward()
        if after_backward is not None:
            after_backward(phase, losses)
        if update:
            phase.optimizer.step()
        taken[phase.name] = losses
    return taken


@dataclass
class ExportSpec:
    """What to export: one module, example inputs by name, and the model's metadata."""

    module: nn.Module
    inputs: dict[str, torch.Tensor]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Optional ``calibration(n) -> {input name: tensor with n rows}``: inputs as the model meets
    #: them in use (e.g. real image crops), for int8 calibration. Without it, inputs are drawn as
    #: ``metadata["input_spec"]`` documents them (latents: standard normal).
    calibration: Callable[[int], dict[str, torch.Tensor]] | None = None


@dataclass
class RecipeConfig:
    """The knobs every recipe shares. A recipe's config subclasses this, adds its own fields and
    may give these other defaults (a field declared again keeps its place and takes the new one).
    """

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's
    ema: float = 0.0  # decay of a moving average of the generator for samples and export; 0: off
    lr_schedule: str = "linear"  # constant, linear or cosine (artgan.training_tricks.LRSchedule)
    decay_from: int = 0  # the learning rate leaves lr at this iteration ...
    decay_to: int = 0  # ... and reaches lr * lr_final at this one (0: constant)
    lr_final: float = 0.0

    @classmethod
    def from_params(cls, who: str, params: dict[str, Any]) -> "RecipeConfig":
        """The config for a recipe's keyword arguments, checked."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ArtganError(f"{who}: unknown parameter {unknown[0]!r}; accepted: {', '.join(sorted(names))}")
        cfg = cls(**params)
        cfg.check(who)
        return cfg

    def check(self, who: str) -> None:
        """One-line errors for the shared knobs; subclasses check their own and call this."""
        betas = self.betas
        if (not isinstance(betas, (list, tuple)) or len(betas) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
            raise ArtganError(f"{who}: betas must be two numbers in [0, 1) (Adam's), got {betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        if not isinstance(self.lr, (int, float)) or isinstance(self.lr, bool) or not 0 < self.lr < float("inf"):
            raise ArtganError(f"{who}: lr must be a finite number > 0, got {self.lr!r}")
        if not isinstance(self.ema, (int, float)) or isinstance(self.ema, bool) or not 0 <= self.ema < 1:
            raise ArtganError(f"{who}: ema is a decay in (0, 1) (e.g. 0.999) or 0 for off, got {self.ema!r}")
        for name in ("decay_from", "decay_to"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ArtganError(f"{who}: {name} must be an integer >= 0, got {value!r}")
        try:
            self.schedule()
        except ValueError as exc:
            raise ArtganError(f"{who}: {exc}") from None

    def schedule(self) -> LRSchedule:
        """The learning-rate schedule these knobs describe."""
        return LRSchedule(self.lr_schedule, self.decay_from, self.decay_to, self.lr_final)

    @classmethod
    def signature(cls) -> inspect.Signature:
        """What a recipe built from this config accepts: ``info``, ``loss``, the recipe's own
        knobs, then the shared ones (the registry checks parameters against it)."""
        kw = inspect.Parameter.KEYWORD_ONLY
        hints = typing.get_type_hints(cls)
        shared = {f.name for f in dataclasses.fields(RecipeConfig)}
        fields = sorted(dataclasses.fields(cls), key=lambda f: f.name in shared)  # stable: own knobs first
        params = [inspect.Parameter("info", kw), inspect.Parameter("loss", kw, default=None)]
        params += [inspect.Parameter(f.name, kw, default=f.default, annotation=hints[f.name]) for f in fields]
        return inspect.Signature(params)


class GANRecipe:
    """Base class for what an architecture plugin returns.

    Subclasses fill ``self.modules`` (name -> ``nn.Module``; the checkpoint stores each) and
    ``self.optimizers`` and implement :meth:`phases`, :meth:`fixed_inputs`, :meth:`sample` and
    :meth:`export_spec`. ``self.config`` holds the constructor arguments, so a checkpoint can
    rebuild the recipe without the pipeline that made it.

    A recipe that sets ``config_class`` (a :class:`RecipeConfig`) takes its knobs as keyword
    arguments into that config: its signature, which the registry checks pipelines against, is
    the config's. ``default_loss`` names the registered adversarial loss used when a pipeline
    names none (:meth:`adversarial_loss`). :meth:`keep_ema` and :meth:`set_lr_schedule` set up
    the training chores that the default :meth:`after_iteration` does.
    """

    config_class: ClassVar[type[RecipeConfig] | None] = None
    default_loss: ClassVar[str | None] = None
    default_loss_params: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if vars(cls).get("config_class") is not None:
            cls.__signature__ = cls.config_class.signature()
        elif "__init__" in vars(cls):
            cls.__signature__ = None  # its own __init__ is its signature, not an ancestor's config

    def __init__(self) -> None:
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.config: dict[str, Any] = {}
        self.ema: EMA | None = None
        self._ema_source: nn.Module | None = None
        self._ema_warmup = "updates"
        self._lr_schedule = LRSchedule()
        self._base_lrs: dict[str, list[float]] = {}

    # -- what subclasses provide -------------------------------------------------------------
    def phases(self) -> list[Phase]:
        """The optimisers' turns of one training iteration, in order (built once per run)."""
        raise NotImplementedError

    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Inputs for the sample grids, drawn once per run from ``generator`` (CPU)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Images (float NCHW in [-1, 1]) for ``inputs`` from :meth:`fixed_inputs`."""
        raise NotImplementedError

    def export_spec(self) -> ExportSpec:
        """The one module to export to ONNX, with example inputs and the model's metadata."""
        raise NotImplementedError

    def after_iteration(self, iteration: int) -> None:
        """Called after every training iteration (``iteration`` of them done): by default, the
        learning-rate schedule and the EMA of the generator (each when set up)."""
        self.apply_lr_schedule(iteration)
        if self.ema is not None:
            self.ema.update(self._ema_source, iteration=iteration if self._ema_warmup == "iterations" else None)

    # -- training chores, set up by subclasses ---------------------------------------------------
    def adversarial_loss(self, loss: AdversarialLoss | None) -> AdversarialLoss:
        """``loss`` as the pipeline gave it, else ``default_loss`` built by its registry name."""
        if loss is not None:
            return loss
        from .plugins import get_registry  # here: the registry loads plugins

        return get_registry().create("loss", self.default_loss, **self.default_loss_params)

    def keep_ema(self, generator: nn.Module, decay: float, warmup: str = "updates") -> None:
        """With ``decay`` > 0, keep a moving average of ``generator`` (module ``generator_ema``):
        :attr:`sampling_generator` is then the average. Its warm-up (:class:`EMA`) counts the
        average's own ``"updates"`` or the trainer's ``"iterations"`` (superres and inpaint
        counted those before the EMA was the core's: so their models retrain the same)."""
        if warmup not in ("updates", "iterations"):
            raise ValueError(f"EMA warm-up counts 'updates' or 'iterations', got {warmup!r}")
        self._ema_source, self._ema_warmup = generator, warmup
        self.ema = EMA(generator, decay) if decay else None
        if self.ema is not None:
            self.modules["generator_ema"] = self.ema

    @property
    def sampling_generator(self) -> nn.Module:
        """What samples and exports use: the EMA of the generator when kept, else the generator."""
        if self.ema is not None:
            return self.ema.module
        return self._ema_source if self._ema_source is not None else self.modules["generator"]

    def set_lr_schedule(self, schedule: LRSchedule) -> None:
        """Follow ``schedule`` from the optimisers' learning rates as they are now."""
        self._lr_schedule = schedule
        self._base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in self.optimizers.items()}

    def apply_lr_schedule(self, iteration: int) -> None:
        """Set every optimiser's learning rate for ``iteration`` (no-op without a schedule)."""
        if not self._lr_schedule.active:
            return
        factor = self._lr_schedule.factor(iteration)
        for name, opt in self.optimizers.items():
            for group, base in zip(opt.param_groups, self._base_lrs[name]):
                group["lr"] = base * factor

    # -- shared plumbing -----------------------------------------------------------------------
    def to(self, device: torch.device | str) -> "GANRecipe":
        """Move every module to ``device``; returns the recipe."""
        for m in self.modules.values():
            m.to(device)
        return self

    def train(self, mode: bool = True) -> "GANRecipe":
        """Put every module in training (or, with ``False``, evaluation) mode; returns the recipe."""
        for m in self.modules.values():
            m.train(mode)
        return self

    def state_dict(self) -> dict[str, Any]:
        """Every module's and optimiser's state, by name: what a checkpoint stores."""
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
        }

    def load_state_dict(self, state: dict[str, Any], *, optimizers: bool = True) -> None:
        """Restore :meth:`state_dict`'s modules (and optimisers, unless ``optimizers=False``)."""
        for k, m in self.modules.items():
            m.load_state_dict(state["modules"][k])
        if optimizers:
            for k, o in self.optimizers.items():
                o.load_state_dict(state["optimizers"][k])

