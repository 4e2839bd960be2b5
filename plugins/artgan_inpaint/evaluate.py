"""Evaluation of inpainting methods (no torch): PSNR, SSIM and L1 over the hole, per mask-area band.

- Held-out split, fixed here: the image files sorted by name, every 4th (indices 0, 4, 8, ...) is
  held out; the ``inpaint-masks`` dataset trains on the others. ``split="all"`` evaluates every
  file of a folder (a held-out set of your own).
- Masks: for each image and band, :func:`eval_mask` draws a mask from a generator seeded by
  (seed, the file name, the band), redrawn until its measured area lies in the band. Every method
  sees the same masks; they do not depend on which other files are in the folder.
- Metrics on RGB in [0, 1], after rounding every output to 8 bits (what a saved PNG holds):
  PSNR over the hole's pixels, SSIM (11x11 Gaussian) averaged over the hole, and mean |error| over
  the hole. Means over images. Known pixels are pasted back by every method, so they are exact.
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from artgan.errors import ArtganError
from artgan.metrics import psnr, ssim

from .masks import random_mask

HELDOUT_EVERY = 4
BANDS: tuple[tuple[str, float, float], ...] = (("5-10%", 0.05, 0.10), ("10-20%", 0.10, 0.20),
                                                ("20-40%", 0.20, 0.40))
EVAL_BOX_PROB = 0.25  # the share of rectangles among the shapes, as in training


def split_files(files: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(train, held out): sorted by file name, every 4th file (0, 4, 8, ...) is held out."""
    ordered = sorted((Path(f) for f in files), key=lambda p: (p.name, str(p)))
    heldout = ordered[::HELDOUT_EVERY]
    return [f for f in ordered if f not in heldout], heldout


def eval_mask(name: str, band: int, height: int, width: int, *, seed: int = 0, k: int = 0) -> np.ndarray:
    """The fixed HxW bool hole of image ``name`` (a file name) for ``BANDS[band]``; ``k`` numbers
    several masks per image."""
    _, lo, hi = BANDS[band]
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), band, k])
    hole = random_mask(height, width, rng, area=(lo, hi), box_prob=EVAL_BOX_PROB, max_tries=1000) > 0.5
    if not lo <= hole.mean() <= hi:  # only for images too small for the shapes
        raise ArtganError(f"evaluate inpaint: no mask with {lo:.0%}-{hi:.0%} area for {name} ({width}x{height})")
    return hole


def to_8bit(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0


def hole_metrics(result: np.ndarray, target: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    result, target = to_8bit(result), to_8bit(target)
    return {"psnr": psnr(result, target, mask=hole), "ssim": ssim(result, target, mask=hole),
            "l1": float(np.abs(result - target)[hole].mean())}


@dataclass
class Evaluation:
    """Per method and band: mean PSNR/SSIM/L1 over the hole, image count, seconds per image."""

    methods: list[str]
    seed: int = 0
    bands: list[str] = field(default_factory=lambda: [b[0] for b in BANDS])
    scores: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)  # for the comparison sheet

    def to_dict(self) -> dict[str, Any]:
        return {"methods": self.methods, "seed": self.seed, "bands": self.bands, "scores": self.scores, "files": self.files,
                "masks": "eval_mask(file name, band, seed) in artgan_inpaint/evaluate.py",
                "metrics": "PSNR (dB), SSIM and L1 over the hole, RGB in [0, 1], 8-bit outputs"}


def evaluate(files: Sequence[Path], methods: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]],
             *, seed: int = 0, masks_per_image: int = 1, sheet_rows: int = 4,
             log: Callable[[str], None] | None = None) -> Evaluation:
    """Run every method on every (image, band, k) with the same masks."""
    from artgan.images import load_image, to_float

    ev = Evaluation(methods=list(methods), seed=seed, files=[Path(f).name for f in files])
    sums = {m: {b[0]: {"psnr": [], "ssim": [], "l1": [], "seconds": []} for b in BANDS} for m in methods}
    for i, path in enumerate(files):
        image = to_float(load_image(path, "RGB"))
        h, w = image.shape[:2]
        for b, (band, _, _) in enumerate(BANDS):
            for k in range(masks_per_image):
                hole = eval_mask(Path(path).name, b, h, w, seed=seed, k=k)
                outputs = {}
                for name, fill in methods.items():
                    t0 = time.perf_counter()
                    out = fill(image, hole)
                    sums[name][band]["seconds"].append(time.perf_counter() - t0)
                    for key, v in hole_metrics(out, image, hole).items():
                        sums[name][band][key].append(v)
                    outputs[name] = out
                if k == 0 and b == len(BANDS) - 1 and i < sheet_rows:
                    ev.examples.append({"file": Path(path).name, "band": band, "image": image,
                                        "hole": hole, "outputs": outputs})
        if log:
            log(f"  [{i + 1}/{len(files)}] {Path(path).name}")
    for name in methods:
        ev.scores[name] = {band: {key: float(np.mean(v)) for key, v in vals.items()} | {"n": len(vals["psnr"])}
                           for band, vals in sums[name].items()}
    return ev


