"""The metrics: a self-trained digit classifier, mode coverage and KL, Frechet distance,
precision/recall, provenance, and FID through a user-supplied TorchScript network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from artgan import gan_metrics as gm
from artgan.errors import ArtganError


def test_classifier_is_accurate_cached_and_hashed():
    model, info = gm.load_digit_classifier()
    assert info["test_accuracy"] >= 0.97  # held-out sklearn digits, at every rendered size
    again, info2 = gm.load_digit_classifier()  # from the cache now
    assert info2["weights_sha256"] == info["weights_sha256"] == gm.weights_hash(again)


def test_damaged_cache_is_rebuilt_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTGAN_CACHE_DIR", str(tmp_path))
    trained = []
    monkeypatch.setattr(gm, "train_digit_classifier", lambda *a, **k: trained.append(1) or (
        gm.DigitClassifier(), {"test_accuracy": 0.0, "test_images": 0}))
    _, info = gm.load_digit_classifier()
    _, info = gm.load_digit_classifier()
    assert len(trained) == 1  # the second load came from the cache
    with open(info["cache"], "wb") as fh:  # damage it
        fh.write(b"not a checkpoint")
    _, again = gm.load_digit_classifier()
    assert len(trained) == 2 and again["cache"] == info["cache"]
    assert torch.load(info["cache"], weights_only=True)["info"]["test_images"] == 0


def test_mode_stats():
    digits = np.array([[1, 2, 3], [1, 2, 3], [4, 5, 6], [0, 0, 0]])
    s = gm.mode_stats(digits)
    assert s["modes"] == 3 and s["num_modes"] == 1000
    p = np.array([0.5, 0.25, 0.25])
    assert s["kl"] == pytest.approx(float(np.sum(p * np.log(p * 1000))))
    uniform = np.stack(np.meshgrid(range(10), range(10), range(10), indexing="ij"), -1).reshape(-1, 3)
    assert gm.mode_stats(uniform) == {"modes": 1000, "num_modes": 1000, "kl": pytest.approx(0.0, abs=1e-12)}


def test_frechet_distance_known_values():
    d = 4
    eye = np.eye(d)
    assert gm.frechet_distance(np.zeros(d), eye, np.zeros(d), eye) == pytest.approx(0.0, abs=1e-9)
    # N(0, I) vs N(m, 4I): |m|^2 + tr(I + 4I - 2 * 2I) = |m|^2 + d
    m = np.array([1.0, 2.0, 0.0, 0.0])
    assert gm.frechet_distance(np.zeros(d), eye, m, 4 * eye) == pytest.approx(5.0 + d)


def test_precision_recall_extremes():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 8))
    p, r = gm.precision_recall(real, real.copy())
    assert p == 1.0 and r == 1.0
    p, r = gm.precision_recall(real, real + 100.0)
    assert p == 0.0 and r == 0.0
    # fakes squeezed into a small part of the real distribution: precise, poor recall
    p, r = gm.precision_recall(real, 0.1 * rng.normal(size=(400, 8)))
    assert p > 0.9 and r < 0.3


@pytest.fixture(scope="module")
def stacked(registry_module=None):
    from artgan.plugins import get_registry
    return get_registry().create("dataset", "stacked-digits", image_size=32, count=6000)


def test_real_stacked_digits_cover_the_modes_and_a_collapsed_generator_does_not(stacked):
    ev = gm.Evaluator(stacked, samples=3000, real_samples=3000, pr_samples=1000, seed=0)
    real = gm.real_images(stacked, 3000, seed=5)
    good = ev(lambda n, s: real[:n])
    # 3000 uniform draws over 1000 modes leave about 1000 * e^-3 = 50 empty
    assert good["metrics"]["modes"] >= 920 and good["metrics"]["kl"] < 0.5
    assert good["metrics"]["precision"] > 0.6 and good["metrics"]["recall"] > 0.6
    assert ev.reference["real_modes"] >= 920
    one = ev(lambda n, s: np.repeat(real[:1], n, axis=0))
    assert one["metrics"]["modes"] == 1
    assert one["metrics"]["kl"] == pytest.approx(math.log(1000))
    assert one["metrics"]["fd"] > 10 * good["metrics"]["fd"]
    assert one["metrics"]["recall"] < 0.01
    prov = good["provenance"]
    assert prov["samples"] == 3000 and prov["real_samples"] == 3000 and prov["pr_samples"] == 1000
    assert prov["feature_weights_sha256"] == gm.load_digit_classifier()[1]["weights_sha256"]
    # the reference statistics are a pure function of dataset, count and seed
    ev2 = gm.Evaluator(stacked, samples=3000, real_samples=3000, pr_samples=1000, seed=0)
    assert ev2.provenance["reference_stats_sha256"] == prov["reference_stats_sha256"]


def test_stacked_digits_labels_are_the_channels_digits(stacked):
    model, _ = gm.load_digit_classifier()
    images = gm.real_images(stacked, 300, seed=1)
    idx = np.random.default_rng(1).permutation(len(stacked))[:300]
    _, digits = gm.digit_features(images, model, "per-channel")
    predicted = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    assert (predicted == stacked.labels[idx].numpy()).mean() > 0.95


def test_fid_with_a_user_supplied_torchscript_network(tmp_path):
    class FakeInception(torch.nn.Module):
        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            f = x.float().mean(dim=(2, 3))
            return torch.cat([f, f ** 2 / 255.0], dim=1)

    path = tmp_path / "inception.pt"
    torch.jit.script(FakeInception()).save(str(path))
    from artgan.plugins import get_registry
    shapes = get_registry().create("dataset", "shapes", image_size=16, count=300)
    ev = gm.Evaluator(shapes, samples=300, real_samples=300, inception=path)
    real = gm.real_images(shapes, 300, seed=0)
    result = ev(lambda n, s: real)
    assert result["metrics"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert "modes" not in result["metrics"]  # no digit metrics for shapes
    assert len(result["provenance"]["inception_weights_sha256"]) == 64
    with pytest.raises(ArtganError, match="no built-in metrics for dataset 'shapes'"):
        gm.Evaluator(shapes, samples=10)
    with pytest.raises(ArtganError, match="not a TorchScript Inception"):
        (tmp_path / "bad.pt").write_bytes(b"junk")
        gm.load_inception(tmp_path / "bad.pt")


def test_stacked_digits_batch_fetch_matches_items_and_is_seeded(stacked):
    import torch
    from artgan.plugins import get_registry
    idx = [5, 17, 4000]
    batch = stacked.__getitems__(idx)
    for i, item in zip(idx, batch):
        assert torch.equal(item["image"], stacked[i]["image"]) and item["label"] == stacked[i]["label"]
    assert stacked.info.num_classes == 1000 and stacked[0]["image"].shape == (3, 32, 32)
    again = get_registry().create("dataset", "stacked-digits", image_size=32, count=6000)
    assert torch.equal(again[123]["image"], stacked[123]["image"])
    with pytest.raises(ArtganError, match="image_size must be an integer from 16 to 128"):
        get_registry().create("dataset", "stacked-digits", image_size=8)
