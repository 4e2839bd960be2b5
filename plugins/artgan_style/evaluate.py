"""``artgan evaluate style``: how far each step moves held-out photos towards a painting's style,
how much content it keeps, how fast it runs; a contact sheet to look at. No torch, no downloads.

Figures per (painting, method), means over the photos of the split (see :mod:`.measure` for the
exact protocol): colour ratio, texture ratio (sliced Wasserstein distance to the painting,
output / input; lower is closer), edge SSIM (input vs output Sobel edges; higher keeps more
content), seconds per photo, and for the trained model the milliseconds for one 512x512 image.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np

FIGURES = ("color_ratio", "texture_ratio", "edge_ssim", "edge_ssim_fine")
FLOOR = "another photo (floor)"


@dataclass
class Method:
    label: str
    step: object  # an artgan.steps.Step
    source: str = ""  # start from this method's output instead of the photo (a finishing step)
    rows: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    outputs: list = field(default_factory=list)  # kept for the contact sheet


def _methods(painting: Path, model: str | None, strength: float) -> list[Method]:
    from .steps import ColorTransferStep, HistogramMatchStep, StyleStep

    ref = str(painting)
    methods = [Method("color-transfer", ColorTransferStep(ref, strength)),
               Method("histogram-match", HistogramMatchStep(ref, strength))]
    if model:
        gan = StyleStep(model, strength)
        methods.append(Method("style (model)", gan))
        methods.append(Method("style + color-transfer 0.5", ColorTransferStep(ref, 0.5), source="style (model)"))
    return methods


def time_512(step, repeats: int = 3) -> float:
    """Median milliseconds for one 512x512 image through ``step`` (after one warm-up run)."""
    image = np.random.default_rng(0).random((1, 512, 512, 3), dtype=np.float32)
    step(image)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step(image)
        times.append(time.perf_counter() - t)
    return 1000.0 * float(np.median(times))


def evaluate_painting(painting: Path, photos: list[Path], model: str | None, strength: float,
                      sheet_count: int, log) -> dict:
    from artgan.images import load_image, to_float

    from .measure import StyleSignature, score

    t0 = time.perf_counter()
    target = StyleSignature.of(to_float(load_image(painting)))
    methods = _methods(painting, model, strength)
    # The floor: each photo "stylised" into the next photo of the split (resized to fit). Content
    # figures near this row mean the picture was lost; style ratios near 1 mean nothing moved.
    floor = Method(FLOOR, None)
    inputs = []
    for i, path in enumerate(photos):
        image = to_float(load_image(path))
        sig = StyleSignature.of(image)
        other = _resized(to_float(load_image(photos[(i + 1) % len(photos)])), image.shape[:2])
        floor.rows.append({"photo": path.name, **score(image, other, target, sig)})
        floor.seconds.append(0.0)
        made: dict[str, tuple[np.ndarray, float]] = {}
        for m in methods:
            start, before = made.get(m.source, (image, 0.0))
            t = time.perf_counter()
            out = m.step(start[None])[0]
            made[m.label] = (out, before + time.perf_counter() - t)
            m.seconds.append(made[m.label][1])
            m.rows.append({"photo": path.name, **score(image, out, target, sig)})
            if i < sheet_count:
                m.outputs.append(out)
        if i < sheet_count:
            inputs.append(image)
    result = {"painting": painting.stem, "painting_file": painting.name, "model": None, "photos": len(photos),
              "strength": strength, "methods": {}}
    for m in [floor] + methods:
        summary = {k: float(np.mean([r[k] for r in m.rows])) for k in FIGURES}
        worst = {k: (np.min if k.startswith("edge") else np.max)([r[k] for r in m.rows]) for k in FIGURES}
        summary.update({f"{k}_worst": float(v) for k, v in worst.items()})
        summary["seconds_per_photo"] = float(np.mean(m.seconds))
        summary["per_photo"] = m.rows
        result["methods"][m.label] = summary
    gan = next((m for m in methods if m.label == "style (model)"), None)
    if gan is not None:
        result["model"] = str(gan.step.path)
        result["model_metadata"] = gan.step.metadata
        result["methods"]["style (model)"]["ms_512x512"] = time_512(gan.step)
    log(f"  {painting.stem}: {len(photos)} photos, {len(methods)} methods in {time.perf_counter() - t0:.1f}s")
    result["_sheet"] = (inputs, [(m.label, m.outputs) for m in methods])
    return result


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    from artgan.images import to_float, to_uint8
    return to_float(np.asarray(Image.fromarray(to_uint8(image)).resize((size[1], size[0]), Image.BICUBIC)))


# -- the contact sheet ------------------------------------------------------------------------

def contact_sheet(painting: Path, inputs: list[np.ndarray], columns: list[tuple[str, list[np.ndarray]]],
                  row_height: int = 240, pad: int = 6, label_height: int = 22) -> np.ndarray:
    """One row per photo: the input, then each method's output, all at ``row_height`` px high
    with their width following the photo's aspect (no square cells with empty margins); a label
    above every picture; a first row with the painting. Returns uint8 HWC."""
    from PIL import Image, ImageDraw, ImageFont

    from artgan.images import load_image, to_uint8

    try:
        font = ImageFont.load_default(size=15)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        font = ImageFont.load_default()

    def scaled(image: Image.Image) -> Image.Image:
        w = max(1, round(image.width * row_height / image.height))
        return image.resize((w, row_height), Image.LANCZOS)

    rows = [[(f"style: {painting.stem}", scaled(Image.fromarray(load_image(painting))))]]
    for i, image in enumerate(inputs):
        rows.append([("input", scaled(Image.fromarray(to_uint8(image))))] +
                    [(label, scaled(Image.fromarray(to_uint8(outs[i])))) for label, outs in columns])
    width = pad + max(sum(im.width + pad for _, im in row) for row in rows)
    height = pad + len(rows) * (label_height + row_height + pad)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        y = pad + r * (label_height + row_height + pad)
        x = pad
        for label, im in row:
            draw.text((x + 2, y + 2), label, fill=(0, 0, 0), font=font)
            sheet.paste(im, (x, y + label_height))
            x += im.width + pad
    return np.asarray(sheet)


# -- reporting --------------------------------------------------------------------------------

def format_table(results: list[dict]) -> str:
    lines = [f"{'painting':<16} {'method':<28} {'colour':>7} {'texture':>8} {'edgeSSIM':>9} {'fine':>6} "
             f"{'s/photo':>8} {'ms/512px':>9}"]
    for r in results:
        lines.append(f"{r['painting']:<16} {'input':<28} {1.0:>7.3f} {1.0:>8.3f} {1.0:>9.3f} {1.0:>6.3f} "
                     f"{'':>8} {'':>9}")
        for label, m in r["methods"].items():
            ms = f"{m['ms_512x512']:.0f}" if "ms_512x512" in m else ""
            secs = "" if label == FLOOR else f"{m['seconds_per_photo']:.3f}"
            lines.append(f"{r['painting']:<16} {label:<28} {m['color_ratio']:>7.3f} {m['texture_ratio']:>8.3f} "
                         f"{m['edge_ssim']:>9.3f} {m['edge_ssim_fine']:>6.3f} {secs:>8} {ms:>9}")
    lines.append("colour/texture: sliced Wasserstein distance to the painting, output/input (lower = closer); "
                 "edgeSSIM: Sobel edges (blur sigma 1) of input vs output; fine: without the blur")
    return "\n".join(lines)


def update_card(result: dict, command: str) -> Path | None:
    """Add the evaluation to the model's ``.card.json`` and render ``.card.md`` beside it."""
    from artgan.files import write_json, write_text

    from .measure import PROTOCOL

    model = Path(result["model"])
    card_path = model.with_suffix(".card.json")
    card = json.loads(card_path.read_text()) if card_path.exists() else {"file": model.name}
    methods = {k: {f: v for f, v in m.items() if f != "per_photo"} for k, m in result["methods"].items()}
    card["evaluation"] = {"photos": result["photos"], "split": result["split"], "painting": result["painting_file"],
                          "strength": result["strength"], "command": command, "protocol": PROTOCOL,
                          "methods": methods}
    write_json(card_path, card)
    write_text(model.with_suffix(".card.md"), render_card_md(card, result))
    return card_path


