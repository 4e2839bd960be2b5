"""Losses, EMA, DiffAugment, R1 and the gradient penalty: values checked against hand-worked cases."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from artgan.training_tricks import EMA, diff_augment, gradient_penalty, parse_policy, r1_penalty


def _loss(registry, name, **kw):
    return registry.create("loss", name, **kw)


def test_losses_match_their_formulas(registry):
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sp = lambda x: math.log1p(math.exp(x))
    ns = _loss(registry, "non-saturating")
    assert ns.discriminator(real, fake).item() == pytest.approx(
        (sp(-2) + sp(1)) / 2 + (sp(0.5) + sp(-3)) / 2, rel=1e-6)
    assert ns.generator(fake).item() == pytest.approx((sp(-0.5) + sp(3)) / 2, rel=1e-6)
    hinge = _loss(registry, "hinge")
    assert hinge.discriminator(real, fake).item() == pytest.approx((0 + 2) / 2 + (1.5 + 0) / 2)
    assert hinge.generator(fake).item() == pytest.approx(1.25)
    ls = _loss(registry, "least-squares")
    assert ls.discriminator(real, fake).item() == pytest.approx(0.5 * ((1 + 4) / 2 + (0.25 + 9) / 2))
    assert ls.generator(fake).item() == pytest.approx(0.5 * (0.25 + 16) / 2)
    w = _loss(registry, "wgan-gp", gp_weight=10.0)
    assert w.discriminator(real, fake).item() == pytest.approx(-1.25 - 0.5)
    assert w.generator(fake).item() == pytest.approx(1.25)
    assert ns.discriminator_penalty(lambda x: x, real, fake) is None


def test_r1_and_gradient_penalty_on_a_linear_critic():
    # D(x) = <w, x>: its input gradient is w everywhere, so R1 = ||w||^2 and GP = (||w|| - 1)^2
    w = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)
    critic = lambda x: (x * w).flatten(1).sum(1)
    x = torch.randn(5, 2, 1, 1, requires_grad=True)
    assert r1_penalty(critic(x), x).item() == pytest.approx(25.0)
    gp = gradient_penalty(critic, torch.randn(5, 2, 1, 1), torch.randn(5, 2, 1, 1))
    assert gp.item() == pytest.approx(16.0)
    gp.backward() if gp.requires_grad else None


def test_ema_follows_the_moving_average_and_copies_buffers():
    live = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(live, decay=0.5)
    start = live[0].weight.detach().clone()
    with torch.no_grad():
        live[0].weight.add_(1.0)
        live[1].running_mean.fill_(7.0)
    ema.update(live)  # first update: decay ramps up, min(0.5, 1/10) = 0.1
    assert torch.allclose(ema.module[0].weight, 0.1 * start + 0.9 * (start + 1))
    assert torch.equal(ema.module[1].running_mean, torch.full((2,), 7.0))
    ema.train(True)
    assert not ema.module.training  # the average is never put in training mode
    assert not any(p.requires_grad for p in ema.parameters())
    with pytest.raises(ValueError):
        EMA(live, decay=1.5)


def test_diffaugment_shapes_gradients_and_effects():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 8, 8, requires_grad=True)
    for policy in (["color"], ["translation"], ["cutout"], parse_policy("color,translation,cutout")):
        y = diff_augment(x, policy)
        assert y.shape == x.shape
        y.sum().backward()  # differentiable: G learns through D's augmentations
        assert x.grad is not None and x.grad.abs().sum() > 0
        x.grad = None
    ones = torch.ones(64, 1, 8, 8)
    cut = diff_augment(ones, ["cutout"])
    zeros = (cut == 0).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 16).all()  # a 4x4 hole, clipped at the borders
    moved = diff_augment(ones, ["translation"])
    assert ((moved == 0).flatten(1).sum(1) > 0).any()  # some images were shifted (zero fill)
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'colour'"):
        parse_policy("colour")
