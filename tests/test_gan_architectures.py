"""DCGAN and SNGAN recipes, unconditional and conditional: shapes, a training step with every
switch, checkpoints that keep the EMA weights, and ONNX export used for samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from artgan.data import DatasetInfo
from artgan.errors import ArtganError

INFO = DatasetInfo(image_size=32, channels=3, num_classes=10, name="test")


def _recipe(registry, arch, loss="non-saturating", **params):
    return registry.create("architecture", arch, info=INFO, loss=registry.create("loss", loss), **params)


def _one_step(recipe):
    batch = {"image": torch.rand(4, 3, 32, 32) * 2 - 1, "label": torch.randint(0, 10, (4,))}
    out = {}
    for phase in recipe.phases():
        phase.optimizer.zero_grad()
        losses = phase.losses(batch)
        losses["loss"].backward()
        phase.optimizer.step()
        out[phase.name] = losses
    recipe.after_iteration(1)
    return out


@pytest.mark.parametrize("arch,params", [
    ("dcgan", {}), ("dcgan", {"conditional": True, "spectral_norm": True}),
    ("sngan", {"g_width": 8, "d_width": 8}), ("sngan", {"g_width": 8, "d_width": 8, "conditional": True}),
])
def test_architectures_train_sample_and_export(registry, arch, params, tmp_path):
    recipe = _recipe(registry, arch, "hinge", latent_dim=16, ema=0.9, r1=1.0,
                     diffaugment="color,translation,cutout", **({"g_width": 8, "d_width": 8} | params))
    losses = _one_step(recipe)
    assert set(losses["D"]) >= {"loss", "real_logit", "fake_logit", "r1"}
    fixed = recipe.fixed_inputs(6, torch.Generator().manual_seed(0))
    images = recipe.train(False).sample(fixed)
    assert images.shape == (6, 3, 32, 32) and images.abs().max() <= 1
    if params.get("conditional"):
        assert fixed["label"].tolist() == [0, 1, 2, 3, 4, 5]

    # the sampling path is the EMA generator, not the trained one
    assert recipe.sampling_generator is recipe.ema.module
    from artgan.export import export_onnx
    from artgan.runtime import Generator
    card = export_onnx(recipe.export_spec(), tmp_path / "g.onnx", tolerance=1e-3)
    assert card["metadata"]["ema"] is True
    gen = Generator(tmp_path / "g.onnx")
    assert gen.num_classes == (10 if params.get("conditional") else 0)
    out = gen.generate(3, seed=1)
    assert out.shape == (3, 32, 32, 3) and 0 <= out.min() and out.max() <= 1


def test_checkpoint_round_trip_keeps_ema_weights(registry):
    a = _recipe(registry, "dcgan", latent_dim=16, g_width=8, d_width=8, ema=0.5)
    for _ in range(3):
        _one_step(a)
    state = a.state_dict()
    assert "generator_ema" in state["modules"]
    b = _recipe(registry, "dcgan", latent_dim=16, g_width=8, d_width=8, ema=0.5)
    b.load_state_dict(state)
    z = {"z": torch.randn(2, 16)}
    a.train(False), b.train(False)
    assert torch.equal(a.sample(z), b.sample(z))
    assert not torch.equal(a.sample(z), a.G(z["z"]))  # EMA differs from the live weights


def test_wgan_gp_adds_its_penalty_and_g_every_spaces_generator_steps(registry):
    r = _recipe(registry, "dcgan", "wgan-gp", latent_dim=16, g_width=8, d_width=8,
                spectral_norm=True, g_every=5)
    assert [p.every for p in r.phases()] == [1, 5]
    assert "penalty" in _one_step(r)["D"]


@pytest.mark.parametrize("params,message", [
    ({"conditional": True}, "needs a labelled dataset"),
    ({"ema": 2.0}, "ema is a decay"),
    ({"diffaugment": "colour"}, "unknown DiffAugment policy"),
    ({"g_every": 0}, "g_every"),
])
def test_bad_switches_are_named(registry, params, message):
    info = DatasetInfo(image_size=32, channels=1, num_classes=0)
    with pytest.raises(ArtganError, match=message):
        registry.create("architecture", "dcgan", info=info, loss=None, **params)


def test_image_size_checks(registry):
    with pytest.raises(ArtganError, match="sngan: image_size must be 32, 64 or 128"):
        registry.create("architecture", "sngan", info=DatasetInfo(image_size=16), loss=None)
    r = registry.create("architecture", "sngan", info=DatasetInfo(image_size=64), loss=None,
                        g_width=4, d_width=4, latent_dim=8)
    assert r.sample(r.fixed_inputs(2, torch.Generator())).shape == (2, 3, 64, 64)


def test_pack_feeds_the_discriminator_groups_of_samples(registry):
    r = _recipe(registry, "dcgan", latent_dim=16, g_width=8, d_width=8, pack=2)
    assert r.D.net[0].in_channels == 6  # two RGB images side by side in the channels
    seen = []
    r.D.register_forward_hook(lambda m, i, o: seen.append((i[0].shape, o.shape)))
    _one_step(r)
    assert seen[0] == (torch.Size([2, 6, 32, 32]), torch.Size([2]))  # a batch of 4 -> 2 packs
    with pytest.raises(ArtganError, match="pack > 1 is for unconditional"):
        _recipe(registry, "dcgan", conditional=True, pack=2)
    bad = _recipe(registry, "dcgan", latent_dim=16, g_width=8, d_width=8, pack=3)
    with pytest.raises(ArtganError, match=r"batch_size \(4\) must be a multiple of pack \(3\)"):
        _one_step(bad)
