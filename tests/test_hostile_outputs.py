"""Hostile and careless inputs, second round (#26): silent wrong output, messages, resources.

Each case goes through the command line and checks the exit code, that the error is one line
naming the file, plugin or key, and that what was written before is intact. The models are tiny
ONNX graphs built with onnx's helper API: a generator that returns NaN, a model that lies about
its scale.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artgan.cli import cli


def one_line_error(result, *needles: str) -> str:
    """The CLI failed with exit code 1 and a single ``Error:`` line holding every needle."""
    out = result.output.strip()
    assert result.exit_code == 1, (result.exit_code, out)
    assert "Traceback" not in out and "a bug: please report it" not in out, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), out
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- tiny ONNX models -------------------------------------------------------------------------------

def _save(graph_nodes, inputs, outputs, path: Path, metadata: dict, initializers=()) -> Path:
    import onnx
    from onnx import helper
    model = helper.make_model(helper.make_graph(graph_nodes, "g", inputs, outputs, initializer=list(initializers)),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = f"artgan.{key}", json.dumps(value)
    onnx.save(model, str(path))
    return path


def make_generator(path: Path, kind: str = "ok") -> Path:
    """z (n, 4) -> (n, 3, 2, 2) images in [-1, 1]; ``kind``: ok, nan, inf, fewer (1 image
    whatever n), flat (a 2-D output)."""
    from onnx import TensorProto, helper, numpy_helper
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("image", TensorProto.FLOAT, None)  # any rank: some return 2-D
    inits = [numpy_helper.from_array(np.array([-1, 1, 2, 2], np.int64), "shape"),
             numpy_helper.from_array(np.array([-1, 12], np.int64), "flat"),
             numpy_helper.from_array(np.array(np.nan if kind == "nan" else np.inf, np.float32), "bad"),
             numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([1], np.int64), "one")]
    nodes = [helper.make_node("Reshape", ["z", "shape"], ["z4"]),
             helper.make_node("Concat", ["z4", "z4", "z4"], ["rgb"], axis=1),
             helper.make_node("Tanh", ["rgb"], ["good"])]
    last = "good"
    if kind in ("nan", "inf"):
        nodes.append(helper.make_node("Mul", ["good", "bad"], ["image"]))
    elif kind == "fewer":
        nodes.append(helper.make_node("Slice", ["good", "zero", "one", "zero"], ["image"]))
    elif kind == "flat":
        nodes.append(helper.make_node("Reshape", ["good", "flat"], ["image"]))
    else:
        nodes.append(helper.make_node("Identity", [last], ["image"]))
    md = {"task": "generate", "latent_dim": 4, "image_size": 2, "channels": 3, "value_range": [-1, 1]}
    return _save(nodes, [z], [y], path, md, inits)


def make_upscaler(path: Path, declared: int, actual: int, step: str = "superres") -> Path:
    """An image-to-image model that upscales ``actual`` times (nearest) but whose metadata says
    ``declared``."""
    from onnx import TensorProto, helper, numpy_helper
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3, "H", "W"])
    inits = [numpy_helper.from_array(np.array([1, 1, actual, actual], np.float32), "scales"),
             numpy_helper.from_array(np.zeros(0, np.float32), "roi")]
    nodes = [helper.make_node("Resize", ["image", "roi", "scales"], ["out"], mode="nearest")]
    md = {"task": "image-to-image", "scale": declared, "channels": 3, "value_range": [0, 1], "step": step,
          "size_multiple": 1}
    return _save(nodes, [x], [y], path, md, inits)


def write_png(path: Path, size=(24, 20), value=128) -> Path:
    Image.new("RGB", size, (value, 60, 200)).save(path)
    return path


# -- silent wrong output --------------------------------------------------------------------------

@pytest.mark.parametrize("kind, needle", [("nan", "NaN or infinite values"), ("inf", "NaN or infinite values"),
                                          ("fewer", "returned 1 image(s) for 4 latents"),
                                          ("flat", "not NCHW images")])
def test_generate_refuses_a_broken_generator_output_and_keeps_the_old_grid(runner, tmp_path, kind, needle):
    model = make_generator(tmp_path / f"{kind}.onnx", kind)
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"the grid from before")
    r = runner.invoke(cli, ["generate", str(model), "--n", "4", "--out", str(grid), "-q"])
    one_line_error(r, f"{kind}.onnx: the generator", needle)
    assert grid.read_bytes() == b"the grid from before"
    frames = tmp_path / "frames"
    r = runner.invoke(cli, ["generate", str(model), "--n", "4", "--out", str(frames), "-q"])
    one_line_error(r, f"{kind}.onnx", needle)
    assert not frames.exists()


def test_a_good_tiny_generator_still_generates(runner, tmp_path):
    model = make_generator(tmp_path / "ok.onnx")
    r = runner.invoke(cli, ["generate", str(model), "--n", "4", "--out", str(tmp_path / "grid.png"), "-q"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "grid.png").is_file()


def _bundle_with_generator(runner, tmp_path: Path, replacement: Path) -> Path:
    """A bundle made from a good generator, whose generator.onnx is then swapped (and its checksum
    updated, as a careless hand-edit would) for ``replacement``."""
    import hashlib
    good = make_generator(tmp_path / "good.onnx")
    bundle = tmp_path / "bundle"
    r = runner.invoke(cli, ["bundle", "--generator", str(good), "--step", "lanczos:scale=2", "--out", str(bundle)])
    assert r.exit_code == 0, r.output
    (bundle / "generator.onnx").write_bytes(replacement.read_bytes())
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["generator"]["sha256"] = hashlib.sha256(replacement.read_bytes()).hexdigest()
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    return bundle


def test_process_bundle_blames_the_generator_not_the_first_step(runner, tmp_path):
    bundle = _bundle_with_generator(runner, tmp_path, make_generator(tmp_path / "nan.onnx", "nan"))
    out = tmp_path / "art"
    out.mkdir()
    (out / "0000_0000.png").write_bytes(b"from before")
    r = runner.invoke(cli, ["process", "--bundle", str(bundle), "--n", "2", "--out", str(out), "-q"])
    line = one_line_error(r, "generator.onnx: the generator returned NaN or infinite values")
    assert "lanczos" not in line and "plugin" not in line
    assert (out / "0000_0000.png").read_bytes() == b"from before"


@pytest.mark.parametrize("declared, actual, step", [(1, 2, "superres"), (2, 4, "superres"), (1, 2, "style")])
def test_a_model_understating_its_scale_is_refused_not_cropped(runner, tmp_path, declared, actual, step):
    model = make_upscaler(tmp_path / "liar.onnx", declared, actual, step=step)
    photo = write_png(tmp_path / "photo.png")
    out = tmp_path / "out"
    r = runner.invoke(cli, ["process", str(photo), "--step", f"{step}:model={model}", "--out", str(out), "-q"])
    one_line_error(r, "liar.onnx", f"it scales x{actual}", f"artgan.scale says x{declared}")
    assert not list(out.rglob("*.png"))  # no image; process.json records the attempt


def test_an_honest_upscaler_still_runs_tiled(runner, tmp_path):
    model = make_upscaler(tmp_path / "x2.onnx", 2, 2)
    photo = write_png(tmp_path / "photo.png", size=(40, 36))
    r = runner.invoke(cli, ["process", str(photo), "--step", f"superres:model={model},tile=16,overlap=4",
                            "--out", str(tmp_path / "out"), "-q"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "out" / "photo.png").size == (80, 72)


@pytest.mark.parametrize("spec, needle", [
    ("style:model=starry-night,tile=64,overlap=-100", "style: overlap must be an integer >= 0"),
    ("superres:tile=64,overlap=-1", "superres: overlap must be an integer >= 0"),
    ("style:model=starry-night,tile=16", "style: tile must be an integer >= 64"),
    ("inpaint:box=1,1,4,4,tile=8", "inpaint: tile must be an integer >= 64"),
])
def test_tiling_parameters_are_checked_the_same_way_by_every_tiling_step(runner, tmp_path, spec, needle):
    photo = write_png(tmp_path / "photo.png")
    out = tmp_path / "out"
    r = runner.invoke(cli, ["process", str(photo), "--step", spec, "--out", str(out), "-q"])
    one_line_error(r, needle)
    assert not out.exists()


# -- plugins' steps and factories ----------------------------------------------------------------------

def _hostile_plugin():
    import types

    import artgan
    from artgan.steps import Step

    class Quitter(Step):
        name = "quitter"

        def __call__(self, images):
            raise SystemExit(0)

    class Interrupted(Step):
        name = "interrupted"

        def __call__(self, images):
            raise KeyboardInterrupt

    def broken_factory():
        return {}["missing"]

    def exiting_factory():
        raise SystemExit(0)

    module = types.ModuleType("artgan_hostile")

    @artgan.hookimpl
    def artgan_register_steps(register):
        register("quitter", Quitter)
        register("interrupted", Interrupted)
        register("broken-factory", broken_factory)
        register("exiting-factory", exiting_factory)
    module.artgan_register_steps = artgan_register_steps
    return module


@pytest.fixture
def hostile_plugin(monkeypatch):
    import warnings

    import artgan.plugins as P
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = P.make_plugin_manager((_hostile_plugin(),))
    monkeypatch.setattr(P, "_STATE", state)
    return state[1]


@pytest.mark.parametrize("step, needle", [
    ("quitter", "step 'quitter' (plugin 'artgan_hostile') failed on a batch of shape (1, 20, 24, 3) (SystemExit"),
    ("broken-factory", "step 'broken-factory' (plugin 'artgan_hostile'): its factory failed (KeyError: 'missing'); "
                       "a bug in the plugin 'artgan_hostile'"),
    ("exiting-factory", "step 'exiting-factory' (plugin 'artgan_hostile'): its factory failed (SystemExit"),
])
def test_a_plugin_that_exits_or_raises_is_named_and_the_exit_code_is_not_0(runner, tmp_path, hostile_plugin,
                                                                          step, needle):
    photo = write_png(tmp_path / "photo.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo.png").write_bytes(b"from before")
    r = runner.invoke(cli, ["process", str(photo), "--step", "lanczos:scale=1", "--step", step, "--out", str(out),
                            "--overwrite", "-q"])  # without --overwrite the existing output is kept, the input skipped
    one_line_error(r, needle)
    assert (out / "photo.png").read_bytes() == b"from before"


def test_ctrl_c_in_process_does_not_suggest_resume(runner, tmp_path, hostile_plugin):
    photo = write_png(tmp_path / "photo.png")
    r = runner.invoke(cli, ["process", str(photo), "--step", "interrupted", "--out", str(tmp_path / "out"), "-q"])
    line = one_line_error(r, "interrupted; the images written to", "are kept: run the same command again")
    assert "--resume" not in line


# -- messages ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("env, needle", [
    ({"ARTGAN_THREADS": "99999999999999999999"}, "ARTGAN_THREADS must be a whole number of threads from 1 to"),
    ({"ARTGAN_THREADS": "100000"}, "got '100000'"),
    ({"ARTGAN_PROVIDERS": "garbage"}, "ARTGAN_PROVIDERS: unknown provider 'garbage'; this onnxruntime has "),
])
def test_environment_variables_out_of_range_are_one_line(runner, tmp_path, env, needle):
    model = make_generator(tmp_path / "ok.onnx")
    r = runner.invoke(cli, ["generate", str(model), "--n", "2", "--out", str(tmp_path / "g.png"), "-q"], env=env)
    line = one_line_error(r, needle)
    assert "CPUExecutionProvider" in line or "THREADS" in line
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("args, needle", [
    (["--interpolate=-1,2"], "--interpolate: seeds are whole numbers from 0 to 2**63 - 1, got -1"),
    (["--interpolate=1,2", "--fps", "1e-9"], "--fps must be from 0.1 to 100 frames per second, got 1e-09"),
    (["--interpolate=1,2", "--fps", "nan"], "--fps must be from 0.1 to 100 frames per second, got nan"),
])
def test_generate_walk_arguments_out_of_range_are_one_line(runner, tmp_path, args, needle):
    model = make_generator(tmp_path / "ok.onnx")
    r = runner.invoke(cli, ["generate", str(model), *args, "--frames", "2", "--out", str(tmp_path / "w.gif"), "-q"])
    one_line_error(r, needle)
    assert not (tmp_path / "w.gif").exists()


@pytest.mark.parametrize("override, needle", [
    ("seed=99999999999999999999999999", "seed: expected an integer from -(2**63 - 1) to 2**63 - 1"),
    ("train.seed=99999999999999999999999999", "stages[0].train.seed: must be at most 9223372036854775807"),
    ("train.architecture.latent_dim=0", "latent_dim must be an integer >= 1, got 0"),
    ("train.architecture.g_width=0", "g_width must be an integer >= 1, got 0"),
    ("train.device=gpu0", "stages[0].train.device: expected auto, cpu, cuda, cuda:N or mps, got 'gpu0'"),
    ("train.precision=fp8", "stages[0].train.precision: expected auto, fp32 or bf16, got 'fp8'"),
    ("train.architecture.lr=.inf", "train.architecture.lr: architecture 'dcgan' (plugin 'gan'): expected a finite "
                                   "number, got inf"),
    ("export.opset=99", "stages[1].export.opset: must be at most 20"),
])
def test_dry_run_refuses_values_that_would_fail_after_the_run_folder_is_made(runner, tiny_pipeline, tmp_path,
                                                                             override, needle):
    out = tmp_path / "run"
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--set", override, "--dry-run", "--out", str(out)])
    one_line_error(r, "tiny.yaml", needle)
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--set", override, "--out", str(out), "-q"])
    one_line_error(r, needle)
    assert not out.exists()


def test_a_valid_255_character_file_name_can_be_written(runner, tmp_path):
    model = make_generator(tmp_path / "ok.onnx")
    name = "g" * 251 + ".png"
    r = runner.invoke(cli, ["generate", str(model), "--n", "2", "--out", str(tmp_path / name), "-q"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / name).is_file() and [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# -- resources: a resampling step refuses a result that would not fit in memory ----------------------

@pytest.mark.parametrize("step", ["lanczos", "bicubic"])
def test_an_upscale_that_would_not_fit_in_memory_is_refused_with_the_estimate(runner, tmp_path, monkeypatch, step):
    import artgan.tiling
    monkeypatch.setattr(artgan.tiling, "available_memory", lambda: 100 * 2**10)  # 100 KiB: a cheap stand-in
    photo = write_png(tmp_path / "photo.png", size=(40, 30))
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo.png").write_bytes(b"from before")
    r = runner.invoke(cli, ["process", str(photo), "--step", f"{step}:scale=4", "--out", str(out), "--overwrite",
                            "-q"])
    line = one_line_error(r, "photo.png: ", f"{step}: upscaling a 40x30 image x4 to 160x120 needs about 492 KiB of "
                                            "memory, more than the 100 KiB available", "use a smaller image")
    assert "out of memory" not in line
    assert (out / "photo.png").read_bytes() == b"from before"
    # with the memory there (or where the machine does not say), it runs
    monkeypatch.setattr(artgan.tiling, "available_memory", lambda: None)
    r = runner.invoke(cli, ["process", str(photo), "--step", f"{step}:scale=4", "--out", str(out), "--overwrite",
                            "-q"])
    assert r.exit_code == 0, r.output
    assert Image.open(out / "photo.png").size == (160, 120)


def test_the_banded_resample_is_the_whole_image_resize(monkeypatch):
    import artgan_superres.steps as steps
    from artgan_superres.resize import resize

    image = np.random.default_rng(0).random((37, 23, 3), dtype=np.float32)
    for scale in (2, 3, 5):
        whole = np.clip(resize(image, 23 * scale, 37 * scale, "lanczos"), 0, 1)
        assert np.array_equal(steps.LanczosStep(scale)(image[None])[0], whole)  # one band: the same bytes
        monkeypatch.setattr(steps, "BAND_BYTES", 23 * scale * 4 * 5)  # bands of ~5 rows
        banded = steps.LanczosStep(scale)(image[None])[0]
        monkeypatch.setattr(steps, "BAND_BYTES", 64 * 2**20)
        assert banded.shape == whole.shape and np.abs(banded - whole).max() < 5e-7  # float rounding only


def test_a_process_run_that_made_nothing_does_not_lock_its_out_folder(runner, tmp_path):
    """The first run fails on its only image (a model lying about its scale), leaving only its
    record; the next run, with other steps, may use the folder: there is nothing of the first's to mix."""
    model = make_upscaler(tmp_path / "liar.onnx", 1, 2)
    photo = write_png(tmp_path / "photo.png")
    out = tmp_path / "out"
    r = runner.invoke(cli, ["process", str(photo), "--step", f"superres:model={model}", "--out", str(out), "-q"])
    one_line_error(r, "liar.onnx")
    r = runner.invoke(cli, ["process", str(photo), "--step", "lanczos:scale=2", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert Image.open(out / "photo.png").size == (48, 40)
    # a folder holding another chain's images is still refused
    r = runner.invoke(cli, ["process", str(photo), "--step", "bicubic:scale=2", "--out", str(out), "-q"])
    one_line_error(r, "holds the outputs of other steps")
