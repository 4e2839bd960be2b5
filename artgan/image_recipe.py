"""The image-to-image recipe: a :class:`~artgan.recipe.GANRecipe` whose model maps images to
images (super-resolution, inpainting, style, a denoiser) declares the model's images once
(:class:`ImageSpec`), and its export (the metadata every such model carries, example inputs,
dynamic axes) and sample grids are derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from .recipe import ExportSpec, GANRecipe


@dataclass(frozen=True)
class ImageSpec:
    """One image an image-to-image model takes or gives: float32 NCHW with ``channels`` channels,
    values in ``value_range``. What its ONNX metadata declares it as (``input_spec``,
    ``output_spec``) comes from here."""

    channels: int = 3
    value_range: tuple[float, float] = (-1.0, 1.0)
    scale: int = 1  # an output's sides: the input's times this (super-resolution)
    #: the multiple of it its sides must be, written into its own spec when given (the model's
    #: size_multiple is the recipe's :attr:`ImageToImageRecipe.size_multiple`)
    size_multiple: int | None = None
    meaning: str | None = None  # what its values mean, for app developers ("1 = hole to fill ...")

    def metadata(self) -> dict[str, Any]:
        """Its entry of ``input_spec`` or ``output_spec``."""
        sides = ["height", "width"] if self.scale == 1 else [f"height*{self.scale}", f"width*{self.scale}"]
        spec: dict[str, Any] = {"shape": ["batch", self.channels, *sides], "dtype": "float32",
                                "range": [float(v) for v in self.value_range]}
        if self.meaning is not None:
            spec["meaning"] = self.meaning
        if self.size_multiple is not None:
            spec["size_multiple"] = self.size_multiple
        return spec


#: ``color_order`` in an image-to-image model's metadata, by its image's channels
COLOR_ORDERS = {1: "L", 3: "RGB", 4: "RGBA"}


class ImageToImageRecipe(GANRecipe):
    """Base class of the recipes whose model maps images to images (super-resolution, inpainting,
    style transfer, a denoiser): no GAN needed, though it may train one.

    A subclass names the ``step`` that runs its exported model and its ``architecture`` (registry
    name), declares the model's images in :meth:`image_inputs` and :meth:`image_outputs`, and adds
    its own metadata keys in :meth:`own_metadata`. :meth:`export_spec` derives the rest: the
    metadata every image-to-image model carries (``task``, ``step``, ``scale``,
    ``size_multiple``, ``value_range``, ``channels``, ``color_order``, ``layout``, ``inputs``,
    ``input_spec``, ``output_spec``; ``exports/README.md``), example inputs and dynamic axes.

    Sample grids show one row per input, :meth:`sample_panels` side by side (by default the
    input and the model's output). The inputs are :meth:`fixed_inputs`' (e.g. crops of held-out
    images, :func:`artgan.data.held_out_crops`), else those of the first training batch that the
    recipe passed to :meth:`keep_sample_inputs`.
    """

    step: ClassVar[str] = ""
    architecture: ClassVar[str] = ""
    size_multiple: ClassVar[int] = 1  # the model's sides must be a multiple of this (the step pads)
    example_size: ClassVar[tuple[int, int]] = (24, 32)  # height and width of the inputs traced at export
    sample_rows: ClassVar[int] = 8  # at most this many rows in a sample grid
    _sample_inputs: dict[str, torch.Tensor] | None = None  # keep_sample_inputs' (an instance's own once kept)

    # -- what subclasses declare ---------------------------------------------------------------
    def image_inputs(self) -> dict[str, ImageSpec]:
        """The exported model's inputs by name, the image first."""
        raise NotImplementedError

    def image_outputs(self) -> dict[str, ImageSpec]:
        """The exported model's outputs by name."""
        raise NotImplementedError

    def own_metadata(self) -> dict[str, Any]:
        """The architecture's own metadata keys (its knobs, the dataset ...), after the derived ones."""
        return {}

    def export_module(self) -> nn.Module:
        """What is exported and what samples run: by default :attr:`sampling_generator`."""
        return self.sampling_generator

    def example_inputs(self) -> dict[str, torch.Tensor]:
        """The inputs traced at export: uniform noise in each input's range, ``example_size``."""
        h, w = self.example_size
        out = {}
        for name, spec in self.image_inputs().items():
            lo, hi = spec.value_range
            out[name] = torch.rand(1, spec.channels, h, w) * (hi - lo) + lo
        return out

    # -- derived -------------------------------------------------------------------------------
    def export_metadata(self) -> dict[str, Any]:
        """The derived metadata keys, then :meth:`own_metadata`'s (which may not repeat one)."""
        inputs, outputs = self.image_inputs(), self.image_outputs()
        image, output = next(iter(inputs.values())), next(iter(outputs.values()))
        derived = {
            "task": "image-to-image", "step": self.step, "architecture": self.architecture,
            "scale": output.scale, "size_multiple": self.size_multiple,
            "value_range": [float(v) for v in image.value_range], "channels": image.channels,
            "color_order": COLOR_ORDERS.get(image.channels, "RGB"), "layout": "NCHW", "inputs": list(inputs),
            "input_spec": {name: spec.metadata() for name, spec in inputs.items()},
            "output_spec": {name: spec.metadata() for name, spec in outputs.items()},
        }
        own = self.own_metadata()
        repeated = sorted(set(own) & set(derived))
        if repeated:
            raise ValueError(f"{self.architecture}: own_metadata repeats the derived key(s) {', '.join(repeated)}; "
                             f"declare them in image_inputs/image_outputs or the class attributes")
        return {**derived, **own}

    def export_spec(self) -> ExportSpec:
        """:meth:`export_module` with :meth:`example_inputs` and :meth:`export_metadata`; batch,
        height and width dynamic (an upscaled output's as ``out_height``, ``out_width``)."""
        outputs = self.image_outputs()
        axes = {name: {0: "batch", 2: "height", 3: "width"} for name in self.image_inputs()}
        for name, spec in outputs.items():
            axes[name] = {0: "batch", 2: "height", 3: "width"} if spec.scale == 1 else \
                {0: "batch", 2: "out_height", 3: "out_width"}
        return ExportSpec(module=self.export_module(), inputs=self.example_inputs(), outputs=list(outputs),
                          dynamic_axes=axes, metadata=self.export_metadata())

    # -- sample grids ----------------------------------------------------------------------------
    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """None by default: the grids show the first training batch's (:meth:`keep_sample_inputs`)."""
        return {}

    def keep_sample_inputs(self, inputs: dict[str, torch.Tensor]) -> None:
        """Keep the model's inputs of the first training batch (a CPU copy of up to
        ``sample_rows``) for the sample grids of a recipe without fixed inputs; later calls do nothing."""
        if self._sample_inputs is None:
            self._sample_inputs = {k: v[:self.sample_rows].detach().cpu() for k, v in inputs.items()}

    def sample_panels(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The panels of each sample row, left to right: by default the model's image input and its
        output. ``inputs``: the fixed inputs, or the model's inputs by name."""
        images = [inputs[name] for name in self.image_inputs()]
        return [images[0], self.export_module()(*images).float()]

    @torch.no_grad()
    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """:meth:`sample_panels` side by side, for the fixed inputs, else the kept ones, else
        (before the first iteration) a grey ramp."""
        if not inputs:
            inputs = self._sample_inputs or self._ramp_inputs()
        device = next(self.export_module().parameters()).device
        return torch.cat(self.sample_panels({k: v.to(device) for k, v in inputs.items()}), dim=3)

    def _ramp_inputs(self) -> dict[str, torch.Tensor]:
        s = getattr(getattr(self, "info", None), "image_size", 32)
        return {name: torch.linspace(*spec.value_range, s).expand(1, spec.channels, s, s)
                for name, spec in self.image_inputs().items()}
