"""``artgan evaluate augment``: is synthetic data any use? Registered with the core (no torch here).

One fixed small classifier is trained on four sets of digits for each seed (all real training
digits; synthetic only; k real per class; those k plus synthetic digits from a GAN trained on the
k alone) and each is tested on the same held-out 450: :mod:`.protocol` measures it (torch),
docs/training.md describes it. This module is what the core calls: the task's options, ``run``,
and how the figures read (one table row per set of training images; CAS and gain, which are no
column, as the summary under the table).

The protocol brings its own data (the registry's ``digits``, split train/test), so it gives the
core ``run`` instead of ``load``/``score``/``methods``: the core (:mod:`artgan.evaluation`) builds
the command with ``--model``, ``--out``, ``--card``, ``--json`` and ``-q`` as for every task, and
without ``--data``, ``--split`` and ``--baselines``.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from artgan.errors import ArtganError
from artgan.evaluation import Evaluation, Metric, Option, Request

DEFAULT_MODEL = "digits-cgan"
CARD_TITLE = "digits: synthetic data for a classifier"
METRICS = [Metric("images", "training images", "d"), Metric("accuracy", "test accuracy %", ".1f"),
           Metric("sd", "± sd", ".1f")]


class SeedList(click.ParamType):
    """``--seeds 0,1,2``: whole numbers separated by commas, at least one."""

    name = "SEEDS"

    def convert(self, value, param, ctx) -> list[int]:
        if isinstance(value, list):
            return value
        try:
            seeds = [int(s) for s in str(value).split(",") if s.strip()]
        except ValueError:
            self.fail(f"expected whole numbers separated by commas, got {value!r}", param, ctx)
        if not seeds:
            self.fail("give at least one seed", param, ctx)
        return seeds


OPTIONS = {
    "k": Option(10, "Real images per class in the few-shot rows (the GAN there trains on these alone).",
                click.IntRange(min=1)),
    "seeds": Option("0,1,2", "Comma-separated seeds: classifier initialisation, the k-subset, the few-shot GAN.",
                    SeedList()),
    "synthetic_per_class": Option(None, "Synthetic images per class in each synthetic row  [default: the "
                                  "protocol's]", click.IntRange(min=1)),
    "gan_iterations": Option(None, "Training iterations of each few-shot GAN  [default: the protocol's]",
                        click.IntRange(min=1)),
    "classifier_iterations": Option(None, "Adam iterations of every classifier  [default: the protocol's]",
                               click.IntRange(min=1)),
    "runs": Option("runs/augment-eval", "Folder for the few-shot GANs' training runs (few-shot-seed<S>/).",
                   click.Path(file_okay=False, path_type=Path)),
}


def run(request: Request, progress: bool) -> dict[str, Any]:
    """The protocol for ``--model`` (default: the shipped digits-cgan) over the seeds: its figures,
    with the table's rows, the summary and the command that reproduces them."""
    from artgan.model_search import find_model

    from .protocol import Protocol, run_protocol

    if len(request.models) > 1:
        raise ArtganError(f"evaluate augment: give one --model (the generator of the synthetic-only row), "
                          f"got {len(request.models)}")
    o = request.options
    protocol = Protocol.default().replace(k=o["k"], per_class=o["synthetic_per_class"], gan_iterations=o["gan_iterations"],
                                          classifier_iterations=o["classifier_iterations"])
    model = find_model("augment", request.models[0] if request.models else DEFAULT_MODEL)
    figures = run_protocol(model, protocol, o["seeds"], o["runs"], progress=progress)
    return {**figures, "methods": table_rows(figures), "summary": summary_lines(figures),
            "command": command_line(request)}


def row_titles(figures: dict[str, Any]) -> dict[str, str]:
    k, n = figures["setup"]["k"], figures["training_images"]["synthetic"]
    return {"real": f"real: all {figures['training_images']['real']} training digits",
            "synthetic": f"synthetic only ({figures['model']})",
            "real-k": f"real: {k} per class",
            "real-k+synthetic": f"real {k}/class + {n} synthetic from a GAN on those {k}/class"}


def table_rows(figures: dict[str, Any]) -> dict[str, dict[str, float]]:
    """One row ("method", for the core's table) per set of training images: count, accuracy %, its sd."""
    return {title: {"images": figures["training_images"][row], "accuracy": 100 * figures["accuracy"][row]["mean"],
                    "sd": 100 * figures["accuracy"][row]["std"]}
            for row, title in row_titles(figures).items()}


def summary_lines(figures: dict[str, Any]) -> list[str]:
    """CAS and gain against their targets, and where the time went (shown under the table)."""
    c, g, t, k = figures["cas"], figures["gain_points"], figures["targets"], figures["setup"]["k"]
    s = figures["seconds"]
    return [f"CAS (synthetic only / real): {c['mean']:.3f} ± {c['std']:.3f} "
            f"(target >= {t['cas']}: {'met' if t['cas_met'] else 'NOT met'})",
            f"gain of real {k}/class + synthetic over real {k}/class alone: {g['mean']:+.2f} ± {g['std']:.2f} "
            f"accuracy points (target >= {t['gain_points']}: {'met' if t['gain_met'] else 'NOT met'})",
            f"{s['total']:.0f} s ({figures['torch_threads']} torch thread(s) per model; "
            f"classifiers {s['classifiers']:.0f} s, few-shot GANs {s['few_shot_gans']:.0f} s)"]


def command_line(request: Request) -> str:
    """``artgan evaluate augment`` with the model and every option that is not the default."""
    parts = ["artgan", "evaluate", "augment", *(arg for m in request.models for arg in ("--model", m))]
    for name, value in request.options.items():
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        if value is not None and text != str(OPTIONS[name].default):
            parts += [f"--{name.replace('_', '-')}", text]
    return shlex.join(parts)


def _protocol(request: Request) -> str:
    seeds = request.options["seeds"]
    return (f"A fixed small CNN trained on each set of images, tested on the 450 held-out digits (the last 450 "
            f"of scikit-learn's 1797); mean and sample standard deviation over seeds "
            f"{', '.join(map(str, seeds))} (docs/training.md, GANs for data augmentation).")


def augment_evaluation() -> Evaluation:
    """What ``artgan_register_evaluations`` registers as ``augment``."""
    return Evaluation(
        help="""Is synthetic data any use? One fixed small classifier (see docs/training.md) is trained on
        the digits' train split, on synthetic digits only (from --model, default digits-cgan), on k real
        digits per class, and on those k plus synthetic digits from a conditional GAN trained (with
        DiffAugment) on the k alone. Each is tested on the same held-out split (the last 450 digits).
        Prints accuracy (mean and spread over the seeds), the CAS ratio (synthetic only / real) and the
        gain of k real + synthetic over k real alone.

        \b
        Examples:
          artgan evaluate augment --out runs/augment-eval/results.json
          artgan evaluate augment --model runs/digits-augment/export/generator.onnx --seeds 0 --runs /tmp/aug
          artgan evaluate augment --card exports/augment/digits-cgan.card.json
        """,
        metrics=METRICS, run=run, options=OPTIONS, protocol=_protocol, card_title=lambda result: CARD_TITLE,
    )
