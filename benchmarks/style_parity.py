"""Does an exported style model compute what its PyTorch generator computes, on real photos?

A thin caller of :func:`artgan_style.build.check_on_photos` (which is
:func:`artgan.export.verify_on_real_inputs` on photos cropped to the model's size multiple):
the checkpoint's exported module in PyTorch against the ``.onnx`` in onnxruntime, both on the CPU,
on the photos of a split; prints the largest difference and the PSNR, and records them in the
model's card as ``real_inputs``. ``artgan style train`` does the same for every model it installs.

    python benchmarks/style_parity.py --checkpoint runs/style-starry-night/checkpoints/last.pt \\
        --model exports/style/starry-night.onnx --photos DATA/BSD68
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MIN_PSNR_DB = 50.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, type=Path, help="the run's checkpoint the model was exported from")
    ap.add_argument("--model", required=True, type=Path, help="the exported NAME.onnx (its card is updated)")
    ap.add_argument("--photos", required=True, type=Path, help="a folder of photos")
    ap.add_argument("--split", default="heldout", choices=["heldout", "train", "all"])
    args = ap.parse_args(argv)

    from artgan.images import list_images
    from artgan.splits import split_files
    from artgan_style.build import check_on_photos

    report = check_on_photos(args.checkpoint, args.model, split_files(list_images(args.photos), args.split))
    print(f"ONNX vs PyTorch on {report['inputs']}: largest difference {report['max_abs_diff']:.3g}, "
          f"PSNR min {report['min_psnr_db']:.1f} dB, mean {report['mean_psnr_db']:.1f} dB")
    return 0 if report["min_psnr_db"] >= MIN_PSNR_DB else 1


if __name__ == "__main__":
    sys.exit(main())
