"""``artgan process`` and the pipeline's ``process`` step."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from artgan.cli import cli
from artgan.images import load_image
from superres_testing import images_dir, sr_models, with_models, write_images  # noqa: F401


def test_process_chains_steps_over_folders_keeping_relative_paths(images_dir, tmp_path, runner):
    out = tmp_path / "out"
    r = runner.invoke(cli, ["process", str(images_dir), "--step", "bicubic:scale=2",
                            "--step", "lanczos:scale=2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out)
    assert "3 image(s) ->" in r.stderr and "process" in r.stderr  # progress bar and summary on stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == \
        ["img0.png", "img1.png", "sub/img0.png"]
    assert load_image(out / "img0.png").shape == (160, 208, 3)  # 40x52, x2 then x2
    assert load_image(out / "sub" / "img0.png").shape == (96, 120, 3)


def test_process_superres_by_default_model_name(with_models, images_dir, tmp_path, runner):
    src = images_dir / "img1.png"  # 33x47: odd sides are fine
    r = runner.invoke(cli, ["process", str(src), "--step", "superres:scale=2", "--out", str(tmp_path / "o"), "-q"])
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    out = load_image(tmp_path / "o" / "img1.png")
    assert out.shape == (66, 94, 3)
    r = runner.invoke(cli, ["process", str(src), "--step", "superres:scale=4,tile=16,overlap=4",
                            "--out", str(tmp_path / "o4"), "-q"])
    assert r.exit_code == 0, r.output
    assert load_image(tmp_path / "o4" / "img1.png").shape == (132, 188, 3)


def test_process_usage_and_domain_errors(images_dir, tmp_path, runner):
    r = runner.invoke(cli, ["process", str(images_dir), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "give the steps to run with --step" in r.output
    r = runner.invoke(cli, ["process", "--step", "bicubic", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "give at least one INPUT" in r.output
    r = runner.invoke(cli, ["process", str(images_dir), "--step", "bicubc:scale=2", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "unknown step 'bicubc' (did you mean 'bicubic'?)" in r.output
    r = runner.invoke(cli, ["process", str(tmp_path / "missing.png"), "--step", "bicubic", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "missing.png: no such file or folder" in r.output
    r = runner.invoke(cli, ["process", str(images_dir), "--step", "bicubic:scale=1", "--out", str(images_dir)])
    assert r.exit_code == 1 and "is one of the inputs; choose another --out" in r.output
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_images(tmp_path / "a", [(10, 10)])
    write_images(tmp_path / "b", [(10, 10)])
    r = runner.invoke(cli, ["process", str(tmp_path / "a" / "img0.png"), str(tmp_path / "b" / "img0.png"),
                            "--step", "bicubic", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "would both be written as img0.png" in r.output


def test_process_help_has_examples(runner):
    for cmd in ("process", "bundle"):
        r = runner.invoke(cli, [cmd, "--help"])
        assert r.exit_code == 0 and "Example" in r.output and "--step" in r.output


@pytest.mark.slow
def test_pipeline_generate_then_superres(with_models, tmp_path, runner):
    """generate -> superres in one pipeline: the process step takes the generated images."""
    path = tmp_path / "gen-sr.yaml"
    path.write_text(textwrap.dedent("""\
        name: gen-sr
        stages:
          - train:
              dataset: {name: digits, image_size: 32, channels: 3}
              architecture: {name: dcgan, latent_dim: 8, g_width: 8, d_width: 8}
              iterations: 2
              batch_size: 8
              checkpoint_every: 2
              log_every: 1
              sample_count: 4
              device: cpu
          - export: {}
          - generate: {n: 3, seed: 0}
          - process:
              steps: ["superres:scale=2", {name: lanczos, scale: 2}]
              out: big
        """))
    r = runner.invoke(cli, ["run", str(path), "--out", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0, r.output
    made = sorted((tmp_path / "run" / "big").glob("*.png"))
    assert [p.name for p in made] == ["0000_0000.png", "0000_0001.png", "0000_0002.png"]
    assert load_image(made[0]).shape == (128, 128, 3)


def test_pipeline_process_step_reads_a_folder_and_checks_step_names(images_dir, tmp_path, runner):
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\nstages:\n  - process:\n      input: {images_dir}\n      steps: ['bicubic:scale=2']\n")
    r = runner.invoke(cli, ["run", str(path), "--out", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "processed" / "sub" / "img0.png").exists()
    path.write_text("name: p\nstages:\n  - process:\n      input: x\n      steps: ['lanczos:size=2']\n")
    r = runner.invoke(cli, ["run", str(path), "--dry-run"])
    assert r.exit_code == 1 and "p.yaml:5: process.steps[0]: step 'lanczos'" in r.output
    assert "accepted parameters: scale" in r.output


def test_large_image_is_tiled_with_bounded_memory(with_models, tmp_path, monkeypatch):
    """A tight memory budget forces tiles: the result has the full size and no seams."""
    from artgan.metrics import psnr
    from artgan.plugins import get_registry
    from artgan.steps import build_step

    from superres_testing import synthetic_image

    image = synthetic_image(150, 210, seed=7).astype(np.float32)[None] / 255
    whole = build_step(get_registry(), "superres:scale=2")(image)
    monkeypatch.setenv("ARTGAN_TILE_BUDGET_MB", "8")  # auto_tile: 8 MB -> 64 px tiles
    step = build_step(get_registry(), "superres:scale=2")
    calls = []
    run = step.model.run
    monkeypatch.setattr(step.model, "run", lambda feeds: calls.append(feeds["lr"].shape) or run(feeds))
    tiled = step(image)
    assert tiled.shape == whole.shape == (1, 300, 420, 3)
    assert len(calls) > 1 and max(max(s[2:]) for s in calls) <= 64
    assert psnr(tiled[0], whole[0]) > 40
