"""``superres-pairs``: (low-resolution, high-resolution) training pairs made on the fly.

Each item is a random HR crop of an image below ``path`` (recursive), flipped/rotated by
albumentations' ``D4``, and its LR twin made by the task's degradation: Pillow bicubic downscale
(:mod:`.resize`, the same as the evaluation uses), optionally after a Gaussian blur and followed
by Gaussian noise and JPEG compression (albumentations) for real-world inputs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.images import list_images, load_image

from .resize import bicubic_downscale


def _probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ArtganError(f"superres-pairs: {name} is a probability from 0 to 1, got {value!r}")
    return float(value)


def _range(name: str, value, lo: float, hi: float) -> tuple[float, float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            or not lo <= value[0] <= value[1] <= hi):
        raise ArtganError(f"superres-pairs: {name} must be [low, high] within [{lo}, {hi}], got {value!r}")
    return float(value[0]), float(value[1])


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HWC -> float32 CHW in [-1, 1], in numpy: small tensors are cheaper there than in
    torch's thread pool when the data loader runs in the main process."""
    return torch.from_numpy(np.ascontiguousarray((image.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)))


class SRPairsDataset(Dataset):
    """Items: ``{"image": HR 3 x P x P, "lr": LR 3 x P/s x P/s}``, float32 in [-1, 1].

    ``patch_size`` is the HR crop side (a multiple of ``scale``); one pass over the dataset draws
    ``items_per_image`` crops of every image. ``blur``, ``noise`` and ``jpeg`` are the
    probabilities of each extra degradation (0: the plain bicubic task); the ``*_range``
    parameters set their strength. Random draws use numpy's global RNG, which the trainer seeds
    (and reseeds in each data-loader worker).
    """

    def __init__(self, path: str, scale: int = 2, patch_size: int = 96, items_per_image: int = 64,
                 blur: float = 0.0, blur_sigma: list = (0.2, 1.5), noise: float = 0.0,
                 noise_std: list = (0.0, 0.03), jpeg: float = 0.0, jpeg_quality: list = (40, 95),
                 max_images: int | None = None, split: str = "all"):
        import albumentations as A

        from artgan.splits import split_files

        if scale not in (2, 3, 4):
            raise ArtganError(f"superres-pairs: scale must be 2, 3 or 4, got {scale!r}")
        if not isinstance(patch_size, int) or patch_size < 8 * scale or patch_size % scale:
            raise ArtganError(f"superres-pairs: patch_size must be a multiple of scale ({scale}) and at "
                              f"least {8 * scale}, got {patch_size!r}")
        if not isinstance(items_per_image, int) or items_per_image < 1:
            raise ArtganError(f"superres-pairs: items_per_image must be a positive integer, got {items_per_image!r}")
        blur, noise, jpeg = (_probability(n, v) for n, v in (("blur", blur), ("noise", noise), ("jpeg", jpeg)))
        sigma = _range("blur_sigma", blur_sigma, 0.0, 10.0)
        std = _range("noise_std", noise_std, 0.0, 1.0)
        quality = tuple(int(q) for q in _range("jpeg_quality", jpeg_quality, 1, 100))
        self.root = Path(path).expanduser()
        if not self.root.exists():
            raise ArtganError(f"superres-pairs: {self.root} does not exist")
        self.scale, self.patch_size, self.items_per_image = scale, patch_size, items_per_image

        # Decode every image once: crops are then cheap, and a bad file fails here, not mid-run.
        files = split_files(list_images(self.root), split)  # "train": leave artgan.splits' held-out quarter out
        files = files[:max_images] if max_images else files
        self.images, skipped = [], []
        for f in files:
            try:
                image = load_image(f, "RGB")
            except ArtganError as exc:
                skipped.append(str(exc))
                continue
            if min(image.shape[:2]) < patch_size:
                skipped.append(f"{f}: smaller than patch_size {patch_size}")
                continue
            self.images.append(image)
        if skipped:
            warnings.warn(f"superres-pairs: skipped {len(skipped)} file(s): " + "; ".join(skipped[:5]), stacklevel=2)
        if not self.images:
            raise ArtganError(f"superres-pairs: no usable images in {self.root} (need readable images with "
                              f"both sides >= patch_size {patch_size})")

        self.augment = A.Compose([A.D4(p=1.0)])
        self.pre = A.Compose([A.GaussianBlur(blur_limit=0, sigma_limit=sigma, p=blur)])
        self.post = A.Compose([A.GaussNoise(std_range=std, p=noise),
                               A.ImageCompression(quality_range=quality, p=jpeg)])
        self.info = DatasetInfo(image_size=patch_size, channels=3, name=f"superres-pairs:{self.root.name}")

    def __len__(self) -> int:
        return len(self.images) * self.items_per_image

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = self.images[i % len(self.images)]
        h, w = image.shape[:2]
        p = self.patch_size
        top, left = np.random.randint(0, h - p + 1), np.random.randint(0, w - p + 1)
        # albumentations keeps its own generators: seed them from numpy's global RNG so the
        # trainer's seed (and each worker's reseed) decides every draw
        seed = int(np.random.randint(0, 2**31 - 1))
        for compose in (self.augment, self.pre, self.post):
            compose.set_random_seed(seed)
        hr = self.augment(image=image[top:top + p, left:left + p])["image"]
        lr = bicubic_downscale(self.pre(image=hr)["image"], self.scale)
        lr = self.post(image=lr)["image"]
        return {"image": to_tensor(hr), "lr": to_tensor(lr)}


def _contract_params(folder) -> dict:
    """For artgan.testing's contract check: a few small synthetic photos in ``folder``."""
    from PIL import Image

    root = Path(folder) / "superres-contract-images"
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return {"path": str(root), "scale": 2, "patch_size": 32, "items_per_image": 2}


SRPairsDataset.contract_params = _contract_params
