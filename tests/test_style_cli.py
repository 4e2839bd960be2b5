"""``artgan style train``: bad paintings get one line, where photos come from, and a (tiny, very
short) run that installs a model ``--step style:model=NAME`` finds, with its reference, card and
contact sheet, also when stopped early."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from artgan.images import load_image, save_image


@pytest.fixture
def cli():
    from artgan.cli import cli

    return cli


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(8):
        y, x = np.mgrid[0:48, 0:64] / 64
        photo = np.stack([x, y, 0.5 * (x + y)], -1) * rng.uniform(0.5, 1) + rng.normal(0, 0.03, (48, 64, 3))
        save_image(tmp_path / "photos" / f"{i:02d}.png", np.clip(photo, 0, 1))
    stripes = 0.5 + 0.5 * np.sin(np.add.outer(np.arange(140), np.arange(160)) / 2.0)
    save_image(tmp_path / "painting.png", np.stack([0.2 * stripes, 0.3 * stripes, 0.4 + 0.5 * stripes], -1))
    save_image(tmp_path / "tiny.png", rng.random((100, 300, 3)))
    (tmp_path / "notes.jpg").write_text("not an image")
    return tmp_path


@pytest.mark.parametrize("painting, name, message", [
    ("notes.jpg", "x", "notes.jpg: not a readable image"),
    ("tiny.png", "x", "tiny.png: painting is 300x100; it needs at least 128 px on each side"),
    ("missing.jpg", "x", "missing.jpg: file not found"),
    ("photos", "x", "photos: is a folder; give one painting image file"),
    ("painting.png", "../evil", "--name '../evil': use letters, digits"),
])
def test_bad_inputs_get_one_line(runner, cli, data, painting, name, message):
    result = runner.invoke(cli, ["style", "train", str(data / painting), "--name", name, "--photos",
                                 str(data / "photos"), "--runs", str(data / "runs")])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_painting(runner, cli, data):
    (data / "painting.png").chmod(0)
    result = runner.invoke(cli, ["style", "train", str(data / "painting.png"), "--name", "x"])
    assert result.exit_code == 1 and "not readable (permission denied)" in result.output


def test_photos_come_from_the_option_the_environment_or_scikit_image(data, tmp_path, monkeypatch):
    from artgan.errors import ArtganError
    from artgan_style import build as style_build

    assert style_build.find_photos(data / "photos", tmp_path) == (data / "photos", "the photo folder given")
    monkeypatch.setenv("ARTGAN_STYLE_PHOTOS", str(data / "photos"))
    assert style_build.find_photos(None, tmp_path)[1] == "ARTGAN_STYLE_PHOTOS"
    monkeypatch.setenv("ARTGAN_STYLE_PHOTOS", str(tmp_path / "nowhere"))
    with pytest.raises(ArtganError, match="ARTGAN_STYLE_PHOTOS=.*nowhere: no images there"):
        style_build.find_photos(None, tmp_path)
    monkeypatch.delenv("ARTGAN_STYLE_PHOTOS")
    monkeypatch.setattr(style_build, "PHOTO_DIRS", ())
    folder, source = style_build.find_photos(None, tmp_path / "work")
    assert source == "scikit-image's sample photos" and len(list(folder.glob("*.png"))) >= 4
    monkeypatch.setattr(style_build, "_skimage_photos", lambda folder: None)
    with pytest.raises(ArtganError, match="no photos to learn from: give a folder of ordinary photos"):
        style_build.find_photos(None, tmp_path)


def _check_installed(models, name, runner, cli, data, evaluations=1):
    style = models / "style"
    for suffix in (".onnx", ".card.json", ".card.md", ".reference.json", ".contact.png"):
        assert (style / f"{name}{suffix}").exists(), suffix
    card = json.loads((style / f"{name}.card.json").read_text())
    assert card["metadata"]["architecture"] == "perceptual-style"
    assert card["command"].startswith("artgan build style --data ") and f" --name {name} " in card["command"]
    assert len(card["evaluation"]) == evaluations
    title, result = next(iter(card["evaluation"].items()))
    assert title == "photos (split heldout, first 2), painting, strength 1"
    assert set(result["methods"]) == {"color-transfer", "histogram-match", "instant", "another photo", name,
                                      f"{name} + color-transfer 0.5"}
    figures = card["figures"]  # the headline beside the instant mode: what a reader compares first
    assert figures["trained model"].startswith("tone ") and "colour ratio" in figures["trained model"]
    assert figures["instant mode (style:painting=, no training)"].startswith("tone ")
    assert set(result["methods"][name]) >= {"color_ratio", "texture_ratio", "edge_ssim", "ms_512x512"}
    assert card["real_inputs"]["count"] == 2 and card["real_inputs"]["min_psnr_db"] > 50
    md = (style / f"{name}.card.md").read_text()
    assert f"# style model `{name}`" in md and "| another photo |" in md and "on real inputs (2 held-out" in md
    sheet = load_image(style / f"{name}.contact.png")
    assert sheet.shape[0] >= 6 + 3 * (22 + 6) + 2 * 240  # the painting + the 2 held-out photos of 8, rows >= 240 px
    # found by name through the search path, and usable as a step
    out = data / f"styled-{name}"
    result = runner.invoke(cli, ["process", str(data / "photos" / "00.png"), "--step", f"style:model={name}",
                                 "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    (made,) = out.glob("*.png")
    assert load_image(made).shape == (48, 64, 3)
    return card


def test_train_installs_a_usable_model(runner, cli, data, tiny_and_quick, monkeypatch):
    models = data / "models"
    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(models))
    result = runner.invoke(cli, ["style", "train", str(data / "painting.png"), "--name", "stripes", "--minutes",
                                 "0.5", "--photos", str(data / "photos"), "--to", str(models), "--runs",
                                 str(data / "runs"), "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(models / "style" / "stripes.onnx")
    card = _check_installed(models, "stripes", runner, cli, data)
    assert card["training"]["stopped_early"] is False
    run = data / "runs" / "style-stripes"
    assert (run / "pipeline.yaml").exists() and list((run / "samples").glob("iteration_*.png"))


def test_ctrl_c_still_leaves_a_usable_model(runner, cli, data, tiny_and_quick, monkeypatch):
    """Stopped during training (after a checkpoint): the last checkpoint is exported and installed."""
    import artgan.pipeline

    real = artgan.pipeline.run_pipeline
    calls = []

    def interrupted(pipeline, ctx):
        calls.append([kind for kind, _ in pipeline.stages])
        if len(calls) == 1:  # train, then Ctrl-C before the export
            pipeline.stages = [s for s in pipeline.stages if s[0] == "train"]
            real(pipeline, ctx)
            raise KeyboardInterrupt
        return real(pipeline, ctx)

    monkeypatch.setattr(artgan.pipeline, "run_pipeline", interrupted)
    models = data / "models"
    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(models))
    result = runner.invoke(cli, ["style", "train", str(data / "painting.png"), "--name", "early", "--minutes",
                                 "0.5", "--photos", str(data / "photos"), "--to", str(models), "--runs",
                                 str(data / "runs"), "-q"])
    assert result.exit_code == 0, result.output
    assert calls == [["train", "export"], ["export"]]
    assert _check_installed(models, "early", runner, cli, data)["training"]["stopped_early"] is True


def test_build_style_trains_evaluates_on_eval_data_and_installs(runner, cli, data, monkeypatch):
    """`artgan build style`: the painting as --data, the photos and a tiny network by --set (3
    iterations: no test-only patching), the held-out figures and contact sheet of `style train`,
    then artgan evaluate style on all of --eval-data and the step's speed, in the card."""
    models = data / "models"
    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(models))
    tiny = ["train.iterations=3", "train.architecture.width=8", "train.architecture.blocks=1",
            "train.dataset.image_size=32", "train.batch_size=2", f"train.dataset.photos={data / 'photos'}"]
    result = runner.invoke(cli, ["build", "style", "--data", str(data / "painting.png"), "--name", "built",
                                 "--minutes", "2", *[a for s in tiny for a in ("--set", s)], "--eval-data",
                                 str(data / "photos"), "--to", str(models), "--runs", str(data / "runs"), "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(models / "style" / "built.onnx")
    card = _check_installed(models, "built", runner, cli, data, evaluations=2)
    assert card["training"]["last_logged_iteration"] is None or card["training"]["last_logged_iteration"] <= 3
    held_out, eval_data = card["evaluation"].values()
    assert eval_data["split"] == "all" and eval_data["images"] == 8 and "built" in eval_data["methods"]
    assert card["speed"]["size"] == [512, 512] and card["speed"]["step"] == "style"
    assert card["command"] == ("artgan build style --data " + str(data / "painting.png") + " --name built --minutes 2 "
                               "--eval-data " + str(data / "photos") + " " + " ".join(f"--set {s}" for s in tiny))
