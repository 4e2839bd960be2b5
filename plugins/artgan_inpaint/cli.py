"""``artgan evaluate inpaint``: the trained model against the classical methods, per mask-area band."""

from __future__ import annotations

from pathlib import Path

import click

from artgan.errors import ArtganError, cli_errors

METHODS = ("telea", "ns", "biharmonic", "model")
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


friendly_errors = cli_errors  # ArtganError -> one "Error:" line, exit 1


@click.command("inpaint", context_settings=CONTEXT_SETTINGS)
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Image folder, e.g. BSD68 (searched recursively).")
@click.option("--split", type=click.Choice(["heldout", "all"]), default="heldout", show_default=True,
              help="heldout: every 4th file by name (the files training leaves out); all: every file.")
@click.option("--model", default=None, help="The trained model: a shipped model name or an .onnx path "
                                            "(default: the step's default model).")
@click.option("--methods", default=",".join(METHODS), show_default=True,
              help=f"Comma list among {', '.join(METHODS)}.")
@click.option("--seed", default=0, show_default=True, help="Seed of the masks (the same for every method).")
@click.option("--masks-per-image", default=1, show_default=True, type=click.IntRange(1, 16))
@click.option("--max-images", default=None, type=click.IntRange(1), help="Evaluate only the first N files.")
@click.option("--radius", default=3.0, show_default=True, help="Telea and Navier-Stokes radius (pixels).")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("eval-inpaint"),
              show_default=True, help="Folder for results.json, results.md and comparison.png.")
@click.option("--card", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also add the results to this model card (.card.json) and write its .md.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@friendly_errors
def evaluate_inpaint(data, split, model, methods, seed, masks_per_image, max_images, radius, out, card, quiet):
    """PSNR, SSIM and L1 over the hole for the trained inpainting model and the classical methods, on
    three mask-area bands (5-10%, 10-20%, 20-40%), with the same seeded masks for every method.
    Prints a markdown table; writes results.json, results.md and a side-by-side comparison.png.

    \b
    Examples:
      artgan evaluate inpaint --data /work/shared/data/BSD68
      artgan evaluate inpaint --data my-photos --split all --model exports/inpaint/residual-bsds400.onnx
    """
    from artgan.files import write_json, write_text
    from artgan.images import list_images, save_image

    from . import evaluate as E
    from .steps import DEFAULT_MODEL, BiharmonicInpaint, ModelInpaint, OpenCVInpaint

    log = (lambda msg: None) if quiet else E.stderr_log
    wanted = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in METHODS]
    if unknown or not wanted:
        raise click.BadParameter(f"unknown method(s) {', '.join(unknown) or '(none)'}; choose among "
                                 f"{', '.join(METHODS)}", param_hint="--methods")
    files = list_images(data)
    if split == "heldout":
        files = E.split_files(files)[1]
    files = files[:max_images] if max_images else files
    if not files:
        raise ArtganError(f"evaluate inpaint: no images in {data}")

    fills, model_name = {}, None
    for m in wanted:
        if m == "telea":
            fills["telea"] = OpenCVInpaint("telea", radius).inpaint
        elif m == "ns":
            fills["navier-stokes"] = OpenCVInpaint("ns", radius).inpaint
        elif m == "biharmonic":
            try:
                fills["biharmonic"] = BiharmonicInpaint().inpaint
            except ArtganError as exc:
                log(f"skipping biharmonic: {exc}")
        else:
            trained = ModelInpaint(model or DEFAULT_MODEL)
            model_name = f"model ({trained.model_path.stem})"
            fills[model_name] = trained.inpaint
    log(f"evaluating {', '.join(fills)} on {len(files)} images of {data} ({split})")
    ev = E.evaluate(files, fills, seed=seed, masks_per_image=masks_per_image, log=log)
    text = E.table(ev, reference=model_name)
    extra = {"data": str(data.name), "split": split, "seed": seed, "radius": radius,
             "seconds_per_image": {m: {b: round(ev.scores[m][b]["seconds"], 3) for b in ev.bands} for m in fills}}
    write_json(out / "results.json", {**ev.to_dict(), **extra})
    write_text(out / "results.md", text + "\n")
    save_image(out / "comparison.png", E.comparison_sheet(ev))
    if card is not None:
        E.update_card(card, ev, text, extra)
    click.echo(text)
    log(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'comparison.png'}")
