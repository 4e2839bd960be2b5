"""Model cards for the shipped upscalers: ``<name>.card.json`` (written by export, completed here)
and ``<name>.md`` rendered from it.

    python -m artgan_superres.card CARD.json --run RUN_DIR --command "..." [--parity-image IMG]

adds what the model was trained on and how (from the run folder), the command that reproduces
it and, with ``--parity-image``, the ONNX-vs-PyTorch agreement on a real image; ``artgan evaluate
superres --card CARD.json`` adds the evaluation. Each writes the JSON and re-renders the Markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from artgan.files import read_jsonl, write_json, write_text

DESCRIPTIONS = {
    "psnr": "PSNR-oriented: trained with L1 only; the faithful default, measured against bicubic.",
    "gan": "GAN-fine-tuned from the PSNR-oriented model (L1 + a small PatchGAN adversarial term + "
           "feature matching on the discriminator): sharper texture, lower PSNR.",
}


def load_card(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_card(path: str | Path, card: dict[str, Any]) -> None:
    path = Path(path)
    write_json(path, card)
    write_text(path.with_name(path.name.replace(".card.json", "") + ".md"), render_markdown(card))


def add_evaluation(path: str | Path, result: dict[str, Any]) -> None:
    card = load_card(path)
    slim = {k: v for k, v in result.items() if k != "data"}
    card.setdefault("evaluation", {})[f"{result['dataset']} x{result['scale']}"] = slim
    save_card(path, card)


def add_training(path: str | Path, run_dir: str | Path, command: str) -> None:
    import yaml

    card = load_card(path)
    run_dir = Path(run_dir)
    pipeline = yaml.safe_load((run_dir / "pipeline.yaml").read_text(encoding="utf-8"))
    train = next(s["train"] for s in pipeline["steps"] if "train" in s)
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    last = {k: round(v, 4) for k, v in (metrics[-1] if metrics else {}).items() if k not in ("time",)}
    card["training"] = {"pipeline": pipeline.get("name"), "description": pipeline.get("description", ""),
                        "dataset": train["dataset"], "architecture": train["architecture"],
                        "steps": train.get("steps"), "batch_size": train.get("batch_size"),
                        "last_logged_metrics": last}
    card["command"] = command
    save_card(path, card)


def add_parity(path: str | Path, checkpoint: str | Path, image: str | Path) -> dict[str, Any]:
    """ONNX vs PyTorch (the exported module, eager) on a real image, as PSNR between the two."""
    import numpy as np
    import torch

    from artgan.checkpoints import load_recipe
    from artgan.images import load_image
    from artgan.metrics import psnr
    from artgan.plugins import get_registry
    from artgan.runtime import Model

    path = Path(path)
    recipe, _ = load_recipe(checkpoint, get_registry())
    module = recipe.export_spec().module.eval()
    x = load_image(image, "RGB").astype(np.float32)[None].transpose(0, 3, 1, 2) / 127.5 - 1.0
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    model = Model(path.with_name(load_card(path)["file"]), providers=["CPUExecutionProvider"])
    out = model.run({"lr": x})
    report = {"image": Path(image).name, "input": f"{x.shape[3]}x{x.shape[2]}",
              "psnr_db_onnx_vs_torch": psnr(out, ref, data_range=2.0),
              "max_abs_diff": float(np.abs(out - ref).max())}
    card = load_card(path)
    card["parity"] = report
    save_card(path, card)
    return report


def render_markdown(card: dict[str, Any]) -> str:
    md = card.get("metadata", {})
    name = card.get("file", "model.onnx").removesuffix(".onnx")
    gen = md.get("generator", {})
    lines = [f"# superres `{name}`: x{md.get('scale', '?')} upscaler", "",
             DESCRIPTIONS.get(md.get("objective", ""), ""), "",
             f"- file: `{card.get('file')}` (ONNX opset {md.get('opset')}, input `lr` NCHW RGB in [-1, 1], "
             f"any height and width; output `hr`, {md.get('scale')}x larger)",
             f"- network: residual CNN, {gen.get('width')} channels, {gen.get('blocks')} residual blocks, "
             f"pixel-shuffle upsampling, output added to a bicubic upscale",
             f"- use: `artgan process IMAGES --step superres:model={name} --out DIR`"]
    t = card.get("training")
    if t:
        ds = t["dataset"]
        lines += ["", "## Data and training", "",
                  f"- data: `{Path(str(ds.get('path', ''))).name}` ({ds.get('name')}), random "
                  f"{ds.get('patch_size')} px HR crops, D4 flips/rotations; LR = {md.get('degradation')}"
                  + ("; plus blur/noise/JPEG" if any(ds.get(k) for k in ("blur", "noise", "jpeg")) else ""),
                  f"- training: pipeline `{t['pipeline']}`, {t['steps']} steps of batch {t['batch_size']}; "
                  f"architecture {json.dumps({k: v for k, v in t['architecture'].items() if k not in ('sample_images', 'init_from')})}",
                  f"- last logged metrics: {json.dumps(t['last_logged_metrics'])}"]
    if card.get("command"):
        lines += ["", "## Reproduce", "", "```", card["command"], "```"]
    for title, ev in card.get("evaluation", {}).items():
        lines += ["", f"## Evaluation: {title}", "", ev.get("protocol", ""), "",
                  "| method | PSNR (dB) | SSIM | detail | vs bicubic |", "|---|---|---|---|---|"]
        base = ev["methods"].get("bicubic", {}).get("psnr")
        for m, r in ev["methods"].items():
            gain = f"{r['psnr'] - base:+.2f} dB" if base is not None else "-"
            detail = f"{r['detail']:.3f}" if "detail" in r else "-"
            lines.append(f"| {m} | {r['psnr']:.2f} | {r['ssim']:.4f} | {detail} | {gain} |")
        if any("detail" in r for r in ev["methods"].values()):
            lines += ["", "detail: mean gradient magnitude over the HR image's (1.0 = as much fine detail; "
                      "PSNR favours smooth output, GAN fine-tunes trade a little PSNR for detail)"]
    v = card.get("verification", {})
    if v.get("verified") or card.get("parity"):
        lines += ["", "## ONNX vs PyTorch", ""]
        if v.get("verified"):
            lines.append(f"- export check ({v.get('inputs')}): max |diff| {v['max_abs_diff']:.2e}")
        if card.get("parity"):
            p = card["parity"]
            lines.append(f"- on {p['image']} ({p['input']}): PSNR {p['psnr_db_onnx_vs_torch']:.1f} dB between "
                         f"the two, max |diff| {p['max_abs_diff']:.2e}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("card", type=Path)
    ap.add_argument("--run", type=Path, help="the run folder that trained the model")
    ap.add_argument("--command", default="", help="the command that reproduces the model")
    ap.add_argument("--parity-image", type=Path, help="compare ONNX and PyTorch on this image")
    args = ap.parse_args(argv)
    if args.run:
        add_training(args.card, args.run, args.command)
        if args.parity_image:
            r = add_parity(args.card, args.run / "checkpoints" / "last.pt", args.parity_image)
            print(f"ONNX vs PyTorch on {r['image']} ({r['input']}): {r['psnr_db_onnx_vs_torch']:.1f} dB")
    else:
        save_card(args.card, load_card(args.card))


if __name__ == "__main__":
    main()
