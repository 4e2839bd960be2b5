"""``artgan evaluate superres``: PSNR/SSIM of trained upscalers beside bicubic and Lanczos."""

from __future__ import annotations

import json
from pathlib import Path

import click

from artgan.errors import ArtganError


@click.command("superres", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="Folder of HR images (e.g. Set5), or one image.")
@click.option("--scale", default=2, show_default=True, type=click.IntRange(2, 8), help="Upscaling factor.")
@click.option("--model", "models", multiple=True, metavar="NAME|PATH",
              help="A superres model (name or .onnx); repeatable. Default: every x{scale}-* model found.")
@click.option("--baselines", default="bicubic,lanczos", show_default=True,
              help="Classical steps to compare with, comma-separated ('' for none).")
@click.option("--tile", type=int, default=None, help="Tile side for the models (default: whole image).")
@click.option("--per-image", is_flag=True, help="Also print PSNR per image.")
@click.option("--json", "json_", is_flag=True, help="Print the full results as JSON instead of a table.")
@click.option("--card", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Add the results to this model card (.card.json; its .md is re-rendered).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate_superres(data, scale, models, baselines, tile, per_image, json_, card, quiet):
    """Super-resolution quality on a folder of HR images: PSNR and SSIM on the Y channel with
    SCALE pixels cropped from the border (the SR literature's protocol), for bicubic, Lanczos and
    trained models. LR inputs are Pillow-bicubic downscales of the HR images.

    \b
    Examples:
      artgan evaluate superres --data ../shared/data/Set5 --scale 2
      artgan evaluate superres --data Set5 --scale 4 --model x4-psnr --per-image
    """
    from artgan.model_search import list_models
    from artgan.plugins import get_registry
    from artgan.steps import build_step

    from .evaluate import evaluate, format_table

    try:
        registry = get_registry()
        methods = {}
        for b in [b.strip() for b in baselines.split(",") if b.strip()]:
            methods[b] = build_step(registry, {"name": b, "scale": scale})
        names = list(models) or [m for m in list_models("superres") if m.startswith(f"x{scale}-")]
        for name in names:
            label = Path(name).stem if name.endswith(".onnx") else name
            methods[label] = build_step(registry, {"name": "superres", "model": name, "scale": scale, "tile": tile})
        if not methods:
            raise ArtganError("evaluate superres: nothing to evaluate; give --model or --baselines")
        if not names and not quiet:
            click.echo(f"note: no x{scale} superres model found; evaluating the baselines only", err=True)
        result = evaluate(methods, data, scale, progress=not quiet)
        if card:
            from .card import add_evaluation
            add_evaluation(card, result)
    except ArtganError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result, indent=2) if json_ else format_table(result, per_image=per_image))
