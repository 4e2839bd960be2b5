"""``artgan evaluate inpaint``: the inpainting protocol, registered with the core (no torch).

For every photo of a folder (by default all of it: the shipped models train on BSDS400 and are
measured on all 68 BSD68 photos, none of which they have seen), one hole per mask-area band (5-10%,
10-20%, 20-40%, 40-60%) and per ``--masks-per-image``:

- Masks: :func:`eval_mask` draws each from a generator seeded by (``--seed``, the file name, the
  band, k), redrawn until its measured area lies in the band. Every method sees the same masks,
  and they do not depend on which other files are in the folder.
- Methods: the classical baselines (``telea``, ``ns``; with scikit-image, ``biharmonic``; with
  opencv-contrib's ``cv2.xphoto``, ``fsr_fast`` and ``shiftmap``, the strongest classical fills,
  else a note line says how to install it) and each trained model. A method gets the photo with its hole as a fourth channel (1 = hole) and
  pastes the known pixels back. OpenCV's fills (and so the model's pre-fill) read a few pixels
  under the rim of their mask: blanking the hole first moves the BSD68 means by at most 0.001 dB,
  so the shipped figures are kept as measured, with the photo intact.
- Metrics on RGB in [0, 1], after rounding every output to 8 bits (what a saved PNG holds):
  PSNR over the hole's pixels, SSIM (11x11 Gaussian) averaged over the hole, and mean |error| over
  the hole; the detail ratio (:func:`detail_ratio`: 1.0 = as much fine detail in the hole as
  the photo had there, a blur scores near 0); each per band, averaged over the photo's masks and
  then over photos.

The core (:mod:`artgan.evaluation`) runs it with the options, results JSON and table every task
has; ``--sheet FILE`` also writes a comparison sheet of the first photos' 20-40% holes.
"""

from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from artgan.errors import ArtganError
from artgan.evaluation import Evaluation, Metric, Option, Request
from artgan.images import load_image, save_image, to_float
from artgan.metrics import psnr, ssim

from .masks import random_mask
from .steps import (XPHOTO_INSTALL, XPHOTO_METHODS, BiharmonicInpaint, InpaintingStep, ModelInpaint, OpenCVInpaint,
                    XPhotoInpaint, xphoto_available)

BANDS: tuple[tuple[str, float, float], ...] = (("5-10%", 0.05, 0.10), ("10-20%", 0.10, 0.20),
                                                ("20-40%", 0.20, 0.40), ("40-60%", 0.40, 0.60))
EVAL_BOX_PROB = 0.25  # the share of rectangles among the shapes, as in training
CLASSICAL = ("telea", "ns", "biharmonic", *XPHOTO_METHODS)
METRICS = (("psnr", "PSNR", ".2f", "dB"), ("ssim", "SSIM", ".4f", ""), ("l1", "L1", ".4f", ""),
           ("detail", "detail", ".3f", ""))
DETAIL_ERODE = 2  # px: the rim of a hole mixes known pixels into the fill's Laplacian


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


def _laplacian_std(image: np.ndarray, region: np.ndarray) -> float:
    import cv2

    gray = image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # luma
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)  # the 4-neighbour Laplacian
    return float(lap[region].std())


def detail_ratio(result: np.ndarray, target: np.ndarray, hole: np.ndarray) -> float:
    """How much fine detail a fill has: the standard deviation of the luma's Laplacian inside the
    hole eroded by :data:`DETAIL_ERODE` px, over the same on the original photo. 1.0: as rich as
    the photo; a smooth smear: near 0; noise: above 1 (the PSNR shows that). A hole too thin to
    erode is measured whole."""
    import cv2

    side = 2 * DETAIL_ERODE + 1
    inner = cv2.erode(hole.astype(np.uint8), np.ones((side, side), np.uint8), borderType=cv2.BORDER_CONSTANT,
                      borderValue=0) > 0
    region = inner if inner.sum() >= 2 else hole
    return _laplacian_std(result, region) / max(_laplacian_std(target, region), 1e-6)


