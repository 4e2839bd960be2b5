"""artgan.testing: every installed plugin passes the contract check for its kind, and each check
catches the mistake it is there for."""

from __future__ import annotations

import textwrap
import types
import unittest
from pathlib import Path

import numpy as np
import pytest
import torch
from pytest_inprocess import run_pytest
from torch import nn

import artgan
from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.plugins import REGISTRATION_HOOKS, make_plugin_manager
from artgan.recipe import AdversarialLoss, ExportSpec, GANRecipe, Phase
from artgan.steps import Step
from artgan.testing import (SyntheticImages, check_architecture, check_dataset, check_loss, check_plugin,
                            check_registered, check_step, check_step_without_torch, contract_declarations,
                            registry_with)

# the installed plugins, first-party and any others (e.g. artgan-example), read at collection
REGISTRY = make_plugin_manager()[1]
REGISTERED = [(kind, name) for kind in REGISTRATION_HOOKS for name in REGISTRY.names(kind)]


@pytest.mark.parametrize("kind, name", REGISTERED, ids=[f"{k}-{n}" for k, n in REGISTERED])
def test_every_registered_plugin_meets_its_contract(kind, name, tmp_path):
    # A plugin is skipped only if its factory says so (contract_skip = "why"): check_registered skips it.
    check_registered(REGISTRY, kind, name, tmp_path)


def test_the_first_party_plugins_are_among_those_checked():
    for expected in [("dataset", "digits"), ("dataset", "shapes"), ("dataset", "image-folder"),
                     ("architecture", "dcgan"), ("loss", "non-saturating")]:
        assert expected in REGISTERED


def test_every_registered_step_runs_without_torch(tmp_path):
    specs = []
    for name in REGISTRY.names("step"):
        declared = contract_declarations(REGISTRY.get("step", name).factory, tmp_path)
        if not declared.skip:
            specs.append({"name": name, **declared.params})
    if not specs:
        pytest.skip("no step plugin installed (pip install -e plugins/artgan-example adds two)")
    check_step_without_torch(*specs)


def test_the_pytest_plugin_is_registered_and_gives_fixtures(pytestconfig, artgan_registry, artgan_contract):
    assert pytestconfig.pluginmanager.hasplugin("artgan")
    assert "dcgan" in artgan_registry.names("architecture")
    assert artgan_registry is not REGISTRY  # a fresh one per test
    artgan_contract.registered("loss", "non-saturating")


# -- datasets ----------------------------------------------------------------------------------

class ListDataset:
    def __init__(self, items, info=DatasetInfo(image_size=8, channels=3)):
        self.items, self.info = items, info

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def images(n=4, shape=(3, 8, 8)):
    return [{"image": torch.rand(shape) * 2 - 1} for _ in range(n)]


@pytest.mark.parametrize("dataset, message", [
    (ListDataset([{"image": torch.rand(3, 8, 8)} for _ in range(4)]), "scaled to [-1, 1], not [0, 1]"),
    (ListDataset(images(shape=(8, 8, 3))), "has shape (8, 8, 3); expected (3, 8, 8)"),
    (ListDataset([{"image": (torch.rand(3, 8, 8) * 2 - 1).double()} for _ in range(4)]), "must be float32"),
    (ListDataset([{"image": torch.rand(3, 8, 8) * 4 - 2} for _ in range(4)]), "the contract is [-1, 1]"),
    (ListDataset([torch.rand(3, 8, 8) * 2 - 1 for _ in range(4)]), "must be a dict with an 'image' tensor"),
    (ListDataset([{"image": torch.rand(3, 8, 8) * 2 - 1, "label": torch.tensor(12)} for _ in range(4)],
                 DatasetInfo(image_size=8, channels=3, num_classes=10)), "outside [0, 10)"),
    (ListDataset([{"image": torch.rand(3, 8, 8) * 2 - 1, "label": 3} for _ in range(4)]), "must be a torch.Tensor"),
    (types.SimpleNamespace(info=None, __len__=lambda: 1), "no `info` attribute"),
    (ListDataset([]), "dataset is empty"),
])
def test_check_dataset_catches(dataset, message):
    with pytest.raises(AssertionError) as exc:
        check_dataset(dataset)
    assert message in str(exc.value)


