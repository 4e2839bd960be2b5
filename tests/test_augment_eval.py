"""`artgan evaluate augment` (the protocol end to end, at toy sizes), its classifier and small-cgan."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from artgan.cli import _add_plugin_commands, cli
from artgan.plugins import get_registry


def test_small_cgan_meets_the_architecture_contract(artgan_contract):
    artgan_contract.registered("architecture", "small-cgan")


def test_small_cgan_needs_labels():
    from artgan.data import DatasetInfo
    from artgan.errors import ArtganError

    with pytest.raises(ArtganError, match="small-cgan: needs a labelled dataset"):
        get_registry().create("architecture", "small-cgan", info=DatasetInfo(image_size=16), loss=None)


def test_small_cgan_generator_uses_the_latent():
    """The reason it exists: within one class, different latents give different images."""
    from artgan.data import DatasetInfo

    torch.manual_seed(0)
    recipe = get_registry().create("architecture", "small-cgan", loss=None, latent_dim=8, width=4,
                                   info=DatasetInfo(image_size=16, channels=1, num_classes=3))
    recipe.train(False)
    images = recipe.sample({"z": torch.randn(4, 8), "label": torch.zeros(4, dtype=torch.long)})
    assert images.shape == (4, 1, 16, 16) and float(images.std(dim=0).mean()) > 1e-3


def test_classifier_is_deterministic_and_learns():
    from artgan_augment.classifier import ClassifierRecipe, accuracy, train_classifier

    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    x = torch.full((64, 1, 16, 16), -1.0)
    x[y == 1, :, 4:12, 4:12] = 1.0  # class 1: a bright square; class 0: blank
    x += 0.1 * torch.randn(x.shape, generator=g)
    recipe = ClassifierRecipe(steps=30, batch_size=16)
    a, b = (train_classifier(x, y, 2, seed=3, recipe=recipe) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert accuracy(a, x, y) == 1.0


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    from artgan.data import DatasetInfo
    from artgan.export import export_onnx

    torch.manual_seed(0)
    info = DatasetInfo(image_size=16, channels=1, num_classes=10, name="digits",
                       class_names=[str(d) for d in range(10)])
    recipe = get_registry().create("architecture", "small-cgan", info=info, loss=None, latent_dim=8, width=4)
    path = tmp_path_factory.mktemp("m") / "tiny-digits.onnx"
    export_onnx(recipe.export_spec(), path, extra_metadata={"run": "test", "train_steps": 0})
    return path


def test_evaluate_augment_end_to_end(digits_model, tmp_path):
    _add_plugin_commands()
    out = tmp_path / "eval"
    args = ["evaluate", "augment", "--model", str(digits_model), "--k", "2", "--seeds", "0,1",
            "--synthetic-per-class", "2", "--gan-steps", "2", "--classifier-steps", "3", "--out", str(out),
            "--card", str(digits_model.with_suffix(".card.json")), "-q"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    result = json.loads((out / "results.json").read_text())
    assert set(result["accuracy"]) == {"real", "synthetic", "real-k", "real-k+synthetic"}
    assert result["training_images"] == {"real": 1347, "synthetic": 20, "real-k": 20, "real-k+synthetic": 40}
    assert result["images"] == 450 and result["seeds"] == [0, 1]
    for stats in (*result["accuracy"].values(), result["cas"], result["gain_points"]):
        assert len(stats["per_seed"]) == 2 and stats["std"] >= 0
    cas = [s / r for s, r in zip(result["accuracy"]["synthetic"]["per_seed"], result["accuracy"]["real"]["per_seed"])]
    assert result["cas"]["per_seed"] == pytest.approx(cas, abs=1e-3)
    assert (out / "few-shot-seed1" / "checkpoints" / "last.pt").is_file()  # the GAN ran through the trainer
    assert "CAS (synthetic only / real)" in r.stdout and "real: 2 per class" in r.stdout
    md = (digits_model.parent / "tiny-digits.card.md").read_text()
    assert "## Evaluation: digits: synthetic data for a classifier" in md and "CAS (synthetic only / real)" in md


def test_evaluate_augment_refuses_a_model_that_is_not_of_digits(tmp_path):
    from artgan.data import DatasetInfo
    from artgan.export import export_onnx

    info = DatasetInfo(image_size=16, channels=1, num_classes=3, class_names=["a", "b", "c"])
    recipe = get_registry().create("architecture", "small-cgan", info=info, loss=None, latent_dim=8, width=4)
    export_onnx(recipe.export_spec(), tmp_path / "abc.onnx", extra_metadata={"run": "t"})
    _add_plugin_commands()
    r = CliRunner().invoke(cli, ["evaluate", "augment", "--model", str(tmp_path / "abc.onnx"), "--out",
                                 str(tmp_path / "o")])
    assert r.exit_code == 1 and "are not the digits 0-9" in r.output and r.output.count("\n") == 1
