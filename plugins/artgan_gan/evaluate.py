"""``artgan evaluate gan``: mode coverage, KL to uniform, Frechet distance and precision/recall of
generators (:mod:`artgan.gan_metrics`), registered through the evaluation hook like every task's.

Each ``--model`` is a run folder, a checkpoint (``.pt``) or an exported ``.onnx`` generator; the
reference is the dataset it was trained on (``--dataset`` names another). A run folder's result is
also written to ``evaluation.json`` in it, which its report shows.
"""

from __future__ import annotations

from pathlib import Path

import click

from artgan.errors import ArtganError
from artgan.evaluation import Evaluation, Metric, Option

METRICS = [Metric("modes", "modes", ".0f"), Metric("kl", "KL", ".3f"), Metric("fd", "FD", ".2f"),
           Metric("precision", "precision", ".3f"), Metric("recall", "recall", ".3f")]
OPTIONS = {
    "samples": Option(26000, "Generated images (26,000: the VEEGAN/PacGAN protocol).", click.IntRange(min=2)),
    "real_samples": Option(26000, "Real images for the reference (at most the dataset).", click.IntRange(min=2)),
    "pr_samples": Option(5000, "Images per side for precision/recall.", click.IntRange(min=4)),
    "seed": Option(0, "Seed of the generated and real draws.", int),
    "dataset": Option(None, "Reference dataset (default: the one the model was trained on).", str),
    "inception": Option(None, "Local TorchScript Inception (e.g. inception-2015-12-05.pt): adds FID.",
                        click.Path(dir_okay=False, exists=True, path_type=Path)),
    "device": Option("auto", "For run/checkpoint models: auto, cpu, cuda.", str),
}


def run(request, progress: bool) -> dict:
    """Every ``--model`` through :func:`artgan.gan_metrics.evaluate_target`; one row each."""
    from artgan.gan_metrics import evaluate_target

    if not request.models:
        raise ArtganError("evaluate gan: give --model RUN|CHECKPOINT|MODEL.onnx (repeatable)")
    o = request.options
    methods, references = {}, set()
    for model in request.models:
        result = evaluate_target(model, samples=o["samples"], real_samples=o["real_samples"],
                                 pr_samples=o["pr_samples"], seed=o["seed"], dataset_name=o["dataset"],
                                 inception=o["inception"], device=o["device"])
        methods[str(model)] = {**result["metrics"], "reference": result.get("reference", {}),
                               "provenance": result["provenance"]}
        references.add(result["provenance"]["dataset"])
    first = next(iter(methods.values()))["provenance"]
    summary = [f"features: {first.get('feature_network', first.get('inception'))} sha256 "
               f"{str(first.get('feature_weights_sha256', first.get('inception_weights_sha256')))[:12]}; "
               f"reference sha256 {str(first.get('reference_stats_sha256', first.get('inception_reference_sha256')))[:12]}"]
    return {"dataset": ", ".join(sorted(references)), "split": "all", "images": first["samples"],
            "methods": methods, "summary": summary}


def _protocol(request) -> str:
    o = request.options
    return (f"{o['samples']} generated vs {o['real_samples']} real images, precision/recall on {o['pr_samples']} "
            f"per side, seed {o['seed']}; features: artgan's digit classifier (FID too with --inception)")


def gan_evaluation() -> Evaluation:
    return Evaluation(
        help="""Mode coverage, KL to uniform, Frechet distance and precision/recall of generators.

        Each --model is a run folder, a checkpoint (.pt) or an exported model (.onnx). The feature
        network is artgan's own digit classifier (trained on first use, cached); the result records
        its weights' hash and a hash of the reference statistics. For a run folder the result is
        also saved as evaluation.json in it (its report shows it).

        \b
        Examples:
          artgan evaluate gan --model runs/stacked-digits
          artgan evaluate gan --model model.onnx --samples 5000 --json
        """,
        metrics=METRICS, run=run, options=OPTIONS, protocol=_protocol)
