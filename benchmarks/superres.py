"""Super-resolution benchmark: onnxruntime vs PyTorch eager, and tiled vs untiled output.

    python benchmarks/superres.py [--model x2-psnr] [--data ../shared/data/Set5] [--threads N]

1. Speed on a 512x512 input: the shipped ONNX model on onnxruntime (CPU provider) against the
   same network in PyTorch eager (rebuilt from the ONNX weights), same thread count, runs
   interleaved so both see the same machine load; and their agreement (PSNR between outputs).
2. Tiling on the images of --data: PSNR against the HR image with and without tiles, the
   difference (the issue allows < 0.5 dB) and the PSNR between the tiled and untiled outputs.
Prints tables; ratios are measured in this one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def speed(model_path: Path, threads: int, repeats: int, image: np.ndarray | None) -> None:
    import torch

    from artgan.metrics import psnr
    from artgan.runtime import Model
    from artgan_superres.model import generator_from_onnx

    torch.set_num_threads(threads)
    net = generator_from_onnx(model_path)
    ort = Model(model_path, providers=["CPUExecutionProvider"], threads=threads)
    if image is None:
        image = np.random.default_rng(0).random((512, 512, 3), dtype=np.float32)
    x = np.ascontiguousarray(image[:512, :512].transpose(2, 0, 1)[None] * 2 - 1, dtype=np.float32)
    xt = torch.from_numpy(x)

    def run_torch():
        with torch.inference_mode():
            return net(xt).numpy()

    def run_ort():
        return ort.run({"lr": x})

    ref, out = run_torch(), run_ort()  # warm-up, and the parity check
    times: dict[str, list[float]] = {"pytorch eager": [], "onnxruntime": []}
    for _ in range(repeats):
        for name, fn in (("pytorch eager", run_torch), ("onnxruntime", run_ort)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    agree = psnr(out, ref, data_range=2.0)
    print(f"\n## Speed: {model_path.name}, input 1x3x{x.shape[2]}x{x.shape[3]} -> "
          f"{out.shape[2]}x{out.shape[3]}, {threads} thread(s), {repeats} interleaved runs, CPU")
    print(f"{'runtime':<16} {'median s':>9} {'best s':>8} {'speed-up (median)':>18}")
    base = statistics.median(times["pytorch eager"])
    for name, ts in times.items():
        print(f"{name:<16} {statistics.median(ts):>9.3f} {min(ts):>8.3f} {base / statistics.median(ts):>17.2f}x")
    print(f"onnxruntime vs pytorch output: PSNR {agree:.1f} dB, max |diff| {np.abs(out - ref).max():.2e}")


def tiling(model_path: Path, data: Path, tile: int, overlap: int) -> None:
    from artgan.images import list_images, load_image, to_float
    from artgan.metrics import psnr, rgb_to_y
    from artgan.steps import OnnxImageStep
    from artgan_superres.resize import make_pair

    whole = OnnxImageStep(model_path, tile=None)
    s = whole.scale
    size = f"{tile} px" if tile else "half the shorter side (>= 32 px)"
    print(f"\n## Tiling: {model_path.name} on {data.name}, tiles of {size} of input, overlap {overlap}, "
          f"Y-channel PSNR vs HR ({s} px border cropped)")
    print(f"{'image':<12} {'size':>9} {'tile':>5} {'untiled dB':>11} {'tiled dB':>9} {'diff dB':>8} "
          f"{'tiled vs untiled dB':>20}")
    diffs = []
    for f in list_images(data):
        hr, lr = make_pair(load_image(f), s)
        lr = to_float(lr)[None]
        side = tile or max(32, min(lr.shape[1:3]) // 2)  # default: at least 2x2 tiles on every image
        tiled = OnnxImageStep(model_path, tile=side, overlap=overlap)
        a, b = whole(lr)[0], tiled(lr)[0]
        q = lambda im: np.round(im * 255) / 255  # noqa: E731  (8-bit, as saved)
        ya, yb, yh = rgb_to_y(q(a)), rgb_to_y(q(b)), rgb_to_y(to_float(hr))
        pa, pb = psnr(ya, yh, crop=s), psnr(yb, yh, crop=s)
        diffs.append(abs(pa - pb))
        print(f"{f.stem:<12} {lr.shape[2]:>4}x{lr.shape[1]:<4} {side:>5} {pa:>11.2f} {pb:>9.2f} {pb - pa:>+8.3f} "
              f"{psnr(b, a):>20.1f}")
    print(f"largest |tiled - untiled| PSNR difference: {max(diffs):.3f} dB (target < 0.5 dB)")


def default_data() -> Path:
    for root in (ROOT.parent, ROOT.parent.parent):  # the main checkout, or a worktree beside it
        if (root / "shared" / "data" / "Set5").is_dir():
            return root / "shared" / "data" / "Set5"
    return ROOT.parent / "shared" / "data" / "Set5"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="x2-psnr", help="superres model name or .onnx path")
    ap.add_argument("--data", type=Path, default=default_data(),
                    help="HR images for the tiling table (default: ../shared/data/Set5)")
    ap.add_argument("--threads", type=int, default=None, help="default: all cores")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tile", type=int, default=0, help="tile side (input px); 0: half of each image")
    ap.add_argument("--overlap", type=int, default=16)
    args = ap.parse_args()

    import os

    from artgan.images import load_image, to_float
    from artgan.model_search import find_model

    model = find_model("superres", args.model)
    threads = args.threads or os.cpu_count() or 1
    image = None
    if args.data.is_dir() and (args.data / "baby.png").exists():
        image = to_float(load_image(args.data / "baby.png"))
    speed(model, threads, args.repeats, image)
    if args.data.is_dir():
        tiling(model, args.data, args.tile, args.overlap)
    else:
        print(f"\n(no {args.data}: tiling table skipped)", file=sys.stderr)


if __name__ == "__main__":
    main()
