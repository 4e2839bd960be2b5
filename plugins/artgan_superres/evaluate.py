"""``artgan evaluate superres``: the super-resolution protocol, registered with the core (no torch).

For every image of a folder: crop the HR image to a multiple of the scale, make the LR image with
the task's degradation (Pillow bicubic downscale, :mod:`.resize`), upscale it with each method,
round to 8 bits (what a saved PNG holds), and compare with the HR image on the Y channel
(BT.601, as MATLAB's ``rgb2ycbcr``) with ``scale`` pixels cropped from every border: PSNR,
SSIM and detail (gradient energy over the HR image's, :func:`artgan.metrics.detail_ratio`),
averaged over images. This is the protocol of the SR literature (SRCNN, EDSR, ESRGAN), except
that their LR images come from MATLAB's ``imresize``. The core (:mod:`artgan.evaluation`) runs
it, with the options, results JSON and table every task has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from artgan.errors import ArtganError
from artgan.evaluation import Evaluation, Metric, Option, Request
from artgan.images import load_image, to_float, to_uint8
from artgan.metrics import detail_ratio, psnr, rgb_to_y, ssim

from .resize import make_pair

PROTOCOL = ("Y channel (BT.601), {scale} px border cropped, 8-bit outputs; "
            "LR = Pillow bicubic downscale of the HR image cropped to a multiple of {scale}")
DETAIL_NOTE = ("detail: mean gradient magnitude over the HR image's (1.0 = as much fine detail; "
               "PSNR favours smooth output, GAN fine-tunes trade a little PSNR for detail)")


def load(path: Path, request: Request) -> tuple[np.ndarray, np.ndarray]:
    """(the LR image as a batch of one, the HR image cropped to a multiple of the scale)."""
    hr, lr = make_pair(load_image(path, "RGB"), request.options["scale"])
    return to_float(lr)[None], hr


def score(outputs: np.ndarray, hr: np.ndarray, request: Request) -> dict[str, float]:
    scale = request.options["scale"]
    sr = to_uint8(outputs[0])
    if sr.shape != hr.shape:
        raise ArtganError(f"made {sr.shape[1]}x{sr.shape[0]}, expected {hr.shape[1]}x{hr.shape[0]} (x{scale})")
    y_sr, y_hr = rgb_to_y(to_float(sr)), rgb_to_y(to_float(hr))
    return {"psnr": psnr(y_sr, y_hr, crop=scale), "ssim": ssim(y_sr, y_hr, crop=scale),
            "detail": detail_ratio(y_sr, y_hr, crop=scale)}


def methods(request: Request) -> dict[str, Any]:
    """The baselines at the scale, then each model given (default: every x{scale}-* model found)."""
    from artgan.model_search import list_models

    scale, tile = request.options["scale"], request.options["tile"]
    out = {b: request.step({"name": b, "scale": scale}) for b in request.baselines}
    names = request.models or [m for m in list_models("superres") if m.startswith(f"x{scale}-")]
    for name in names:
        label = Path(name).stem if name.endswith(".onnx") else name
        out[label] = request.step({"name": "superres", "model": name, "scale": scale, "tile": tile})
    return out


def superres_evaluation() -> Evaluation:
    """What ``artgan_register_evaluations`` registers as ``superres``."""
    import click  # for the option's type: the command line is what builds the command

    return Evaluation(
        help="""Super-resolution quality on a folder of HR images: PSNR and SSIM on the Y channel with
        SCALE pixels cropped from the border (the SR literature's protocol), and detail, for bicubic,
        Lanczos and trained models. LR inputs are Pillow-bicubic downscales of the HR images.

        \b
        Examples:
          artgan evaluate superres --data ../shared/data/Set5 --scale 2
          artgan evaluate superres --data Set5 --scale 4 --model x4-psnr --per-image
        """,
        metrics=[Metric("psnr", "PSNR (dB)", ".2f", "dB"), Metric("ssim", "SSIM", ".4f"), Metric("detail", "detail", ".3f")],
        load=load, score=score, methods=methods, baselines=("bicubic", "lanczos"),
        options={"scale": Option(2, "Upscaling factor.", click.IntRange(2, 8)),
                 "tile": Option(None, "Tile side for the models (default: whole image).", int)},
        protocol=lambda request: PROTOCOL.format(scale=request.options["scale"]),
        note=DETAIL_NOTE,
        card_title=lambda result: f"{result['dataset']} x{result['options']['scale']}",
    )