def hole_metrics(result: np.ndarray, target: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    result, target = to_8bit(result), to_8bit(target)
    return {"psnr": psnr(result, target, mask=hole), "ssim": ssim(result, target, mask=hole),
            "l1": float(np.abs(result - target)[hole].mean()), "detail": detail_ratio(result, target, hole)}


def metric_name(metric: str, band: str) -> str:
    return f"{metric} {band}"  # "psnr 5-10%": the key in the results JSON


# -- what the core calls: load, methods, score ---------------------------------------------------

def load(path: Path, request: Request) -> tuple[np.ndarray, tuple[np.ndarray, list[np.ndarray]]]:
    """(the photo once per band and mask, NHW4 with the hole as the fourth channel, band-major;
    (the photo, the holes in the same order))."""
    image = to_float(load_image(path, "RGB"))
    h, w = image.shape[:2]
    k = request.options["masks_per_image"]
    holes = [eval_mask(path.name, b, h, w, seed=request.options["seed"], k=j)
             for b in range(len(BANDS)) for j in range(k)]
    inputs = np.stack([np.dstack([image, hole.astype(np.float32)]) for hole in holes])
    return inputs, (image, holes)


def score(outputs: np.ndarray, reference: tuple[np.ndarray, list[np.ndarray]], request: Request) -> dict[str, float]:
    image, holes = reference
    if outputs.shape != (len(holes), *image.shape):
        raise ArtganError(f"made {outputs.shape}, expected {(len(holes), *image.shape)}")
    k = request.options["masks_per_image"]
    scores: dict[str, float] = {}
    for b, (band, _, _) in enumerate(BANDS):
        per_mask = [hole_metrics(outputs[i], image, holes[i]) for i in range(b * k, (b + 1) * k)]
        for metric, *_ in METRICS:
            scores[metric_name(metric, band)] = float(np.mean([m[metric] for m in per_mask]))
    return scores


def fills_holes(step: InpaintingStep) -> Callable[[np.ndarray], np.ndarray]:
    """A method of this evaluation: NHW4 (RGB + the hole) -> NHW3, one ``step.inpaint`` each."""
    def run(batch: np.ndarray) -> np.ndarray:
        return np.stack([step.inpaint(x[..., :3], x[..., 3] > 0.5) for x in batch])
    return run


def classical_step(name: str, radius: float) -> InpaintingStep:
    if name == "biharmonic":
        return BiharmonicInpaint()  # a one-line error says how to install scikit-image
    if name in ("telea", "ns"):
        return OpenCVInpaint(name, radius)
    if name in XPHOTO_METHODS:
        return XPhotoInpaint(name)  # a one-line error says how to install opencv-contrib
    raise ArtganError(f"evaluate inpaint: unknown baseline {name!r}; choose among {', '.join(CLASSICAL)}")


def methods(request: Request) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The baselines, then each model given (default: every inpainting model found)."""
    from artgan.model_search import list_models

    steps = {name: classical_step(name, request.options["radius"]) for name in request.baselines}
    for model in request.models or list_models("inpaint"):
        steps[Path(model).stem if model.endswith(".onnx") else model] = ModelInpaint(model)
    out = {name: fills_holes(step) for name, step in steps.items()}
    if request.options.get("sheet"):
        sheet = ComparisonSheet(request.options["sheet"], list(out), request.options["masks_per_image"])
        out = {name: sheet.recording(name, method) for name, method in out.items()}
    return out


def protocol(request: Request) -> str:
    o = request.options
    return (f"over the hole, per mask-area band; masks fixed by seed {o['seed']} ({o['masks_per_image']} per "
            f"photo and band); RGB, 8-bit outputs; telea/ns radius {o['radius']:g}")


def against_best_classical(result: dict[str, Any]) -> list[str]:
    """Per band, each model's hole PSNR against the best classical fill *of each photo* (the
    strongest comparison: no one classical fill is best everywhere): mean and worst margin, photos
    won, and the model's detail ratio. Empty when the run had no classical fill or no model."""
    methods = result["methods"]
    classical = [m for m in methods if m in CLASSICAL]
    models = [m for m in methods if m not in CLASSICAL]
    if not classical or not models:
        return []
    lines = [f"hole PSNR against the best classical fill per photo ({', '.join(classical)}):"]
    for model in models:
        per = methods[model]["per_image"]
        for band, _, _ in BANDS:
            key = metric_name("psnr", band)
            margins = [per[im][key] - max(methods[c]["per_image"][im][key] for c in classical) for im in per]
            lines.append(f"  {model} {band}: {np.mean(margins):+.2f} dB mean, {min(margins):+.2f} worst, "
                         f"won {sum(m > 0 for m in margins)}/{len(margins)}; detail "
                         f"{methods[model][metric_name('detail', band)]:.3f}")
    return lines


