"""artgan-example against artgan's contract checks, as an outside author would test it."""

import numpy as np
import pytest

import artgan_example
from artgan.errors import ArtganError
from artgan.testing import check_dataset, check_installed, check_plugin, check_step, check_step_without_torch
from artgan_example.steps import Posterize, Vignette


def test_plugin_registers_its_steps_and_dataset():
    registry = check_plugin(artgan_example)
    assert registry.names("step") == ["posterize", "vignette"]
    assert registry.names("dataset") == ["rings"]


@pytest.mark.parametrize("spec", [("posterize", {}), ("posterize", {"levels": 2}),
                                  ("vignette", {}), ("vignette", {"strength": 1.0, "radius": 0.0})])
def test_steps_meet_the_contract(spec):
    name, params = spec
    check_step(check_plugin(artgan_example).create("step", name, **params))


def test_posterize_keeps_only_its_levels():
    out = Posterize(levels=3)(np.linspace(0, 1, 50, dtype=np.float32).reshape(1, 5, 10, 1))
    assert set(np.unique(out).tolist()) == {0.0, 0.5, 1.0}


def test_vignette_keeps_the_centre_and_darkens_the_corners():
    out = Vignette(strength=0.8, radius=0.3)(np.ones((1, 33, 33, 3), np.float32))
    assert out[0, 16, 16, 0] == 1.0
    assert out[0, 0, 0, 0] == pytest.approx(0.2, abs=0.02)


def test_bad_parameters_are_refused_with_a_clear_message():
    registry = check_plugin(artgan_example)
    with pytest.raises(ArtganError, match="posterize: levels must be an integer from 2 to 256"):
        registry.create("step", "posterize", levels=1)
    with pytest.raises(ArtganError, match="vignette: strength must be a number from 0 to 1"):
        registry.create("step", "vignette", strength="lots")


def test_steps_run_without_torch():
    check_step_without_torch("posterize:levels=4", "vignette:strength=0.5", plugin_module="artgan_example")


def test_rings_dataset_meets_the_contract():
    check_dataset(check_plugin(artgan_example).create("dataset", "rings", image_size=16, count=8))


def test_installed_plugin_is_found_by_artgan():
    # skipped until `pip install -e plugins/artgan-example`
    record = check_installed("artgan-example")
    assert record.registered == {"dataset": ["rings"], "step": ["posterize", "vignette"]}
