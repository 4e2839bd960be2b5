"""Does the exported style model compute what the PyTorch generator computes, on real photos?

For each photo: the checkpoint's photo -> art generator in PyTorch (fp32, CPU) and the ``.onnx``
through the ``style`` step (onnxruntime, with the step's own padding to a multiple of 4), both as
float [0, 1] images; PSNR between them (the target is >= 50 dB). Also times one 512x512 image
through onnxruntime. Prints one table; ``--card`` stores the figures in the model's card.

    python benchmarks/style_parity.py --checkpoint runs/style-starry-night/checkpoints/last.pt \\
        --model exports/style/starry-night.onnx --photos DATA/BSD68
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--photos", required=True, type=Path)
    ap.add_argument("--split", default="heldout", choices=["heldout", "train", "all"])
    ap.add_argument("--card", action="store_true", help="write the figures into the model's .card.json")
    args = ap.parse_args(argv)

    import torch

    from artgan.checkpoints import load_recipe
    from artgan.images import list_images, load_image, to_float
    from artgan.metrics import psnr
    from artgan.plugins import get_registry
    from artgan.steps import build_step
    from artgan.tiling import pad_to_multiple
    from artgan_style.evaluate import time_512
    from artgan_style.measure import split_photos

    recipe, state = load_recipe(args.checkpoint, get_registry())
    generator = recipe.export_spec().module.eval()
    step = build_step(get_registry(), {"name": "style", "model": str(args.model)})
    rows = []
    for path in split_photos(list_images(args.photos), args.split):
        image = to_float(load_image(path))
        h, w = image.shape[:2]
        padded = pad_to_multiple(image, 4)
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None] * 2 - 1
            ref = ((generator(x).clamp(-1, 1) + 1) / 2)[0].permute(1, 2, 0).numpy()[:h, :w]
        rows.append((path.name, psnr(step(image[None])[0], ref)))
    ms = time_512(step)
    worst = min(r[1] for r in rows)
    print(f"{'photo':<16} {'PSNR onnx vs torch (dB)':>24}")
    for name, value in rows:
        print(f"{name:<16} {value:>24.1f}")
    print(f"{'min':<16} {worst:>24.1f}")
    print(f"{'mean':<16} {float(np.mean([r[1] for r in rows])):>24.1f}")
    print(f"512x512 through onnxruntime: {ms:.0f} ms (CPU threads: onnxruntime default or ARTGAN_THREADS)")
    if args.card:
        from artgan.files import write_json
        card_path = args.model.with_suffix(".card.json")
        card = json.loads(card_path.read_text())
        card["parity"] = {"photos": len(rows), "split": args.split, "min_psnr_db": worst,
                          "mean_psnr_db": float(np.mean([r[1] for r in rows])), "ms_512x512": ms,
                          "train_steps": int(state["step"])}
        write_json(card_path, card)
    return 0 if worst >= 50 else 1


if __name__ == "__main__":
    sys.exit(main())
