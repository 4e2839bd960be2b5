"""Issue #26, security and data loss: a bundle reads only files it holds, a run folder belongs to
the run, replacing needs --force and every install appears whole or not at all. Each case goes
through the CLI: a non-zero exit, one line naming the file, key or plugin, and nothing made
before is lost. docs/errors.md lists these cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from artgan.cli import cli
from artgan.images import load_image, save_image
from superres_testing import images_dir, sr_models, with_models  # noqa: F401


def one_line_error(result, *needles: str) -> str:
    """Exit code 1, no traceback, and a last line ``Error: ...`` holding every needle."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error:"), result.output
    for needle in needles:
        assert needle in last, f"{needle!r} not in {last!r}"
    return last


def snapshot(folder) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def exported_generator(tmp_path_factory):
    """An untrained 32 px DCGAN generator, exported."""
    import torch

    from artgan.data import DatasetInfo
    from artgan.export import export_onnx
    from artgan_gan.dcgan import DCGANRecipe

    path = tmp_path_factory.mktemp("gen") / "gen.onnx"
    torch.manual_seed(0)
    recipe = DCGANRecipe(info=DatasetInfo(image_size=32, channels=3), latent_dim=8, g_width=8, d_width=8)
    recipe.train(False)
    export_onnx(recipe.export_spec(), path)
    return path


# -- a bundle is closed ---------------------------------------------------------------------------

def _process(runner, bundle, images, out):
    return runner.invoke(cli, ["process", str(images), "--bundle", str(bundle), "--out", str(out), "-q"])


def test_a_bundle_carries_a_named_reference_and_never_reads_one_planted_where_it_runs(
        runner, images_dir, tmp_path, monkeypatch):
    """`color-transfer:reference=starry-night` is a name looked up on the model search path: the
    file it names is copied in and checksummed, and a file called `starry-night` in the folder
    where the bundle runs changes nothing."""
    monkeypatch.chdir(tmp_path)
    bundle = tmp_path / "b"
    r = runner.invoke(cli, ["bundle", "--step", "color-transfer:reference=starry-night", "--out", str(bundle)])
    assert r.exit_code == 0, r.output
    step = json.loads((bundle / "bundle.json").read_text())["steps"][0]
    assert "reference" not in step["params"] and set(step["files"]) == {"reference"}
    assert (bundle / step["files"]["reference"]["file"]).is_file()
    clean = _process(runner, bundle, images_dir, tmp_path / "clean")
    assert clean.exit_code == 0, clean.output
    work = tmp_path / "work"
    work.mkdir()
    save_image(work / "starry-night", np.zeros((16, 16, 3), np.float32) + [1.0, 0.0, 0.0])  # a planted "painting"
    Image.open(work / "starry-night").verify()
    monkeypatch.chdir(work)
    planted = _process(runner, bundle, images_dir, tmp_path / "planted")
    assert planted.exit_code == 0, planted.output
    for made in sorted((tmp_path / "clean").rglob("*.png")):
        again = tmp_path / "planted" / made.relative_to(tmp_path / "clean")
        assert np.array_equal(load_image(made), load_image(again)), made


