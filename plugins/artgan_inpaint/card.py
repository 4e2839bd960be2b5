"""The inpainting model's card, through :mod:`artgan.cards` (``NAME.card.json`` + ``NAME.card.md``).

    python -m artgan_inpaint.card MODEL.onnx --checkpoint CKPT --image IMG.png [--command ...]

adds what the model is and how to use it (``summary``), how it was trained (``training``, from
the checkpoint), the command that reproduces it, ONNX vs PyTorch on a real photo with a real
20-40% hole, pre-filled as the step does (:func:`artgan.export.verify_on_real_inputs`, target
>= 50 dB), and the ``inpaint`` step's speed on that photo resized to 512x512 with a 30% hole.
``artgan evaluate inpaint --card`` adds the evaluation.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from artgan.cards import read_card, update_card
from artgan.errors import ArtganError
from artgan.images import load_image, to_float

PARITY_MIN_DB = 50.0
SPEED_SIZE, SPEED_HOLE = 512, 0.30


def summary(card: dict[str, Any]) -> dict[str, Any]:
    """The card's title, what the model is and how to run it, from its export metadata."""
    md = card.get("metadata", {})
    name = str(card.get("file", "model.onnx")).removesuffix(".onnx")
    prefill = md.get("prefill", {})
    if md.get("architecture") == "inpaint-detail":
        kind, objective = "Detail-preserving inpainting", ("from the PSNR-oriented residual model with L1 on the hole, a "
                                                          "perceptual term on a pretrained network's features "
                                                          "(artgan.features) and a patch discriminator on the hole")
    else:
        kind, objective = "PSNR-oriented inpainting", "with L2 on the hole only (no adversarial term)"
    return {"title": f"inpaint `{name}`: hole filling",
            "lines": [f"{kind}: OpenCV's {prefill.get('method')} fill of the hole (radius "
                      f"{prefill.get('radius', 3):g}; the `inpaint` step runs it in numpy), corrected inside the "
                      f"hole by a small U-Net that works at 1/4 resolution with dilated residual blocks, trained "
                      f"{objective}.", "",
                      f"- inputs: `image`, the photo with its hole pre-filled, NCHW in [-1, 1]; `mask` N1HW, "
                      f"1 = hole (thresholded at 0.5); sides any multiple of {md.get('size_multiple')} (the step "
                      f"pads). Output: the filled image, known pixels pasted back.",
                      f"- use: `artgan process photo.png --step inpaint:mask=hole.png --out filled` (white = "
                      f"hole, same size); `inpaint:mask=alpha` (the PNG's transparent pixels); "
                      f"`inpaint:box=x,y,w,h`; `model={name}` names this model"]}


def training(facts: dict[str, Any]) -> dict[str, Any]:
    """The ``training`` section: ``facts`` (iterations, seconds, precision, machine, parameters, data,
    recipe, options) and the lines the card shows for them."""
    precision = facts.get("precision")
    if isinstance(precision, dict):  # the trainer's record of its choice
        precision = (f"{'bf16 autocast' if precision.get('bf16') else 'fp32'}"
                     f"{', channels_last' if precision.get('channels_last') else ''}")
    seconds = facts.get("seconds")
    took = "?" if seconds is None else f"{seconds / 60:.0f} minutes" if seconds >= 60 else f"{seconds} s"
    return {**facts, "lines": [
        f"- data: {facts.get('data')}",
        f"- training: {facts.get('iterations')} iterations in {took} on {facts.get('machine', '?')}"
        + (f", {precision}" if precision else "") + f"; {facts.get('generator_parameters')} parameters"]}


def training_facts(checkpoint: dict[str, Any], module) -> dict[str, Any]:
    info = checkpoint["recipe"]["info"]
    return {"iterations": int(checkpoint["iteration"]), "seconds": round(float(checkpoint.get("train_seconds", 0))),
            "precision": checkpoint.get("precision"), "machine": machine(),
            "generator_parameters": sum(p.numel() for p in module.parameters()),
            "data": (f"{info['name']}: the train split of artgan.splits (every 4th file by sorted name "
                     f"held out, for the sample grids); random {info['image_size']} px crops and flips, random "
                     f"brush-stroke and box holes covering 5-40% of the crop, sized as on whole photos"),
            "recipe": checkpoint["recipe"], "options": checkpoint.get("options")}