def table(ev: Evaluation, reference: str | None = None) -> str:
    """A markdown table: a row per method, PSNR / SSIM / L1 per band; then the reference method's
    PSNR gain over the best other method in each band."""
    head = "| method | " + " | ".join(f"{b} PSNR | {b} SSIM | {b} L1" for b in ev.bands) + " |"
    rule = "|---|" + "---:|" * (3 * len(ev.bands))
    rows = [head, rule]
    for m in ev.methods:
        cells = []
        for b in ev.bands:
            s = ev.scores[m][b]
            cells += [f"{s['psnr']:.2f}", f"{s['ssim']:.4f}", f"{s['l1']:.4f}"]
        rows.append(f"| {m} | " + " | ".join(cells) + " |")
    others = [m for m in ev.methods if m != reference]
    if reference in ev.methods and others:
        gains = []
        for b in ev.bands:
            best = max(others, key=lambda m: ev.scores[m][b]["psnr"])
            gains.append(f"{b}: {ev.scores[reference][b]['psnr'] - ev.scores[best][b]['psnr']:+.2f} dB vs {best}")
        rows.append("")
        rows.append(f"{reference} PSNR gain over the best other method: " + "; ".join(gains))
    n = ev.scores[ev.methods[0]][ev.bands[0]]["n"] if ev.methods else 0
    rows.append(f"{len(ev.files)} images, {n} masks per band (seed {ev.seed}); PSNR in dB, SSIM, "
                f"L1 on [0, 1], all over the hole.")
    return "\n".join(rows)


SHEET_CELL = 240  # pixels per cell of the comparison sheet
SHEET_CROP = 120  # the crop around the hole, shown at 2x


def _fit(image: np.ndarray, size: int) -> np.ndarray:
    """Scale an HWC image to fit a size x size cell (Lanczos down, nearest up), padded white to
    the cell's width; its height is the scaled image's."""
    from PIL import Image

    h, w = image.shape[:2]
    f = size / max(h, w)
    im = Image.fromarray((to_8bit(image) * 255).astype(np.uint8)).resize(
        (max(1, round(w * f)), max(1, round(h * f))), Image.NEAREST if f > 1 else Image.LANCZOS)
    arr = np.asarray(im, np.float32).reshape(im.height, im.width, -1)[..., :3] / 255.0
    return np.pad(arr, ((0, 0), (0, size - arr.shape[1]), (0, 0)), constant_values=1.0)


def hole_window(hole: np.ndarray, size: int) -> tuple[int, int, int]:
    """(top, left, side) of a square window of ``size`` px (or the image's shorter side) that
    holds the most hole pixels, up to 60% of it, so that known pixels around the fill remain to
    judge it against."""
    h, w = hole.shape
    side = min(size, h, w)
    integral = np.pad(hole.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    counts = (integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side]
              + integral[:-side, :-side])
    top, left = np.unravel_index(int(np.argmax(np.minimum(counts, 0.6 * side * side))), counts.shape)
    return int(top), int(left), side


