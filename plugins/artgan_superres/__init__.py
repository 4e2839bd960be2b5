"""Super-resolution: a trainable GAN upscaler, the classical resamplers beside it, and their evaluation.

Registered through the ``artgan`` entry-point group, like any third-party plugin:

- dataset ``superres-pairs``: (LR, HR) pairs made on the fly from an image folder (:mod:`.data`);
- architecture ``superres-gan``: residual pixel-shuffle generator vs. PatchGAN (:mod:`.recipe`);
- steps ``superres`` (a trained model on onnxruntime), ``bicubic``, ``lanczos`` (:mod:`.steps`,
  no torch);
- evaluation ``superres`` (:mod:`.evaluate`): the core makes it ``artgan evaluate superres``;
- model cards: ``artgan build superres`` writes them (:mod:`artgan.build`).
"""

from __future__ import annotations

from pathlib import Path

import artgan
from artgan.plugins import lazy

# the repository's reference pipelines (artgan is installed from a checkout: pip install -e .)
PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


@artgan.hookimpl
def artgan_register_datasets(register):
    register("superres-pairs", lazy("artgan_superres.data:SRPairsDataset"))


@artgan.hookimpl
def artgan_register_architectures(register):
    register("superres-gan", lazy("artgan_superres.model:SuperResRecipe"))


@artgan.hookimpl
def artgan_register_steps(register):
    register("superres", lazy("artgan_superres.steps:SuperResStep"))
    register("bicubic", lazy("artgan_superres.steps:BicubicStep"))
    register("lanczos", lazy("artgan_superres.steps:LanczosStep"))


@artgan.hookimpl
def artgan_register_evaluations(register):
    register("superres", lazy("artgan_superres.evaluate:superres_evaluation"))


@artgan.hookimpl
def artgan_register_tasks(register):
    register("superres", superres_task)


def superres_task():
    """Super-resolution: a model that enlarges photos x2 or x4, beside the classical resamplers."""
    from artgan.tasks import Task

    return Task("superres", "enlarge photos x2/x4 with a trained GAN upscaler",
                architectures=("superres-gan",), datasets=("superres-pairs",), step="superres",
                evaluation="superres", baselines=("bicubic", "lanczos"),
                # the first is what `artgan build superres` runs (the x2-gan one starts from x2-psnr)
                pipelines=(str(PIPELINES / "superres-x2-psnr.yaml"), str(PIPELINES / "superres-x2-gan.yaml"),
                           str(PIPELINES / "superres-x4-psnr.yaml")),
                data_keys=("train.dataset.path", "train.architecture.sample_images"),
                build_settings=("train.dataset.split=train",),
                build="artgan build superres --data PHOTOS --name NAME")