def test_check_dataset_accepts_a_good_labelled_dataset():
    check_dataset(SyntheticImages(DatasetInfo(image_size=8, channels=1, num_classes=3)))


# -- losses ------------------------------------------------------------------------------------

class Flipped(AdversarialLoss):
    def discriminator(self, real, fake):
        return nn.functional.softplus(real).mean() + nn.functional.softplus(-fake).mean()

    def generator(self, fake):
        return nn.functional.softplus(-fake).mean()


class NotScalar(AdversarialLoss):
    def discriminator(self, real, fake):
        return nn.functional.softplus(-real) + nn.functional.softplus(fake)

    def generator(self, fake):
        return nn.functional.softplus(-fake)


class Detached(AdversarialLoss):
    def discriminator(self, real, fake):
        return (real.detach() - fake.detach()).mean() * 0 + torch.tensor(1.0)

    def generator(self, fake):
        return torch.tensor(1.0)


@pytest.mark.parametrize("loss, message", [
    (Flipped(), "loss.discriminator is not lower when real logits are high"),
    (NotScalar(), "must return a scalar tensor"),
    (Detached(), "does not back-propagate to the logits"),
    (object(), "has no method discriminator()"),
])
def test_check_loss_catches(loss, message):
    with pytest.raises(AssertionError) as exc:
        check_loss(loss)
    assert message in str(exc.value)


# -- steps -------------------------------------------------------------------------------------

class InPlace(Step):
    name = "in-place"

    def __call__(self, images):
        images *= 0.5
        return images


class Float64(Step):
    name = "float64"

    def __call__(self, images):
        return images.astype(np.float64)


class Swapped(Step):
    name = "swapped"

    def __call__(self, images):
        return np.ascontiguousarray(images.transpose(0, 2, 1, 3))


class TooBright(Step):
    name = "too-bright"

    def __call__(self, images):
        return images * 2


class Upscale(Step):
    name = "upscale"

    def __init__(self, scale=2, declare=True):
        self.factor = scale
        if declare:
            self.scale = scale

    def __call__(self, images):
        return images.repeat(self.factor, axis=1).repeat(self.factor, axis=2)


class NotAStep:
    name = "plain"

    def __call__(self, images):
        return images


@pytest.mark.parametrize("step, message", [
    (InPlace(), "modified its input array in place"),
    (Float64(), "returned dtype float64"),
    (Swapped(), "returned shape (2, 40, 24, 3) for input (2, 24, 40, 3); expected (2, 24, 40, 3)"),
    (TooBright(), "steps return [0, 1]"),
    (Upscale(declare=False), "expected (2, 24, 40, 3) (NHWC; set `scale`"),
    (NotAStep(), "subclass artgan.steps.Step"),
])
def test_check_step_catches(step, message):
    with pytest.raises(AssertionError) as exc:
        check_step(step)
    assert message in str(exc.value)


def test_check_step_follows_the_declared_scale_or_output_shape():
    assert check_step(Upscale(scale=3)).shape == (2, 72, 120, 3)

    class Crop(Step):
        name = "crop"

        def output_shape(self, shape):
            return (shape[0], 8, 8, shape[3])

        def __call__(self, images):
            return images[:, :8, :8].copy()

    assert check_step(Crop()).shape == (2, 8, 8, 3)


