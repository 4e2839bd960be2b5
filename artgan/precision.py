"""How the trainer computes: bf16 autocast or fp32, channels_last or NCHW.

``precision: auto`` picks, and says why:
- on a CUDA GPU, bf16 autocast where the GPU supports it, with channels_last (as before);
- on a CPU with native bf16 (AVX512-BF16 or AMX, as torch's CPU probe reports them), bf16 unless it is
  *measured* clearly slower: one forward and backward of every phase on the first batch, on a copy of
  the recipe, in each candidate layout and precision, ``PROBE_ROUNDS`` times, round-robin (so a burst
  of load from another process hits every candidate alike), and the median of each counts. bf16 is
  kept unless its best median is over ``BF16_SLOWER_LIMIT`` times fp32's: some layers fall back to
  slow reference kernels in bf16 (dilated or grouped convolutions on some builds) and autocast keeps
  others (reflection padding) in fp32, so a model can be much slower in bf16, and a rule written for
  one model would guess wrong for the next; within that limit bf16's speed on the real run (and the
  memory it saves) is worth more than a timing taken on a shared machine;
- on a CPU without native bf16, fp32 (bf16 would be emulated, and slower).

Weights and optimiser state stay fp32 under autocast; the losses, logits and gradient penalties are
computed in fp32 by the recipes (they cast logits with ``.float()``).
``precision: fp32`` and ``precision: bf16`` force the precision; ``channels_last: true/false`` forces
the layout. The choice is stored in the checkpoint, so a resumed run computes exactly as it did.
``ARTGAN_AUTO_PRECISION=fp32`` makes ``auto`` on a CPU mean fp32 and NCHW without measuring: two runs
then compute identically whatever the machine's load (the test suite sets it).
"""

from __future__ import annotations

import contextlib
import copy
import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch

from .errors import ArtganError
from .recipe import run_phases

PRECISIONS = ("auto", "fp32", "bf16")
#: On a CPU with native bf16, bf16 is kept unless its median iteration is over this many times fp32's.
#: Single timings on a shared machine have been seen 15x off (288 ms against 4216-5072 ms for the same
#: work), and a choice of fp32 from such a sample cost a run 35x its speed.
BF16_SLOWER_LIMIT = 1.25
#: Timed iterations per candidate (each after one warm-up), taken round-robin across the candidates;
#: the median of each counts, so one noisy sample cannot decide.
PROBE_ROUNDS = 3


@dataclass(frozen=True)
class PrecisionChoice:
    """What the trainer computes with, and why (written to the log and ``metrics.jsonl``)."""

    bf16: bool
    channels_last: bool
    reason: str
    #: seconds per training iteration of each candidate measured (``"bf16/channels_last"``: s)
    measured: dict[str, float] | None = None

    def describe(self) -> str:
        what = f"{'bf16 autocast' if self.bf16 else 'fp32'}, {'channels_last' if self.channels_last else 'NCHW'}"
        return f"{what} ({self.reason})"

    def as_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "PrecisionChoice":
        return cls(bool(record["bf16"]), bool(record["channels_last"]), str(record["reason"]),
                   record.get("measured"))


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 or AMX tiles), as torch reports it."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)


