"""The commands: ``artgan synth`` (onnxruntime only) and ``artgan evaluate augment`` (torch)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from artgan.errors import cli_errors

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.command("synth", context_settings=CONTEXT_SETTINGS)
@click.argument("model", metavar="MODEL")
@click.option("--per-class", "per_class", required=True, type=click.IntRange(min=1),
              help="Images to make for every class.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A new (or empty) folder: DIR/<class>/<index>.png, labels.csv, dataset.json.")
@click.option("--seed", default=0, show_default=True, help="Seed of the latents: same seed, same files.")
@click.option("--truncation", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Redraw latent values beyond +-T: cleaner, less varied images (e.g. 1.5).")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@cli_errors
def synth(model, per_class, out, seed, truncation, batch_size, quiet):
    """Write a labelled image-folder dataset from a conditional generator, with onnxruntime and
    numpy only (no PyTorch). MODEL is an .onnx file or the name of a shipped augment model
    (exports/augment/). Folders are named by the class names the export recorded; train on the
    result with dataset image-folder and labels: folders.

    \b
    Examples:
      artgan synth exports/augment/digits-cgan.onnx --per-class 100 --out synth-digits
      artgan synth digits-cgan --per-class 500 --seed 1 --truncation 1.5 --out more-digits
    """
    from artgan.model_search import find_model

    from .synth import synthesize

    record = synthesize(find_model("augment", model), per_class, out, seed=seed, truncation=truncation,
                        batch_size=batch_size, progress=not quiet)
    if not quiet:
        click.echo(f"{record['total']} images, {per_class} for each of {len(record['classes'])} classes "
                   f"({', '.join(record['classes'])}), seed {seed}", err=True)
    click.echo(str(out))


@click.command("augment", context_settings=CONTEXT_SETTINGS)
@click.option("--model", default="digits-cgan", show_default=True, metavar="NAME|PATH",
              help="Conditional generator trained on the digits' train split, for the synthetic-only "
                   "row (CAS): an .onnx file or a shipped augment model's name.")
@click.option("--k", "k", default=10, show_default=True, type=click.IntRange(min=1),
              help="Real images per class in the few-shot rows (the GAN there trains on these alone).")
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Comma-separated seeds: classifier initialisation, the k-subset, the few-shot GAN.")
@click.option("--synthetic-per-class", "per_class", default=None, type=click.IntRange(min=1),
              help="Synthetic images per class in each synthetic row  [default: the protocol's]")
@click.option("--gan-steps", default=None, type=click.IntRange(min=1),
              help="Training steps of each few-shot GAN  [default: the protocol's]")
@click.option("--classifier-steps", default=None, type=click.IntRange(min=1),
              help="Adam steps of every classifier  [default: the protocol's]")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/augment-eval"),
              show_default=True, help="Folder for the few-shot GAN runs and results.json.")
@click.option("--card", type=click.Path(exists=True, path_type=Path),
              help="Add the results to this model's card (NAME.onnx or NAME.card.json; the .md is re-rendered).")
@click.option("--json", "json_", is_flag=True, help="Print the full results as JSON instead of a table.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@cli_errors
def evaluate_augment(model, k, seeds, per_class, gan_steps, classifier_steps, out, card, json_, quiet):
    """Is synthetic data any use? One fixed small classifier (see docs/training.md) is trained on
    the digits' train split, on synthetic digits only, on k real digits per class, and on those k
    plus synthetic digits from a conditional GAN trained (with DiffAugment) on the k alone. Each is
    tested on the same held-out split (the last 450 digits). Prints accuracy (mean and spread over
    the seeds), the CAS ratio (synthetic only / real) and the gain of k real + synthetic over k
    real alone, and writes OUT/results.json.

    \b
    Examples:
      artgan evaluate augment
      artgan evaluate augment --model runs/digits-augment/export/generator.onnx --seeds 0 --out /tmp/aug
      artgan evaluate augment --card exports/augment/digits-cgan.card.json
    """
    from artgan.files import write_json
    from artgan.model_search import find_model

    from .evaluate import Protocol, evaluate, format_table

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected whole numbers separated by commas, got {seeds!r}",
                                 param_hint="--seeds") from None
    if not seed_list:
        raise click.BadParameter("give at least one seed", param_hint="--seeds")
    protocol = Protocol.default().replace(k=k, per_class=per_class, gan_steps=gan_steps,
                                          classifier_steps=classifier_steps)
    result = evaluate(find_model("augment", model), protocol, seed_list, out, progress=not quiet)
    write_json(out / "results.json", result)
    if card:
        from artgan.cards import update_card
        import shlex
        import sys
        result["command"] = shlex.join(["artgan", *sys.argv[1:]])
        update_card(card, "evaluation/digits: synthetic data for a classifier", result)
    click.echo(json.dumps(result, indent=2) if json_ else format_table(result))
