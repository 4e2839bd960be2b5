"""A second app: draw images from an artgan generator with onnxruntime, numpy and Pillow only.

No artgan, no PyTorch: everything this program needs to know about the model it reads from the
model's own metadata (the contract in exports/README.md). For the same model and seed it draws
the same images as ``artgan generate``.

    pip install onnxruntime numpy Pillow
    python generate_app.py generator.onnx --n 16 --seed 0 --out grid.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def load(path: str) -> tuple[ort.InferenceSession, dict]:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    meta = {k[len("artgan."):]: json.loads(v) for k, v in props.items() if k.startswith("artgan.")}
    if meta.get("task") != "generate":
        sys.exit(f"{path}: not an artgan generator (artgan.task is {meta.get('task')!r})")
    return session, meta


def generate(session: ort.InferenceSession, meta: dict, n: int, seed: int) -> np.ndarray:
    """n images as uint8 NHWC. Latents: standard normal, float32, one row per image, from
    numpy's default generator seeded with ``seed`` (as ``artgan generate`` draws them)."""
    z = np.random.default_rng(seed).standard_normal((n, meta["latent_dim"]), dtype=np.float32)
    feeds = {"z": z}
    if "label" in meta["inputs"]:  # conditional generators: one class per image, in turn
        feeds["label"] = np.arange(n, dtype=np.int64) % max(meta.get("num_classes", 1), 1)
    (images,) = session.run(["image"], feeds)  # float32 NCHW in value_range
    lo, hi = meta["value_range"]
    images = np.clip((images - lo) / (hi - lo), 0.0, 1.0)  # -> [0, 1]
    return (images.transpose(0, 2, 3, 1) * 255.0 + 0.5).astype(np.uint8)  # -> uint8 NHWC


def grid(images: np.ndarray, pad: int = 2) -> Image.Image:
    n, h, w, c = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = img
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas)  # colour order: meta["color_order"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="grid.png")
    args = parser.parse_args()
    session, meta = load(args.model)
    grid(generate(session, meta, args.n, args.seed)).save(args.out)
    print(f"{args.n} images of {meta['image_size']} px from {meta.get('architecture', '?')} "
          f"({meta.get('precision', 'fp32')}) -> {args.out}")


if __name__ == "__main__":
    main()