@pytest.mark.parametrize("value, needle", [
    ("secret.png", "in the current folder"),  # read from where the bundle runs
    ("./secret.png", "names a file outside the bundle"),
    ("starry-night", "outside the bundle"),  # a name looked up on the model search path
])
def test_a_hand_edited_manifest_cannot_make_a_bundle_read_outside_it(value, needle, runner, images_dir, tmp_path,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_image(tmp_path / "secret.png", np.ones((8, 8, 3), np.float32))
    bundle = tmp_path / "b"
    assert runner.invoke(cli, ["bundle", "--step", "color-transfer:reference=starry-night",
                               "--out", str(bundle)]).exit_code == 0
    manifest = json.loads((bundle / "bundle.json").read_text())
    del manifest["steps"][0]["files"]
    manifest["steps"][0]["params"]["reference"] = value
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    one_line_error(_process(runner, bundle, images_dir, tmp_path / "out"), "bundle.json: steps[0].params.reference",
                   needle)
    assert not (tmp_path / "out").exists()


def test_an_inpainting_mask_travels_with_the_bundle_and_is_never_read_from_the_current_folder(
        runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hole = np.zeros((24, 40, 3), np.float32)
    hole[8:14, 10:20] = 1.0
    save_image(tmp_path / "hole.png", hole)
    save_image(tmp_path / "photo.png", np.random.default_rng(0).random((24, 40, 3)).astype(np.float32))
    bundle = tmp_path / "b"
    r = runner.invoke(cli, ["bundle", "--step", "inpaint-biharmonic:mask=hole.png", "--out", str(bundle)])
    assert r.exit_code == 0, r.output
    step = json.loads((bundle / "bundle.json").read_text())["steps"][0]
    assert set(step["files"]) == {"mask"} and "mask" not in step["params"]
    manifest = json.loads((bundle / "bundle.json").read_text())
    del manifest["steps"][0]["files"]
    manifest["steps"][0]["params"]["mask"] = "hole.png"  # as a hand edit would name it
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    one_line_error(_process(runner, bundle, tmp_path / "photo.png", tmp_path / "out"),
                   "steps[0].params.mask", "outside the bundle")
    assert not (tmp_path / "out").exists()


# -- bundle --force -------------------------------------------------------------------------------

def test_bundle_force_replaces_only_a_bundle_or_an_empty_folder(runner, tmp_path):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "data.txt").write_text("precious")
    (victim / "sub" / "more.txt").write_text("more")
    before = snapshot(victim)
    r = runner.invoke(cli, ["bundle", "--step", "lanczos:scale=2", "--out", str(victim), "--force"])
    one_line_error(r, str(victim), "not a bundle (no bundle.json)", "--force only replaces a bundle")
    assert snapshot(victim) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.invoke(cli, ["bundle", "--step", "lanczos:scale=2", "--out", str(empty), "--force"]).exit_code == 0
    r = runner.invoke(cli, ["bundle", "--step", "lanczos:scale=3", "--out", str(empty), "--force"])
    assert r.exit_code == 0, r.output
    assert json.loads((empty / "bundle.json").read_text())["steps"][0]["params"] == {"scale": 3}


KILL_BETWEEN_RENAMES = """
import os, sys
real, calls = os.replace, []
def replace(src, dst):
    calls.append(dst)
    if len(calls) == 2:  # the old bundle is aside, the new one not yet in place: a kill
        os._exit(9)
    real(src, dst)
os.replace = replace
from artgan.cli import cli
cli(sys.argv[1:])
"""


def test_a_kill_between_the_renames_of_bundle_force_never_loses_the_old_bundle(runner, tmp_path):
    out = tmp_path / "b"
    assert runner.invoke(cli, ["bundle", "--step", "lanczos:scale=2", "--out", str(out)]).exit_code == 0
    old = snapshot(out)
    killed = subprocess.run([sys.executable, "-c", KILL_BETWEEN_RENAMES, "bundle", "--step", "lanczos:scale=3",
                             "--out", str(out), "--force"], capture_output=True, text=True, timeout=120)
    assert killed.returncode == 9, killed.stderr
    assert not out.exists()  # the window the kill hit
    hour_ago = time.time() - 7200  # the next bundle comes later: every leftover looks stale
    for p in tmp_path.glob(".b.*"):
        for q in [p, *p.rglob("*")]:
            os.utime(q, (hour_ago, hour_ago), follow_symlinks=False)
    r = runner.invoke(cli, ["bundle", "--step", "lanczos:scale=4", "--out", str(out)])
    one_line_error(r, str(out), "--force")  # the old bundle is back, so this one needs --force
    assert snapshot(out) == old
    assert not list(tmp_path.glob(".b.*"))


# -- report.html ----------------------------------------------------------------------------------

def test_report_escapes_sample_file_names(runner, tmp_path):
    run = tmp_path / "run"
    name = "iteration_<img src=x onerror=alert(1)>"
    save_image(run / "samples" / f"{name}.png", np.zeros((8, 8, 3), np.float32))
    r = runner.invoke(cli, ["report", str(run)])
    assert r.exit_code == 0, r.output
    page = (run / "report.html").read_text()
    assert "<img src=x" not in page and "onerror=alert(1)>" not in page
    assert "iteration_&lt;img src=x onerror=alert(1)&gt;" in page


FOREIGN_LINES = ['{"iteration": null}', "garbage", "[1, 2]", '{"iteration": "abc", "G_loss": 1}', "\udcff\udcfe"]


@pytest.mark.parametrize("foreign", FOREIGN_LINES)
def test_report_leaves_out_a_foreign_metrics_line_and_says_so_once(foreign, runner, tmp_path):
    run = tmp_path / "run"
    save_image(run / "samples" / "iteration_000002.png", np.zeros((8, 8, 3), np.float32))
    good = [{"iteration": 1, "G_loss": 0.5}, {"iteration": 2, "G_loss": 0.25}]
    lines = [json.dumps(good[0]), foreign, foreign, json.dumps(good[1])]
    (run / "metrics.jsonl").write_bytes("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    r = runner.invoke(cli, ["report", str(run)])
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.output.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "metrics.jsonl: 2 line(s) are not artgan training metrics" in warnings[0]
    assert "the first line 2:" in warnings[0] and "left out of the report" in warnings[0]
    assert "G_loss (last 0.25)" in (run / "report.html").read_text()


def test_a_foreign_metrics_line_does_not_fail_a_resumed_run_after_its_work(runner, tiny_run):
    with open(tiny_run / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"iteration": null}\ngarbage\n')
    (tiny_run / "report.html").unlink()
    r = runner.invoke(cli, ["run", str(tiny_run / "pipeline.yaml"), "--out", str(tiny_run), "--resume", "-q",
                            "--set", "train.iterations=8"])
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.output.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "metrics.jsonl: 1 line(s) are not artgan training metrics" in warnings[0]
    assert (tiny_run / "report.html").exists()
    import torch
    assert torch.load(tiny_run / "checkpoints" / "last.pt", weights_only=True)["iteration"] == 8


# -- pipelines: train.num_workers, a stage's out:, the run folder ---------------------------------

GENERATE_ONLY = """\
# my own notes about this pipeline
name: gen
stages:
  - generate: {{model: {model}, n: 2, seed: 0, batch_size: 2}}
"""


@pytest.mark.parametrize("dry_run", [True, False])
def test_num_workers_is_bounded(dry_run, runner, tiny_pipeline, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--set", "train.num_workers=1000000", "--out", str(out),
                            "-q"] + (["--dry-run"] if dry_run else []))
    one_line_error(r, "train.num_workers", "must be <= 64", "1000000")
    assert not out.exists()


@pytest.mark.parametrize("override, own", [
    ("export.out=checkpoints/last.pt", "checkpoints"),
    ("export.out=./pipeline.yaml", "pipeline.yaml"),
    ("generate.out=samples", "samples"),
    ("export.out=report.html", "report.html"),
])
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_stage_out_cannot_overwrite_the_runs_own_files(override, own, dry_run, runner, tiny_pipeline, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--set", override, "--out", str(out), "-q"]
                      + (["--dry-run"] if dry_run else []))
    one_line_error(r, f".out: '{override.split('=')[1]}' would overwrite the run's own {own}")
    assert not out.exists()


@pytest.mark.parametrize("name, text", [
    ("pipeline.yaml", None),  # the user's own pipeline, run into its own folder
    ("metrics.jsonl", '{"theirs": 1}\n'),
    ("report.html", "<p>my report</p>"),
    ("generated", None),  # a folder the generate stage writes into
])
def test_run_out_refuses_a_folder_holding_what_the_run_writes(name, text, runner, exported_generator, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    pipeline = (folder if name == "pipeline.yaml" else tmp_path) / "pipeline.yaml"
    pipeline.write_text(GENERATE_ONLY.format(model=exported_generator))
    if name == "generated":
        (folder / "generated").mkdir()
        (folder / "generated" / "grid.png").write_bytes(b"theirs")
    elif text is not None:
        (folder / name).write_text(text)
    before = snapshot(folder)
    r = runner.invoke(cli, ["run", str(pipeline), "--out", str(folder), "-q"])
    one_line_error(r, str(folder), f"holds {name}", "not an artgan run folder (no .artgan-run)")
    assert snapshot(folder) == before


def test_a_run_folder_is_marked_and_others_files_beside_it_are_kept(runner, exported_generator, tmp_path):
    pipeline = tmp_path / "gen.yaml"
    pipeline.write_text(GENERATE_ONLY.format(model=exported_generator))
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    for _ in range(2):  # the second run finds the marker: the folder is the run's
        r = runner.invoke(cli, ["run", str(pipeline), "--out", str(folder), "-q"])
        assert r.exit_code == 0, r.output
    assert (folder / ".artgan-run").is_file() and (folder / "generated" / "grid.png").is_file()
    assert (folder / "notes.txt").read_text() == "mine"


def test_resume_refuses_a_folder_no_run_made(runner, tiny_pipeline, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "metrics.jsonl").write_text('{"theirs": 1}\n')
    before = snapshot(folder)
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--out", str(folder), "--resume", "-q"])
    one_line_error(r, str(folder), "not an artgan run folder (no .artgan-run)", "--resume")
    assert snapshot(folder) == before


def test_resume_into_an_empty_folder_starts_a_run(runner, exported_generator, tmp_path):
    pipeline = tmp_path / "gen.yaml"
    pipeline.write_text(GENERATE_ONLY.format(model=exported_generator))
    folder = tmp_path / "new"
    folder.mkdir()
    r = runner.invoke(cli, ["run", str(pipeline), "--out", str(folder), "--resume", "-q"])
    assert r.exit_code == 0, r.output
    assert (folder / ".artgan-run").is_file() and (folder / "generated" / "grid.png").is_file()


def test_a_failed_resume_leaves_the_runs_pipeline_yaml_as_it_was(runner, tiny_pipeline, tmp_path):
    run = tmp_path / "run"
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    before = snapshot(run)
    r = runner.invoke(cli, ["run", str(run / "pipeline.yaml"), "--out", str(run), "--resume", "-q",
                            "--set", "train.architecture.g_width=16"])
    one_line_error(r, "checkpoints/last.pt", "does not fit the pipeline's train stage", "pipeline.yaml is unchanged")
    assert snapshot(run) == before
    # and the run's own pipeline still resumes it
    r = runner.invoke(cli, ["run", str(run / "pipeline.yaml"), "--out", str(run), "--resume", "-q",
                            "--set", "train.iterations=9"])
    assert r.exit_code == 0, r.output


# -- --resume and export with a checkpoint that does not fit, or is not one -----------------------

def _damaged(ckpt_path, kind, dest):
    """A copy of a tiny run's checkpoint, damaged as ``kind`` says (or another recipe's, or none)."""
    import torch

    from artgan import checkpoints
    from artgan.plugins import get_registry

    ckpt = torch.load(ckpt_path, weights_only=True)
    if kind == "iteration-abc":  # what a hand edit or another program leaves
        ckpt["iteration"] = "abc"
    elif kind == "nan-weights":
        ckpt["state"]["modules"]["generator"]["net.0.weight"].fill_(float("nan"))
    elif kind == "another-recipe":  # a .pt another recipe wrote: sngan's networks, same data
        from artgan.data import DatasetInfo
        info = DatasetInfo(**ckpt["recipe"]["info"])
        recipe = get_registry().create("architecture", "sngan", info=info, loss=None, latent_dim=16)
        ckpt["recipe"] = {**ckpt["recipe"], "architecture": "sngan", "params": {"latent_dim": 16}}
        ckpt["state"] = recipe.state_dict()
    elif kind == "not-a-checkpoint":
        dest.write_bytes(b"PK\x03\x04 not a checkpoint at all" * 10)
        return
    elif kind == "another-programs-pt":
        torch.save({"model": {"w": torch.zeros(3)}, "epoch": 4}, dest)
        return
    checkpoints.save(dest, {k: v for k, v in ckpt.items() if k != "format"})


@pytest.fixture
def tiny_run(tiny_checkpoint, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(tiny_checkpoint.parent.parent, run)
    return run


@pytest.mark.parametrize("override, differs", [
    ("train.architecture.g_width=16", "architecture.g_width is 8 in the checkpoint, 16 in the pipeline"),
    ("train.architecture.latent_dim=8", "architecture.latent_dim is 16 in the checkpoint, 8 in the pipeline"),
    ("train.architecture.name=sngan", "architecture is 'dcgan' in the checkpoint, 'sngan' in the pipeline"),
    ("train.dataset.image_size=16", "dataset.image_size is 32 in the checkpoint, 16 in the pipeline"),
])
def test_resume_with_a_changed_architecture_names_what_differs(override, differs, runner, tiny_run):
    before = snapshot(tiny_run)
    r = runner.invoke(cli, ["run", str(tiny_run / "pipeline.yaml"), "--out", str(tiny_run), "--resume", "-q",
                            "--set", override])
    line = one_line_error(r, "checkpoints/last.pt", f"does not fit the pipeline's train stage ({differs})")
    assert "unexpected" not in line and "size mismatch" not in line
    assert snapshot(tiny_run) == before


@pytest.mark.parametrize("kind, needles", [
    ("another-recipe", ["does not fit the pipeline's train stage (architecture is 'sngan' in the checkpoint, "
                        "'dcgan' in the pipeline; architecture.g_width is not set in the checkpoint"]),
    ("not-a-checkpoint", ["not a readable artgan checkpoint, truncated or not one"]),
    ("another-programs-pt", ["not an artgan checkpoint"]),
    ("iteration-abc", ["the checkpoint's iteration is 'abc', not a whole number >= 0"]),
    ("nan-weights", ["the checkpoint's weights are not finite (NaN or infinite values in generator.net.0.weight)",
                     "use an earlier checkpoint"]),
])
def test_resume_from_a_foreign_or_damaged_checkpoint_is_one_line_naming_it(kind, needles, runner, tiny_run):
    _damaged(tiny_run / "checkpoints" / "last.pt", kind, tiny_run / "checkpoints" / "last.pt")
    before = snapshot(tiny_run)
    r = runner.invoke(cli, ["run", str(tiny_run / "pipeline.yaml"), "--out", str(tiny_run), "--resume", "-q",
                            "--set", "train.iterations=9"])
    line = one_line_error(r, "checkpoints/last.pt", *needles)
    assert "unexpected" not in line and "random numbers" not in line and "non-finite D loss" not in line
    assert snapshot(tiny_run) == before


@pytest.mark.parametrize("kind, needle", [
    ("iteration-abc", "c.pt: the checkpoint's iteration is 'abc', not a whole number >= 0"),
    ("nan-weights", "c.pt: the checkpoint's weights are not finite (NaN or infinite values in generator.net.0.weight)"),
])
def test_export_of_a_damaged_checkpoint_names_the_file_and_the_fault(kind, needle, runner, tiny_checkpoint, tmp_path):
    path = tmp_path / "c.pt"
    _damaged(tiny_checkpoint, kind, path)
    out = tmp_path / "m.onnx"
    out.write_bytes(b"from before")
    line = one_line_error(runner.invoke(cli, ["export", str(path), "--out", str(out)]), needle)
    assert "random numbers" not in line and "unexpected" not in line
    assert out.read_bytes() == b"from before"


# -- export: the model and its card together -------------------------------------------------------

def _export(runner, checkpoint, out, *extra):
    return runner.invoke(cli, ["export", str(checkpoint), "--out", str(out), "--no-verify", *extra])


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from click.testing import CliRunner

    from conftest import TINY_PIPELINE

    root = tmp_path_factory.mktemp("ckpt")
    (root / "tiny.yaml").write_text(TINY_PIPELINE.replace("  - generate: {n: 4, seed: 0}\n", ""))
    r = CliRunner().invoke(cli, ["run", str(root / "tiny.yaml"), "--out", str(root / "run"), "-q"])
    assert r.exit_code == 0, r.output
    return root / "run" / "checkpoints" / "last.pt"


def test_ctrl_c_while_an_export_is_put_in_place_leaves_model_and_card_together(runner, tiny_checkpoint, tmp_path,
                                                                                monkeypatch):
    """A Ctrl-C (SIGINT) between the renames is held until all are done: the new model sits beside
    its own card, and the message says the export is written, not just "interrupted"."""
    import signal

    out = tmp_path / "m.onnx"
    assert _export(runner, tiny_checkpoint, out, "--opset", "20").exit_code == 0
    real = os.replace

    def replace_and_ctrl_c(src, dst):
        real(src, dst)
        if str(dst).endswith(".card.json"):  # after the first of the three renames
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(os, "replace", replace_and_ctrl_c)
    r = _export(runner, tiny_checkpoint, out, "--opset", "18")
    one_line_error(r, "interrupted after the export was written", str(out), "its card are complete")
    card = json.loads(out.with_name("m.card.json").read_text())
    import onnx
    assert card["metadata"]["opset"] == 18 == onnx.load(str(out)).opset_import[0].version
    assert card["bytes"] == out.stat().st_size
    assert "opset" in out.with_name("m.card.md").read_text()


def test_ctrl_c_before_an_export_is_in_place_writes_nothing(runner, tiny_checkpoint, tmp_path, monkeypatch):
    import artgan.export.wrapper as wrapper

    out = tmp_path / "m.onnx"
    assert _export(runner, tiny_checkpoint, out).exit_code == 0
    before = snapshot(tmp_path)

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(wrapper, "set_metadata", ctrl_c)
    r = _export(runner, tiny_checkpoint, out, "--opset", "18")
    one_line_error(r, "export interrupted: nothing written", str(out))
    assert snapshot(tmp_path) == before


# -- artgan synth ---------------------------------------------------------------------------------

def _cgan_with_class_names(tmp_path, names):
    import onnx
    import torch

    from artgan.data import DatasetInfo
    from artgan.export import export_onnx
    from artgan.export.wrapper import set_metadata
    from artgan.plugins import get_registry
    from artgan.runtime import Model

    torch.manual_seed(0)
    info = DatasetInfo(image_size=16, channels=1, num_classes=3, name="test")
    recipe = get_registry().create("architecture", "dcgan", info=info, loss=None, conditional=True, latent_dim=8,
                                   g_width=4, d_width=4)
    model = tmp_path / "cgan.onnx"
    export_onnx(recipe.export_spec(), model, extra_metadata={"run": "test", "train_steps": 0})
    metadata = dict(Model(model).metadata)
    metadata["class_names"] = names
    proto = onnx.load(str(model))
    set_metadata(proto, metadata)
    onnx.save(proto, str(model))
    return model


@pytest.mark.parametrize("names", [["cat", "dog", "cat"], ["Cat", "dog", "cat"]])
def test_synth_refuses_duplicate_class_names(names, runner, tmp_path):
    model = _cgan_with_class_names(tmp_path, names)
    out = tmp_path / "synth"
    r = runner.invoke(cli, ["synth", str(model), "--per-class", "2", "--out", str(out), "-q"])
    one_line_error(r, "cgan.onnx", "class_names", repr(names[0]), repr(names[2]))
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("names", [[1, 2, 3], "abc", [None, "a", "b"], [["a"], "b", "c"], {"a": 1, "b": 2, "c": 3},
                                   ["a", "b", 3.5]])
def test_synth_refuses_class_names_that_are_not_strings(names, runner, tmp_path):
    model = _cgan_with_class_names(tmp_path, names)
    out = tmp_path / "synth"
    out.mkdir()
    r = runner.invoke(cli, ["synth", str(model), "--per-class", "2", "--out", str(out), "-q"])
    line = one_line_error(r, "cgan.onnx: metadata class_names must be a list of strings, one folder name per class, "
                             f"got {names!r}")
    assert "unexpected" not in line and not any(out.iterdir())


# -- artgan style train: replacing needs --force; an install is whole or absent ------------------

@pytest.fixture
def style_data(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(8):
        y, x = np.mgrid[0:48, 0:64] / 64
        photo = np.stack([x, y, 0.5 * (x + y)], -1) * rng.uniform(0.5, 1) + rng.normal(0, 0.03, (48, 64, 3))
        save_image(tmp_path / "photos" / f"{i:02d}.png", np.clip(photo, 0, 1))
    stripes = 0.5 + 0.5 * np.sin(np.add.outer(np.arange(140), np.arange(160)) / 2.0)
    save_image(tmp_path / "painting.png", np.stack([0.2 * stripes, 0.3 * stripes, 0.4 + 0.5 * stripes], -1))
    return tmp_path


def _style_train(runner, data, name, *extra, minutes="0.5"):
    return runner.invoke(cli, ["style", "train", str(data / "painting.png"), "--name", name, "--minutes", minutes,
                               "--photos", str(data / "photos"), "--to", str(data / "models"), "--runs",
                               str(data / "runs"), "-q", *extra])


def test_style_train_does_not_replace_an_installed_model_without_force(runner, style_data):
    style = style_data / "models" / "style"
    style.mkdir(parents=True)
    (style / "mine.onnx").write_bytes(b"the installed model")
    (style / "mine.card.json").write_text("{}")
    before = snapshot(style)
    r = _style_train(runner, style_data, "mine", minutes="2")
    one_line_error(r, "style model 'mine' is already installed", "--force")
    assert snapshot(style) == before
    assert not (style_data / "runs").exists()  # refused before any training


def test_a_failed_install_leaves_no_half_model_and_the_old_one_intact(runner, style_data, tiny_and_quick, monkeypatch):
    """Out of memory while the contact sheet is made: nothing of the new model is installed, the
    old one (replaced with --force) is as it was, and `style:model=NAME` never finds a half model."""
    from artgan_style import build as style_build

    def out_of_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(style_build, "_contact_sheet", out_of_memory)
    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(style_data / "models"))
    style = style_data / "models" / "style"
    style.mkdir(parents=True)
    (style / "old.reference.json").write_text("{}")  # an older model's file: untouched
    r = _style_train(runner, style_data, "fresh")
    assert r.exit_code == 1 and "out of memory" in r.output and "Traceback" not in r.output
    assert sorted(p.name for p in style.iterdir()) == ["old.reference.json"]  # no fresh.* at all, no staging left
    r = runner.invoke(cli, ["process", str(style_data / "photos" / "00.png"), "--step", "style:model=fresh",
                            "--out", str(style_data / "styled"), "-q"])
    one_line_error(r, "no model named 'fresh'")


@pytest.mark.parametrize("minutes", ["0.5", "1.9"])
def test_style_train_refuses_a_budget_too_short_to_make_a_model(minutes, runner, style_data):
    """The work after training alone takes longer than 30 s: such a budget is refused at once, with
    the minimum, rather than overrun (--minutes 0.5 took three times its budget)."""
    import time as _time
    t = _time.monotonic()
    r = _style_train(runner, style_data, "short", minutes=minutes)
    one_line_error(r, f"--minutes {minutes}: too short to make a model within it", "give --minutes 2 or more")
    assert _time.monotonic() - t < 5 and not (style_data / "runs").exists() and not (style_data / "models").exists()


# -- artgan evaluate style on images smaller than its measures need ----------------------------------

def _noise_png(path, size):
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("photo_size, painting_size, needle", [
    ((1, 1), (64, 64), "one.png: the photo is 1x1 pixels, smaller than the 7x7 patches"),
    ((3, 2), (64, 64), "one.png: the photo is 3x2 pixels, smaller than the 7x7 patches"),
    ((40, 6), (64, 64), "one.png: the photo is 40x6 pixels"),
    ((24, 24), (1, 1), "painting.png: the painting is 1x1 pixels, smaller than the 7x7 patches"),
])
def test_evaluate_style_on_images_too_small_to_measure_is_one_line(photo_size, painting_size, needle, runner,
                                                                    tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    _noise_png(data / "big.png", (32, 24))
    _noise_png(data / "one.png", photo_size)
    painting = _noise_png(tmp_path / "painting.png", painting_size)
    results = tmp_path / "results.json"
    results.write_text("from before")
    r = runner.invoke(cli, ["evaluate", "style", "--data", str(data), "--split", "all", "--painting", str(painting),
                            "--model", "none", "--out", str(results), "-q"])
    line = one_line_error(r, needle)
    assert "unexpected" not in line
    assert results.read_text() == "from before"
