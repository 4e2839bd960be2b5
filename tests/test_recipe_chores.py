"""What GANRecipe and its helpers do for every recipe: config dataclasses with shared knob names
(no old names), the learning-rate schedules, the EMA by iteration, the default loss by name."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.training_tricks import EMA, LRSchedule, averaged_weights


def test_schedules_reach_their_ends_along_their_shapes():
    cos = LRSchedule("cosine", 0, 10, 0.01)
    assert cos.factor(0) == 1.0 and cos.factor(10) == pytest.approx(0.01) and cos.factor(99) == pytest.approx(0.01)
    assert cos.factor(5) == pytest.approx(0.01 + 0.99 * 0.5)
    line = LRSchedule("linear", 4, 8, 0.1)
    assert [line.factor(s) for s in (0, 4, 6, 8, 20)] == pytest.approx([1, 1, 0.55, 0.1, 0.1])
    assert LRSchedule("linear", 0, 0).factor(5) == 1.0 and LRSchedule("constant", 0, 9).factor(5) == 1.0
    with pytest.raises(ValueError, match="decay_from < decay_to"):
        LRSchedule("linear", 5, 5)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        LRSchedule("step")


def test_ema_by_step_and_old_checkpoints_of_the_bare_network():
    live = nn.Linear(2, 2)
    ema = EMA(live, decay=0.99)
    start = live.weight.detach().clone()
    with torch.no_grad():
        live.weight.add_(1.0)
    ema.update(live, iteration=1)  # the warm-up counts the iteration: min(0.99, 2/11)
    assert torch.allclose(ema.module.weight, start + (1 - 2 / 11))
    bare = {k: torch.full_like(v, 3.0) for k, v in live.state_dict().items()}
    ema.load_state_dict(bare)  # superres/inpaint stored the network itself before they used EMA
    assert torch.equal(ema.module.weight, bare["weight"])
    assert averaged_weights(ema.state_dict()).keys() == bare.keys() == averaged_weights(bare).keys()


def test_recipe_signature_is_its_config(registry):
    sig = inspect.signature(registry.get("architecture", "dcgan").factory)
    names = list(sig.parameters)
    assert names[:3] == ["info", "loss", "latent_dim"]  # the recipe's own knobs before the shared ones
    assert {"betas", "ema", "lr_schedule", "decay_to", "upsample"} <= set(names)
    assert not {"beta1", "beta2"} & set(names)  # 0.2 keeps no old name
    assert sig.parameters["latent_dim"].default == 100 and sig.parameters["latent_dim"].annotation is int
    with pytest.raises(ArtganError, match="unexpected keyword argument 'latent'.*did you mean 'latent_dim'"):
        registry.create("architecture", "dcgan", info=DatasetInfo(image_size=16), latent=8)


def test_betas_reach_the_optimisers(registry):
    info = DatasetInfo(image_size=16)
    new = registry.create("architecture", "dcgan", info=info, g_width=8, d_width=8, betas=[0.3, 0.9])
    assert new.optimizers["generator"].param_groups[0]["betas"] == new.cfg.betas == (0.3, 0.9)
    with pytest.raises(ArtganError, match="beta1"):
        registry.create("architecture", "dcgan", info=info, beta1=0.3)
    with pytest.raises(ArtganError, match="betas must be two numbers"):
        registry.create("architecture", "dcgan", info=info, betas=[0.5])


def test_schedule_and_default_loss_come_from_the_base_recipe(registry):
    recipe = registry.create("architecture", "dcgan", info=DatasetInfo(image_size=16), g_width=8, d_width=8,
                             lr=1e-3, d_lr=4e-3, decay_to=4, lr_final=0.5)
    assert type(recipe.loss).__name__ == "NonSaturatingLoss"  # default_loss, by its registry name
    recipe.after_iteration(2)
    assert recipe.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.75)
    assert recipe.optimizers["discriminator"].param_groups[0]["lr"] == pytest.approx(4e-3 * 0.75)
    assert recipe.sampling_generator is recipe.G  # no EMA kept


@pytest.mark.parametrize("arch", ["dcgan", "sngan", "small-cgan", "superres-gan", "inpaint-residual",
                                  "patch-style", "cyclegan"])
def test_every_recipe_shares_the_knob_names(registry, arch):
    params = inspect.signature(registry.get("architecture", arch).factory).parameters
    assert {"lr", "betas", "ema", "lr_schedule", "decay_from", "decay_to", "lr_final"} <= set(params)


def test_cyclegan_default_loss_is_the_registered_one_with_its_papers_generator_term(registry):
    recipe = registry.create("architecture", "cyclegan", info=DatasetInfo(image_size=32), g_width=4, g_blocks=1,
                             d_width=8)
    fake = torch.tensor([0.5, -1.0])
    assert type(recipe.loss).__name__ == "LeastSquaresLoss"
    assert recipe.loss.generator(fake).item() == pytest.approx((0.25 + 4) / 2)  # an MSE, not half of it
    with pytest.raises(ArtganError, match="color_weight"):
        registry.create("architecture", "cyclegan", info=DatasetInfo(image_size=32), color_weight=0.5)


def test_run_phases_takes_the_phases_due_in_order_and_the_update_when_asked():
    from artgan.recipe import Phase, run_phases

    calls = []
    w = torch.nn.Parameter(torch.ones(1))

    def phase(name, every):
        opt = torch.optim.SGD([w], lr=0.5)
        return Phase(name, opt, lambda batch: calls.append(name) or {"loss": (w * batch["x"]).sum()}, every)

    phases = [phase("D", 1), phase("G", 2)]
    seen = []
    taken = run_phases(phases, {"x": torch.ones(1)}, 1, after_backward=lambda p, losses: seen.append((p.name, float(w.grad))))
    assert calls == ["D"] and list(taken) == ["D"] and seen == [("D", 1.0)] and float(w) == 0.5  # G is not due
    run_phases(phases, {"x": torch.ones(1)}, 2)
    assert calls == ["D", "D", "G"] and float(w) == pytest.approx(-0.5)
    run_phases(phases, {"x": torch.ones(1)}, update=False)  # every phase, forward and backward only
    assert calls[-2:] == ["D", "G"] and float(w) == pytest.approx(-0.5) and float(w.grad) == 1.0


def test_the_trainer_the_precision_probe_and_the_benchmark_run_phases_one_way():
    from pathlib import Path

    root = Path(__file__).parents[1]
    for path in ("artgan/train.py", "artgan/precision.py", "benchmarks/training.py"):
        source = (root / path).read_text(encoding="utf-8")
        assert "run_phases(" in source and ".losses(" not in source, path
