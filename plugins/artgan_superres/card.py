"""Model cards of the shipped upscalers, through :mod:`artgan.cards` (``NAME.card.json`` +
``NAME.card.md``).

    python -m artgan_superres.card MODEL.onnx --run RUN_DIR --command "..." [--real-image IMG]

adds what the model is (the card's summary), what it was trained on and how (from the run
folder), the command that reproduces it and, with ``--real-image``, the export check on a real
image (:func:`artgan.export.verify_on_real_inputs`). ``artgan evaluate superres --card`` adds
the evaluation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from artgan.cards import read_card, update_card
from artgan.files import read_jsonl

DESCRIPTIONS = {
    "psnr": "PSNR-oriented: trained with L1 only; the faithful default, measured against bicubic.",
    "gan": "GAN-fine-tuned from the PSNR-oriented model (L1 + a small PatchGAN adversarial term + "
           "feature matching on the discriminator): sharper texture, lower PSNR.",
}


def summary(card: dict[str, Any]) -> dict[str, Any]:
    """The card's title and what the model is, from its export metadata."""
    md = card.get("metadata", {})
    name = card.get("file", "model.onnx").removesuffix(".onnx")
    gen = md.get("generator", {})
    return {"title": f"superres `{name}`: x{md.get('scale', '?')} upscaler",
            "lines": [DESCRIPTIONS.get(md.get("objective", ""), ""), "",
                      f"- file: `{card.get('file')}` (ONNX opset {md.get('opset')}, input `lr` NCHW RGB in [-1, 1], "
                      f"any height and width; output `hr`, {md.get('scale')}x larger)",
                      f"- network: residual CNN, {gen.get('width')} channels, {gen.get('blocks')} residual blocks, "
                      f"pixel-shuffle upsampling, output added to a bicubic upscale",
                      f"- use: `artgan process IMAGES --step superres:model={name} --out DIR`"]}


def training(card: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """What the run folder says about the training: its pipeline, data and last logged metrics."""
    import yaml

    md = card.get("metadata", {})
    pipeline = yaml.safe_load((run_dir / "pipeline.yaml").read_text(encoding="utf-8"))
    train = next(s["train"] for s in pipeline["stages"] if "train" in s)
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    last = {k: round(v, 4) for k, v in (metrics[-1] if metrics else {}).items() if k not in ("time",)}
    facts = {"pipeline": pipeline.get("name"), "description": pipeline.get("description", ""),
             "dataset": train["dataset"], "architecture": train["architecture"],
             "iterations": train.get("iterations"), "batch_size": train.get("batch_size"), "last_logged_metrics": last}
    return {**facts, "lines": training_lines(facts, md)}


def training_lines(t: dict[str, Any], md: dict[str, Any]) -> list[str]:
    ds = t["dataset"]
    hidden = ("sample_images", "init_from")
    return [f"- data: `{Path(str(ds.get('path', ''))).name}` ({ds.get('name')}), random "
            f"{ds.get('patch_size')} px HR crops, D4 flips/rotations; LR = {md.get('degradation')}"
            + ("; plus blur/noise/JPEG" if any(ds.get(k) for k in ("blur", "noise", "jpeg")) else ""),
            f"- training: pipeline `{t['pipeline']}`, {t['iterations']} iterations of batch {t['batch_size']}; "
            f"architecture {json.dumps({k: v for k, v in t['architecture'].items() if k not in hidden})}",
            f"- last logged metrics: {json.dumps(t['last_logged_metrics'])}"]


def add_training(path: str | Path, run_dir: str | Path, command: str) -> None:
    card = read_card(path)
    update_card(path, "summary", summary(card))
    update_card(path, "training", training(card, Path(run_dir)))
    update_card(path, "command", command)


def add_real_input_check(path: str | Path, checkpoint: str | Path, image: str | Path) -> dict[str, Any]:
    """ONNX vs PyTorch (the exported module, eager) on a real image, recorded in the card."""
    import numpy as np

    from artgan.checkpoints import load_recipe
    from artgan.export import verify_on_real_inputs
    from artgan.images import load_image
    from artgan.plugins import get_registry

    recipe, _ = load_recipe(checkpoint, get_registry())
    x = load_image(image, "RGB").astype(np.float32)[None].transpose(0, 3, 1, 2) / 127.5 - 1.0
    return verify_on_real_inputs(recipe.export_spec().module, Path(path).with_name(read_card(path)["file"]),
                                 [{"lr": x}], describe=f"{Path(image).name}, {x.shape[3]}x{x.shape[2]}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="the exported model (NAME.onnx) or its NAME.card.json")
    ap.add_argument("--run", type=Path, help="the run folder that trained the model")
    ap.add_argument("--command", default="", help="the command that reproduces the model")
    ap.add_argument("--real-image", type=Path, help="check ONNX against PyTorch on this image")
    args = ap.parse_args(argv)
    if args.run:
        add_training(args.model, args.run, args.command)
        if args.real_image:
            r = add_real_input_check(args.model, args.run / "checkpoints" / "last.pt", args.real_image)
            print(f"ONNX vs PyTorch on {r['inputs']}: {r['min_psnr_db']:.1f} dB")
    else:
        update_card(args.model, "summary", summary(read_card(args.model)))


if __name__ == "__main__":
    main()