def autocast(device: torch.device, bf16: bool) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the context each phase's forward pass runs in."""
    if not bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def choose_precision(device: torch.device, precision: str, channels_last: bool | None,
                     measure: Callable[[bool, bool], float] | None = None) -> PrecisionChoice:
    """Decide bf16 and the layout for ``device``.

    ``measure(bf16, channels_last)`` returns the seconds of one training iteration; it is called only
    on a CPU under ``auto`` (precision, or layout when ``channels_last`` is None), ``PROBE_ROUNDS``
    times per candidate, interleaved, and each candidate's median counts. Without it (or when it
    fails) a CPU with native bf16 gets bf16 and NCHW unmeasured, and the reason says so.
    """
    if precision not in PRECISIONS:
        raise ArtganError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if device.type == "cuda":
        cl = True if channels_last is None else channels_last
        if precision == "fp32":
            return PrecisionChoice(False, cl, "precision: fp32")
        supported = torch.cuda.is_bf16_supported()
        if precision == "bf16":
            return PrecisionChoice(True, cl, "precision: bf16" + ("" if supported else " (GPU lacks native bf16)"))
        return PrecisionChoice(supported, cl, "auto: CUDA GPU " + ("with bf16" if supported else "without bf16"))
    if device.type != "cpu":
        return PrecisionChoice(precision == "bf16", bool(channels_last), f"precision: {precision} on {device.type}")

    if precision == "auto" and os.environ.get("ARTGAN_AUTO_PRECISION", "").strip().lower() == "fp32":
        return PrecisionChoice(False, bool(channels_last), "auto: fp32, unmeasured (ARTGAN_AUTO_PRECISION=fp32)")
    native = cpu_has_native_bf16()
    if precision == "auto" and not native:
        precisions = [False]
        why = "auto: this CPU has no native bf16 (AVX512-BF16/AMX)"
    elif precision == "auto":
        precisions = [False, True]
        why = "auto: CPU with native bf16"
    else:
        precisions = [precision == "bf16"]
        why = f"precision: {precision}" + ("" if native or precision == "fp32" else " (emulated: this CPU has no native bf16)")
    layouts = [False, True] if channels_last is None else [channels_last]
    if len(precisions) * len(layouts) == 1:
        return PrecisionChoice(precisions[0], layouts[0], why)
    if measure is None:
        return PrecisionChoice(precisions[-1], False, why + ", not measured")

    candidates = [(bf16, cl) for bf16 in precisions for cl in layouts]
    samples: dict[tuple[bool, bool], list[float]] = {c: [] for c in candidates}
    try:
        for r in range(PROBE_ROUNDS):
            # round-robin, every other round backwards: no candidate always runs first or after the same one
            for c in (candidates if r % 2 == 0 else candidates[::-1]):
                samples[c].append(float(measure(*c)))
    except Exception as e:  # a recipe the probe cannot run; train as the rule says, and say so
        return PrecisionChoice(precisions[-1], False, f"{why}, not measured ({type(e).__name__}: {e})")
    times = {c: statistics.median(v) for c, v in samples.items()}
    best = {bf16: min((t, cl) for (b, cl), t in times.items() if b == bf16) for bf16 in precisions}
    if True in best and False in best:
        bf16 = best[True][0] <= BF16_SLOWER_LIMIT * best[False][0]
    else:
        bf16 = True in best
    t, cl = best[bf16]
    measured = {f"{'bf16' if b else 'fp32'}/{'channels_last' if c else 'nchw'}": round(s, 4)
                for (b, c), s in times.items()}
    detail = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in measured.items())
    rule = (f"; bf16 unless over {BF16_SLOWER_LIMIT:g}x fp32's" if True in best and False in best else "")
    return PrecisionChoice(bf16, cl, f"{why}, median of {PROBE_ROUNDS} interleaved iterations: {detail}{rule}",
                           measured)


def iteration_timer(recipe, batch: dict[str, torch.Tensor], device: torch.device) -> Callable[[bool, bool], float]:
    """``measure(bf16, channels_last)`` for :func:`choose_precision`: the seconds one training
    iteration (forward and backward of every phase, no optimiser step) takes on ``batch``. The first
    call for each candidate runs one untimed warm-up iteration first (kernel selection, allocations).

    It runs on a deep copy of the recipe inside a forked RNG, so the run it measures for starts from
    exactly the state it would have had without the probe (resume stays bit-identical).
    """
    probe = copy.deepcopy(recipe)
    phases = probe.phases()
    warmed: set[tuple[bool, bool]] = set()

    def measure(bf16: bool, channels_last: bool) -> float:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        for m in probe.modules.values():
            m.to(memory_format=fmt)
        inputs = {k: v.contiguous(memory_format=fmt) if v.dim() == 4 and v.is_floating_point() else v
                  for k, v in batch.items()}
        context = autocast(device, bf16)
        seconds = 0.0
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            runs = [True] if (bf16, channels_last) in warmed else [False, True]
            for timed in runs:
                t = time.perf_counter()
                run_phases(phases, inputs, autocast=context, update=False)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if timed:
                    seconds = time.perf_counter() - t
        warmed.add((bf16, channels_last))
        for phase in phases:
            phase.optimizer.zero_grad(set_to_none=True)
        return seconds

    return measure
