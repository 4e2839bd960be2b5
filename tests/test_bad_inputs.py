"""Issue #17: every bad input, through the CLI, gets one clear line (it names the file, key or
plugin and the fix), a non-zero exit code, and loses nothing made before. docs/errors.md is the
table of these cases; each group below matches a section of it."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest
from PIL import Image

import artgan
from artgan import plugins as P
from artgan.cli import cli
from superres_testing import images_dir, sr_models, synthetic_image, with_models, write_images  # noqa: F401


def one_line_error(result, *needles: str, code: int = 1) -> str:
    """The result failed with ``code``, printed no traceback, and its last line is one
    ``Error:`` line holding every needle."""
    output = result.output
    assert result.exit_code == code, output
    assert "Traceback" not in output, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("Error:"), output
    for needle in needles:
        assert needle in last, f"{needle!r} not in {last!r}"
    return last


@pytest.fixture(scope="module")
def generators(tmp_path_factory):
    """Untrained 32 px DCGAN generators, exported: RGB and greyscale (latent_dim 8)."""
    import torch

    from artgan.data import DatasetInfo
    from artgan.export import export_onnx
    from artgan_gan.dcgan import DCGANRecipe

    root = tmp_path_factory.mktemp("generators")
    made = {}
    for name, channels in (("rgb", 3), ("grey", 1)):
        torch.manual_seed(0)
        recipe = DCGANRecipe(info=DatasetInfo(image_size=32, channels=channels), latent_dim=8, g_width=8, d_width=8)
        recipe.train(False)
        export_onnx(recipe.export_spec(), root / f"{name}.onnx")
        made[name] = root / f"{name}.onnx"
    return made


# -- 1. bundles are self-contained ------------------------------------------------------------------

@pytest.fixture
def bundle_dir(with_models, tmp_path, runner):
    r = runner.invoke(cli, ["bundle", "--step", "superres:scale=2", "--step", "lanczos:scale=1",
                            "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    return tmp_path / "b"


def edit_manifest(bundle, change) -> None:
    path = bundle / "bundle.json"
    manifest = json.loads(path.read_text())
    result = change(manifest)
    manifest = result if isinstance(result, list) else manifest  # a change may replace the whole manifest
    path.write_text(json.dumps(manifest))


def process_bundle(runner, bundle, tmp_path, images):
    return runner.invoke(cli, ["process", str(images), "--bundle", str(bundle), "--out", str(tmp_path / "out"), "-q"])


@pytest.mark.parametrize("where", ["relative", "absolute", "link"])
def test_a_bundle_never_runs_a_model_outside_its_folder(where, bundle_dir, with_models, images_dir, tmp_path, runner):
    outside = with_models / "superres" / "x4-psnr.onnx"  # a valid model: it would load and run
    if where == "link":
        (bundle_dir / "evil.onnx").symlink_to(outside)
        target = "evil.onnx"
    else:
        target = os.path.relpath(outside, bundle_dir) if where == "relative" else str(outside)
    sha = __import__("hashlib").sha256(outside.read_bytes()).hexdigest()

    def point_out(m):
        m["steps"][0].update(model=target, sha256=sha)
    edit_manifest(bundle_dir, point_out)
    r = process_bundle(runner, bundle_dir, tmp_path, images_dir)
    one_line_error(r, "bundle.json: steps[0].model", "a bundle only runs files it holds")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, needles", [
    (lambda m: m["steps"][0].pop("sha256"), ["steps[0].sha256", "every file of a bundle is checksummed"]),
    (lambda m: m["steps"][0].update(sha256="0" * 64), ["does not match its checksum"]),
    (lambda m: [m], ["bundle.json: expected a JSON object", "got a list"]),
    (lambda m: m["steps"][1].pop("name"), ["steps[1].name: missing or not a string"]),
    (lambda m: m.update(steps={"a": 1}), ["steps: expected a list, got dict"]),
    (lambda m: m["steps"][1].update(params=[1, 2]), ["steps[1].params: expected an object, got list"]),
    (lambda m: m["steps"][1].update(params={"scale": "x"}), ["bundle.json: steps[1]: lanczos: scale must be an integer"]),
    (lambda m: m["steps"][1].update(params={"model": "/tmp/x.onnx"}), ["steps[1].params.model"]),
    (lambda m: m["steps"][1].update(params={"reference": "../../paintings/x.jpg"}),
     ["steps[1].params.reference", "names a file outside the bundle"]),
    (lambda m: m.update(format=7), ["bundle format 7"]),
    (lambda m: m.update(generator={"file": "g.onnx"}), ["generator.sha256"]),
    (lambda m: m["steps"][0].update(model=5), ["steps[0].model: not a string"]),
])
def test_a_malformed_manifest_is_one_line_naming_the_key(change, needles, bundle_dir, images_dir, tmp_path, runner):
    edit_manifest(bundle_dir, change)
    r = process_bundle(runner, bundle_dir, tmp_path, images_dir)
    one_line_error(r, *needles)
    assert not (tmp_path / "out").exists()


def test_a_manifest_that_is_not_json_is_one_line(bundle_dir, images_dir, tmp_path, runner):
    (bundle_dir / "bundle.json").write_bytes(b"\xff{not json")
    one_line_error(process_bundle(runner, bundle_dir, tmp_path, images_dir), "bundle.json: invalid JSON")


# -- 2. YAML alias bombs -------------------------------------------------------------------------

BOMB = "\n".join(["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]) + "\n"


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path, runner):
    (tmp_path / "bomb.yaml").write_text(BOMB)
    assert len(BOMB) < 500
    start = time.perf_counter()
    r = runner.invoke(cli, ["run", str(tmp_path / "bomb.yaml"), "--dry-run"])
    assert time.perf_counter() - start < 10
    one_line_error(r, "bomb.yaml:", "expands to more than", "alias")


@pytest.mark.parametrize("text, needle", [
    ("a: &a [1, *a]\n", "a cycle"),
    ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ("? [a, b]\n: 1\n", "a key must be a plain name"),
])
def test_other_hostile_yaml_is_one_line(text, needle, tmp_path, runner):
    (tmp_path / "p.yaml").write_text(text)
    one_line_error(runner.invoke(cli, ["run", str(tmp_path / "p.yaml"), "--dry-run"]), "p.yaml", needle)


# -- 3. images: 16-bit, float, EXIF orientation ------------------------------------------------------

def test_a_16_bit_greyscale_png_keeps_its_tones(tmp_path, runner):
    ramp = np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I;16")
    r = runner.invoke(cli, ["process", str(tmp_path / "grey16.png"), "--step", "lanczos:scale=1",
                            "--out", str(tmp_path / "out"), "-q"])
    assert r.exit_code == 0, r.output
    out = np.asarray(Image.open(tmp_path / "out" / "grey16.png").convert("L")).astype(float)
    expected = ramp / 257.0
    assert np.abs(out - expected).max() <= 1.0  # it was all 255 before
    assert out.mean() == pytest.approx(127.5, abs=1)


def test_float_and_32_bit_images_are_scaled_not_clipped(tmp_path):
    from artgan.images import load_image

    Image.fromarray(np.full((4, 4), 0.5, np.float32), "F").save(tmp_path / "f.tif")
    Image.fromarray(np.full((4, 4), 32768, np.int32), "I").save(tmp_path / "i.tif")
    assert load_image(tmp_path / "f.tif")[0, 0].tolist() == [128, 128, 128]
    assert load_image(tmp_path / "i.tif")[0, 0].tolist() == [127, 127, 127]


def test_exif_orientation_is_applied(tmp_path, runner):
    image = Image.fromarray(synthetic_image(20, 40))  # stored landscape, shown portrait
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif)
    r = runner.invoke(cli, ["process", str(tmp_path / "phone.jpg"), "--step", "lanczos:scale=1",
                            "--out", str(tmp_path / "out"), "-q"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "out" / "phone.png").size == (20, 40)  # upright: 20 wide, 40 high


# -- 4. a bundle's chain is checked when it is made ----------------------------------------------

def test_a_bundle_whose_steps_do_not_fit_the_generator_is_refused_when_made(generators, with_models, tmp_path, runner):
    r = runner.invoke(cli, ["bundle", "--generator", str(generators["grey"]), "--step", "superres:model=x2-gan",
                            "--out", str(tmp_path / "b")])
    one_line_error(r, "step 'superres' (plugin 'superres')", "takes 3-channel images but gets 1-channel",
                   "does not fit")
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.*"))
    r = runner.invoke(cli, ["bundle", "--generator", str(generators["rgb"]), "--step", "superres:model=x2-gan",
                            "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert manifest["steps"][0]["provided_by"] == {"plugin": "superres", "distribution": "artgan",
                                                   "version": artgan.__version__}


def test_a_bundle_folder_gets_ordinary_permissions_and_replacing_it_keeps_the_old_on_failure(
        with_models, tmp_path, runner):
    old_umask = os.umask(0o022)
    try:
        r = runner.invoke(cli, ["bundle", "--step", "lanczos:scale=2", "--out", str(tmp_path / "b")])
    finally:
        os.umask(old_umask)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o755
    before = (tmp_path / "b" / "bundle.json").read_text()
    r = runner.invoke(cli, ["bundle", "--step", "superres:scale=3", "--out", str(tmp_path / "b"), "--force"])
    one_line_error(r, "superres", "no model 'x3-psnr'")
    assert (tmp_path / "b" / "bundle.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary folder left behind


# -- 5. values that used to give tracebacks ------------------------------------------------------

@pytest.mark.parametrize("override, needles", [
    ("train.batch_size=0", ["tiny.yaml:", "train.batch_size", "must be >= 1"]),
    ("train.batch_size=-4", ["train.batch_size", "must be >= 1"]),
    ("train.log_every=0", ["train.log_every", "must be >= 1"]),
    ("train.iterations=0", ["train.iterations", "must be >= 1"]),
    ("train.checkpoint_every=-1", ["train.checkpoint_every", "must be >= 1"]),
    ("train.seconds=-5", ["train.seconds", "must be >= 0"]),
    ("generate.n=-3", ["generate.n", "must be >= 1"]),
    ("generate.seed=-1", ["generate.seed", "must be >= 0"]),
    ("train.architecture.latent_dim=16.5", ["tiny.yaml:6:", "latent_dim", "plugin 'gan'", "expected an integer"]),
    ("train.architecture.latnt_dim=4", ["did you mean 'latent_dim'"]),
    ("train=5", ["--set train=5", "name a key inside the stage"]),
])
def test_bad_pipeline_values_are_one_located_line_before_anything_runs(override, needles, tiny_pipeline, tmp_path,
                                                                       runner):
    for dry in ([], ["--dry-run"]):
        r = runner.invoke(cli, ["run", str(tiny_pipeline), "--set", override, "--runs", str(tmp_path / "runs"), *dry])
        one_line_error(r, *needles)
    assert not (tmp_path / "runs").exists()  # validated before a run folder is made


@pytest.mark.parametrize("override, needles", [
    ("train.dataset.image_size=3", ["tiny.yaml:5:", "dataset 'digits' (plugin 'datasets')", "image_size"]),
    ("train.architecture.g_width=-8", ["tiny.yaml:6:", "architecture 'dcgan' (plugin 'gan')"]),
])
def test_dry_run_builds_the_factories_and_names_file_line_and_plugin(override, needles, tiny_pipeline, tmp_path,
                                                                    runner):
    """A value only the factory knows is wrong is caught by --dry-run, located; a real run names
    the plugin when its factory refuses it."""
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--set", override, "--dry-run"])
    one_line_error(r, *needles)
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--set", override, "--runs", str(tmp_path / "runs"), "-q"])
    one_line_error(r, needles[1])


@pytest.mark.parametrize("args, needle", [
    (["--n", "-3"], "--n"), (["--n", "0"], "--n"), (["--batch-size", "0"], "--batch-size"),
    (["--truncation", "0"], "--truncation"), (["--interpolate", "1,2", "--fps", "0"], "--fps"),
    (["--interpolate", "1,2", "--frames", "0"], "--frames"), (["--seed", "-1"], "--seed"),
])
def test_bad_generate_options_are_usage_errors(args, needle, generators, tmp_path, runner):
    r = runner.invoke(cli, ["generate", str(generators["rgb"]), *args, "--out", str(tmp_path / "g.png")])
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("content, needle", [
    (b"", "the checkpoint is empty"),
    (None, "truncated or not one"),
    ("no-keys", "an incomplete artgan checkpoint"),
])
def test_empty_partial_and_foreign_checkpoints_are_one_line(content, needle, tmp_path, runner):
    import torch

    path = tmp_path / "c.pt"
    if content is None:
        torch.save({"format": 1, "state": {"w": torch.zeros(1000)}}, path)
        path.write_bytes(path.read_bytes()[:300])
    elif content == "no-keys":
        torch.save({"format": 1}, path)
    else:
        path.write_bytes(content)
    r = runner.invoke(cli, ["export", str(path), "--out", str(tmp_path / "m.onnx")])
    one_line_error(r, "c.pt", needle)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("key, value, needle", [
    ("latent_dim", "32", "artgan.latent_dim says 32 but the model's input 'z' takes 8"),
    ("latent_dim", "16.5", "artgan.latent_dim must be a whole number"),
    ("value_range", "[1, 1]", "artgan.value_range must be [low, high]"),
    ("value_range", '"wide"', "artgan.value_range must be [low, high]"),
    ("task", '"paint"', "artgan.task must be"),
    ("channels", "0", "artgan.channels must be a whole number"),
])
def test_malformed_or_lying_onnx_metadata_is_one_line(key, value, needle, generators, tmp_path, runner):
    import onnx

    model = onnx.load(generators["rgb"])
    for prop in model.metadata_props:
        if prop.key == f"artgan.{key}":
            prop.value = value
    onnx.save(model, tmp_path / "lying.onnx")
    r = runner.invoke(cli, ["generate", str(tmp_path / "lying.onnx"), "--n", "2", "--out", str(tmp_path / "g.png")])
    one_line_error(r, "lying.onnx", needle, "re-export")


def test_a_superres_model_claiming_scale_0_is_one_line(with_models, images_dir, tmp_path, runner, monkeypatch):
    import onnx

    folder = tmp_path / "models" / "superres"
    folder.mkdir(parents=True)
    model = onnx.load(with_models / "superres" / "x2-psnr.onnx")
    for prop in model.metadata_props:
        if prop.key == "artgan.scale":
            prop.value = "0"
    onnx.save(model, folder / "x2-zero.onnx")
    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(tmp_path / "models"))
    r = runner.invoke(cli, ["process", str(images_dir), "--step", "superres:model=x2-zero", "--out", str(tmp_path / "o")])
    one_line_error(r, "x2-zero.onnx", "artgan.scale")


def _fail_writes(monkeypatch, code: int, after: int = 0):
    """os.replace (the last move of every atomic write) fails with ``code`` after ``after`` calls."""
    real, calls = os.replace, []

    def replace(src, dst, *a, **kw):
        calls.append(dst)
        if len(calls) > after:
            raise OSError(code, os.strerror(code), str(dst))
        return real(src, dst, *a, **kw)
    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("code, needle", [(errno.ENOSPC, "the disk is full"),
                                          (errno.EACCES, "choose a folder you can write to"),
                                          (errno.EROFS, "read-only")])
def test_a_full_disk_or_read_only_folder_while_processing_is_one_line(code, needle, images_dir, tmp_path, runner,
                                                                      monkeypatch):
    out = tmp_path / "out"
    r = runner.invoke(cli, ["process", str(images_dir), "--step", "lanczos:scale=1", "--out", str(out), "-q"])
    assert r.exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*.png")}
    _fail_writes(monkeypatch, code, after=2)  # OUT/process.json, then one image
    r = runner.invoke(cli, ["process", str(images_dir), "--step", "lanczos:scale=2", "--out", str(out), "-q",
                            "--overwrite"])
    one_line_error(r, str(out), needle, "files written before are kept")
    after = {p: p.read_bytes() for p in out.rglob("*.png")}
    assert set(after) == set(before)  # the file being written when it failed was not half-written
    assert sum(after[p] != before[p] for p in before) == 1  # the one written before the failure is whole
    assert not list(out.rglob(".*.tmp"))


def test_a_full_disk_while_bundling_keeps_nothing_half_made(with_models, tmp_path, runner, monkeypatch):
    real = shutil.copyfile

    def copyfile(src, dst, *a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
    monkeypatch.setattr(shutil, "copyfile", copyfile)
    r = runner.invoke(cli, ["bundle", "--step", "superres:scale=2", "--out", str(tmp_path / "b")])
    one_line_error(r, "01-superres-x2-psnr.onnx", "the disk is full")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(shutil, "copyfile", real)


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tiny_pipeline, tmp_path, runner, monkeypatch):
    import torch

    from artgan import checkpoints

    real_save, calls = torch.save, []

    def save(obj, f, *a, **kw):
        calls.append(f)
        if len(calls) >= 2:  # the first checkpoint is written, the second finds the disk full
            raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed "
                               "writing file data/3: file write failed")
        return real_save(obj, f, *a, **kw)
    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--out", str(out), "-q"])
    one_line_error(r, "last.pt: could not write the checkpoint", "is the disk full", "--resume")
    assert checkpoints.load(out / "checkpoints" / "last.pt")["iteration"] == 3
    assert not list((out / "checkpoints").glob(".*.tmp"))


def test_a_full_disk_during_export_does_not_blame_the_ops(tmp_path, monkeypatch):
    import torch

    from artgan.data import DatasetInfo
    from artgan.errors import ArtganError
    from artgan.export import export_onnx
    from artgan_gan.dcgan import DCGANRecipe

    def export(*a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "m.onnx"))
    recipe = DCGANRecipe(info=DatasetInfo(image_size=32, channels=3), latent_dim=8, g_width=8, d_width=8)
    monkeypatch.setattr(torch.onnx, "export", export)
    with pytest.raises(ArtganError) as exc:
        export_onnx(recipe.export_spec(), tmp_path / "m.onnx")
    assert "the disk is full" in str(exc.value) and "op" not in str(exc.value).replace("opset", "").split(":")[0]
    assert "Replace that op" not in str(exc.value)


def test_an_image_too_large_for_memory_is_one_line(images_dir, tmp_path, runner, monkeypatch):
    def convert(self, *a, **kw):
        raise MemoryError()
    monkeypatch.setattr(Image.Image, "convert", convert)
    r = runner.invoke(cli, ["process", str(images_dir / "img0.png"), "--step", "lanczos:scale=1",
                            "--out", str(tmp_path / "o")])
    one_line_error(r, "img0.png", "not enough memory")
    r = runner.invoke(cli, ["process", str(images_dir), "--step", "lanczos:scale=1", "--out", str(tmp_path / "o")])
    one_line_error(r, "none of the 3 input image(s) could be read")
    assert r.stderr.count("not enough memory to read this image") >= 3  # a folder: one warning per image
    assert r.stderr.count("Warning:") == 3 and r.stderr.count("; skipped (listed in") == 3


def test_running_out_of_memory_in_a_step_is_one_line(images_dir, tmp_path, runner, monkeypatch):
    from artgan_superres import steps

    def call(self, images):
        raise MemoryError()
    monkeypatch.setattr(steps.ResampleStep, "__call__", call)
    r = runner.invoke(cli, ["process", str(images_dir), "--step", "lanczos:scale=8", "--out", str(tmp_path / "o")])
    one_line_error(r, "out of memory", "tile")


# -- 6. plugins' steps are checked at run time ------------------------------------------------------

def _step_plugin():
    from artgan.steps import Step

    def make(name, fn, scale=1):
        cls = type(name, (Step,), {"name": name, "scale": scale, "__call__": lambda self, im: fn(im)})
        return cls

    kinds = {
        "wrong-shape": make("wrong-shape", lambda im: im[0]),  # drops the batch axis: HWC
        "off-by-two": make("off-by-two", lambda im: np.ascontiguousarray(im[:, 1:-1, 1:-1])),
        "float64": make("float64", lambda im: im.astype(np.float64)),
        "nan": make("nan", lambda im: np.full_like(im, np.nan)),
        "bytes": make("bytes", lambda im: im * 255.0),
        "not-array": make("not-array", lambda im: im.tolist()),
        "lying-scale": make("lying-scale", lambda im: im, scale=2),
        "raises": make("raises", lambda im: im[:, :, :, 7]),  # IndexError deep in the plugin
    }
    module = types.ModuleType("artgan_bad_steps")

    @artgan.hookimpl
    def artgan_register_steps(register):
        for name, cls in kinds.items():
            register(name, cls)
    module.artgan_register_steps = artgan_register_steps
    return module


@pytest.fixture
def bad_steps(monkeypatch):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = P.make_plugin_manager((_step_plugin(),))
    monkeypatch.setattr(P, "_STATE", state)
    return state[1]


@pytest.mark.parametrize("step, needle", [
    ("wrong-shape", "returned shape (24, 40, 3) for input (1, 24, 40, 3), expected (1, 24, 40, 3)"),
    ("off-by-two", "returned shape (1, 22, 38, 3) for input (1, 24, 40, 3)"),
    ("lying-scale", "expected (1, 48, 80, 3)"),
    ("float64", "returned dtype float64"),
    ("nan", "NaN or infinite"),
    ("bytes", "returned values in [0, 255"),
    ("not-array", "returned list, not a numpy array"),
    ("raises", "failed on a batch of shape (1, 24, 40, 3) (IndexError: index 7 is out of bounds"),
])
def test_a_plugin_step_that_breaks_the_contract_is_named_at_run_time(step, needle, bad_steps, tmp_path, runner):
    write_images(tmp_path / "in", [(24, 40)])
    r = runner.invoke(cli, ["process", str(tmp_path / "in"), "--step", "lanczos:scale=1", "--step", step,
                            "--out", str(tmp_path / "out")])
    one_line_error(r, f"step {step!r} (plugin 'artgan_bad_steps')", needle)
    assert not list((tmp_path / "out").rglob("*.png")) if (tmp_path / "out").exists() else True


def test_check_step_tries_odd_sizes_and_one_larger_than_a_tile():
    from artgan.steps import Step
    from artgan.testing import CHECK_STEP_SIZES, check_step

    assert any(h % 2 and w % 2 for _, h, w in CHECK_STEP_SIZES) and any(h > 64 for _, h, _ in CHECK_STEP_SIZES)

    class OffByTile(Step):
        """Right on small images, one row short on images taller than its 64 px tile."""
        name = "off-by-tile"

        def __call__(self, images):
            return images[:, :-1].copy() if images.shape[1] > 64 else images.copy()

    with pytest.raises(AssertionError, match=r"returned shape \(1, 96, 70, 3\) for input \(1, 97, 70, 3\)"):
        check_step(OffByTile())


# -- 7. smaller things ----------------------------------------------------------------------------

def test_a_misspelled_step_parameter_gets_did_you_mean(images_dir, tmp_path, runner):
    r = runner.invoke(cli, ["process", str(images_dir), "--step", "lanczos:scal=2", "--out", str(tmp_path / "o")])
    one_line_error(r, "step 'lanczos' (plugin 'superres')", "did you mean 'scale'")


def test_an_unknown_name_says_when_a_plugin_with_a_misspelled_hook_failed(monkeypatch, tmp_path, runner):
    import warnings

    module = types.ModuleType("artgan_typo")

    @artgan.hookimpl
    def artgan_register_step(register):  # the hook is artgan_register_steps
        register("sparkle", object)
    module.artgan_register_step = artgan_register_step
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monkeypatch.setattr(P, "_STATE", P.make_plugin_manager((module,)))
    write_images(tmp_path / "in", [(8, 8)])
    r = runner.invoke(cli, ["process", str(tmp_path / "in"), "--step", "sparkle", "--out", str(tmp_path / "o")])
    one_line_error(r, "unknown step 'sparkle'", "plugin 'artgan_typo' is broken", "did you mean artgan_register_steps")


def test_artgan_plugins_lists_the_commands_a_plugin_adds():
    proc = subprocess.run([sys.executable, "-m", "artgan", "plugins", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = {r["name"]: r for r in json.loads(proc.stdout)}
    assert "style" in records["style"]["commands"]  # `artgan style train`; `evaluate style` is the core's
    assert records["gan"]["commands"] == []


def test_stale_temporaries_of_a_killed_writer_are_cleaned(tmp_path):
    from artgan.files import STALE_AFTER_S, write_text

    stale, fresh, other = (tmp_path / ".a.txt.x1.tmp", tmp_path / ".a.txt.x2.tmp", tmp_path / ".b.txt.x3.tmp")
    for p in (stale, fresh, other):
        p.write_text("half")
    old = time.time() - STALE_AFTER_S - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    write_text(tmp_path / "a.txt", "whole")
    assert not stale.exists() and fresh.exists()  # a young one may belong to a writer still at work
    assert other.exists()  # another file's temporaries are its own writer's business
    assert (tmp_path / "a.txt").read_text() == "whole"


def test_two_runs_at_once_never_share_a_run_folder(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from artgan.files import claim_new_dir

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: claim_new_dir(tmp_path / "runs", "quick"), range(16)))
    assert len(set(made)) == 16
    assert {p.name for p in made} == {"quick"} | {f"quick-{i}" for i in range(2, 17)}


def test_a_run_folder_is_held_by_one_run_at_a_time(tmp_path):
    """Two runs given the same --out at once: one gets the folder, the other a one-line error; a lock
    left by a killed run is taken over; the lock goes when the run ends."""
    import subprocess

    from artgan.errors import ArtganError
    from artgan.files import RUN_LOCK, run_lock

    out = tmp_path / "run"
    with run_lock(out):
        assert (out / RUN_LOCK).read_text() == str(os.getpid())
        child = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            from artgan.files import run_lock
            from artgan.errors import ArtganError
            try:
                with run_lock({str(out)!r}):
                    print("got it")
            except ArtganError as e:
                print(e)
            """)], capture_output=True, text=True, check=True)
        assert "another artgan run (pid" in child.stdout and "choose another --out" in child.stdout
    assert not (out / RUN_LOCK).exists()
    (out / RUN_LOCK).write_text("999999999")  # a SIGKILLed run's lock: no such process
    with run_lock(out):
        assert (out / RUN_LOCK).read_text() == str(os.getpid())


