"""Inpainting: a PSNR-oriented model that corrects a classical fill, the classical methods beside
it, and their evaluation.

Registered through the ``artgan`` entry-point group, like any third-party plugin:

- dataset ``inpaint-masks``: random crops of an image folder with random free-form/box holes,
  pre-filled by OpenCV;
- architecture ``inpaint-residual``: a small U-Net at 1/4 resolution that corrects the pre-fill
  (:mod:`.model`);
- architecture ``inpaint-detail``: the same network trained with perceptual and patch-GAN terms
  for texture (:mod:`.detail`);
- steps ``inpaint`` (the trained model on onnxruntime), ``inpaint-telea``, ``inpaint-ns``,
  ``inpaint-biharmonic`` (:mod:`.steps`, no torch);
- evaluation ``inpaint`` (:mod:`.evaluate`): the core makes it ``artgan evaluate inpaint``;
- model cards: ``artgan build inpaint`` writes them (:mod:`artgan.build`).

Hole masks, random and the user's, are in :mod:`.masks`.
"""

from __future__ import annotations

from pathlib import Path

import artgan
from artgan.plugins import lazy

# the repository's reference pipelines (artgan is installed from a checkout: pip install -e .)
PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


@artgan.hookimpl
def artgan_register_datasets(register):
    register("inpaint-masks", lazy("artgan_inpaint.data:InpaintMaskDataset"))


@artgan.hookimpl
def artgan_register_architectures(register):
    register("inpaint-residual", lazy("artgan_inpaint.model:InpaintRecipe"))
    register("inpaint-detail", lazy("artgan_inpaint.detail:DetailInpaintRecipe"))


@artgan.hookimpl
def artgan_register_steps(register):
    register("inpaint", lazy("artgan_inpaint.steps:inpaint_step"))
    register("inpaint-telea", lazy("artgan_inpaint.steps:telea_step"))
    register("inpaint-ns", lazy("artgan_inpaint.steps:ns_step"))
    register("inpaint-biharmonic", lazy("artgan_inpaint.steps:biharmonic_step"))


@artgan.hookimpl
def artgan_register_evaluations(register):
    register("inpaint", lazy("artgan_inpaint.evaluate:inpaint_evaluation"))


@artgan.hookimpl
def artgan_register_tasks(register):
    register("inpaint", inpaint_task)


def inpaint_task():
    """Inpainting: a model that fills masked holes, beside OpenCV's and scikit-image's fills."""
    from artgan.tasks import Task

    return Task("inpaint", "fill the holes a mask marks in a photo",
                architectures=("inpaint-residual", "inpaint-detail"), datasets=("inpaint-masks",), step="inpaint",
                evaluation="inpaint", baselines=("inpaint-telea", "inpaint-ns", "inpaint-biharmonic"),
                pipelines=(str(PIPELINES / "inpaint.yaml"), str(PIPELINES / "inpaint-detail.yaml")),
                data_keys=("train.dataset.path", "train.architecture.sample_images"),
                build="artgan build inpaint --data PHOTOS --name NAME")
