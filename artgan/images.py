"""Image I/O and grids with numpy and Pillow only (no torch).

Inside artgan images are float32 NHWC in [0, 1]; files are uint8. Every image read is capped in
pixels against decompression bombs (``ARTGAN_MAX_IMAGE_PIXELS``, default 100 megapixels).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import ArtganError
from .files import atomic_path

DEFAULT_MAX_IMAGE_PIXELS = 100_000_000


def max_image_pixels() -> int:
    """The pixel cap: ``ARTGAN_MAX_IMAGE_PIXELS`` if set (a positive whole number), else 100 million."""
    value = os.environ.get("ARTGAN_MAX_IMAGE_PIXELS", "").strip().replace("_", "")
    if not value:
        return DEFAULT_MAX_IMAGE_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise ArtganError(f"ARTGAN_MAX_IMAGE_PIXELS must be a positive whole number of pixels, got {value!r}")
    return int(value)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def load_image(path: str | Path, mode: str = "RGB", max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as uint8 HWC (HW1 for mode "L"), upright (its EXIF orientation applied)
    and with 16-bit and float samples scaled to 8 bits; at most ``max_pixels`` (default:
    :func:`max_image_pixels`). Errors name the file."""
    path = Path(path)
    max_pixels = max_pixels or max_image_pixels()
    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, max_pixels)  # Pillow's own guard: not below ours
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we refuse those below
            im = Image.open(path)
        with im:
            w, h = im.size
            if w * h > max_pixels:
                raise ArtganError(f"{path}: image is {w}x{h}, over the limit of {max_pixels} pixels "
                                  f"(raise ARTGAN_MAX_IMAGE_PIXELS if you trust it)")
            im = ImageOps.exif_transpose(im)  # a phone photo stored sideways comes out upright
            arr = np.asarray(_to_8bit(im).convert(mode), dtype=np.uint8)
    except ArtganError:
        raise
    except FileNotFoundError:
        raise ArtganError(f"{path}: file not found") from None
    except MemoryError:
        raise ArtganError(f"{path}: not enough memory to read this image; use a smaller image or lower "
                          f"ARTGAN_MAX_IMAGE_PIXELS") from None
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError, EOFError) as exc:
        raise ArtganError(f"{path}: not a readable image ({exc})") from None
    return arr[..., None] if arr.ndim == 2 else arr


def _to_8bit(im: Image.Image) -> Image.Image:
    """Pillow's ``convert`` clips 16-bit and 32-bit samples at 255 (a 16-bit greyscale PNG turns
    white); scale them to 8 bits instead. 16-bit modes use their full range, float images are
    taken as [0, 1] when they fit in it and as [0, 255] otherwise."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        arr = np.asarray(im).astype(np.uint32)
        return Image.fromarray(((arr * 255 + 32767) // 65535).astype(np.uint8), "L")
    if im.mode == "I":  # 32-bit ints: Pillow opens some 16-bit PNGs and TIFFs this way
        arr = np.asarray(im).astype(np.int64)
        top = 65535 if arr.max(initial=0) > 255 else 255
        return Image.fromarray((np.clip(arr, 0, top) * 255 // top).astype(np.uint8), "L")
    if im.mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float32))
        top = 1.0 if arr.max(initial=0.0) <= 1.0 else 255.0
        return Image.fromarray((np.clip(arr / top, 0, 1) * 255 + 0.5).astype(np.uint8), "L")
    return im


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write uint8 or [0, 1]-float HWC image atomically; the format follows the suffix."""
    path = Path(path)
    arr = to_uint8(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format=fmt)
    return path


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 (rounded, clipped); uint8 passes through."""
    if images.dtype == np.uint8:
        return images
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 [0, 1]; float passes through as float32."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32, copy=False)


def make_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2,
              pad_value: float = 1.0) -> np.ndarray:
    """Tile NHWC images into one HWC image, ``nrow`` per row (default: square-ish)."""
    images = to_float(np.asarray(images))
    n, h, w, c = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c),
                   pad_value, np.float32)
    for i in range(n):
        r, k = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        grid[y:y + h, x:x + w] = images[i]
    return grid


def list_images(root: str | Path) -> list[Path]:
    """Image files below ``root`` (recursive), sorted for a stable order."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def save_gif(path: str | Path, frames: np.ndarray, fps: float = 12.0, loop: bool = True) -> Path:
    """Write NHWC frames ([0, 1] float or uint8) as an animated GIF, atomically. Each frame gets
    its own 256-colour palette (Pillow's default), which suits generated art better than one
    palette for the whole animation."""
    path = Path(path)
    arr = to_uint8(np.asarray(frames))
    if arr.ndim != 4 or len(arr) == 0:
        raise ArtganError(f"{path}: expected a non-empty NHWC batch of frames, got shape {arr.shape}")
    mode_frames = [Image.fromarray(a[..., 0] if a.shape[2] == 1 else a) for a in arr]
    options = {"loop": 0} if loop else {}  # no loop count at all: viewers play it once
    with atomic_path(path) as tmp:
        mode_frames[0].save(tmp, format="GIF", save_all=True, append_images=mode_frames[1:],
                            duration=max(20, int(round(1000 / fps))), disposal=1, **options)
    return path
