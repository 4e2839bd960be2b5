"""The ``inpaint-masks`` dataset: random crops of an image folder, each with a fresh random mask
and the hole pre-filled by a classical method.

Items are ``{"image": float32 3xSxS in [-1, 1], "prefill": the same with the hole filled by
OpenCV (``prefill``: ns or telea, radius 3, on the 8-bit crop, as the step does at run time),
"mask": float32 1xSxS, 1 = hole}``. Crops and flips come from albumentations, masks from
:func:`artgan_inpaint.masks.random_mask` (brush strokes and rectangles at an area in
``mask_area``), their shapes sized by the whole photo's shorter side so that a crop's holes look
like the evaluation's holes on whole photos. All are seeded from numpy's global RNG, which the
trainer seeds and checkpoints, so a run (and a resumed run) sees the same crops and masks.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from artgan.data import DatasetInfo, build_augmentations, held_out_crops, uint8_to_tensor
from artgan.errors import ArtganError
from artgan.images import list_images, load_image
from artgan.splits import split_files

from .masks import check_area, random_mask
from .steps import PREFILL_METHODS, classical_fill


class InpaintMaskDataset(Dataset):
    """Random ``crop_size`` crops of the images below ``path`` (recursive), ``items_per_image``
    crops per image and epoch, each with a random hole covering ``mask_area`` of it.

    ``split`` (:mod:`artgan.splits`, the one held-out split): ``train`` (default) leaves out the
    held-out quarter, whose photos the sample grids show; ``all`` uses every file. The shipped
    model trains on BSDS400's train split and is evaluated on another folder, all of BSD68.
    ``augment`` appends albumentations transforms after the crop and flip
    (``[{name: ColorJitter, p: 0.3}]``).
    Images are decoded once and kept in memory (``max_images`` caps how many).
    """

    def __init__(self, path: str, crop_size: int = 256, mask_area: Sequence[float] = (0.05, 0.4),
                 box_prob: float = 0.25, split: str = "train", items_per_image: int = 64,
                 augment: list[dict[str, Any]] | None = None, max_images: int | None = 2000,
                 prefill: str = "ns"):
        import albumentations as A
        import cv2

        self.root = Path(str(path)).expanduser()
        if not self.root.exists():
            raise ArtganError(f"inpaint-masks: {self.root} does not exist")
        if not isinstance(crop_size, int) or crop_size < 16 or crop_size % 8:
            raise ArtganError(f"inpaint-masks: crop_size must be a multiple of 8, >= 16, got {crop_size!r}")
        if not 0 <= box_prob <= 1:
            raise ArtganError(f"inpaint-masks: box_prob must be in [0, 1], got {box_prob!r}")
        if prefill not in PREFILL_METHODS:
            raise ArtganError(f"inpaint-masks: prefill must be one of {', '.join(PREFILL_METHODS)}, got {prefill!r}")
        self.area, self.prefill = check_area(mask_area), prefill
        self.crop, self.box_prob, self.per_image = crop_size, float(box_prob), int(items_per_image)

        try:
            files = split_files(list_images(self.root), split)
        except ArtganError as exc:  # a bad split name
            raise ArtganError(f"inpaint-masks: {exc}") from None
        files = files[:max_images] if max_images else files
        self.images, bad = [], []
        for f in files:
            try:
                self.images.append(load_image(f, "RGB"))
            except ArtganError as exc:
                bad.append(str(exc))
        if bad:
            warnings.warn(f"inpaint-masks: skipped {len(bad)} unreadable file(s): {'; '.join(bad[:5])}", stacklevel=2)
        if not self.images:
            raise ArtganError(f"inpaint-masks: no readable images in {self.root} (split {split})")

        # crops smaller than the crop size are reflect-padded; then a random crop and a flip
        self.augment = A.Compose([
            A.PadIfNeeded(crop_size, crop_size, border_mode=cv2.BORDER_REFLECT_101),
            A.RandomCrop(crop_size, crop_size),
            A.HorizontalFlip(p=0.5),
        ])
        self.extra = build_augmentations(augment)
        self.info = DatasetInfo(image_size=crop_size, channels=3,
                                name=f"inpaint-masks:{self.root.name}:{split}")

    def __len__(self) -> int:
        return len(self.images) * self.per_image

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        seed = int(np.random.randint(0, 2**31 - 1))  # from the trainer-seeded global RNG
        self.augment.set_random_seed(seed)
        photo = self.images[i % len(self.images)]
        image = self.augment(image=photo)["image"]
        if self.extra is not None:
            self.extra.set_random_seed(seed + 1)
            image = self.extra(image=image)["image"]
        mask = random_mask(self.crop, self.crop, np.random.default_rng(seed), area=self.area,
                           box_prob=self.box_prob, scale=min(photo.shape[:2]))
        prefill = classical_fill(image, mask > 0.5, self.prefill)
        return {"image": uint8_to_tensor(image), "prefill": uint8_to_tensor(prefill),
                "mask": torch.from_numpy(mask)[None]}


def sample_batch(folder: str | None, n: int, size: int, seed: int, prefill: str = "ns") -> dict[str, torch.Tensor]:
    """``n`` centre crops of the held-out images of ``folder`` (synthetic images when there is
    none) with seeded 20-40% masks and their classical fills: the fixed inputs of the sample grids."""
    rng = np.random.default_rng(seed)
    images = held_out_crops(folder, n, size) if folder else []
    while len(images) < n:
        images.append(_synthetic_image(size, rng))
    masks = [random_mask(size, size, rng, area=(0.2, 0.4)) for _ in range(n)]
    fills = [classical_fill(im, m > 0.5, prefill) for im, m in zip(images, masks)]
    return {"image": torch.stack([uint8_to_tensor(im) for im in images]),
            "prefill": torch.stack([uint8_to_tensor(im) for im in fills]),
            "mask": torch.from_numpy(np.stack(masks))[:, None]}


def _synthetic_image(size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth colour gradients with stripes: something with structure to fill in."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    freq, angle = rng.uniform(2, 8), rng.uniform(0, np.pi)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (x * np.cos(angle) + y * np.sin(angle)))
    base = rng.uniform(0, 1, 3)[None, None] * (1 - x[..., None]) + rng.uniform(0, 1, 3)[None, None] * x[..., None]
    return (np.clip(0.6 * base + 0.4 * stripes[..., None], 0, 1) * 255).astype(np.uint8)


def _contract_params(folder) -> dict[str, Any]:
    """For artgan.testing's contract check: a few small synthetic photos in ``folder``."""
    from PIL import Image

    root = Path(folder) / "inpaint-contract-images"
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(_synthetic_image(48, rng)).save(root / f"{i}.png")
    return {"path": str(root), "crop_size": 32, "items_per_image": 2, "split": "all"}


InpaintMaskDataset.contract_params = _contract_params
