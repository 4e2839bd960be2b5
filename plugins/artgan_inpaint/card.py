"""The model card's measured facts: ONNX vs PyTorch on a real photo, and the speed of the step.

    python -m artgan_inpaint.card CHECKPOINT MODEL.onnx --image IMG.png [--card CARD.json] [--command ...]

Parity: the export step verifies 64 px random inputs; this checks what users run: a photo
pre-filled by the model's classical method, at its own size (dynamic height and width), a real
20-40% mask and the full paste. Target: PSNR >= 50 dB between the two. Speed: the ``inpaint``
step (pre-fill + onnxruntime + paste) on the photo resized to 512x512 with a 30% hole, the median
of 5 runs. With ``--card``, both go into the card with the training facts (steps, time, machine).
``artgan evaluate inpaint --card`` adds the evaluation and writes the Markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artgan.export import psnr
from artgan.images import load_image, to_float
from artgan.tiling import pad_to_multiple

from .evaluate import eval_mask
from .model import SIZE_MULTIPLE, PastedInpainter, count_parameters
from .steps import _to_uint8, classical_fill

PARITY_MIN_DB = 50.0
SPEED_SIZE, SPEED_HOLE = 512, 0.30


def onnx_parity(recipe, onnx_path: str | Path, image: np.ndarray, hole: np.ndarray) -> dict[str, Any]:
    """Run the recipe's exported module in PyTorch and the .onnx in onnxruntime on the same
    padded image and hole; return the largest difference and the PSNR between them."""
    import onnxruntime as ort

    start = classical_fill(_to_uint8(image), hole, recipe.prefill).astype(np.float32) / 255.0
    img = pad_to_multiple(np.where(hole[..., None], start, image), SIZE_MULTIPLE)
    msk = pad_to_multiple(hole[..., None].astype(np.float32), SIZE_MULTIPLE)
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float() * 2 - 1
    m = torch.from_numpy(np.ascontiguousarray(msk.transpose(2, 0, 1)))[None].float()
    module = PastedInpainter(recipe.exported_net).eval()
    with torch.no_grad():
        ref = module(x, m).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"image": x.numpy(), "mask": m.numpy()})[0]
    return {"image_size": [int(image.shape[1]), int(image.shape[0])], "hole_fraction": float(hole.mean()),
            "max_abs_diff": float(np.abs(out - ref).max()), "psnr_db": psnr(out, ref, data_range=2.0),
            "target_psnr_db": PARITY_MIN_DB}


def step_speed(onnx_path: str | Path, image: np.ndarray, runs: int = 5) -> dict[str, Any]:
    """Seconds per image of the ``inpaint`` step (pre-fill, onnxruntime, paste) on ``image``
    resized to 512x512 with a seeded 30% hole: the median and the fastest of ``runs``."""
    import time

    from PIL import Image

    from .masks import random_mask
    from .steps import ModelInpaint

    photo = np.asarray(Image.fromarray(_to_uint8(image)).resize((SPEED_SIZE, SPEED_SIZE), Image.LANCZOS))
    photo = photo.astype(np.float32) / 255.0
    hole = random_mask(SPEED_SIZE, SPEED_SIZE, np.random.default_rng(0), area=(SPEED_HOLE - 0.01, SPEED_HOLE + 0.01)) > 0.5
    step = ModelInpaint(str(onnx_path))
    step.inpaint(photo, hole)  # warm-up: onnxruntime plans its kernels for this size
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        step.inpaint(photo, hole)
        times.append(time.perf_counter() - t0)
    import os
    return {"size": [SPEED_SIZE, SPEED_SIZE], "hole_fraction": round(float(hole.mean()), 3),
            "median_s": round(float(np.median(times)), 3), "fastest_s": round(min(times), 3),
            "threads": os.environ.get("ARTGAN_THREADS", "onnxruntime's default"), "machine": machine()}


def machine() -> str:
    """What trained it, in words: the CPU model and its core count, and the GPU if one was used."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} CPU cores{gpu}"


def main(argv: list[str] | None = None) -> int:
    from artgan.checkpoints import load_recipe
    from artgan.files import write_json
    from artgan.plugins import get_registry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("onnx")
    ap.add_argument("--image", required=True)
    ap.add_argument("--card", default=None, help="add the result (and training facts) to this .card.json")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--command", default=None, help="the command that reproduces the model")
    args = ap.parse_args(argv)

    recipe, ckpt = load_recipe(args.checkpoint, get_registry())
    image = to_float(load_image(args.image, "RGB"))
    hole = eval_mask(Path(args.image).name, 2, *image.shape[:2])
    result = onnx_parity(recipe, args.onnx, image, hole)
    speed = step_speed(args.onnx, image)
    print(json.dumps({"parity": result, "speed": speed}))
    if args.card:
        card_path = Path(args.card)
        card = json.loads(card_path.read_text()) if card_path.exists() else {}
        card["description"] = (
            f"PSNR-oriented inpainting: OpenCV's {recipe.prefill} fill of the hole (radius 3; the `inpaint` "
            f"step runs it in numpy), corrected inside the hole by a small U-Net that works at 1/4 "
            f"resolution with dilated residual blocks, trained with L2 on the hole only (no adversarial "
            f"term). Inputs: image (the pre-filled photo) NCHW in [-1, 1], mask N1HW with 1 = hole; the "
            f"output already has the known pixels pasted back. Sides any multiple of {SIZE_MULTIPLE} "
            f"(the step pads).")
        crop = ckpt["recipe"]["info"]["image_size"]
        card["data"] = (f"{ckpt['recipe']['info']['name']}: the training split leaves out every 4th file by "
                        f"sorted name (held out for validation); random {crop} px crops and flips, random "
                        f"brush-stroke and box holes covering 5-40% of the crop, sized as on whole photos")
        card["training"] = {"steps": args.steps or int(ckpt["step"]), "seconds": round(float(ckpt.get("train_seconds", 0))),
                            "precision": ckpt.get("precision"), "machine": machine(), "recipe": ckpt["recipe"],
                            "options": ckpt.get("options"), "command": args.command,
                            "generator_parameters": count_parameters(recipe.exported_net)}
        card["parity"] = result
        card["speed"] = speed
        write_json(card_path, card)
    if not result["psnr_db"] >= PARITY_MIN_DB:
        print(f"error: ONNX differs from PyTorch: {result['psnr_db']:.1f} dB < {PARITY_MIN_DB} dB")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
