"""``unpaired-folders``: random crops from two unrelated image collections, for CycleGAN.

Domain A is photos (e.g. BSD68), domain B artwork (e.g. one painting). The two are not paired:
item ``i`` is a crop of photo ``i mod n_photos`` and a crop of a randomly chosen artwork, both at a
random position (and, optionally, a random scale and a horizontal flip). A painting is one large
image, so many different crops come from it; ``length`` sets how many items make an epoch.

Crops use numpy's global RNG, which the trainer seeds and stores in its checkpoints.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from artgan.data import DatasetInfo, build_augmentations, uint8_to_tensor
from artgan.errors import ArtganError
from artgan.images import list_images, load_image
from artgan.splits import SPLITS, split_files


def _load_all(path: str, what: str, split: str = "all") -> tuple[list[np.ndarray], list[str]]:
    """Every image of a folder (recursive), one file, or a glob pattern (``style/*.jpg``)."""
    root = Path(path).expanduser()
    if any(ch in str(path) for ch in "*?["):
        files = [Path(p) for p in sorted(glob.glob(str(root))) if Path(p).is_file()]
    elif not root.exists():
        raise ArtganError(f"unpaired-folders: {what} path {root} does not exist")
    else:
        files = list_images(root)
    files = split_files(files, split)
    if not files:
        raise ArtganError(f"unpaired-folders: no images for {what} in {path} (split {split!r})")
    return [load_image(f) for f in files], [f.name for f in files]


def random_crop(image: np.ndarray, size: int, scale: tuple[float, float], flip: bool) -> np.ndarray:
    """A ``size`` x ``size`` crop at a random position after a random rescale in ``scale``;
    an image smaller than the crop is scaled up to fit first."""
    h, w = image.shape[:2]
    s = float(np.random.uniform(*scale))
    s = max(s, size / min(h, w))  # never smaller than the crop
    side = int(round(size / s))  # crop this many source pixels, then resize to ``size``
    side = min(side, h, w)
    y = int(np.random.randint(0, h - side + 1))
    x = int(np.random.randint(0, w - side + 1))
    crop = image[y:y + side, x:x + side]
    if side != size:
        crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))
    if flip and np.random.rand() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


class UnpairedFoldersDataset(Dataset):
    """Items ``{"image": 3xSxS photo, "art": 3xSxS}``, float32 in [-1, 1] ("image" is the photo:
    the dataset contract's key, so the contract checks and tools that show datasets work).

    Parameters: ``photos`` and ``art`` (a folder, searched recursively, or one image file),
    ``image_size`` (crop side), ``photo_split`` (``train``/``heldout``/``all``: the fixed split of
    :func:`artgan.splits.split_files`), ``photo_scale``/``art_scale`` ([min, max] random
    rescale before cropping; 1 = file resolution), ``flip``, ``length`` (items per epoch),
    ``min_std`` (crops flatter than this standard deviation, in [0, 1] units, are redrawn) and
    ``augment`` (an albumentations list applied to both crops).
    """

    def __init__(self, photos: str, art: str, image_size: int = 256, photo_split: str = "all",
                 photo_scale: list[float] | float = 1.0, art_scale: list[float] | float = 1.0,
                 flip: bool = True, length: int = 1000, min_std: float = 0.02,
                 augment: list[dict[str, Any]] | None = None):
        if not isinstance(image_size, int) or not 16 <= image_size <= 2048:
            raise ArtganError(f"unpaired-folders: image_size must be an integer from 16 to 2048, got {image_size!r}")
        if photo_split not in SPLITS:
            raise ArtganError(f"unpaired-folders: photo_split must be one of {', '.join(SPLITS)}, got {photo_split!r}")
        if not isinstance(length, int) or length < 1:
            raise ArtganError(f"unpaired-folders: length must be a positive integer, got {length!r}")
        if not isinstance(min_std, (int, float)) or not 0 <= min_std < 0.5:
            raise ArtganError(f"unpaired-folders: min_std must be a number from 0 to 0.5, got {min_std!r}")
        self.size, self.length, self.flip, self.min_std = image_size, length, bool(flip), float(min_std)
        self.photo_scale = _scale_range(photo_scale, "photo_scale")
        self.art_scale = _scale_range(art_scale, "art_scale")
        self.photos, self.photo_names = _load_all(photos, "photos", photo_split)
        self.art, self.art_names = _load_all(art, "art")
        self.augment = build_augmentations(augment)
        art_name = Path(art).stem if len(self.art) == 1 else Path(art).name
        self.info = DatasetInfo(image_size=image_size, channels=3,
                                name=f"unpaired:{Path(photos).name}({photo_split})->{art_name}")

    def __len__(self) -> int:
        return self.length

    def _prepare(self, image: np.ndarray, scale: tuple[float, float]) -> torch.Tensor:
        # A flat crop (white sky) is redrawn: instance normalisation divides by its ~0 spread, the
        # gradients through the generators explode (seen: a NaN after 375 steps). 10 tries at most.
        for _ in range(10):
            crop = random_crop(image, self.size, scale, self.flip)
            if crop.std() >= self.min_std * 255:
                break
        if self.augment is not None:
            crop = self.augment(image=crop)["image"]
        return uint8_to_tensor(crop)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        photo = self.photos[i % len(self.photos)]
        art = self.art[int(np.random.randint(len(self.art)))]
        return {"image": self._prepare(photo, self.photo_scale), "art": self._prepare(art, self.art_scale)}


def _scale_range(value: Any, name: str) -> tuple[float, float]:
    lo, hi = (value, value) if isinstance(value, (int, float)) else tuple(value) if \
        isinstance(value, (list, tuple)) and len(value) == 2 else (None, None)
    if not all(isinstance(v, (int, float)) and v > 0 for v in (lo, hi)) or lo > hi:
        raise ArtganError(f"unpaired-folders: {name} must be a positive number or [min, max], got {value!r}")
    return float(lo), float(hi)


def _contract_params(folder) -> dict[str, Any]:
    """For artgan.testing's contract check: small synthetic photos and one 'painting'."""
    from PIL import Image

    root = Path(folder) / "style-contract"
    (root / "photos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / "photos" / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "art.png")
    return {"photos": str(root / "photos"), "art": str(root / "art.png"), "image_size": 32, "length": 8}


UnpairedFoldersDataset.contract_params = _contract_params
