"""Bundles: a chain of steps (and optionally a generator) as one deployable folder."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from artgan.cli import cli
from artgan.errors import ArtganError
from artgan.images import load_image, to_float
from superres_testing import images_dir, sr_models, synthetic_image, with_models  # noqa: F401


@pytest.fixture
def tiny_generator(tmp_path):
    """An untrained 32 px DCGAN generator, exported (a generator bundle needs one)."""
    import torch

    from artgan.data import DatasetInfo
    from artgan.export import export_onnx
    from artgan_gan.dcgan import DCGANRecipe

    torch.manual_seed(0)
    recipe = DCGANRecipe(info=DatasetInfo(image_size=32, channels=3), latent_dim=8, g_width=8, d_width=8)
    recipe.train(False)
    path = tmp_path / "gen.onnx"
    export_onnx(recipe.export_spec(), path)
    return path


def test_bundle_holds_models_and_manifest_and_runs_like_the_steps(with_models, registry, tmp_path):
    from artgan.bundle import load_bundle, write_bundle
    from artgan.steps import build_step, run_chain

    specs = ["superres:scale=2,tile=32", "lanczos:scale=2"]
    manifest = write_bundle(tmp_path / "b", specs, registry=registry, description="x4 in two steps")
    files = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert files == ["01-superres-x2-psnr.onnx", "bundle.json"]
    on_disk = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert on_disk == manifest and on_disk["format"] == 1 and on_disk["generator"] is None
    sr, lz = on_disk["steps"]
    assert sr["name"] == "superres" and sr["params"] == {"scale": 2, "tile": 32}
    assert sr["model"] == "01-superres-x2-psnr.onnx" and len(sr["sha256"]) == 64
    assert sr["metadata"]["scale"] == 2 and sr["metadata"]["task"] == "image-to-image"
    assert lz == {"name": "lanczos", "params": {"scale": 2},
                  "provided_by": {"plugin": "superres", "distribution": "artgan", "version": lz["provided_by"]["version"]}}
    assert sr["provided_by"]["plugin"] == "superres" and lz["provided_by"]["version"]

    image = to_float(synthetic_image(30, 44))[None]
    bundle = load_bundle(tmp_path / "b")
    assert repr(bundle) == "<Bundle b: superres -> lanczos>"
    expected = run_chain([build_step(registry, s) for s in specs], image)
    assert np.allclose(bundle(image), expected, atol=1e-6)
    assert bundle(image).shape == (1, 120, 176, 3)


def test_bundle_runs_without_torch_and_without_the_model_search_path(with_models, registry, tmp_path):
    from artgan.bundle import write_bundle

    write_bundle(tmp_path / "b", ["superres:model=x2-gan", "bicubic:scale=2"], registry=registry)
    code = textwrap.dedent(f"""
        import os, sys, numpy as np
        os.environ.pop("ARTGAN_MODEL_PATH", None)  # the bundle carries its own model
        from artgan.bundle import load_bundle
        b = load_bundle({str(tmp_path / 'b')!r})
        out = b(np.random.default_rng(0).random((1, 10, 12, 3), dtype=np.float32))
        assert out.shape == (1, 40, 48, 3), out.shape
        assert "torch" not in sys.modules, "running a bundle imported torch"
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_generator_bundle_makes_finished_images(tiny_generator, with_models, registry, tmp_path, runner):
    r = runner.invoke(cli, ["bundle", "--generator", str(tiny_generator), "--step", "superres:scale=2",
                            "--out", str(tmp_path / "gb"), "--name", "tiny-art"])
    assert r.exit_code == 0, r.output
    assert "bundle tiny-art: generator -> superres (01-superres-x2-psnr.onnx)" in r.stderr
    from artgan.bundle import load_bundle
    b = load_bundle(tmp_path / "gb")
    images = b.generate(3, seed=1)
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.float32
    assert np.array_equal(images, b.generate(3, seed=1))  # seeded

    r = runner.invoke(cli, ["process", "--bundle", str(tmp_path / "gb"), "--n", "2", "--out", str(tmp_path / "art"), "-q"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "art").iterdir()) == ["0000_0000.png", "0000_0001.png"]
    assert load_image(tmp_path / "art" / "0000_0000.png").shape == (64, 64, 3)


def test_process_with_a_bundle_over_files(with_models, images_dir, tmp_path, runner):
    r = runner.invoke(cli, ["bundle", "--step", "superres:scale=2", "--step", "bicubic:scale=2", "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["process", str(images_dir), "--bundle", str(tmp_path / "b"), "--out", str(tmp_path / "o"), "-q"])
    assert r.exit_code == 0, r.output
    assert load_image(tmp_path / "o" / "img1.png").shape == (132, 188, 3)
    r = runner.invoke(cli, ["process", "--bundle", str(tmp_path / "b"), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "this bundle has no generator" in r.output
    r = runner.invoke(cli, ["process", str(images_dir), "--bundle", str(tmp_path / "b"), "--step", "bicubic",
                            "--out", str(tmp_path / "o3")])
    assert r.exit_code == 2 and "not both" in r.output


def test_bundle_errors_name_the_problem(with_models, registry, tmp_path, runner):
    from artgan.bundle import load_bundle, write_bundle

    write_bundle(tmp_path / "b", ["superres:scale=2"], registry=registry)
    r = runner.invoke(cli, ["bundle", "--step", "bicubic", "--out", str(tmp_path / "b")])
    assert r.exit_code == 1 and "exists and is not empty" in r.output and "--force" in r.output
    r = runner.invoke(cli, ["bundle", "--step", "bicubic", "--out", str(tmp_path / "b"), "--force"])
    assert r.exit_code == 0 and json.loads((tmp_path / "b" / "bundle.json").read_text())["steps"][0]["name"] == "bicubic"
    r = runner.invoke(cli, ["bundle", "--step", "superres:scale=3", "--out", str(tmp_path / "c")])
    assert r.exit_code == 1 and "no model 'x3-psnr'" in r.output
    assert not (tmp_path / "c").exists()  # nothing half-written
    r = runner.invoke(cli, ["bundle", "--generator", str(with_models / "superres" / "x2-psnr.onnx"),
                            "--out", str(tmp_path / "d")])
    assert r.exit_code == 1 and "is a 'image-to-image' model, not a generator" in r.output

    write_bundle(tmp_path / "e", ["superres:scale=2"], registry=registry)
    model = next((tmp_path / "e").glob("*.onnx"))
    model.write_bytes(model.read_bytes() + b"tampered")
    with pytest.raises(ArtganError, match="does not match its checksum"):
        load_bundle(tmp_path / "e")
    with pytest.raises(ArtganError, match="not a bundle"):
        load_bundle(tmp_path)


def test_bundle_step_whose_plugin_is_missing_falls_back_to_the_model(with_models, registry, tmp_path):
    """An app without the superres plugin still runs the bundle's model as a plain ONNX step."""
    from artgan.bundle import Bundle, write_bundle
    from artgan.plugins import make_plugin_manager

    write_bundle(tmp_path / "b", ["superres:scale=2"], registry=registry)
    _, bare = make_plugin_manager(load_entry_points=False)
    b = Bundle(tmp_path / "b", registry=bare)
    assert type(b.steps[0]).__name__ == "OnnxImageStep"
    assert b(np.zeros((1, 8, 8, 3), np.float32)).shape == (1, 16, 16, 3)
