"""artgan-example: an example third-party artgan plugin.

artgan finds this module through the ``artgan`` entry point in pyproject.toml and calls the hooks
below once at start-up. Factories are registered with ``lazy("module:attr")``: nothing heavy
(torch for the dataset) is imported until a pipeline uses the name.
"""

import artgan
from artgan.plugins import lazy

ARTGAN_HOOK_API = 1  # written against artgan's hook API 1


@artgan.hookimpl
def artgan_register_steps(register):
    register("posterize", lazy("artgan_example.steps:Posterize"))
    register("vignette", lazy("artgan_example.steps:Vignette"))


@artgan.hookimpl
def artgan_register_datasets(register):
    register("rings", lazy("artgan_example.data:RingsDataset"))
