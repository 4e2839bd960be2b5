"""Stacked digits: item ``i`` puts three digits, drawn with a generator seeded by ``seed``, in
the red, green and blue channels. Its label is the mode, ``100 * red + 10 * green + blue``."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.gan_metrics import digit_images


class StackedDigitsDataset(Dataset):
    """``count`` images of ``image_size`` px (16 to 128), each three of scikit-learn's 1797
    digits stacked as RGB: 1000 equally likely digit triples (modes)."""

    def __init__(self, image_size: int = 32, count: int = 50_000, seed: int = 0):
        if not isinstance(image_size, int) or isinstance(image_size, bool) or not 16 <= image_size <= 128:
            raise ArtganError(f"stacked-digits: image_size must be an integer from 16 to 128, got {image_size!r}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ArtganError(f"stacked-digits: count must be a positive integer, got {count!r}")
        digits, labels = digit_images(image_size)
        self.digits = torch.from_numpy(digits).float().div_(127.5).sub_(1.0)  # (1797, S, S)
        # which digit goes in each channel: uniform over the 1797, so each triple of classes has
        # probability ~1/1000 (the classes are balanced to within 2%)
        self.index = torch.from_numpy(np.random.default_rng(seed).integers(0, len(digits), (count, 3)))
        d = torch.from_numpy(labels)[self.index]
        self.labels = d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]
        self.info = DatasetInfo(image_size=image_size, channels=3, num_classes=1000, name="stacked-digits")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.digits[self.index[i]], "label": self.labels[i]}

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        # the DataLoader fetches a whole batch with one call: one gather instead of 64
        idx = torch.as_tensor(indices)
        images, labels = self.digits[self.index[idx]], self.labels[idx]
        return [{"image": images[j], "label": labels[j]} for j in range(len(indices))]
