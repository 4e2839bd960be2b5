"""Style transfer: photo -> painting models, the classical colour methods beside them, and their
evaluation.

Registered through the ``artgan`` entry-point group, like any third-party plugin:

- dataset ``unpaired-folders``: crops of photos and of a painting, unpaired (:mod:`.data`);
- architectures ``patch-style`` (:mod:`.model`, what ``artgan style train`` trains) and ``cyclegan``
  (:mod:`.cyclegan`, the older recipe great-wave.onnx comes from);
- steps ``style`` (a trained model on onnxruntime), ``color-transfer``, ``histogram-match``
  (:mod:`.steps`, no torch);
- evaluation ``style`` (:mod:`.evaluate`, figures in :mod:`.measure`): the core makes it
  ``artgan evaluate style``;
- task ``style``, built by its own builder (:mod:`.build`): ``artgan build style --data PAINTING
  --name NAME`` makes a model for your own painting, with its card and contact sheet
  (:mod:`.sheet`); command ``artgan style train PAINTING`` (:mod:`.cli`) is the same build.

Everything is named lazily: torch is imported only when a pipeline trains, never by the steps.
"""

from __future__ import annotations

from pathlib import Path

import artgan
from artgan.plugins import lazy

# the repository's reference pipelines (artgan is installed from a checkout: pip install -e .)
PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


@artgan.hookimpl
def artgan_register_datasets(register):
    register("unpaired-folders", lazy("artgan_style.data:UnpairedFoldersDataset"))


@artgan.hookimpl
def artgan_register_architectures(register):
    register("perceptual-style", lazy("artgan_style.perceptual:PerceptualStyleRecipe"))
    register("patch-style", lazy("artgan_style.model:PatchStyleRecipe"))
    register("cyclegan", lazy("artgan_style.cyclegan:CycleGANRecipe"))


@artgan.hookimpl
def artgan_register_steps(register):
    register("style", lazy("artgan_style.steps:StyleStep"))
    register("color-transfer", lazy("artgan_style.steps:ColorTransferStep"))
    register("histogram-match", lazy("artgan_style.steps:HistogramMatchStep"))


@artgan.hookimpl
def artgan_register_evaluations(register):
    register("style", lazy("artgan_style.evaluate:style_evaluation"))


@artgan.hookimpl
def artgan_register_commands(cli):
    from .cli import style

    cli.add_command(style)


@artgan.hookimpl
def artgan_register_tasks(register):
    register("style", style_task)


def style_task():
    """Style transfer: one model per painting (or no training: ``style:painting=``), built from the
    painting by :func:`.build.build_style`, not by running a pipeline on a data folder."""
    from artgan.tasks import Task

    from .build import build_style

    return Task("style", "paint photos in the style of one painting",
                architectures=("perceptual-style", "patch-style", "cyclegan"), datasets=("unpaired-folders",),
                step="style", evaluation="style", baselines=("color-transfer", "histogram-match"),
                pipelines=(str(PIPELINES / "style-starry-night.yaml"), str(PIPELINES / "style-great-wave.yaml")),
                build="artgan build style --data PAINTING --name NAME", builder=build_style)
