"""The fixed classifier of ``artgan evaluate augment``: part of the protocol, the same in every row.

A small CNN on 16x16 grey images in [-1, 1] (the digits' resolution doubled): conv 3x3 x32, ReLU,
max-pool, conv 3x3 x64, ReLU, max-pool, linear 1024 -> 128, ReLU, dropout 0.3, linear -> classes.
Trained from a seeded initialisation for a fixed number of Adam iterations (not epochs: 100 real images
and 1347 get the same optimisation), each mini-batch drawn uniformly with replacement from the
training set, every image shifted by up to one pixel (the same light augmentation in every row).
One thread while training: the same float summation order, so the same weights run after run.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SIZE = 16  # the classifier's input side; images of other sizes are resized (area down, bilinear up)


@dataclass(frozen=True)
class ClassifierRecipe:
    """Everything that defines the classifier's training; recorded in every result."""

    iterations: int = 600
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    shift: int = 1  # random translation of up to this many pixels, every image, every row
    version: int = 1

    def to_dict(self) -> dict:
        return {"arch": "conv32-conv64-fc128", "input": f"{SIZE}x{SIZE} grey", "optimizer": "Adam",
                **asdict(self)}


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 8x8
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4x4
            nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def to_input(images: np.ndarray) -> torch.Tensor:
    """float NHWC in [0, 1] (the runtime's contract; any channels, any size) -> (N, 1, 16, 16) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
    x = x.mean(dim=1, keepdim=True) * 2 - 1
    if x.shape[-1] > SIZE:
        x = F.interpolate(x, size=SIZE, mode="area")
    elif x.shape[-1] < SIZE:
        x = F.interpolate(x, size=SIZE, mode="bilinear", align_corners=False)
    return x.contiguous()


def _shift(x: torch.Tensor, pixels: int, g: torch.Generator) -> torch.Tensor:
    """Each image moved by its own random offset of up to ``pixels`` (background -1 comes in)."""
    if pixels == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, [pixels] * 4, value=-1.0)
    dy = torch.randint(0, 2 * pixels + 1, (n,), generator=g)
    dx = torch.randint(0, 2 * pixels + 1, (n,), generator=g)
    rows = (dy[:, None] + torch.arange(h)[None])[:, :, None]  # N, H, 1
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, :]  # N, 1, W
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


@contextlib.contextmanager
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_classifier(x: torch.Tensor, y: torch.Tensor, num_classes: int, seed: int,
                     recipe: ClassifierRecipe = ClassifierRecipe()) -> SmallCNN:
    """Train :class:`SmallCNN` on ``x`` (N, 1, 16, 16) in [-1, 1] and labels ``y`` (N,)."""
    g = torch.Generator().manual_seed(seed)
    with _one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # initial weights and dropout masks follow the seed
        model = SmallCNN(num_classes)
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        model.train()
        for _ in range(recipe.iterations):
            idx = torch.randint(0, len(x), (recipe.batch_size,), generator=g)
            loss = F.cross_entropy(model(_shift(x[idx], recipe.shift, g)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
    return model


@torch.no_grad()
def accuracy(model: SmallCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    with _one_thread():
        return float((model(x).argmax(1) == y).float().mean())
