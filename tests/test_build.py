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
    r = runner.invoke(cli, ["build", "style", "--data", str(photos), "--name", "x"])
    assert r.exit_code == 1
    assert "build style: the task says no pipeline key takes the data folder (Task.data_keys); build it with: " \
           "artgan style train PAINTING --name NAME" in r.output
    r = runner.invoke(cli, ["build", "superres", "--data", str(photos), "--name", "x", "--set", "train.batch_size=0",
                            "--runs", str(tmp_path / "runs"), "--to", str(tmp_path / "models")])
    assert r.exit_code == 1 and "train.batch_size: must be >= 1" in r.output
    r = runner.invoke(cli, ["build", "superres", "--data", str(photos), "--name", "x", "--eval-set", "scael=4",
                            "--runs", str(tmp_path / "runs"), "--to", str(tmp_path / "models")])
    assert r.exit_code == 1 and "--eval-set 'scael=4': give KEY=VALUE, KEY one of scale, tile" in r.output
    r = runner.invoke(cli, ["build", "superres", "--data", str(photos), "--name", "x", "--eval-set", "scale=x",
                            "--runs", str(tmp_path / "runs"), "--to", str(tmp_path / "models")])
    assert r.exit_code == 1 and "--eval-set scale: 'x' is not a valid integer" in r.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "models").exists()
