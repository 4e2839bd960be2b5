"""``rings``: concentric coloured rings, drawn procedurally (no files, any size, deterministic).

Items follow artgan's dataset contract: ``{"image": float32 C x H x W in [-1, 1]}``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from artgan.data import DatasetInfo
from artgan.errors import ArtganError


class RingsDataset(Dataset):
    """Item ``i`` is drawn from a generator seeded by ``(seed, i)``: a few rings of random
    colour, width and centre on a dark background."""

    def __init__(self, image_size: int = 32, count: int = 2048, seed: int = 0):
        if isinstance(image_size, bool) or not isinstance(image_size, int) or not 8 <= image_size <= 512:
            raise ArtganError(f"rings: image_size must be an integer from 8 to 512, got {image_size!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ArtganError(f"rings: count must be a positive integer, got {count!r}")
        self.size, self.count, self.seed = image_size, count, seed
        self.info = DatasetInfo(image_size=image_size, channels=3, num_classes=0, name="rings")

    def __len__(self) -> int:
        return self.count

    def draw(self, i: int) -> np.ndarray:
        """Image ``i`` as float32 H x W x 3 in [0, 1]."""
        rng = np.random.default_rng([self.seed, i])
        y, x = (np.mgrid[0:self.size, 0:self.size] + 0.5) / self.size
        cy, cx = rng.uniform(0.35, 0.65, 2)
        r = np.hypot(y - cy, x - cx)
        image = np.full((self.size, self.size, 3), 0.05, np.float32)
        for _ in range(int(rng.integers(2, 5))):
            radius, width = rng.uniform(0.1, 0.45), rng.uniform(0.02, 0.06)
            ring = np.clip(1.0 - np.abs(r - radius) / width, 0.0, 1.0)  # anti-aliased band
            image = image * (1 - ring[..., None]) + rng.uniform(0.3, 1.0, 3) * ring[..., None]
        return image.astype(np.float32)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = torch.from_numpy(self.draw(i)).permute(2, 0, 1).contiguous()
        return {"image": image * 2.0 - 1.0}
