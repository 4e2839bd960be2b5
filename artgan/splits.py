"""The one held-out split of an image folder, the same for every task (no torch).

A task that trains and evaluates on one folder (BSD68, say) holds out a fixed quarter of it:
the files sorted by name, and of those every ``HELD_OUT_EVERY``-th, starting at index
``HELD_OUT_OFFSET`` (indices 3, 7, 11, ...). ``train`` is the rest; ``all`` is every file. The
split depends only on the file names, so training, evaluation and a later reader agree on it
without sharing anything but the folder.

    from artgan.splits import split_files
    files = split_files(list_images("BSD68"), "heldout")   # 17 of BSD68's 68 files

The offset is 3, not 0, because the shipped style models were trained and measured on this
split; with it, their cards' figures reproduce.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .errors import ArtganError

SPLITS = ("train", "heldout", "all")
HELD_OUT_EVERY = 4
HELD_OUT_OFFSET = 3
DESCRIPTION = (f"files sorted by name, every {HELD_OUT_EVERY}th held out "
               f"(index % {HELD_OUT_EVERY} == {HELD_OUT_OFFSET})")


def held_out(files: Sequence[str | Path], *, every: int = HELD_OUT_EVERY,
             offset: int = HELD_OUT_OFFSET) -> tuple[list[Path], list[Path]]:
    """``(train, held out)`` of ``files``: sorted by name, every ``every``-th file from index
    ``offset`` is held out. Use the defaults unless a figure you report says otherwise."""
    if every < 2 or not 0 <= offset < every:
        raise ArtganError(f"held-out split: every must be >= 2 and 0 <= offset < every, got every={every}, "
                          f"offset={offset}")
    ordered = sorted((Path(f) for f in files), key=lambda p: (p.name, str(p)))
    held = [i % every == offset for i in range(len(ordered))]
    return ([f for f, h in zip(ordered, held) if not h], [f for f, h in zip(ordered, held) if h])


def split_files(files: Sequence[str | Path], split: str) -> list[Path]:
    """The files of ``split`` (``train``, ``heldout`` or ``all``) in name order."""
    if split not in SPLITS:
        raise ArtganError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    train, heldout = held_out(files)
    if split == "all":
        return sorted(train + heldout, key=lambda p: (p.name, str(p)))
    return train if split == "train" else heldout