def render_card_md(card: dict, result: dict) -> str:
    md = card.get("metadata", {})
    ev = card["evaluation"]
    train = card.get("training", {})
    name = Path(card["file"]).stem
    arch = md.get("architecture", "cyclegan")
    lines = [f"# style model `{name}`", "",
             f"Photo -> painting style ({arch}), trained to paint like *{ev['painting']}*. Use it: "
             f"`artgan process photo.jpg --step style:model={name}` (add `,strength=0.7` for less).", ""]
    if arch == "patch-style":
        recipe = md.get("recipe", {})
        generator = (f"- generator: {md.get('g_blocks', '?')} residual blocks of {md.get('g_width', '?')} channels at "
                     f"1/4 resolution, InstanceNorm, no discriminator: trained to match the painting's patch "
                     f"distributions (sliced Wasserstein; weights texture {recipe.get('texture_weight', '?')}, "
                     f"style {recipe.get('style_weight', '?')}, colour {recipe.get('colour_weight', '?')}, "
                     f"edges {recipe.get('edge_weight', '?')})")
    else:
        generator = (f"- generator: ResNet, {md.get('g_width', '?')} base channels, InstanceNorm (CycleGAN)")
    verification = card.get("verification", {})
    lines += ["## Model", "",
              f"{generator}; input any size (padded to a multiple of {md.get('size_multiple', 4)}), RGB NCHW "
              f"in [-1, 1]",
              f"- trained for {md.get('train_steps', '?')} steps on {md.get('train_crop', '?')} px crops; "
              f"data: `{md.get('dataset', '?')}`",
              f"- export check: max |onnxruntime - PyTorch| = {verification.get('max_abs_diff', float('nan')):.2e}, "
              f"PSNR {verification.get('psnr_db', float('nan')):.1f} dB (random inputs)"]
    parity = card.get("parity")
    if parity:
        lines.append(f"- ONNX vs PyTorch on {parity['photos']} {parity['split']} photos: PSNR min "
                     f"{parity['min_psnr_db']:.1f} dB, mean {parity['mean_psnr_db']:.1f} dB")
    for k, v in train.items():
        lines.append(f"- {k}: `{v}`" if isinstance(v, str) else f"- {k}: {v}")
    lines += ["", f"## Evaluation ({ev['photos']} {ev['split']} photos, strength {ev['strength']})", "",
              "| method | colour ratio | texture ratio | edge SSIM | edge SSIM, no blur | s/photo | ms per 512x512 |",
              "|---|---|---|---|---|---|---|"]
    for label, m in ev["methods"].items():
        ms = f"{m['ms_512x512']:.0f}" if "ms_512x512" in m else ""
        secs = "" if label == FLOOR else f"{m['seconds_per_photo']:.3f}"
        lines.append(f"| {label} | {m['color_ratio']:.3f} | {m['texture_ratio']:.3f} | {m['edge_ssim']:.3f} | "
                     f"{m['edge_ssim_fine']:.3f} | {secs} | {ms} |")
    lines += ["", "Ratios are the sliced Wasserstein distance to the painting of the output divided by that of the "
              "input (lower is closer to the painting); edge SSIM compares the Sobel edges of input and output "
              "(after a Gaussian blur of sigma 1 px; also without it). The floor row 'stylises' each photo into "
              "another photo: content figures near it mean the picture was lost.",
              "", f"Reproduce: `{ev['command']}`", "", "## Protocol", ""]
    lines += [f"- {k}: {v}" for k, v in ev["protocol"].items()]
    return "\n".join(lines) + "\n"