def test_check_step_without_torch_catches_a_step_importing_torch(tmp_path, monkeypatch):
    (tmp_path / "heavy_step_plugin.py").write_text(textwrap.dedent('''
        import artgan
        from artgan.steps import Step

        class Heavy(Step):
            name = "heavy"
            def __call__(self, images):
                import torch  # the mistake: torch on the runtime side
                return images

        @artgan.hookimpl
        def artgan_register_steps(register):
            register("heavy", Heavy)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AssertionError, match=r"step \"heavy\" imported torch when built or run"):
        check_step_without_torch("heavy", plugin_module="heavy_step_plugin")


# -- architectures -----------------------------------------------------------------------------

class TinyG(nn.Module):
    def __init__(self, latent, size, channels, noisy=False, via_numpy=False):
        super().__init__()
        self.shape, self.noisy, self.via_numpy = (channels, size, size), noisy, via_numpy
        self.net = nn.Sequential(nn.Linear(latent, channels * size * size), nn.Tanh())

    def forward(self, z):
        if self.noisy:  # the mistake: noise drawn inside forward instead of taken as an input
            z = z + torch.randn_like(z)
        if self.via_numpy:  # the mistake: a detour through numpy freezes a constant into the graph
            z = torch.from_numpy(z.detach().numpy().copy())
        return self.net(z).view(-1, *self.shape)


class TinyRecipe(GANRecipe):
    """A minimal recipe; its keyword switches each introduce one classic mistake."""

    def __init__(self, *, info, loss=None, latent=4, noisy=False, via_numpy=False, forget_d=False):
        super().__init__()
        self.info, self.latent = info, latent
        size, c = info.image_size, info.channels
        self.G = TinyG(latent, size, c, noisy, via_numpy)
        self.D = nn.Sequential(nn.Flatten(), nn.Linear(c * size * size, 1))
        self.modules = {"generator": self.G} if forget_d else {"generator": self.G, "discriminator": self.D}
        self.optimizers = {"generator": torch.optim.Adam(self.G.parameters(), 1e-3),
                           "discriminator": torch.optim.Adam(self.D.parameters(), 1e-3)}

    def phases(self):
        def d_step(batch):
            fake = self.G(torch.randn(len(batch["image"]), self.latent)).detach()
            return {"loss": nn.functional.softplus(-self.D(batch["image"])).mean()
                    + nn.functional.softplus(self.D(fake)).mean()}

        def g_step(batch):
            return {"loss": nn.functional.softplus(-self.D(self.G(torch.randn(len(batch["image"]), self.latent)))).mean()}

        return [Phase("D", self.optimizers["discriminator"], d_step), Phase("G", self.optimizers["generator"], g_step)]

    def fixed_inputs(self, n, generator):
        return {"z": torch.randn(n, self.latent, generator=generator)}

    @torch.no_grad()
    def sample(self, inputs):
        return self.G(inputs["z"])

    def export_spec(self):
        return ExportSpec(module=self.G, inputs={"z": torch.randn(1, self.latent)}, outputs=["image"],
                          dynamic_axes={"z": {0: "batch"}, "image": {0: "batch"}},
                          metadata={"task": "generate", "latent_dim": self.latent, "value_range": [-1.0, 1.0],
                                    "channels": self.info.channels, "image_size": self.info.image_size})


INFO = DatasetInfo(image_size=8, channels=3)


def test_check_architecture_passes_a_correct_recipe(tmp_path):
    report = check_architecture(TinyRecipe, INFO, workdir=tmp_path, batch_size=4)
    assert report["verification"]["max_abs_diff"] < 1e-3
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize("params, message", [
    ({"forget_d": True}, "optimises 2 parameter(s) of a module that is not in recipe.modules"),
    ({"noisy": True}, "noise must be an input, not drawn inside forward"),
    ({"via_numpy": True}, "ONNX export: "),
    ({"latent": "four"}, "cannot be built with"),
])
def test_check_architecture_catches(tmp_path, params, message):
    with pytest.raises(AssertionError) as exc:
        check_architecture(TinyRecipe, INFO, params=params, workdir=tmp_path)
    assert message in str(exc.value)


# -- declarations and whole plugins ---------------------------------------------------------------

def test_contract_params_may_be_a_function_of_a_scratch_folder_and_contract_skip_is_read(tmp_path):
    def factory(path):
        return path

    factory.contract_params = lambda folder: {"path": str(folder / "x")}
    assert contract_declarations(factory, tmp_path).params == {"path": str(tmp_path / "x")}
    factory.contract_skip = "needs a GPU"
    assert contract_declarations(factory, tmp_path).skip == "needs a GPU"


def gpu_only_plugin() -> types.ModuleType:
    """A step whose factory cannot be built in a test (a required parameter) and says so."""
    def needs_gpu(device):
        raise AssertionError("a factory that declares contract_skip must not be built")

    needs_gpu.contract_skip = "needs a GPU"
    plugin = types.ModuleType("gpu_only")
    plugin.artgan_register_steps = artgan.hookimpl(lambda register: register("gpu-only", needs_gpu))
    return plugin


def test_check_registered_skips_a_factory_that_declares_contract_skip(tmp_path):
    with pytest.raises(unittest.SkipTest) as exc:
        check_registered(registry_with(gpu_only_plugin()), "step", "gpu-only", tmp_path)
    assert str(exc.value) == "step 'gpu-only' (plugin 'gpu_only') declares contract_skip: needs a GPU"


def test_contract_skip_is_a_skip_in_an_authors_pytest_run(tmp_path):
    # what the error message tells an author to do works through the documented fixture
    (tmp_path / "test_gpu_only.py").write_text(textwrap.dedent("""
        import types

        import artgan
        from artgan.testing import registry_with

        def needs_gpu(device):
            raise AssertionError("not to be built")

        needs_gpu.contract_skip = "needs a GPU"
        plugin = types.ModuleType("gpu_only")
        plugin.artgan_register_steps = artgan.hookimpl(lambda register: register("gpu-only", needs_gpu))

        def test_gpu_only(artgan_contract):
            artgan_contract.registered("step", "gpu-only", registry_with(plugin))
        """))
    outcomes, report = run_pytest(tmp_path, "-rs")
    assert outcomes == {"skipped": 1}, report
    assert "declares contract_skip: needs a GPU" in report


def test_an_undeclared_required_parameter_tells_the_author_what_to_declare(tmp_path):
    def needs_path(path):
        return SyntheticImages(INFO)

    plugin = types.ModuleType("needy")
    plugin.artgan_register_datasets = artgan.hookimpl(lambda register: register("needy", needs_path))
    with pytest.raises(AssertionError) as exc:
        check_registered(registry_with(plugin), "dataset", "needy", tmp_path)
    assert "dataset 'needy' (plugin 'needy') cannot be built with its default parameters" in str(exc.value)
    assert "Declare `contract_params`" in str(exc.value)


def test_check_plugin_reports_broken_empty_and_unimportable_plugins():
    typo = types.ModuleType("typo")
    typo.artgan_register_step = artgan.hookimpl(lambda register: None)
    with pytest.raises(AssertionError, match="plugin 'typo' is broken: implements unknown hook"):
        check_plugin(typo)
    empty = types.ModuleType("empty")
    with pytest.raises(AssertionError, match="registered nothing"):
        check_plugin(empty)
    ghost = types.ModuleType("ghost")
    ghost.artgan_register_steps = artgan.hookimpl(
        lambda register: register("ghost", artgan.plugins.lazy("no_such_module_here:Step")))
    with pytest.raises(AssertionError, match="step 'ghost' of plugin 'ghost': cannot load"):
        check_plugin(ghost)


def test_registry_with_does_not_touch_the_process_registry():
    from artgan.plugins import get_registry

    plugin = types.ModuleType("solo")
    plugin.artgan_register_losses = artgan.hookimpl(lambda register: register("solo-loss", Flipped))
    registry = registry_with(plugin)
    assert registry.names("loss") == ["solo-loss"]
    assert "solo-loss" not in get_registry().names("loss")
    with pytest.raises(ArtganError):
        get_registry().get("loss", "solo-loss")
