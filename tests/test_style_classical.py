"""The torch-free side of style transfer: colour conversions, Reinhard colour transfer, histogram
matching, references, strength, the style measures and the fixed photo split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artgan.errors import ArtganError
from artgan.images import save_image
from artgan.steps import build_step
from artgan_style import measure
from artgan_style.classical import Reference, color_transfer, histogram_match, lab_to_rgb, rgb_to_lab


def _photo(seed=0, h=48, w=64):
    """A smooth, greenish test 'photo': gradients plus a square."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.2 + 0.3 * x / w, 0.4 + 0.4 * y / h, 0.2 + 0.1 * np.sin(x / 5)], -1)
    img[h // 4: h // 2, w // 4: w // 2] = [0.8, 0.7, 0.3]
    return np.clip(img + np.random.default_rng(seed).normal(0, 0.01, img.shape), 0, 1).astype(np.float32)


def _painting(h=80, w=96):
    """A blue, heavily textured 'painting': stripes and noise."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    stripes = 0.5 + 0.5 * np.sin((x + y) / 2.0)
    img = np.stack([0.1 + 0.3 * stripes, 0.2 + 0.3 * stripes, 0.5 + 0.4 * stripes], -1)
    return np.clip(img + rng.normal(0, 0.08, img.shape), 0, 1).astype(np.float32)


@pytest.fixture
def painting_file(tmp_path):
    return save_image(tmp_path / "blue-stripes.png", _painting())


def test_lab_known_values_and_round_trip():
    white, black = rgb_to_lab(np.array([1.0, 1.0, 1.0])), rgb_to_lab(np.array([0.0, 0.0, 0.0]))
    assert np.allclose(white, [100, 0, 0], atol=0.01) and np.allclose(black, [0, 0, 0], atol=0.01)
    red = rgb_to_lab(np.array([1.0, 0.0, 0.0]))
    assert np.allclose(red, [53.24, 80.09, 67.20], atol=0.05)  # the textbook sRGB red
    img = np.random.default_rng(0).random((20, 20, 3))
    assert np.abs(lab_to_rgb(rgb_to_lab(img)) - img).max() < 1e-6


def test_color_transfer_reaches_the_reference_statistics():
    ref = Reference.from_image(_painting())
    out = color_transfer(_photo(), ref)
    lab = rgb_to_lab(out).reshape(-1, 3)
    assert out.dtype == np.float32 and out.shape == _photo().shape
    assert np.allclose(lab.mean(0), ref.lab_mean, atol=1.5)  # clipping to sRGB costs a little
    assert np.allclose(lab.std(0), ref.lab_std, rtol=0.15)


def test_histogram_match_reaches_the_reference_quantiles():
    ref = Reference.from_image(_painting())
    out = histogram_match(_photo(), ref)
    q = np.quantile(out.reshape(-1, 3), [0.1, 0.5, 0.9], axis=0).T
    want = np.array(ref.rgb_quantiles)[:, [25, 128, 230]]
    assert np.abs(q - want).max() < 0.03


def test_reference_round_trips_through_json(tmp_path):
    ref = Reference.from_image(_painting(), name="x")
    path = ref.save(tmp_path / "x.reference.json")
    assert json.loads(path.read_text())["format"] == "artgan-style-reference/1"
    again = Reference.load(path)
    assert again.lab_mean == ref.lab_mean and len(again.rgb_quantiles[0]) == 257


def test_steps_through_the_registry_and_strength(registry, painting_file):
    photo = _photo()[None]
    full = build_step(registry, f"color-transfer:reference={painting_file}")(photo)
    none = build_step(registry, f"color-transfer:reference={painting_file},strength=0")(photo)
    half = build_step(registry, f"color-transfer:reference={painting_file},strength=0.5")(photo)
    assert full.shape == photo.shape and full.dtype == np.float32
    assert np.array_equal(none, photo)
    assert np.allclose(half, (photo + full) / 2, atol=1e-5)
    hm = build_step(registry, {"name": "histogram-match", "reference": str(painting_file), "strength": 0.7})(photo)
    assert hm.shape == photo.shape and 0 <= hm.min() and hm.max() <= 1
    assert not np.allclose(hm, photo)


@pytest.mark.parametrize("spec, message", [
    ("color-transfer:reference=PAINT,strength=1.5", "strength must be a number from 0 to 1, got 1.5"),
    ("histogram-match:reference=PAINT,strength=yes", "strength must be a number from 0 to 1"),
    ("color-transfer", "reference must be a painting name or an image path"),
    ("color-transfer:reference=no-such-painting", "no reference named 'no-such-painting'"),
    ("color-transfer:reference=missing/file.jpg", "reference file missing/file.jpg not found"),
    ("color-transfer:reference=PAINT,amount=2", "accepted parameters: reference, strength"),
])
def test_step_parameter_errors(registry, painting_file, spec, message):
    with pytest.raises(ArtganError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_step(registry, spec.replace("PAINT", str(painting_file)))


def test_shipped_reference_found_by_name(registry, tmp_path, monkeypatch):
    (tmp_path / "style").mkdir()
    Reference.from_image(_painting(), name="stripes").save(tmp_path / "style" / "stripes.reference.json")
    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(tmp_path))
    out = build_step(registry, "color-transfer:reference=stripes")(_photo()[None])
    assert out[..., 2].mean() > out[..., 1].mean()  # it turned blue like the painting
    with pytest.raises(ArtganError, match="shipped: .*stripes"):
        build_step(registry, "histogram-match:reference=stripe")


def test_style_distances_and_edge_ssim():
    photo, painting = _photo(), _painting()
    target = measure.StyleSignature.of(painting)
    same = measure.score(photo, photo, target)
    assert same["color_ratio"] == pytest.approx(1.0) and same["texture_ratio"] == pytest.approx(1.0)
    assert same["edge_ssim"] == pytest.approx(1.0)
    # the painting itself (resized to the photo) is as close as it gets, and has other edges
    crop = painting[:48, :64]
    best = measure.score(photo, crop, target)
    assert best["color_ratio"] < 0.3 and best["texture_ratio"] < 0.3 and best["edge_ssim"] < 0.5
    # colour transfer moves colour a lot, the (smooth) photo's texture much less
    ct = measure.score(photo, color_transfer(photo, Reference.from_image(painting)), target)
    assert ct["color_ratio"] < 0.5 and ct["texture_ratio"] > 0.6 and ct["edge_ssim"] > 0.5


def test_measures_are_deterministic():
    a = measure.StyleSignature.of(_painting())
    b = measure.StyleSignature.of(_painting())
    assert np.array_equal(a.color, b.color) and np.array_equal(a.texture, b.texture)
    assert a.color.shape == (measure.QUANTILES, measure.COLOR_PROJECTIONS)
    assert a.texture.shape == (measure.QUANTILES, measure.TEXTURE_PROJECTIONS)


def test_edge_ssim_tells_kept_content_from_lost_content():
    def blocks(seed):  # a picture with edges: random 8x8 colour blocks
        return np.kron(np.random.default_rng(seed).random((8, 8, 3)), np.ones((8, 8, 1))).astype(np.float32)

    photo, other = blocks(0), blocks(1)
    noisy = np.clip(photo + np.random.default_rng(3).normal(0, 0.05, photo.shape), 0, 1)
    kept, lost = measure.edge_ssim(photo, noisy), measure.edge_ssim(photo, other)
    assert kept > 0.9 and lost < 0.65 and kept > lost + 0.3
    # without the blur, grain counts as lost content
    assert measure.edge_ssim(photo, noisy, sigma=0) < kept
