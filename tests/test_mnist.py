"""The bundled MNIST sample (the quickstart's data) and the feature network its metrics use."""

from __future__ import annotations

import numpy as np
import torch


def test_mnist_is_bundled_balanced_and_padded_to_32(registry):
    ds = registry.create("dataset", "mnist", image_size=32)
    assert len(ds) == 5000 and ds.info.num_classes == 10 and ds.info.class_names == [str(d) for d in range(10)]
    assert torch.bincount(ds.labels).tolist() == [500] * 10
    x = ds[0]["image"]
    assert x.shape == (1, 32, 32) and float(x.min()) == -1.0 and float(x.max()) == 1.0
    # padded, not resized: a 2-pixel black border around the original 28x28 strokes
    border = torch.cat([ds.images[:, :, :2].flatten(), ds.images[:, :, -2:].flatten(),
                        ds.images[:, :, :, :2].flatten(), ds.images[:, :, :, -2:].flatten()])
    assert bool((border == -1).all())


def test_mnist_other_sizes_and_three_channels(registry):
    ds = registry.create("dataset", "mnist", image_size=16, channels=3)
    assert ds[0]["image"].shape == (3, 16, 16)


def test_mnist_metrics_use_a_classifier_trained_on_mnist(registry, monkeypatch, tmp_path):
    from artgan import gan_metrics as gm

    monkeypatch.setenv("ARTGAN_CACHE_DIR", str(tmp_path))
    ds = registry.create("dataset", "mnist", image_size=32)
    model, info = gm.load_digit_classifier(ds)
    assert info["name"] == "artgan mnist classifier v1" and info["test_accuracy"] > 0.9
    assert info["cache"].startswith(str(tmp_path)) and "mnist-classifier-" in info["cache"]
    # real MNIST against itself: a small distance, high precision and recall
    ev = gm.Evaluator(ds, samples=1000, real_samples=1000, pr_samples=1000, seed=0)
    real = gm.real_images(ds, 1000, seed=5)
    result = ev(lambda n, seed: real[:n])
    assert result["metrics"]["modes"] == 10 and result["metrics"]["kl"] < 0.05
    assert result["metrics"]["fd"] < 5 and result["metrics"]["precision"] > 0.6
    assert result["provenance"]["feature_network"] == "artgan mnist classifier v1"
    # noise is far away
    noise = np.random.default_rng(0).random((1000, 32, 32, 1), dtype=np.float32)
    assert ev(lambda n, seed: noise[:n])["metrics"]["fd"] > 10 * result["metrics"]["fd"]