def test_run_refuses_a_folder_another_run_holds(tiny_pipeline, tmp_path, runner):
    import subprocess

    from artgan.files import RUN_LOCK

    out = tmp_path / "held"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / RUN_LOCK).write_text(str(sleeper.pid))
        r = runner.invoke(cli, ["run", str(tiny_pipeline), "--out", str(out), "-q"])
    finally:
        sleeper.kill()
    assert r.exit_code != 0
    assert f"another artgan run (pid {sleeper.pid})" in r.output and "Traceback" not in r.output
    assert not (out / "checkpoints").exists()


def test_an_unreadable_file_in_a_folder_is_skipped_with_a_warning(images_dir, tmp_path, runner):
    (images_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    r = runner.invoke(cli, ["process", str(images_dir), "--step", "lanczos:scale=1", "--out", str(tmp_path / "o"),
                            "-q"])
    assert r.exit_code == 0, r.output
    assert "broken.png" in r.stderr and "skipped" in r.stderr
    assert len(list((tmp_path / "o").rglob("*.png"))) == 3


def test_the_runtime_path_never_imports_torch(bundle_dir, generators, images_dir, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from artgan.cli import cli
        for args in (["process", {str(images_dir)!r}, "--bundle", {str(bundle_dir)!r}, "--out", {str(tmp_path / 'a')!r}],
                     ["generate", {str(generators['rgb'])!r}, "--n", "2", "--out", {str(tmp_path / 'g.png')!r}],
                     ["generate", {str(generators['rgb'])!r}, "--n", "-2", "--out", {str(tmp_path / 'h.png')!r}],
                     ["process", {str(images_dir)!r}, "--step", "lanczos:scale=2", "--out", {str(tmp_path / 'b')!r}],
                     ["process", {str(images_dir)!r}, "--step", "lanczos:scal=2", "--out", {str(tmp_path / 'c')!r}]):
            try:
                cli(args, standalone_mode=False)
            except Exception:
                pass
        print("torch" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "False", proc.stderr
    assert (tmp_path / "a").is_dir() and (tmp_path / "g.png").is_file()  # the commands did run


def test_a_full_disk_names_the_file_asked_for_not_a_temporary(generators, tmp_path, runner, monkeypatch):
    (tmp_path / "g.png").write_bytes(b"earlier grid")

    def save(self, fp, *a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as Pillow's writers raise it: no file name
    monkeypatch.setattr(Image.Image, "save", save)
    r = runner.invoke(cli, ["generate", str(generators["rgb"]), "--n", "4", "--out", str(tmp_path / "g.png"), "-q"])
    one_line_error(r, f"{tmp_path / 'g.png'}: No space left on device", "the disk is full")
    assert (tmp_path / "g.png").read_bytes() == b"earlier grid"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png"]


def test_a_killed_bundlers_leftovers_are_cleaned_by_the_next_bundle(with_models, tmp_path, runner):
    from artgan.files import STALE_AFTER_S

    left = tmp_path / ".b.k2j3.tmp"
    left.mkdir()
    (left / "01-superres-x2-psnr.onnx").write_bytes(b"half a model")
    old = time.time() - STALE_AFTER_S - 60
    os.utime(left, (old, old))
    r = runner.invoke(cli, ["bundle", "--step", "lanczos:scale=2", "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


@pytest.mark.parametrize("content, needle", [
    (b"\xff\xfe\x00bad", "not UTF-8 text"),
    (b"a: 1\n" * 300_000, "too big for a pipeline file"),
])
def test_a_pipeline_file_that_is_not_yaml_text_is_one_line(content, needle, tmp_path, runner):
    (tmp_path / "p.yaml").write_bytes(content)
    one_line_error(runner.invoke(cli, ["run", str(tmp_path / "p.yaml"), "--dry-run"]), "p.yaml", needle)


def test_a_file_in_the_way_of_an_output_folder_is_one_line(generators, tmp_path, runner):
    (tmp_path / "afile").write_text("mine")
    r = runner.invoke(cli, ["generate", str(generators["rgb"]), "--n", "2", "--out", str(tmp_path / "afile" / "g.png")])
    one_line_error(r, "afile", "a file is in the way")
    assert (tmp_path / "afile").read_text() == "mine"


ALIAS_BOMB_VALUE = "[&a [1,1,1,1,1,1,1,1,1], " + ", ".join(
    f"&{b} [{','.join(['*' + a] * 9)}]" for a, b in zip("abcdefg", "bcdefgh")) + "]"


@pytest.mark.parametrize("args", [
    ["run", "PIPELINE", "--set", f"train.iterations={ALIAS_BOMB_VALUE}", "--dry-run"],
    ["process", "IMAGES", "--step", f"lanczos:scale={ALIAS_BOMB_VALUE}", "--out", "OUT"],
])
def test_an_alias_bomb_on_the_command_line_is_refused_quickly(args, tiny_pipeline, images_dir, tmp_path, runner):
    args = [{"PIPELINE": str(tiny_pipeline), "IMAGES": str(images_dir), "OUT": str(tmp_path / "o")}.get(a, a)
            for a in args]
    start = time.perf_counter()
    r = runner.invoke(cli, args)
    assert time.perf_counter() - start < 10
    one_line_error(r, "expands to more than")


def test_a_huge_value_is_shown_cut_short(tiny_pipeline, runner):
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--set", f"train.iterations=[{','.join(['7'] * 50000)}]",
                            "--dry-run"])
    assert len(one_line_error(r, "train.iterations", "expected an integer, got [7, 7")) < 300


@pytest.mark.parametrize("content, needle", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"format": 1, "steps": [], "pad": "' + b"x" * 1_100_000 + b'"}', "too big for a bundle manifest"),
])
def test_a_hostile_manifest_is_one_line(content, needle, bundle_dir, images_dir, tmp_path, runner):
    (bundle_dir / "bundle.json").write_bytes(content)
    one_line_error(process_bundle(runner, bundle_dir, tmp_path, images_dir), "bundle.json", needle)


def test_a_plugin_command_without_cli_errors_still_prints_one_line(runner):
    import click

    @click.command("explode")
    def explode():
        raise ValueError("a plugin's own bug")
    cli.add_command(explode)
    try:
        r = runner.invoke(cli, ["explode"])
        one_line_error(r, "unexpected ValueError: a plugin's own bug", "ARTGAN_DEBUG=1")
        from artgan.errors import ArtganError

        explode.callback = lambda: (_ for _ in ()).throw(ArtganError("plugin x: bad input; fix it"))
        one_line_error(runner.invoke(cli, ["explode"]), "plugin x: bad input; fix it")
    finally:
        cli.commands.pop("explode")


@pytest.mark.parametrize("step, needle", [
    ("  - export: {checkpoint: nowhere/last.pt}\n", "stages[1].export.checkpoint: nowhere/last.pt: no such file"),
    ("  - generate: {model: nowhere.onnx}\n", "stages[1].generate.model: nowhere.onnx: no such file"),
    ("  - process: {input: nowhere/, steps: [lanczos]}\n", "stages[1].process.input: nowhere/: no such file or folder"),
])
def test_dry_run_finds_missing_input_files(step, needle, tiny_pipeline, runner):
    text = tiny_pipeline.read_text().split("  - export")[0] + step
    tiny_pipeline.write_text(text)
    one_line_error(runner.invoke(cli, ["run", str(tiny_pipeline), "--dry-run"]), "tiny.yaml:12:", needle)


def test_a_file_a_step_parameter_names_travels_inside_the_bundle(images_dir, tmp_path, runner):
    painting = tmp_path / "painting.png"
    Image.fromarray(synthetic_image(32, 32, seed=5)).save(painting)
    r = runner.invoke(cli, ["bundle", "--step", f"color-transfer:reference={painting},strength=0.5",
                            "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    step = json.loads((tmp_path / "b" / "bundle.json").read_text())["steps"][0]
    assert step["params"] == {"strength": 0.5} and step["files"]["reference"]["file"] == "01-color-transfer-reference.png"
    painting.unlink()  # the bundle needs nothing outside its folder
    r = runner.invoke(cli, ["process", str(images_dir), "--bundle", str(tmp_path / "b"), "--out", str(tmp_path / "o"), "-q"])
    assert r.exit_code == 0, r.output
    (tmp_path / "b" / "01-color-transfer-reference.png").write_bytes(b"swapped")
    one_line_error(runner.invoke(cli, ["process", str(images_dir), "--bundle", str(tmp_path / "b"), "--out",
                                       str(tmp_path / "o2")]), "does not match its checksum")


def test_a_folder_that_refuses_new_files_names_the_output(generators, tmp_path, runner, monkeypatch):
    import tempfile

    def mkstemp(*a, **kw):  # what a non-root user meets in a read-only folder (root ignores chmod)
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / ".g.png.x1.tmp"))
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    r = runner.invoke(cli, ["generate", str(generators["rgb"]), "--n", "2", "--out", str(tmp_path / "g.png")])
    one_line_error(r, f"{tmp_path / 'g.png'}: Permission denied", "choose a folder you can write to")


@pytest.mark.parametrize("args, needle", [
    (["export", "CKPT", "--out", "m.onnx", "--opset", "3"], "--opset"),
    (["export", "CKPT", "--out", "m.onnx", "--tolerance", "-1"], "--tolerance"),
    (["evaluate", "gan", "--model", "CKPT", "--samples", "0"], "--samples"),
    (["evaluate", "gan", "--model", "CKPT", "--pr-samples", "1"], "--pr-samples"),
    (["process", "CKPT", "--bundle", "b", "--n", "0", "--out", "o"], "--n"),
])
def test_bad_option_values_are_usage_errors_before_any_work(args, needle, tmp_path, runner):
    (tmp_path / "c.pt").write_bytes(b"not read: the options fail first")
    r = runner.invoke(cli, [str(tmp_path / "c.pt") if a == "CKPT" else a for a in args])
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output


@pytest.mark.parametrize("value, needle", [("abc", "ARTGAN_MAX_IMAGE_PIXELS must be a positive whole number"),
                                           ("0", "ARTGAN_MAX_IMAGE_PIXELS must be a positive whole number"),
                                           ("1_000", "over the limit of 1000 pixels")])
def test_the_pixel_cap_from_the_environment_is_checked(value, needle, images_dir, tmp_path, runner, monkeypatch):
    monkeypatch.setenv("ARTGAN_MAX_IMAGE_PIXELS", value)
    r = runner.invoke(cli, ["process", str(images_dir / "img0.png"), "--step", "lanczos", "--out", str(tmp_path / "o")])
    one_line_error(r, needle)


@pytest.mark.parametrize("override", ["generate.out=../../elsewhere", "generate.out=/tmp/elsewhere",
                                      "export.out=../model.onnx"])
def test_a_pipeline_cannot_write_outside_its_run_folder(override, tiny_pipeline, tmp_path, runner):
    for dry in ([], ["--dry-run"]):
        r = runner.invoke(cli, ["run", str(tiny_pipeline), "--set", override, "--runs", str(tmp_path / "runs"), *dry])
        one_line_error(r, "tiny.yaml:", ".out", "leads out of the run folder")
    assert not (tmp_path / "runs").exists()


def test_every_bound_names_a_schema_field():
    """FIELD_BOUNDS is keyed by schema class and field names: a rename in pipeline.py must not
    silently drop a check."""
    import dataclasses

    from artgan.config import FIELD_BOUNDS
    from artgan.pipeline import STAGE_KINDS

    schemas = {cls.__name__: {f.name for f in dataclasses.fields(cls)} for cls in STAGE_KINDS.values()}
    for schema, bounds in FIELD_BOUNDS.items():
        assert schema in schemas, schema
        assert set(bounds) <= schemas[schema], (schema, set(bounds) - schemas[schema])
