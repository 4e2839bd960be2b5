"""The image-GAN training recipe (``artgan.image_gan``) that dcgan, sngan and small-cgan share:
two iterations from a fixed seed give the weights they gave before the recipe moved into the
core (same losses, same order of random draws), and its switches behave."""

from __future__ import annotations

import pytest
import torch

from artgan.data import DatasetInfo
from artgan.recipe import run_phases

#: architecture -> (its parameters, image size, labelled data?): every switch of the shared recipe
CASES = {
    "small-cgan": ({"latent_dim": 8, "width": 4, "diffaugment": "color,translation,cutout"}, 16, True),
    "dcgan": ({"latent_dim": 8, "g_width": 4, "d_width": 4, "conditional": True, "r1": 1.0, "ema": 0.9,
               "diffaugment": "translation"}, 16, True),
    "sngan": ({"latent_dim": 8, "g_width": 4, "d_width": 4, "g_every": 2, "pack": 2}, 32, False),
}
#: architecture -> the sum of each module's weights (generator, discriminator, the generator's EMA)
#: (sums of magnitudes) after two iterations, recorded before the recipe moved into the core
RECORDED = {
    "small-cgan": {"generator": 572.6311379, "discriminator": 330.0936503, "generator_ema": 572.6271757},
    "dcgan": {"generator": 80.09209462, "discriminator": 39.67642865, "generator_ema": 80.09190721},
    "sngan": {"generator": 1165.747585, "discriminator": 1374.75784},
}


def trained_twice(architecture: str, params: dict, size: int, labelled: bool) -> dict[str, torch.Tensor]:
    """The recipe's modules' weights after two iterations on one fixed batch, seed 0."""
    from artgan.plugins import get_registry

    torch.manual_seed(0)
    info = DatasetInfo(name="toy", image_size=size, channels=1, num_classes=3 if labelled else 0)
    recipe = get_registry().create("architecture", architecture, info=info, loss=None, **params)
    batch = {"image": torch.rand(4, 1, size, size) * 2 - 1, "label": torch.tensor([0, 1, 2, 0])}
    for iteration in (1, 2):
        run_phases(recipe.phases(), batch, iteration)
        recipe.after_iteration(iteration)
    return {f"{m}.{k}": v.detach().clone() for m, module in recipe.modules.items()
            for k, v in module.state_dict().items()}


def fingerprint(weights: dict[str, torch.Tensor]) -> dict[str, float]:
    sums: dict[str, float] = {}
    for key, value in weights.items():
        if value.is_floating_point():
            module = key.split(".", 1)[0]
            sums[module] = sums.get(module, 0.0) + float(value.double().abs().sum())
    return sums


@pytest.mark.parametrize("architecture", list(CASES))
def test_two_iterations_give_the_recorded_weights(architecture):
    got = fingerprint(trained_twice(architecture, *CASES[architecture]))
    assert got == pytest.approx(RECORDED[architecture], rel=1e-6, abs=1e-6)
