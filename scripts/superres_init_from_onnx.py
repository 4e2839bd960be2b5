"""Rebuild a ``superres-gan`` init checkpoint from a shipped ``.onnx`` upscaler.

The GAN fine-tune (pipelines/superres-x2-gan.yaml) starts from the PSNR model's checkpoint. When
only the exported model is at hand (the shipped exports/superres/x2-psnr.onnx was trained on a lent
GPU whose run folder was not kept), its weights are the ONNX initializers, named as in the
generator's state dict; this writes them as a checkpoint that ``init_from:`` accepts.

    python scripts/superres_init_from_onnx.py exports/superres/x2-psnr.onnx runs/x2-psnr-init.pt
"""

from __future__ import annotations

import json
import sys

import onnx
import torch
from onnx import numpy_helper

from artgan import checkpoints
from artgan.data import DatasetInfo
from artgan_superres.recipe import SuperResRecipe


def main(src: str, dst: str) -> None:
    model = onnx.load(src)
    meta = {p.key: json.loads(p.value) for p in model.metadata_props if p.key.startswith("artgan.")}
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    card = json.load(open(src.replace(".onnx", ".card.json")))
    arch = card.get("training", {}).get("architecture", {}) or card.get("metadata", {})
    params = {k: arch.get(k, meta.get(f"artgan.{k}")) for k in ("scale", "width", "blocks")}
    params = {k: v for k, v in params.items() if v is not None}
    recipe = SuperResRecipe(info=DatasetInfo(image_size=128, channels=3), **params)
    missing = set(recipe.G.state_dict()) - set(weights)
    if missing:
        sys.exit(f"{src}: no initializer for {sorted(missing)[:3]}... (exported with another layout?)")
    recipe.G.load_state_dict({k: weights[k] for k in recipe.G.state_dict()}, strict=True)
    checkpoints.save(dst, {"step": 0, "recipe": {"architecture": "superres-gan", "params": params},
                           "state": {"modules": {"generator": recipe.G.state_dict()}}})
    print(f"{dst}: generator of {src} ({params})")


if __name__ == "__main__":
    main(*sys.argv[1:3])
