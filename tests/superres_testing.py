"""Helpers for the super-resolution, process, tiling and bundle tests: tiny upscalers exported in
a second, and small synthetic images (the tests never read /work/shared).

Import the fixtures into a test module with ``from superres_testing import sr_models, images_dir``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_MODELS: dict[str, Path] = {}


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 HxWx3: smooth colour gradients, a few hard-edged shapes and fine texture, so that
    resamplers and models have edges and detail to get right."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), 0.5 + 0.5 * np.sin((x + y) / 7.0)], -1)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, max(5, min(h, w) / 3))
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_images(folder: Path, sizes: list[tuple[int, int]], seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (h, w) in enumerate(sizes):
        p = folder / f"img{i}.png"
        Image.fromarray(synthetic_image(h, w, seed + i)).save(p)
        paths.append(p)
    return paths


def export_tiny_superres(path: Path, scale: int = 2, seed: int = 0, objective_gan: bool = False) -> Path:
    """An untrained 8-channel, 1-block upscaler with a perturbed tail (so it is not exactly
    bicubic), exported and verified like a real one."""
    import torch

    from artgan.data import DatasetInfo
    from artgan.export import export_onnx
    from artgan_superres.model import SuperResRecipe

    torch.manual_seed(seed)
    recipe = SuperResRecipe(info=DatasetInfo(image_size=16 * scale), scale=scale, width=8, blocks=1,
                            adv_weight=0.01 if objective_gan else 0.0)
    torch.nn.init.normal_(recipe.G.tail.weight, 0.0, 0.02)
    recipe.train(False)
    export_onnx(recipe.export_spec(), path)
    return path


@pytest.fixture(scope="session")
def sr_models(tmp_path_factory) -> Path:
    """A model folder (for ARTGAN_MODEL_PATH) holding superres/x2-psnr, x2-gan and x4-psnr."""
    if "root" not in _MODELS:
        root = tmp_path_factory.mktemp("models")
        export_tiny_superres(root / "superres" / "x2-psnr.onnx", 2, seed=0)
        export_tiny_superres(root / "superres" / "x2-gan.onnx", 2, seed=1, objective_gan=True)
        export_tiny_superres(root / "superres" / "x4-psnr.onnx", 4, seed=2)
        _MODELS["root"] = root
    return _MODELS["root"]


@pytest.fixture
def with_models(sr_models, monkeypatch) -> Path:
    """The tiny models found by name (superres:scale=2 -> x2-psnr) for this test."""
    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(sr_models))
    return sr_models


@pytest.fixture
def images_dir(tmp_path) -> Path:
    """A folder of three small images of odd sizes, one in a subfolder."""
    root = tmp_path / "images"
    write_images(root, [(40, 52), (33, 47)], seed=0)
    write_images(root / "sub", [(24, 30)], seed=5)
    return root
