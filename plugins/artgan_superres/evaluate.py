"""The super-resolution evaluation protocol (no torch).

For every image of a folder: crop the HR image to a multiple of the scale, make the LR image with
the task's degradation (Pillow bicubic downscale, :mod:`.resize`), upscale it with each method,
round to 8 bits (what a saved PNG holds), and compare with the HR image on the Y channel
(BT.601, as MATLAB's ``rgb2ycbcr``) with ``scale`` pixels cropped from every border: PSNR and
SSIM, averaged over images. This is the protocol of the SR literature (SRCNN, EDSR, ESRGAN),
except that their LR images come from MATLAB's ``imresize``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from artgan.errors import ArtganError
from artgan.images import list_images, load_image, to_float, to_uint8
from artgan.metrics import detail_ratio, psnr, rgb_to_y, ssim

from .resize import make_pair

PROTOCOL = ("Y channel (BT.601), {scale} px border cropped, 8-bit outputs; "
            "LR = Pillow bicubic downscale of the HR image cropped to a multiple of {scale}")


def evaluate(methods: dict[str, Callable[[np.ndarray], np.ndarray]], data: str | Path, scale: int, *,
             progress: bool = False) -> dict[str, Any]:
    """PSNR, SSIM and detail (gradient energy over the HR image's, :func:`artgan.metrics.detail_ratio`)
    of each method (an NHWC -> NHWC step) on the images below ``data``."""
    files = list_images(data)
    if not files:
        raise ArtganError(f"evaluate superres: no images in {data}")
    per_image: dict[str, dict[str, dict[str, float]]] = {name: {} for name in methods}
    iterator = files
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(files, desc="evaluate", unit="image", file=sys.stderr)
    for f in iterator:
        hr, lr = make_pair(load_image(f, "RGB"), scale)
        y_hr = rgb_to_y(to_float(hr))
        for name, method in methods.items():
            sr = to_uint8(method(to_float(lr)[None])[0])
            if sr.shape != hr.shape:
                raise ArtganError(f"evaluate superres: {name} made {sr.shape[1]}x{sr.shape[0]} from "
                                  f"{lr.shape[1]}x{lr.shape[0]}, expected {hr.shape[1]}x{hr.shape[0]} (x{scale})")
            y_sr = rgb_to_y(to_float(sr))
            per_image[name][Path(f).stem] = {"psnr": psnr(y_sr, y_hr, crop=scale),
                                             "ssim": ssim(y_sr, y_hr, crop=scale),
                                             "detail": detail_ratio(y_sr, y_hr, crop=scale)}
    methods_out = {}
    for name, scores in per_image.items():
        means = {k: float(np.mean([s[k] for s in scores.values()])) for k in ("psnr", "ssim", "detail")}
        methods_out[name] = {**means, "per_image": scores}
    return {"data": str(data), "dataset": Path(data).name, "images": len(files), "scale": scale,
            "protocol": PROTOCOL.format(scale=scale), "methods": methods_out}


def format_table(result: dict[str, Any], baseline: str = "bicubic", per_image: bool = False) -> str:
    """A plain-text table: method, PSNR, SSIM, detail (1.0 = as much as the HR image) and the PSNR
    gain over ``baseline``."""
    methods = result["methods"]
    base = methods.get(baseline, {}).get("psnr")
    lines = [f"{result['dataset']} x{result['scale']} ({result['images']} images): {result['protocol']}",
             f"{'method':<24} {'PSNR (dB)':>10} {'SSIM':>8} {'detail':>7} {'vs ' + baseline:>12}"]
    for name, m in methods.items():
        gain = f"{m['psnr'] - base:+.2f} dB" if base is not None else "-"
        detail = f"{m['detail']:.3f}" if "detail" in m else "-"  # results saved before it was measured
        lines.append(f"{name:<24} {m['psnr']:>10.2f} {m['ssim']:>8.4f} {detail:>7} {gain:>12}")
    if per_image:
        names = list(methods)
        images = list(next(iter(methods.values()))["per_image"])
        lines.append("")
        lines.append(f"{'image (PSNR dB)':<24} " + " ".join(f"{n[:12]:>12}" for n in names))
        for im in images:
            lines.append(f"{im:<24} " + " ".join(f"{methods[n]['per_image'][im]['psnr']:>12.2f}" for n in names))
    return "\n".join(lines)