@click.command("style", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--photos", required=True, type=click.Path(exists=True, path_type=Path),
              help="Folder of photos (e.g. BSD68); the fixed split picks which are used.")
@click.option("--painting", "paintings", required=True, multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A painting to reach (repeatable).")
@click.option("--model", "models", multiple=True,
              help="Style model per painting, in order (a name or an .onnx path; 'none': classical "
                   "steps only). Default: the model named like the painting's file, if there is one.")
@click.option("--split", default="heldout", show_default=True, type=click.Choice(["heldout", "train", "all"]),
              help="Which photos: the held-out quarter (every 4th sorted file), the rest, or all.")
@click.option("--strength", default=1.0, show_default=True, type=click.FloatRange(0, 1),
              help="Strength of every step.")
@click.option("--out", default=Path("style-eval"), show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for results.json and contact-<painting>.png.")
@click.option("--sheet", "sheet_count", default=6, show_default=True, help="Photos on each contact sheet.")
@click.option("--card", is_flag=True, help="Write the figures into each model's .card.json and .card.md.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
def evaluate_style(photos, paintings, models, split, strength, out, sheet_count, card, quiet):
    """Style transfer: colour and texture distance to a painting (as ratios to the photo's), edge
    SSIM to the photo, speed; for colour transfer, histogram matching and the trained model.

    \b
    Example:
      artgan evaluate style --photos data/BSD68 --painting data/style/starry-night.jpg \\
          --painting data/style/great-wave.jpg --out style-eval
    """
    from artgan.errors import ArtganError
    from artgan.images import list_images, save_image
    from artgan.model_search import list_models

    from .measure import split_photos

    log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    try:
        if models and len(models) != len(paintings):
            raise ArtganError(f"give one --model per --painting ({len(paintings)}), or none; got {len(models)}")
        files = split_photos(list_images(photos), split)
        if not files:
            raise ArtganError(f"no images in {photos} for split {split!r}")
        shipped = list_models("style")
        results = []
        for i, painting in enumerate(paintings):
            model = models[i] if models else (painting.stem if painting.stem in shipped else None)
            if model in ("none", ""):
                model = None
            if model is None:
                log(f"  {painting.stem}: no style model (available: {', '.join(shipped) or 'none'}); classical steps only")
            result = evaluate_painting(painting, files, model, strength, sheet_count, log)
            result["split"] = split
            inputs, columns = result.pop("_sheet")
            sheet = save_image(out / f"contact-{painting.stem}.png", contact_sheet(painting, inputs, columns))
            result["contact_sheet"] = str(sheet)
            results.append(result)
            if card and result["model"]:
                # the model by name: how it is found once shipped in exports/style/
                command = " ".join(["artgan evaluate style", f"--photos {photos}", f"--painting {painting}",
                                    f"--model {Path(model).stem}", f"--split {split}", f"--strength {strength:g}"])
                path = update_card(result, command)
                log(f"  card: {path}")
        from artgan.files import write_json
        write_json(out / "results.json", {"split": split, "photos": [f.name for f in files], "results": results})
    except ArtganError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_table(results))
    log(f"results: {out / 'results.json'}; contact sheets: {', '.join(r['contact_sheet'] for r in results)}")
