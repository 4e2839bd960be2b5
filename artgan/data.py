"""Datasets as training sees them: the dataset contract, a resumable batch order, and
albumentations pipelines declared in config.

A dataset (from a dataset plugin) is a ``torch.utils.data.Dataset`` whose items are dicts of
tensors, ``{"image": float32 CxHxW in [-1, 1]}`` plus ``"label"`` where it has classes, and which
carries an ``info`` (:class:`DatasetInfo`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .errors import ArtganError


@dataclass
class DatasetInfo:
    """What a recipe needs to know about its data to build its networks."""

    image_size: int
    channels: int = 3
    num_classes: int = 0  # 0: unlabelled
    name: str = ""
    # what label i means (e.g. "0".."9", or image-folder's subfolder names); a conditional
    # generator's export records them as artgan.class_names. None: labels are just numbers
    class_names: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what a checkpoint records)."""
        return asdict(self)


def uint8_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HWC -> float32 CHW in [-1, 1] (the torch-side image contract)."""
    if image.ndim == 2:
        image = image[..., None]
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


def tensor_to_float01(images: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] -> numpy float32 NHWC in [0, 1] (the runtime's contract)."""
    return ((images.detach().float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()


def held_out_crops(folder: str | Path, n: int, size: int) -> list[np.ndarray]:
    """Centre crops (uint8 ``size`` x ``size`` RGB) of the first ``n`` held-out images of ``folder``
    (:func:`artgan.splits.split_files`) that are that large: what a recipe's sample grids show,
    never what it trains on. Fewer when the folder has fewer; an error when it has no image."""
    from .images import list_images, load_image
    from .splits import split_files

    root = Path(folder).expanduser()
    files = list_images(root) if root.is_dir() else []
    if not files:
        raise ArtganError(f"sample_images {folder}: no images there")
    crops = []
    for f in split_files(files, "heldout"):
        image = load_image(f, "RGB")
        h, w = image.shape[:2]
        if min(h, w) >= size:
            top, left = (h - size) // 2, (w - size) // 2
            crops.append(np.ascontiguousarray(image[top:top + size, left:left + size]))
        if len(crops) == n:
            break
    return crops


def build_augmentations(spec: list[dict[str, Any]] | None):
    """Turn ``[{name: HorizontalFlip, p: 0.5}, ...]`` into an ``albumentations.Compose``."""
    if not spec:
        return None
    import albumentations as A

    transforms = []
    for i, item in enumerate(spec):
        if not isinstance(item, dict) or "name" not in item:
            raise ArtganError(f"augment[{i}]: expected a mapping with 'name:', got {item!r}")
        params = {k: v for k, v in item.items() if k != "name"}
        cls = getattr(A, item["name"], None)
        if cls is None or not isinstance(cls, type):
            import difflib
            close = difflib.get_close_matches(item["name"], [n for n in dir(A) if n[:1].isupper()], n=3)
            raise ArtganError(f"augment[{i}]: albumentations has no transform {item['name']!r}"
                              + (f"; did you mean {', '.join(close)}?" if close else ""))
        try:
            transforms.append(cls(**params))
        except Exception as exc:  # albumentations validates its params with pydantic
            raise ArtganError(f"augment[{i}] ({item['name']}): {str(exc).splitlines()[0]}") from None
    return A.Compose(transforms)


class EpochBatchSampler(Sampler):
    """An endless, seeded batch order that can start at any batch: batch ``b`` of the run is
    always the same indices, so a resumed run sees exactly the data order it would have seen.

    Each epoch is a fresh permutation seeded by (seed, epoch); with ``world_size > 1`` each rank
    takes its own slice of every global batch (data-parallel training).
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_batch: int = 0,
                 rank: int = 0, world_size: int = 1):
        global_batch = batch_size * world_size
        if n < global_batch:
            raise ArtganError(f"dataset has {n} items, fewer than one batch of {global_batch}; "
                              f"lower batch_size")
        self.n, self.bs, self.seed, self.start = n, batch_size, seed, start_batch
        self.rank, self.world = rank, world_size
        self.per_epoch = n // global_batch

    def _perm(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        b = self.start
        epoch, perm = -1, None
        while True:
            e, i = divmod(b, self.per_epoch)
            if e != epoch:
                epoch, perm = e, self._perm(e)
            lo = (i * self.world + self.rank) * self.bs
            yield perm[lo:lo + self.bs].tolist()
            b += 1

    def __len__(self) -> int:  # endless; DataLoader asks only for progress displays
        return 2**62


def batches(dataset: Dataset, batch_size: int, seed: int, start_batch: int = 0,
            num_workers: int = 0, rank: int = 0, world_size: int = 1,
            pin_memory: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Endless iterator of collated batches, starting at global batch ``start_batch``."""
    sampler = EpochBatchSampler(len(dataset), batch_size, seed, start_batch, rank, world_size)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                        pin_memory=pin_memory, persistent_workers=num_workers > 0,
                        worker_init_fn=_seed_worker if num_workers else None)
    return iter(loader)


def _seed_worker(worker_id: int) -> None:
    # numpy and random in workers follow torch's per-worker seed (albumentations uses them)
    import random
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