def inpaint_evaluation() -> Evaluation:
    """What ``artgan_register_evaluations`` registers as ``inpaint``."""
    import click  # for the options' types: the command line is what builds the command

    have_skimage = importlib.util.find_spec("skimage") is not None
    have_xphoto = xphoto_available()
    note = ("PSNR (dB), SSIM and L1 (on [0, 1]) over the hole; detail: the Laplacian's std in the hole (eroded "
            f"{DETAIL_ERODE} px) over the photo's, 1.0 = as rich as the photo; the last column is the PSNR gain at 5-10%.")
    if not have_xphoto:
        note += f"\nfsr_fast and shiftmap skipped: no cv2.xphoto (opencv-contrib); to add them: {XPHOTO_INSTALL}"
    return Evaluation(
        help="""Inpainting quality on a folder of photos: PSNR, SSIM, L1 and the detail ratio over the
        hole, per mask-area band (5-10%, 10-20%, 20-40%, 40-60%), for the classical fills (Telea,
        Navier-Stokes; biharmonic with scikit-image; FSR_FAST and SHIFTMAP with opencv-contrib's
        cv2.xphoto) and trained models, with the same seeded masks for every method.

        \b
        Examples:
          artgan evaluate inpaint --data ../shared/data/BSD68
          artgan evaluate inpaint --data BSD68 --model residual-bsds400 --sheet comparison.png
        """,
        metrics=[Metric(metric_name(m, band), f"{label} {band}", fmt, unit)
                 for m, label, fmt, unit in METRICS for band, _, _ in BANDS],
        load=load, score=score, methods=methods,
        baselines=("telea", "ns", *(("biharmonic",) if have_skimage else ()), *(XPHOTO_METHODS if have_xphoto else ())),
        options={"seed": Option(0, "Seed of the masks (the same for every method).", int),
                 "masks_per_image": Option(1, "Masks per photo and band.", click.IntRange(1, 16)),
                 "radius": Option(3.0, "Telea and Navier-Stokes radius (pixels).", click.FloatRange(0, 64, min_open=True)),
                 "sheet": Option(None, "Also write a comparison sheet (PNG) of the first photos' 20-40% holes, "
                                       "with full-resolution crops of the holes.",
                                 click.Path(dir_okay=False, path_type=Path))},
        protocol=protocol,
        note=note,
        summary=against_best_classical,
    )


# -- the comparison sheet -------------------------------------------------------------------------

SHEET_ROWS = 4  # photos shown
SHEET_BAND = [band for band, _, _ in BANDS].index("20-40%")  # their 20-40% holes
SHEET_CELL = 240  # pixels per cell of the comparison sheet; also the crop around the hole, shown 1:1
SHEET_CAPTION = 14  # px: the strip under a crop row with each fill's hole PSNR and detail ratio


