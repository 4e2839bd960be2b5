"""First-party datasets: ``digits``, ``shapes`` and ``image-folder``.

Registered through the ``artgan`` entry-point group, like any third-party plugin.
"""

from __future__ import annotations

import artgan
from artgan.plugins import lazy


@artgan.hookimpl
def artgan_register_datasets(register):
    # lazy: torch is imported when a pipeline uses a dataset, not when the CLI starts
    register("digits", lazy("artgan_datasets.builtin:DigitsDataset"))
    register("mnist", lazy("artgan_datasets.builtin:MnistDataset"))
    register("shapes", lazy("artgan_datasets.builtin:ShapesDataset"))
    register("image-folder", lazy("artgan_datasets.builtin:ImageFolderDataset"))
