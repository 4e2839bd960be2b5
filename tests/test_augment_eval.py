"""`artgan evaluate augment` (the protocol end to end, at toy sizes), its classifier and small-cgan."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from artgan.cli import cli
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
    recipe = ClassifierRecipe(iterations=30, batch_size=16)
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
    export_onnx(recipe.export_spec(), path, extra_metadata={"run": "test", "train_iterations": 0})
    return path


def test_evaluate_augment_end_to_end(digits_model, tmp_path):
    """Through the command the core builds from the registered evaluation."""
    runs, out = tmp_path / "runs", tmp_path / "results.json"
    args = ["evaluate", "augment", "--model", str(digits_model), "--k", "2", "--seeds", "0,1",
            "--synthetic-per-class", "2", "--gan-iterations", "2", "--classifier-iterations", "3", "--runs", str(runs),
            "--out", str(out), "--card", str(digits_model.with_suffix(".card.json")), "-q"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    assert result["task"] == "augment" and result["options"]["seeds"] == [0, 1]
    assert set(result["accuracy"]) == {"real", "synthetic", "real-k", "real-k+synthetic"}
    assert result["training_images"] == {"real": 1347, "synthetic": 20, "real-k": 20, "real-k+synthetic": 40}
    assert result["images"] == 450 and result["seeds"] == [0, 1]
    for stats in (*result["accuracy"].values(), result["cas"], result["gain_points"]):
        assert len(stats["per_seed"]) == 2 and stats["std"] >= 0
    cas = [s / r for s, r in zip(result["accuracy"]["synthetic"]["per_seed"], result["accuracy"]["real"]["per_seed"])]
    assert result["cas"]["per_seed"] == pytest.approx(cas, abs=1e-3)
    row = result["methods"]["real: 2 per class"]
    assert row["images"] == 20 and row["accuracy"] == pytest.approx(100 * result["accuracy"]["real-k"]["mean"])
    assert (runs / "few-shot-seed1" / "checkpoints" / "last.pt").is_file()  # the GAN ran through the trainer
    lines = r.stdout.splitlines()
    assert lines[0].startswith("digits (450 images, split test): A fixed small CNN") and "seeds 0, 1" in lines[0]
    assert lines[1].split()[:3] == ["method", "training", "images"] and lines[4].startswith("real: 2 per class")
    assert lines[7].startswith("CAS (synthetic only / real): ")  # the summary, under the table
    assert result["command"] == ("artgan evaluate augment --model " + str(digits_model) + " --k 2 --seeds 0,1 "
                                 "--synthetic-per-class 2 --gan-iterations 2 --classifier-iterations 3 --runs " + str(runs))
    md = (digits_model.parent / "tiny-digits.card.md").read_text()
    assert "## Evaluation: digits: synthetic data for a classifier" in md
    assert "\n- CAS (synthetic only / real)" in md and "| real: 2 per class | 20 |" in md


def test_evaluate_augment_has_no_data_split_or_baselines_options():
    r = CliRunner().invoke(cli, ["evaluate", "augment", "--help"])
    assert r.exit_code == 0 and "--seeds" in r.output and "--runs" in r.output and "--card" in r.output
    assert not {"--data", "--split", "--baselines", "--per-image"} & set(r.output.split())


@pytest.mark.parametrize("args, code, message", [
    (["--seeds", "0,x"], 2, "expected whole numbers separated by commas, got '0,x'"),
    (["--seeds", ","], 2, "give at least one seed"),
    (["--model", "a.onnx", "--model", "b.onnx"], 1, "Error: evaluate augment: give one --model"),
    (["--data", "."], 2, "No such option '--data'"),
])
def test_evaluate_augment_refuses_bad_options(args, code, message, tmp_path):
    r = CliRunner().invoke(cli, ["evaluate", "augment", *args, "--runs", str(tmp_path / "runs")])
    assert r.exit_code == code and message in r.output
    assert not (tmp_path / "runs").exists()  # refused before anything ran


def test_evaluate_augment_refuses_a_model_that_is_not_of_digits(tmp_path):
    from artgan.data import DatasetInfo
    from artgan.export import export_onnx

    info = DatasetInfo(image_size=16, channels=1, num_classes=3, class_names=["a", "b", "c"])
    recipe = get_registry().create("architecture", "small-cgan", info=info, loss=None, latent_dim=8, width=4)
    export_onnx(recipe.export_spec(), tmp_path / "abc.onnx", extra_metadata={"run": "t"})
    r = CliRunner().invoke(cli, ["evaluate", "augment", "--model", str(tmp_path / "abc.onnx"), "--runs",
                                 str(tmp_path / "o")])
    assert r.exit_code == 1 and "are not the digits 0-9" in r.output and r.output.count("\n") == 1