class ComparisonSheet:
    """Records each method's fill of the first :data:`SHEET_ROWS` photos' 20-40% holes as the
    evaluation runs them, and writes the sheet after each of those photos (so a smaller folder
    still gets one). The core runs every method on a photo before the next photo."""

    def __init__(self, path: str | Path, names: list[str], masks_per_image: int):
        self.path, self.names = Path(path), names
        self.index = SHEET_BAND * masks_per_image  # the first mask of the band, in load()'s order
        self.examples: list[dict[str, Any]] = []
        self.photos = 0

    def recording(self, name: str, method: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        def run(batch: np.ndarray) -> np.ndarray:
            outputs = method(batch)
            self.record(name, batch, outputs)
            return outputs
        return run

    def record(self, name: str, batch: np.ndarray, outputs: np.ndarray) -> None:
        if name == self.names[0]:  # the first method on a new photo
            self.photos += 1
            if self.photos <= SHEET_ROWS:
                x = batch[self.index]
                self.examples.append({"image": x[..., :3], "hole": x[..., 3] > 0.5, "outputs": {}})
        if self.photos > SHEET_ROWS:
            return
        self.examples[-1]["outputs"][name] = outputs[self.index]
        if name == self.names[-1]:  # the photo's row is complete
            save_image(self.path, comparison_sheet(self.examples, self.names))


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


def _full_resolution(image: np.ndarray, size: int) -> np.ndarray:
    """An HWC crop of at most size x size shown pixel for pixel, padded white to the cell's width."""
    arr = to_8bit(image[:size, :size, :3]).astype(np.float32)
    return np.pad(arr, ((0, 0), (0, size - arr.shape[1]), (0, 0)), constant_values=1.0)


def _caption(texts: list[str], cell: int, gap: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (len(texts) * (cell + gap), SHEET_CAPTION), "white")
    draw = ImageDraw.Draw(strip)
    for j, text in enumerate(texts):
        draw.text((j * (cell + gap) + 4, 1), text, fill="black")
    return np.asarray(strip, np.float32) / 255.0


def comparison_sheet(examples: list[dict[str, Any]], methods: list[str]) -> np.ndarray:
    """Two rows per example (``{"image", "hole", "outputs": {method: image}}``): the whole photos
    (input with its hole in white, the mask, each method's fill, the original), then the same
    columns cropped to the :data:`SHEET_CELL` px window with the most hole pixels at full
    resolution (pixel for pixel: where blur and texture show), captioned with each fill's hole
    PSNR and detail ratio. A header names the columns. float32 HWC in [0, 1]."""
    from PIL import Image, ImageDraw

    if not examples:
        raise ArtganError("no examples for the comparison sheet")
    names = ["input (hole white)", "mask", *methods, "original"]
    cell, gap = SHEET_CELL, 4
    rows = []
    for ex in examples:
        image, hole = ex["image"], ex["hole"]
        cells = [np.where(hole[..., None], 1.0, image), np.repeat(hole[..., None], 3, 2).astype(np.float32),
                 *[ex["outputs"][m] for m in methods], image]
        top, left, side = hole_window(hole, SHEET_CELL)
        for crop in (False, True):
            shown = [_full_resolution(c[top:top + side, left:left + side], cell) if crop else _fit(c, cell)
                     for c in cells]
            height = max(c.shape[0] for c in shown) + gap
            rows.append(np.concatenate([np.pad(c, ((0, height - c.shape[0]), (0, gap), (0, 0)), constant_values=1.0)
                                        for c in shown], axis=1))
        scores = [hole_metrics(ex["outputs"][m], image, hole) for m in methods]
        rows.append(_caption(["", "", *[f"{m['psnr']:.2f} dB, detail {m['detail']:.2f}" for m in scores], ""],
                             cell, gap))
    header = Image.new("RGB", (rows[0].shape[1], 22), "white")
    draw = ImageDraw.Draw(header)
    for j, name in enumerate(names):
        draw.text((j * (cell + gap) + 4, 5), name, fill="black")
    return np.concatenate([np.asarray(header, np.float32) / 255.0, *rows], axis=0).astype(np.float32)
