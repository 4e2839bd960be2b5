"""The ``stacked-digits`` dataset: three random digits as the three colour channels, 1000
modes, for measuring mode collapse (the stacked-MNIST protocol of VEEGAN and PacGAN, built from
scikit-learn's bundled digits so nothing is downloaded).

Registered through the ``artgan`` entry-point group, like any third-party plugin.
"""

from __future__ import annotations

import artgan
from artgan.plugins import lazy


@artgan.hookimpl
def artgan_register_datasets(register):
    register("stacked-digits", lazy("artgan_stacked_digits.dataset:StackedDigitsDataset"))