def comparison_sheet(ev: Evaluation) -> np.ndarray:
    """Two rows per example: the whole photos (input with its hole in white, the mask, each
    method's fill, the original), then the same columns cropped to the window with the most hole
    pixels, enlarged 2x so that the fills can be judged. A header names the columns. float32 HWC
    in [0, 1]."""
    from PIL import Image, ImageDraw

    if not ev.examples:
        raise ArtganError("evaluate inpaint: no examples for the comparison sheet")
    names = ["input (hole white)", "mask", *ev.methods, "original"]
    cell, gap = SHEET_CELL, 4
    rows = []
    for ex in ev.examples:
        image, hole = ex["image"], ex["hole"]
        cells = [np.where(hole[..., None], 1.0, image), np.repeat(hole[..., None], 3, 2).astype(np.float32),
                 *[ex["outputs"][m] for m in ev.methods], image]
        top, left, side = hole_window(hole, SHEET_CROP)
        for crop in (False, True):
            shown = [_fit(c[top:top + side, left:left + side] if crop else c, cell) for c in cells]
            height = max(c.shape[0] for c in shown) + gap
            rows.append(np.concatenate([np.pad(c, ((0, height - c.shape[0]), (0, gap), (0, 0)), constant_values=1.0)
                                        for c in shown], axis=1))
    header = Image.new("RGB", (rows[0].shape[1], 22), "white")
    draw = ImageDraw.Draw(header)
    for j, name in enumerate(names):
        draw.text((j * (cell + gap) + 4, 5), name, fill="black")
    parts = [np.asarray(header, np.float32) / 255.0, *rows]
    return np.concatenate(parts, axis=0).astype(np.float32)


def update_card(card_path: Path, ev: Evaluation, text: str, extra: dict[str, Any]) -> None:
    """Add the evaluation to a model card (``NAME.card.json``) and write ``NAME.card.md`` beside
    it: what the model is, how to run it, how it was trained (command, steps, time, machine), its
    ONNX check and the evaluation table."""
    from artgan.files import write_json, write_text

    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    card["evaluation"] = {**ev.to_dict(), **extra, "table": text}
    write_json(card_path, card)
    stem = card_path.name[: -len(".card.json")] if card_path.name.endswith(".card.json") else card_path.stem
    training, parity = card.get("training") or {}, card.get("parity") or {}
    md = [f"# inpaint/{stem}", "", card.get("description", "An inpainting model."), "",
          "## Use", "", "```",
          f"artgan process photo.png --step inpaint:mask=hole.png --out filled   # white = hole, same size",
          f"artgan process erased.png --step inpaint:mask=alpha --out filled  # the transparent pixels",
          f"artgan process photo.png --step inpaint:box=120,80,64,48 --out filled  # x,y,w,h",
          "```", "",
          f"`inpaint` uses this model by default (`model={stem}` names it). Inputs: `image` float32 N3HW in "
          f"[-1, 1], the photo with its hole pre-filled as the metadata's `prefill` says; `mask` float32 "
          f"N1HW (1 = hole, thresholded at 0.5). Output: the filled image, known pixels pasted back.", ""]
    if card.get("data"):
        md += ["## Data", "", card["data"], ""]
    if training:
        minutes = f"{training['seconds'] / 60:.0f} minutes" if training.get("seconds") else "?"
        precision = training.get("precision")
        if isinstance(precision, dict):  # artgan.precision.PrecisionChoice.as_record()
            precision = (f"{'bf16 autocast' if precision.get('bf16') else 'fp32'}"
                         f"{', channels_last' if precision.get('channels_last') else ''}")
        md += ["## Training", "",
               f"{training.get('steps')} steps in {minutes} on {training.get('machine', '?')}"
               + (f", {precision}" if precision else "") + f"; {training.get('generator_parameters')} parameters.", "",
               f"Reproduce: `{training.get('command')}`", ""]
    if parity:
        md += ["## ONNX vs PyTorch", "", f"{parity['image_size'][0]}x{parity['image_size'][1]} photo, "
               f"{parity['hole_fraction']:.0%} hole, pre-filled: PSNR {parity['psnr_db']:.1f} dB, largest "
               f"difference {parity['max_abs_diff']:.2g} (target >= {parity['target_psnr_db']:.0f} dB).", ""]
    speed = card.get("speed")
    if speed:
        md += ["## Speed", "", f"The `inpaint` step as `artgan process` runs it (pre-fill, onnxruntime, paste) on a "
               f"{speed['size'][0]}x{speed['size'][1]} photo with a {speed['hole_fraction']:.0%} hole: "
               f"{speed['median_s']:.2f} s per image (median of 5; fastest {speed['fastest_s']:.2f} s) on "
               f"{speed['machine']}, threads: {speed['threads']} (`artgan_inpaint.card.step_speed`).", ""]
    md += ["## Evaluation", "", f"`artgan evaluate inpaint --data {extra.get('data', 'DATA')} --split "
           f"{extra.get('split', 'all')} --model {stem}`: masks fixed by seed {ev.seed}, the same for every "
           f"method; the comparison sheet is `{stem}.comparison.png`.", "", text, ""]
    write_text(card_path.with_name(stem + ".card.md"), "\n".join(md))


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr)
