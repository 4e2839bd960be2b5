"""What the core's ImageToImageRecipe and ModelStep do for every image-to-image task: the export
metadata derived from the declared images is the shipped models' own, key for key; sample grids
from held-out or first-batch inputs; one EMA path whose warm-up is what superres and inpaint
trained with; a model step found by name, checked against its metadata, tiled by its policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from artgan.data import DatasetInfo, held_out_crops
from artgan.errors import ArtganError
from artgan.image_recipe import ImageSpec, ImageToImageRecipe
from artgan.training_tricks import EMA

ROOT = Path(__file__).parents[1]

#: a shipped model's keys that record how big it was or how it was trained, not its images
KNOBS = {"generator", "g_width", "g_blocks", "recipe", "train_crop", "objective"}


def _shipped_metadata(path) -> dict:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key.removeprefix("artgan."): json.loads(p.value) for p in model.metadata_props}


def _tiny(architecture: str, dataset: str, **params):
    from artgan.plugins import get_registry

    return get_registry().create("architecture", architecture, info=DatasetInfo(image_size=32, name=dataset),
                                 **params)


SHIPPED = [
    ("superres/x2-psnr", "superres-gan", {"width": 8, "blocks": 1}),
    ("superres/x4-psnr", "superres-gan", {"width": 8, "blocks": 1, "scale": 4}),
    ("inpaint/residual-bsds400", "inpaint-residual", {"width": 4, "blocks": 1}),
    ("inpaint/detail-bsds400", "inpaint-detail", {"width": 4, "blocks": 1, "d_width": 4}),
    ("style/starry-night", "perceptual-style", {"width": 8, "blocks": 1}),
]


@pytest.mark.parametrize("model, architecture, params", SHIPPED, ids=[s[0] for s in SHIPPED])
def test_derived_metadata_is_the_shipped_models(model, architecture, params):
    shipped = _shipped_metadata(ROOT / "exports" / f"{model}.onnx")
    recipe = _tiny(architecture, shipped["dataset"], **params)
    ours = json.loads(json.dumps(recipe.export_spec().metadata))
    assert {k: v for k, v in ours.items() if k not in KNOBS} == \
        {k: shipped[k] for k in ours if k not in KNOBS}
    assert set(ours) - set(shipped) == set()  # the export adds its own facts; we add nothing


STYLE_IMAGES = {  # what every style model's metadata says of its images (as the shipped ones do)
    "task": "image-to-image", "step": "style", "scale": 1, "size_multiple": 4, "value_range": [-1.0, 1.0],
    "channels": 3, "color_order": "RGB", "layout": "NCHW", "inputs": ["image"],
    "input_spec": {"image": {"shape": ["batch", 3, "height", "width"], "dtype": "float32", "range": [-1.0, 1.0],
                             "size_multiple": 4}},
    "output_spec": {"stylized": {"shape": ["batch", 3, "height", "width"], "dtype": "float32",
                                 "range": [-1.0, 1.0]}},
}


@pytest.mark.parametrize("architecture, params", [("patch-style", {"width": 8, "blocks": 1}),
                                                  ("cyclegan", {"g_width": 4, "g_blocks": 1, "d_width": 8})])
def test_style_recipes_without_a_shipped_model_keep_their_metadata(architecture, params):
    spec = _tiny(architecture, "unpaired:photos(train)->stripes", **params).export_spec()
    assert {k: spec.metadata[k] for k in STYLE_IMAGES} == STYLE_IMAGES
    assert spec.metadata["style"] == "stripes" and spec.metadata["architecture"] == architecture
    assert spec.metadata["g_blocks"] == 1 and spec.metadata["train_crop"] == 32
    assert list(spec.inputs) == ["image"] and spec.inputs["image"].shape == (1, 3, 128, 128)
    assert spec.outputs == ["stylized"] and spec.dynamic_axes["stylized"] == {0: "batch", 2: "height", 3: "width"}


def test_an_upscaled_output_has_its_own_axes_and_a_scaled_shape():
    spec = _tiny("superres-gan", "pairs", width=8, blocks=1, scale=4).export_spec()
    assert spec.dynamic_axes == {"lr": {0: "batch", 2: "height", 3: "width"},
                                 "hr": {0: "batch", 2: "out_height", 3: "out_width"}}
    assert spec.metadata["output_spec"]["hr"]["shape"] == ["batch", 3, "height*4", "width*4"]
    assert spec.metadata["scale"] == 4 and spec.inputs["lr"].shape == (1, 3, 24, 32)


class Doubler(ImageToImageRecipe):
    """The smallest image-to-image recipe: a 1x1 convolution, for the base class's own behaviour."""

    step, architecture = "double", "doubler"

    def __init__(self, *, info=None, loss=None, ema: float = 0.0, own: dict | None = None):
        super().__init__()
        self.info = DatasetInfo(image_size=8, channels=1, name="grey")
        self.net = nn.Conv2d(1, 1, 1)
        self.modules = {"generator": self.net}
        self.keep_ema(self.net, ema)
        self.own = own or {}

    def image_inputs(self):
        return {"image": ImageSpec(1, (0.0, 1.0))}

    def image_outputs(self):
        return {"doubled": ImageSpec(1, (0.0, 1.0))}

    def own_metadata(self):
        return self.own


