"""The perceptual style recipe (artgan_style.perceptual), the tone figure and the instant
any-painting mode (artgan_style.instant). Tiny networks and images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.export import export_onnx
from artgan.images import save_image
from artgan.plugins import get_registry
from artgan.steps import build_step as _build
from artgan_style import measure
from artgan_style.perceptual import PaintNet, PerceptualStyleRecipe, tone_loss

def build_step(spec):
    return _build(get_registry(), spec)


TINY = {"width": 8, "blocks": 1}


def _photos(n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    return torch.from_numpy(np.stack([np.stack([x * a, y, (x + y) / 2 * b])
                                      for a, b in rng.uniform(0.3, 1, (n, 2))]).astype(np.float32)) * 2 - 1


def test_paintnet_keeps_size_range_and_has_no_transposed_convolution():
    g = PaintNet(width=8, blocks=1).eval()
    out = g(torch.rand(2, 3, 36, 52) * 2 - 1)
    assert out.shape == (2, 3, 36, 52) and float(out.detach().abs().max()) <= 1
    kinds = {type(m).__name__ for m in g.modules()}
    assert "ConvTranspose2d" not in kinds and "ReflectionPad2d" in kinds


def test_tone_loss_is_zero_for_the_photo_and_two_for_its_negative():
    photo = _photos()
    assert float(tone_loss(photo, photo)) == pytest.approx(0, abs=1e-4)
    assert float(tone_loss(-photo, photo)) == pytest.approx(2, abs=1e-3)
    brighter = (photo + 1) * 0.6 - 1  # a tone curve keeps the order of light and dark
    assert float(tone_loss(brighter, photo)) < 0.01


def test_tone_figure_rewards_light_and_dark_kept():
    rng = np.random.default_rng(1)
    image = np.clip(rng.random((40, 40, 3)) * 0.2 + np.linspace(0, 0.8, 40)[None, :, None], 0, 1).astype(np.float32)
    assert measure.tone(image, image) == pytest.approx(1.0)
    assert measure.tone(image, 1 - image) == pytest.approx(-1.0)
    assert abs(measure.tone(image, rng.random((40, 40, 3)).astype(np.float32))) < 0.3


def test_recipe_step_reports_each_term_and_learns():
    torch.manual_seed(0)
    recipe = PerceptualStyleRecipe(info=DatasetInfo(image_size=32, name="photos->art"), **TINY)
    batch = {"image": _photos(), "art": torch.rand(4, 3, 32, 32) * 2 - 1}
    opt = recipe.optimizers["generator"]
    first = None
    for _ in range(12):
        opt.zero_grad()
        losses = recipe.generator_step(batch)
        losses["loss"].backward()
        opt.step()
        first = first if first is not None else float(losses["loss"])
    assert set(losses) == {"loss", "style", "colour", "content", "tone", "tv"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert float(losses["loss"]) < first


def test_recipe_keeps_its_painting_statistics_across_a_resume():
    torch.manual_seed(0)
    info = DatasetInfo(image_size=32, name="photos->art")
    recipe = PerceptualStyleRecipe(info=info, **TINY)
    recipe.generator_step({"image": _photos(), "art": torch.rand(4, 3, 32, 32) * 2 - 1})
    resumed = PerceptualStyleRecipe(info=info, **TINY)
    resumed.load_state_dict(recipe.state_dict())
    assert resumed._art_count == 1
    assert all(torch.equal(resumed._art_grams[k], recipe._art_grams[k]) for k in recipe._art_grams)
    assert resumed.reference.state_dict() == recipe.reference.state_dict()


@pytest.mark.parametrize("params, message", [({"width": 0}, "width must be an integer >= 1"),
                                             ({"tone_weight": -1}, "tone_weight must be a finite number >= 0"),
                                             ({"temperature": float("nan")}, "temperature must be a finite")])
def test_bad_knobs_are_one_line(params, message):
    with pytest.raises(ArtganError, match=message):
        PerceptualStyleRecipe(info=DatasetInfo(image_size=32), **{**TINY, **params})


def test_exports_a_dynamic_size_style_model_that_the_step_runs(tmp_path):
    recipe = PerceptualStyleRecipe(info=DatasetInfo(image_size=32, name="photos->art"), **TINY)
    path = tmp_path / "style" / "art.onnx"
    export_onnx(recipe.export_spec(), path)
    step = build_step({"name": "style", "model": str(path)})
    image = np.random.default_rng(0).random((1, 44, 60, 3)).astype(np.float32)
    out = step(image)
    assert out.shape == image.shape and np.isfinite(out).all()


@pytest.fixture(scope="module")
def painting(tmp_path_factory):
    rng = np.random.default_rng(0)
    stripes = 0.5 + 0.5 * np.sin(np.add.outer(np.arange(96), np.arange(128)) / 3.0)
    image = np.stack([0.2 * stripes, 0.3 * stripes, 0.4 + 0.5 * stripes], -1) + rng.normal(0, 0.05, (96, 128, 3))
    path = tmp_path_factory.mktemp("painting") / "stripes.png"
    save_image(path, np.clip(image, 0, 1))
    return path


def test_instant_mode_paints_any_painting_at_the_photo_size(painting):
    step = build_step({"name": "style", "painting": str(painting)})
    y, x = np.mgrid[0:50, 0:70] / 70
    photo = np.stack([x, y, (x + y) / 2], -1)[None].astype(np.float32)
    out = step(photo)
    assert out.shape == photo.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert np.abs(out - photo).mean() > 0.02  # it did something
    half = build_step({"name": "style", "painting": str(painting), "strength": 0.5})(photo)
    np.testing.assert_allclose(half, np.clip(photo + 0.5 * (out - photo), 0, 1), atol=1e-5)


def test_instant_mode_errors_are_one_line(painting, tmp_path):
    with pytest.raises(ArtganError, match="painting file .*nowhere.png not found"):
        build_step({"name": "style", "painting": str(tmp_path / "nowhere.png")})
    with pytest.raises(ArtganError, match="not both"):
        build_step({"name": "style", "painting": str(painting), "model": "starry-night"})
