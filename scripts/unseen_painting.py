"""Write the painting of the style check on "a painting not in the repository" (docs/training.md).

A painting-like image that is in no shipped model: scikit-image's "coffee" photo through OpenCV's
edge-preserving stylization, its hues turned by 140 degrees, saturation x1.6 and diagonal hatching
strokes (seeded: the same file every time). Needs OpenCV and scikit-image; no test uses it.

    python scripts/unseen_painting.py OUT/unseen/painting.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data


def unseen_painting() -> np.ndarray:
    """The painting, RGB uint8."""
    bgr = cv2.stylization(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), sigma_s=40, sigma_r=0.5)
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + 70) % 180  # OpenCV's hue runs 0-180: 70 is 140 degrees
    hsv[..., 1] = np.clip(hsv[..., 1].astype(int) * 1.6, 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
    noise = np.random.default_rng(0).normal(0, 1, rgb.shape[:2]).astype(np.float32)
    hatch = cv2.filter2D(noise, -1, np.eye(9, dtype=np.float32) / 9)  # noise smeared along the diagonal
    return np.clip(rgb + 40 * hatch[..., None], 0, 255).astype(np.uint8)


def main(out: str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(out, cv2.cvtColor(unseen_painting(), cv2.COLOR_RGB2BGR))
    print(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/unseen_painting.py OUT.png")
    main(sys.argv[1])
