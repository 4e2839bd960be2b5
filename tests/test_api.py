"""The Python API (artgan.Steps, artgan.Generator, artgan.load_model): the CLI's bytes, images
in and out as their own type, ArtganError and never SystemExit, resumable processing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import artgan
from artgan import plugins as P
from artgan.cli import cli
from artgan.steps import Step
from superres_testing import images_dir, write_images  # noqa: F401

ROOT = Path(__file__).parents[1]
GENERATOR = ROOT / "exports" / "augment" / "digits-cgan.onnx"
CHAIN = ("superres:model=x2-gan", "style:model=great-wave")


@pytest.fixture(scope="module")
def steps():
    return artgan.Steps(*CHAIN)


def test_steps_give_the_cli_bytes_for_a_pil_image_and_arrays(steps, images_dir, tmp_path, runner):
    src = images_dir / "img1.png"  # 33x47: odd sides
    r = runner.invoke(cli, ["process", str(src), *[a for s in CHAIN for a in ("--step", s)],
                            "--out", str(tmp_path / "cli"), "-q"])
    assert r.exit_code == 0, r.output
    cli_file = tmp_path / "cli" / "img1.png"
    cli_pixels = np.asarray(Image.open(cli_file))

    with Image.open(src) as im:
        out = steps(im)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (94, 66)
    out.save(tmp_path / "api.png")
    assert (tmp_path / "api.png").read_bytes() == cli_file.read_bytes()

    arr = np.asarray(Image.open(src).convert("RGB"))
    out_u8 = steps(arr)
    assert out_u8.dtype == np.uint8 and np.array_equal(out_u8, cli_pixels)
    out_f = steps(arr.astype(np.float64) / 255)
    assert out_f.dtype == np.float64 and out_f.shape == (66, 94, 3)
    assert np.array_equal((np.clip(out_f, 0, 1) * 255 + 0.5).astype(np.uint8), cli_pixels)
    batch = steps(np.stack([arr, arr]))
    assert batch.shape == (2, 66, 94, 3) and np.array_equal(batch[1], cli_pixels)


def test_generator_gives_the_cli_bytes(tmp_path, runner):
    images = artgan.Generator(GENERATOR)(n=16, seed=0)
    assert images.dtype == np.uint8 and images.shape[0] == 16 and images.ndim == 4
    r = runner.invoke(cli, ["generate", str(GENERATOR), "--n", "16", "--seed", "0", "--out", str(tmp_path / "g"), "-q"])
    assert r.exit_code == 0, r.output
    for i in (0, 15):
        written = np.asarray(Image.open(tmp_path / "g" / f"0000_{i:04d}.png"))
        assert np.array_equal(written.reshape(images[i].shape), images[i])
    assert not np.array_equal(images[0], images[1])
    with pytest.raises(artgan.ArtganError, match="n must be a whole number >= 1"):
        artgan.Generator(GENERATOR)(n=0)


def test_load_model_by_name_kind_and_path():
    sr = artgan.load_model("x2-gan")
    assert isinstance(sr, artgan.ImageModel) and sr.metadata["scale"] == 2
    assert artgan.load_model("superres/x2-gan").path == sr.path
    out = sr(np.zeros((8, 10, 3), np.uint8))
    assert out.shape == (16, 20, 3) and out.dtype == np.uint8
    assert isinstance(artgan.load_model(GENERATOR), artgan.Generator)
    with pytest.raises(artgan.ArtganError, match=r"no model named 'x2-gam' \(did you mean 'x2-gan'\?\)"):
        artgan.load_model("x2-gam")
    with pytest.raises(artgan.ArtganError, match="not found"):
        artgan.load_model("missing.onnx")


def test_bad_images_are_artgan_errors():
    lanczos = artgan.Steps("lanczos:scale=2")
    for bad, needle in [("photo.png", "expected a PIL image or a numpy array"),
                        (np.zeros((4, 4), np.uint8), "expected an HxWxC image"),
                        (np.full((4, 4, 3), 255.0), r"values in \[0, 1\], this one has \[255, 255\]"),
                        (np.zeros((4, 4, 3), np.int32), "uint8 or float")]:
        with pytest.raises(artgan.ArtganError, match=needle):
            lanczos(bad)
    with pytest.raises(artgan.ArtganError, match="unknown step 'lanczso'"):
        artgan.Steps("lanczso")


class Exits(Step):
    name = "exits"

    def __call__(self, images):
        sys.exit(3)


def test_a_plugin_calling_sys_exit_is_an_artgan_error_naming_it(monkeypatch):
    module = types.ModuleType("artgan_exits")

    def exits_when_built():
        raise SystemExit("bye")

    @artgan.hookimpl
    def artgan_register_steps(register):
        register("exits", Exits)
        register("exits-early", exits_when_built)
    module.artgan_register_steps = artgan_register_steps
    monkeypatch.setattr(P, "_STATE", P.make_plugin_manager((module,)))
    steps = artgan.Steps("exits")
    with pytest.raises(artgan.ArtganError, match=r"step 'exits' \(plugin 'artgan_exits'\) failed .*SystemExit: 3"):
        steps(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(artgan.ArtganError, match=r"step 'exits-early' \(plugin 'artgan_exits'\): its factory failed "
                                                   r"\(SystemExit: bye\); a bug in the plugin"):
        artgan.Steps("exits-early")


def test_process_resumes_records_and_lists_bad_files(images_dir, tmp_path):
    (images_dir / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    steps = artgan.Steps("lanczos:scale=2")
    report = steps.process([images_dir], out)
    assert (report.made, report.failed, report.skipped) == (3, 1, 0)
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["output"] for f in failures] == ["broken.png"] and "not a readable image" in failures[0]["error"]
    record = json.loads((out / "process.json").read_text())
    assert record["steps"] == [{"name": "lanczos", "scale": 2}] and record["finished"] and record["engine"] == "local"
    assert record["machine"]["cpus"] >= 1 and record["made"] == 3

    first = (out / "img0.png").read_bytes()
    (out / "sub" / "img0.png").unlink()  # as if the run had been stopped before it
    report = artgan.Steps({"name": "lanczos", "scale": 2}).process([images_dir], out)
    assert (report.made, report.skipped) == (1, 3 - 1)  # the broken file is tried again
    assert (out / "img0.png").read_bytes() == first and (out / "sub" / "img0.png").is_file()

    with pytest.raises(artgan.ArtganError, match="holds the outputs of other steps.*--overwrite"):
        artgan.Steps("bicubic:scale=2").process([images_dir], out)
    report = artgan.Steps("bicubic:scale=2").process([images_dir], out, overwrite=True)
    assert report.made == 3 and report.skipped == 0


def test_the_api_from_a_fresh_interpreter_imports_no_torch_and_no_ray(images_dir, tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        t = time.perf_counter()
        import artgan
        imported = time.perf_counter() - t
        assert "artgan.api" not in sys.modules and "torch" not in sys.modules
        import numpy as np
        out = artgan.Steps("superres:model=x2-gan")(np.zeros((8, 8, 3), np.uint8))
        artgan.Steps("lanczos").process([{str(images_dir)!r}], {str(tmp_path / 'o')!r})
        print(out.shape, "torch" in sys.modules, "ray" in sys.modules, round(imported, 3))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    shape, torch_loaded, ray_loaded, _ = r.stdout.rsplit(")", 1)[0] + ")", *r.stdout.rsplit(")", 1)[1].split()
    assert shape == "(16, 16, 3)" and torch_loaded == "False" and ray_loaded == "False"