def prefilled_inputs(onnx_path: Path, image: np.ndarray, hole: np.ndarray) -> dict[str, np.ndarray]:
    """The exported model's inputs for a photo and hole, as the ``inpaint`` step makes them: the
    photo cropped to the size multiple, its hole pre-filled by the model's classical method."""
    from .steps import ModelInpaint, classical_fill

    step = ModelInpaint(str(onnx_path))
    m = step.runner.multiple
    h, w = image.shape[0] // m * m, image.shape[1] // m * m
    image, hole = image[:h, :w], hole[:h, :w]
    start = classical_fill((image * 255 + 0.5).astype(np.uint8), hole, step.prefill_method, step.prefill_radius)
    start = np.where(hole[..., None], start.astype(np.float32) / 255.0, image)
    return {"image": start.transpose(2, 0, 1)[None].astype(np.float32) * 2 - 1,
            "mask": hole[None, None].astype(np.float32)}


def real_input_check(onnx_path: Path, module, image_path: Path) -> dict[str, Any]:
    """ONNX vs PyTorch on a real photo with its first 20-40% evaluation hole, recorded in the card."""
    from artgan.export import verify_on_real_inputs

    from .evaluate import eval_mask

    image = to_float(load_image(image_path, "RGB"))
    hole = eval_mask(image_path.name, 2, *image.shape[:2])
    feed = prefilled_inputs(onnx_path, image, hole)
    _, _, h, w = feed["image"].shape
    return verify_on_real_inputs(module, onnx_path, [feed], min_psnr=PARITY_MIN_DB,
                                 describe=f"{image_path.name}, {w}x{h}, a {hole.mean():.0%} hole pre-filled")


def step_speed(onnx_path: Path, image: np.ndarray, runs: int = 5) -> dict[str, Any]:
    """Seconds per image of the ``inpaint`` step (pre-fill, onnxruntime, paste) on ``image``
    resized to 512x512 with a seeded 30% hole: the median and the fastest of ``runs``."""
    from PIL import Image

    from .masks import random_mask
    from .steps import ModelInpaint

    photo = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    photo = np.asarray(photo.resize((SPEED_SIZE, SPEED_SIZE), Image.LANCZOS)).astype(np.float32) / 255.0
    hole = random_mask(SPEED_SIZE, SPEED_SIZE, np.random.default_rng(0),
                       area=(SPEED_HOLE - 0.01, SPEED_HOLE + 0.01)) > 0.5
    step = ModelInpaint(str(onnx_path))
    step.inpaint(photo, hole)  # warm-up: onnxruntime plans its kernels for this size
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        step.inpaint(photo, hole)
        times.append(time.perf_counter() - t0)
    return {"size": [SPEED_SIZE, SPEED_SIZE], "hole_fraction": round(float(hole.mean()), 3),
            "median_s": round(float(np.median(times)), 3), "fastest_s": round(min(times), 3),
            "threads": os.environ.get("ARTGAN_THREADS", "onnxruntime's default"), "machine": machine()}


def machine() -> str:
    """What ran it, in words: the CPU model and its core count, and the GPU if there is one."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch
        gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    except ImportError:
        gpu = ""
    return f"{cpu}, {os.cpu_count()} CPU cores{gpu}"


def main(argv: list[str] | None = None) -> int:
    from artgan.checkpoints import load_recipe
    from artgan.plugins import get_registry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="the exported model (NAME.onnx); its NAME.card.json is updated")
    ap.add_argument("--checkpoint", type=Path, required=True, help="the checkpoint it was exported from")
    ap.add_argument("--image", type=Path, required=True, help="a real photo for the ONNX check and the speed")
    ap.add_argument("--command", default="", help="the command that reproduces the model")
    args = ap.parse_args(argv)

    try:
        recipe, checkpoint = load_recipe(args.checkpoint, get_registry())
        module = recipe.export_spec().module
        update_card(args.model, "summary", summary(read_card(args.model)))
        update_card(args.model, "training", training(training_facts(checkpoint, module)))
        update_card(args.model, "command", args.command or None)
        update_card(args.model, "speed", step_speed(args.model, to_float(load_image(args.image, "RGB"))))
        report = real_input_check(args.model, module, args.image)
    except ArtganError as exc:
        print(f"error: {exc}")
        return 1
    print(f"ONNX vs PyTorch on {report['inputs']}: {report['min_psnr_db']:.1f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