def test_metadata_of_a_grey_model_and_no_derived_key_twice():
    md = Doubler().export_spec().metadata
    assert md["color_order"] == "L" and md["value_range"] == [0.0, 1.0] and md["channels"] == 1
    assert md["input_spec"]["image"] == {"shape": ["batch", 1, "height", "width"], "dtype": "float32",
                                         "range": [0.0, 1.0]}
    with pytest.raises(ValueError, match="repeats the derived key"):
        Doubler(own={"scale": 2}).export_spec()


def test_samples_show_the_first_batch_kept_else_a_ramp():
    recipe = Doubler()
    before = recipe.sample(recipe.fixed_inputs(4, torch.Generator()))
    assert before.shape == (1, 1, 8, 16)  # the ramp and its output, side by side
    batch = torch.rand(12, 1, 8, 8)
    recipe.keep_sample_inputs({"image": batch})
    recipe.keep_sample_inputs({"image": torch.zeros(12, 1, 8, 8)})  # the first batch stays
    grid = recipe.sample({})
    assert grid.shape == (8, 1, 8, 16) and torch.equal(grid[..., :8], batch[:8])
    assert torch.allclose(grid[..., 8:], recipe.net(batch[:8]))


def _old_ema_values(warmup_by_iteration: bool, iterations: int = 3) -> list[torch.Tensor]:
    """The EMA as superres and inpaint updated it in their own after_iteration (iteration=), and
    as GANRecipe's did for the others (its own update count)."""
    torch.manual_seed(0)
    live = nn.Conv2d(1, 1, 1)
    ema, out = EMA(live, 0.99), []
    for i in range(1, iterations + 1):
        with torch.no_grad():
            live.weight.add_(1.0)
        ema.update(live, iteration=i) if warmup_by_iteration else ema.update(live)
        out.append(ema.module.weight.detach().clone())
    return out


@pytest.mark.parametrize("warmup", ["iterations", "updates"])
def test_one_ema_path_keeps_each_recipes_warm_up(warmup):
    torch.manual_seed(0)
    recipe = Doubler(ema=0.99)
    recipe.keep_ema(recipe.net, 0.99, warmup=warmup)
    values = []
    for i in range(1, 4):
        with torch.no_grad():
            recipe.net.weight.add_(1.0)
        recipe.after_iteration(i)
        values.append(recipe.ema.module.weight.detach().clone())
    old = _old_ema_values(warmup == "iterations")
    assert all(torch.equal(a, b) for a, b in zip(values, old))
    assert not torch.equal(old[0], _old_ema_values(warmup != "iterations")[0])  # the two warm-ups differ


def test_superres_and_inpaint_warm_up_by_iteration_the_others_by_update():
    assert _tiny("superres-gan", "p", width=8, blocks=1, ema=0.9)._ema_warmup == "iterations"
    assert _tiny("inpaint-residual", "m", width=4, blocks=1)._ema_warmup == "iterations"
    assert _tiny("patch-style", "a->b", width=8, blocks=1, ema=0.9)._ema_warmup == "updates"


def test_held_out_crops_never_show_a_training_image(tmp_path):
    from PIL import Image

    for i in range(8):
        size = 20 if i == 3 else 40  # the first held-out image is too small for 32 px crops
        Image.fromarray(np.full((size, size + 10, 3), i * 30, np.uint8)).save(tmp_path / f"{i}.png")
    crops = held_out_crops(tmp_path, 4, 32)
    assert [int(c[0, 0, 0]) for c in crops] == [7 * 30] and crops[0].shape == (32, 32, 3)
    with pytest.raises(ArtganError, match="no images"):
        held_out_crops(tmp_path / "missing", 4, 32)


def test_model_step_finds_checks_and_tiles(tmp_path, monkeypatch):
    from artgan.export import export_onnx
    from artgan.steps import ModelStep

    export_onnx(Doubler().export_spec(), tmp_path / "double" / "tiny.onnx")
    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(tmp_path))
    step = ModelStep("double", "tiny")
    assert step.name == "double" and step.model_path == tmp_path / "double" / "tiny.onnx"
    image = np.random.default_rng(0).random((1, 12, 20, 1), dtype=np.float32)
    assert step(image).shape == image.shape
    with pytest.raises(ArtganError, match=r"is a 'double' model, not a triple one"):
        ModelStep("triple", str(step.model_path))
    with pytest.raises(ArtganError, match=r"no model 'nope' \(available: tiny\); train one"):
        ModelStep("double", "nope", hint="train one")
    assert ModelStep("double", "tiny", untiled_pixels=1000).tile_for(30, 30) is None  # 900 pixels: whole
    assert ModelStep("double", "tiny", untiled_pixels=1000).tile_for(40, 40) == 64  # auto_tile's smallest
    monkeypatch.setenv("ARTGAN_TILE_BUDGET_MB", "1")
    assert ModelStep("double", "tiny", bytes_per_pixel=16).tile_for(200, 200) is None  # 640 kB
    assert ModelStep("double", "tiny").tile_for(200, 200) == 64
