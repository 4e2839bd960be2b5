"""``artgan build TASK``: a task's pipeline trains and exports, its evaluation measures the model on
the data's held-out quarter, and the model and its card install together."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artgan.build import build_task
from artgan.cli import cli
from artgan.plugin_template import new_plugin
from artgan.tasks import load_tasks
from artgan.testing import registry_with


def write_photos(folder: Path, n: int = 8) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray((rng.random((56, 64, 3)) * 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture
def made_task(tmp_path):
    """A task plugin as `artgan plugin new glint --kind task` writes it, imported from its folder."""
    root = new_plugin("glint", "task", tmp_path).root
    sys.path.insert(0, str(root))
    import artgan_glint

    yield artgan_glint
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m == "artgan_glint" or m.startswith("artgan_glint.")]:
        del sys.modules[name]


def test_build_trains_evaluates_and_installs_the_model_with_its_card(made_task, tmp_path):
    registry = registry_with(made_task)
    tasks, problems = load_tasks(registry)
    assert problems == []
    lines = []
    report = build_task(tasks["glint"], data=write_photos(tmp_path / "photos"), name="mine", registry=registry,
                        overrides=["train.iterations=4"], runs=tmp_path / "runs", to=tmp_path / "models",
                        progress=False, log=lines.append)
    installed = tmp_path / "models" / "glint"
    assert report.installed == installed / "mine.onnx"
    assert sorted(p.name for p in installed.iterdir()) == ["mine.card.json", "mine.card.md", "mine.onnx"]
    card = json.loads((installed / "mine.card.json").read_text())
    assert card["file"] == "mine.onnx" and card["verification"]["verified"]
    (title, table), = card["evaluation"].items()
    assert "split heldout" in title and table["images"] == 2  # the quarter the training left out
    assert list(table["methods"]) == ["noisy", "glint-box-blur", "mine"]
    assert card["build"]["settings"][0] == f"train.dataset.path={tmp_path / 'photos'}"
    # what the model is, how it was trained, ONNX against PyTorch on what its step feeds it, the
    # step's speed and the command that makes it again: every task's card has them
    assert card["summary"]["title"] == "glint `mine`: remove Gaussian noise from photos"
    assert card["training"]["iterations"] == 4 and card["training"]["parameters"] > 0
    assert card["real_inputs"]["inputs"].startswith("p3.png (photos, split heldout): 1 input(s) of 64x56")
    assert card["real_inputs"]["min_psnr_db"] > card["real_inputs"]["min_psnr"] == 50.0
    assert card["speed"]["size"] == [512, 512] and card["speed"]["median_s"] > 0
    assert card["command"].startswith("artgan build glint --pipeline ") and card["command"].endswith(
        f"--data {tmp_path / 'photos'} --name mine --set train.iterations=4")
    markdown = (installed / "mine.card.md").read_text()
    assert markdown.startswith("# glint `mine`: remove Gaussian noise from photos")
    for heading in ("## Data and training", "## Reproduce", "## Evaluation: photos (split heldout)",
                    "## Verification against PyTorch", "## Speed"):
        assert heading in markdown
    assert "- the `glint` step on p3.png resized to 512x512: " in markdown
    assert any("use it as --step glint:model=mine" in line for line in lines)
    # installed: found by name, as the step's model
    from artgan.steps import build_step
    from artgan.images import to_float
    step = build_step(registry, {"name": "glint", "model": str(report.installed)})
    assert step(to_float(np.zeros((1, 16, 16, 3), np.uint8))).shape == (1, 16, 16, 3)

    # a second build of the same name is refused before any training; --force replaces it
    with pytest.raises(Exception, match="already installed .*add --force"):
        build_task(tasks["glint"], data=tmp_path / "photos", name="mine", registry=registry,
                   runs=tmp_path / "runs", to=tmp_path / "models", progress=False, log=lines.append)
    assert not (tmp_path / "runs" / "mine-2").exists()


def test_build_refuses_in_one_line(runner, tmp_path):
    photos = write_photos(tmp_path / "photos", 2)
    r = runner.invoke(cli, ["build", "superess", "--data", str(photos), "--name", "x"])
    assert r.exit_code == 1 and "unknown task 'superess' (did you mean 'superres'?); known tasks: " in r.output
    where = ["--runs", str(tmp_path / "runs"), "--to", str(tmp_path / "models")]
    for args, message in [
        (["superres", "--name", "x"], "build superres: give --data DIR, a folder of images to train on"),
        (["superres", "--data", str(photos / "p0.png"), "--name", "x"], "build superres: --data "),
        (["superres", "--data", str(photos), "--name", "../x"], "--name '../x': use letters, digits"),
        (["superres", "--data", str(photos), "--name", "x", "--set", "train.batch_size=0"],
         "train.batch_size: must be >= 1"),
        (["superres", "--data", str(photos), "--name", "x", "--eval-set", "scael=4"],
         "--eval-set 'scael=4': give KEY=VALUE, KEY one of scale, tile"),
        (["superres", "--data", str(photos), "--name", "x", "--eval-set", "scale=x"],
         "--eval-set scale: 'x' is not a valid integer"),
        # a pipeline that names its own data takes no --data, an evaluation with its own no --eval-data
        (["augment", "--data", str(photos), "--name", "x"],
         "build augment: --data: the task's pipeline trains on the data it names itself"),
        (["augment", "--name", "x", "--eval-data", str(photos)],
         "build augment: --eval-data: artgan evaluate augment brings its own data; leave --eval-data out"),
        # style builds from one painting, by its own builder
        (["style", "--name", "x"], "build style: give --data PAINTING, the image of the painting to learn"),
        (["style", "--data", str(photos), "--name", "x"], "photos: is a folder; give one painting image file"),
        (["style", "--data", str(photos / "p0.png"), "--name", "x", "--pipeline", __file__],
         "build style: --pipeline: the style build writes its pipeline from the painting"),
        (["style", "--data", str(photos / "p0.png"), "--name", "x", "--minutes", "1"],
         "--minutes 1: too short to make a model within it"),
    ]:
        r = runner.invoke(cli, ["build", *args, *where])
        assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1, (args, r.output)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "models").exists()


def test_build_augment_runs_its_pipeline_on_its_own_data_and_its_own_evaluation(runner, tmp_path):
    """No --data: the pipeline trains on built-in digits; the evaluation brings its own data too."""
    models = tmp_path / "models"
    r = runner.invoke(cli, ["build", "augment", "--name", "tiny", "--set", "train.iterations=2",
                            "--set", "train.architecture.width=4", "--set", "train.architecture.latent_dim=8",
                            "--eval-set", "k=2", "--eval-set", "seeds=0", "--eval-set", "synthetic_per_class=2",
                            "--eval-set", "gan_iterations=2", "--eval-set", "classifier_iterations=3",
                            "--eval-set", f"runs={tmp_path / 'augment-eval'}",
                            "--runs", str(tmp_path / "runs"), "--to", str(models), "-q"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(models / "augment" / "tiny.onnx")
    assert sorted(p.name for p in (models / "augment").iterdir()) == ["tiny.card.json", "tiny.card.md", "tiny.onnx"]
    card = json.loads((models / "augment" / "tiny.card.json").read_text())
    assert card["training"]["iterations"] == 2 and card["summary"]["title"].startswith("augment `tiny`: ")
    (title, table), = card["evaluation"].items()
    assert title == "digits: synthetic data for a classifier" and table["seeds"] == [0]
    assert card["command"] == ("artgan build augment --pipeline pipelines/digits-augment.yaml --name tiny "
                               "--eval-set k=2 --eval-set seeds=0 --eval-set synthetic_per_class=2 --eval-set "
                               "gan_iterations=2 --eval-set classifier_iterations=3 --eval-set "
                               f"runs={tmp_path / 'augment-eval'} --set train.iterations=2 --set "
                               "train.architecture.width=4 --set train.architecture.latent_dim=8")


def test_build_gan_runs_the_quickstart_and_its_evaluation(runner, tmp_path):
    models = tmp_path / "models"
    r = runner.invoke(cli, ["build", "gan", "--name", "tiny", "--set", "train.iterations=2",
                            "--set", "train.architecture.g_width=8", "--set", "train.architecture.d_width=8",
                            "--set", "train.batch_size=8", "--set", "train.checkpoint_every=2",
                            "--eval-set", "samples=50", "--eval-set", "real_samples=50", "--eval-set", "pr_samples=20",
                            "--eval-set", "device=cpu", "--runs", str(tmp_path / "runs"), "--to", str(models), "-q"])
    assert r.exit_code == 0, r.output
    card = json.loads((models / "gan" / "tiny.card.json").read_text())
    assert card["file"] == "tiny.onnx" and card["verification"]["verified"]
    (table,) = card["evaluation"].values()
    assert table["images"] == 50 and "modes" in table["methods"]["tiny"]
    assert card["command"].startswith("artgan build gan --pipeline pipelines/quickstart.yaml --name tiny ")
