"""``artgan synth``: a labelled image-folder dataset from a conditional generator, with
onnxruntime and numpy only (never torch).

Layout of what it writes::

    DIR/<class name>/<index>.png    per-class images, index from 00000
    DIR/labels.csv                  path,label,class (one row per image)
    DIR/dataset.json                model, its SHA-256, seed, truncation, class names and counts

Determinism: one latent stream for the seed (``artgan.runtime.Generator.latents``), images
interleaved by class, so image ``j`` of class ``c`` is latent row ``j * K + c``: the same seed
gives the same files, and ``--per-class 50`` is the first 50 of ``--per-class 100``.
``dataset.json`` is written last: a folder without it is an interrupted run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

from artgan import __version__
from artgan.errors import ArtganError
from artgan.files import write_json, write_text
from artgan.images import save_image
from artgan.runtime import Generator


def class_names(gen: Generator) -> list[str]:
    """The model's ``class_names`` (recorded at export), else the label numbers as text; refuses an
    unconditional generator."""
    if gen.num_classes < 2 or gen.label_input is None:
        raise ArtganError(f"{gen.path.name} is an unconditional generator (num_classes "
                          f"{gen.num_classes}); synth needs a conditional one to label its images: "
                          f"train with architecture conditional: true on a labelled dataset")
    names = gen.metadata.get("class_names") or [str(i) for i in range(gen.num_classes)]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        shown = repr(names) if len(repr(names)) <= 60 else repr(names)[:57] + "..."
        raise ArtganError(f"{gen.path.name}: metadata class_names must be a list of strings, one folder name per "
                          f"class, got {shown}; re-export the model with artgan export")
    if len(names) != gen.num_classes:
        raise ArtganError(f"{gen.path.name}: metadata class_names has {len(names)} names for "
                          f"{gen.num_classes} classes; re-export the model")
    for name in names:  # each becomes a folder name
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise ArtganError(f"{gen.path.name}: class name {name!r} cannot be a folder name")
    seen: dict[str, str] = {}
    for name in names:  # one folder per class: two names for one folder would mix classes
        if name.casefold() in seen:
            raise ArtganError(f"{gen.path.name}: metadata class_names names two classes {seen[name.casefold()]!r} "
                              f"and {name!r} (one folder each, so they must differ, also in case); re-export "
                              f"the model with distinct class names")
        seen[name.casefold()] = name
    return list(names)


def synthesize(model: str | Path, per_class: int, out: str | Path, *, seed: int = 0,
               truncation: float | None = None, batch_size: int = 256, progress: bool = True,
               threads: int | None = None) -> dict[str, Any]:
    """Write ``per_class`` images of every class of ``model`` into ``out``; return the
    ``dataset.json`` record."""
    if per_class < 1:
        raise ArtganError(f"per-class must be >= 1, got {per_class}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArtganError(f"{out} is not an empty folder; synth writes a fresh dataset: choose a new --out")
    gen = Generator(model, threads=threads)
    names = class_names(gen)
    k = len(names)
    total = per_class * k
    width = max(5, len(str(per_class - 1)))
    rows = []
    for lo, images, _ in labelled_batches(gen, per_class, seed, truncation, batch_size, progress):
        for i, image in enumerate(images, start=lo):
            c, j = i % k, i // k
            rel = f"{names[c]}/{j:0{width}d}.png"
            save_image(out / rel, image)
            rows.append((rel, c, names[c]))
    rows.sort(key=lambda r: (r[1], r[0]))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label", "class"])
    writer.writerows(rows)
    write_text(out / "labels.csv", buf.getvalue())
    h, w, c = gen.image_shape()
    record = {
        "created_by": f"artgan synth (artgan {__version__})",
        "model": gen.path.name, "model_sha256": _sha256(gen.path),
        "model_dataset": gen.metadata.get("dataset", ""), "model_train_iterations": gen.metadata.get("train_iterations"),
        "seed": seed, "truncation": truncation, "per_class": per_class, "total": total,
        "classes": names, "counts": {name: per_class for name in names},
        "image_size": h, "channels": c, "format": "png",
        "train_with": {"name": "image-folder", "path": str(out), "labels": "folders", "image_size": h,
                       "channels": c},
    }
    write_json(out / "dataset.json", record)
    return record


def labelled_batches(gen: Generator, per_class: int, seed: int, truncation: float | None = None,
                     batch_size: int = 256, progress: bool = False):
    """Yield ``(first index, images float32 NHWC in [0, 1], labels)`` for ``per_class`` images of
    every class, interleaved (image ``i`` has label ``i % K``), from one seeded latent stream."""
    k = len(class_names(gen))
    total = per_class * k
    z = gen.latents(total, seed, truncation)
    labels = np.arange(total, dtype=np.int64) % k
    for lo in _progress(range(0, total, batch_size), progress, total, batch_size):
        batch_labels = labels[lo:lo + batch_size]
        yield lo, gen.from_latents(z[lo:lo + batch_size], batch_labels, batch_size=batch_size), batch_labels


def sample_labelled(gen: Generator, per_class: int, seed: int, truncation: float | None = None,
                    batch_size: int = 256, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`synthesize` would write, in memory: (images quantised to 8 bits as in the PNG
    files, float32 NHWC in [0, 1]; labels int64)."""
    images, labels = [], []
    for _, batch, batch_labels in labelled_batches(gen, per_class, seed, truncation, batch_size, progress):
        images.append(np.floor(np.clip(batch, 0.0, 1.0) * 255.0 + 0.5) / 255.0)  # as save_image rounds
        labels.append(batch_labels)
    return np.concatenate(images).astype(np.float32), np.concatenate(labels)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _progress(starts: range, enabled: bool, total: int, batch_size: int):
    if not enabled:
        return starts
    from tqdm.auto import tqdm  # only when shown: importing it costs start-up time

    return tqdm(starts, desc="synth", unit="batch", total=len(starts), file=sys.stderr,
                postfix={"images": total})
