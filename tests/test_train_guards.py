"""Stability guards: a non-finite loss stops training and keeps the last good checkpoint; a
collapse warning fires when sample diversity falls sharply; TensorBoard logging is optional."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from artgan import checkpoints
from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.recipe import AdversarialLoss, GANRecipe, Phase
from artgan.train import CollapseWarning, TrainOptions, train


class _Images(torch.utils.data.Dataset):
    def __init__(self, size: int = 8):
        self.size, self.info = size, DatasetInfo(image_size=size, channels=1)

    def __len__(self):
        return 32

    def __getitem__(self, i):
        return {"image": torch.full((1, self.size, self.size), (i % 7) / 7.0)}


class _NaNAfter(AdversarialLoss):
    """Non-saturating, until step ``after``: then NaN."""

    def __init__(self, after: int):
        from artgan_gan.losses import NonSaturatingLoss
        self.inner, self.after, self.calls = NonSaturatingLoss(), after, 0

    def discriminator(self, real, fake):
        self.calls += 1
        loss = self.inner.discriminator(real, fake)
        return loss * float("nan") if self.calls > self.after else loss

    def generator(self, fake):
        return self.inner.generator(fake)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(registry, tmp_path):
    recipe = registry.create("architecture", "dcgan", info=DatasetInfo(image_size=16, channels=1),
                             loss=_NaNAfter(7), latent_dim=8, g_width=4, d_width=4)
    opts = TrainOptions(iterations=20, batch_size=8, checkpoint_every=5, log_every=5, sample_count=4,
                        device="cpu", collapse_ratio=0)
    with pytest.raises(ArtganError) as err:
        train(recipe, _Images(16), tmp_path, opts, recipe_config={}, progress=False)
    msg = str(err.value)
    assert "non-finite D loss (nan) at iteration 8" in msg and str(tmp_path / "checkpoints" / "last.pt") in msg
    assert checkpoints.load(tmp_path / "checkpoints" / "last.pt")["iteration"] == 5
    ckpt = checkpoints.load(tmp_path / "checkpoints" / "last.pt")
    assert all(torch.isfinite(t).all() for t in ckpt["state"]["modules"]["generator"].values()
               if t.is_floating_point())


class _Collapsing(GANRecipe):
    """A 'generator' whose outputs are diverse until iteration 12, then all the same picture."""

    def __init__(self):
        super().__init__()
        self.w = nn.Linear(1, 1)
        self.optimizers = {"g": torch.optim.SGD(self.w.parameters(), lr=0.0)}
        self.modules = {"g": self.w}
        self.iteration = 0

    def phases(self):
        return [Phase("G", self.optimizers["g"], lambda b: {"loss": self.w.weight.sum() * 0})]

    def after_iteration(self, iteration):
        self.iteration = iteration

    def fixed_inputs(self, n, generator):
        return {"z": torch.rand(n, 1, 8, 8, generator=generator)}

    def sample(self, inputs):
        z = inputs["z"]
        return z * 2 - 1 if self.iteration < 12 else torch.zeros_like(z)


def test_collapse_warning_when_diversity_falls(tmp_path):
    opts = TrainOptions(iterations=20, batch_size=4, log_every=4, checkpoint_every=100, sample_count=16,
                        device="cpu", collapse_ratio=0.5)
    with pytest.warns(CollapseWarning, match="iteration 12: sample diversity fell to 0.000"):
        train(_Collapsing(), _Images(), tmp_path, opts, recipe_config={}, progress=False)
    from artgan.files import read_jsonl
    diversity = [r["sample_diversity"] for r in read_jsonl(tmp_path / "metrics.jsonl")
                 if "precision" not in r]
    assert diversity[0] > 0.2 and diversity[-1] == 0.0


def test_bf16_on_cpu_trains_under_autocast(tmp_path):
    opts = TrainOptions(iterations=2, batch_size=4, device="cpu", precision="bf16", channels_last=False)
    summary = train(_Collapsing(), _Images(), tmp_path, opts, recipe_config={}, progress=False)
    assert summary["bf16"] and summary["precision"].startswith("bf16 autocast, NCHW")


def test_tensorboard_logging(tmp_path):
    pytest.importorskip("tensorboard")
    opts = TrainOptions(iterations=4, batch_size=4, log_every=2, checkpoint_every=2, sample_count=4,
                        device="cpu", tensorboard=True)
    train(_Collapsing(), _Images(), tmp_path, opts, recipe_config={}, progress=False)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
