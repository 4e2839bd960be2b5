"""The command ``artgan synth`` (onnxruntime only); ``artgan evaluate augment`` is made by the core
from :mod:`.evaluate`."""

from __future__ import annotations

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
