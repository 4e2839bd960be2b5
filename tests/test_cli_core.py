"""End-to-end tests of the walking skeleton through the CLI: run, resume, errors, plugins, info."""

from __future__ import annotations

import json

import pytest

from artgan.cli import cli
from artgan.files import read_jsonl


def run_cli(runner, *args):
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_tiny_pipeline_trains_exports_and_generates(runner, tiny_pipeline, tmp_path):
    out = tmp_path / "run"
    result = run_cli(runner, "run", tiny_pipeline, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert (out / "checkpoints" / "last.pt").is_file()
    # a sample grid per checkpoint (every 3 iterations of 6)
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["iteration_000003.png", "iteration_000006.png"]
    precision, *metrics = read_jsonl(out / "metrics.jsonl")
    assert precision["iteration"] == 0 and "fp32" in precision["precision"]["reason"]
    assert [m["iteration"] for m in metrics] == [2, 4, 6]
    assert all("D_loss" in m and "G_loss" in m for m in metrics)
    assert (out / "export" / "generator.onnx").is_file()
    card = json.loads((out / "export" / "generator.card.json").read_text())
    assert card["verification"]["max_abs_diff"] < 1e-3
    assert card["metadata"]["task"] == "generate"
    assert (out / "generated" / "grid.png").is_file()
    assert len(list((out / "generated").glob("0000_*.png"))) == 4
    assert (out / "pipeline.yaml").is_file()
    assert not list(out.rglob("*.tmp")), "temporary files left behind"


def test_resume_continues_the_same_loss_sequence(runner, tiny_pipeline, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    log = ("--set", "train.log_every=1")
    assert run_cli(runner, "run", tiny_pipeline, "--out", full, "-q", *log).exit_code == 0
    # stop after 3 iterations (as if killed after the checkpoint at iteration 3), then resume to 6
    r = run_cli(runner, "run", tiny_pipeline, "--out", part, "-q", "--set", "train.iterations=3", *log)
    assert r.exit_code == 0, r.output
    r = run_cli(runner, "run", tiny_pipeline, "--out", part, "-q", "--resume", *log)
    assert r.exit_code == 0, r.output
    a = {m["iteration"]: m for m in read_jsonl(full / "metrics.jsonl") if "precision" not in m}
    b = {m["iteration"]: m for m in read_jsonl(part / "metrics.jsonl") if "precision" not in m}
    assert sorted(b) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        assert b[step]["D_loss"] == pytest.approx(a[step]["D_loss"], rel=1e-5)
        assert b[step]["G_loss"] == pytest.approx(a[step]["G_loss"], rel=1e-5)


def test_existing_run_folder_is_not_overwritten(runner, tiny_pipeline, tmp_path):
    out = tmp_path / "run"
    assert run_cli(runner, "run", tiny_pipeline, "--out", out, "-q").exit_code == 0
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--out", str(out), "-q"])
    assert r.exit_code == 1
    assert "--resume" in r.output


def test_default_run_folders_never_collide(runner, tiny_pipeline, tmp_path):
    runs = tmp_path / "runs"
    for _ in range(2):
        assert run_cli(runner, "run", tiny_pipeline, "--runs", runs, "-q", "--set", "train.iterations=1",
                       "--set", "train.checkpoint_every=1").exit_code == 0
    assert sorted(p.name for p in runs.iterdir()) == ["tiny", "tiny-2"]


def test_unknown_architecture_is_one_line_naming_known_ones(runner, tiny_pipeline):
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--set", "train.architecture.name=dcgna"])
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    assert "unknown architecture 'dcgna'" in lines[0]
    assert "did you mean 'dcgan'" in lines[0]
    assert "known architectures: " in lines[0] and "dcgan" in lines[0]
    assert str(tiny_pipeline) in lines[0] and ":6:" in lines[0]  # file and line of the key


def test_wrong_type_reports_file_key_line_and_expectation(runner, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nstages:\n  - train:\n      dataset: digits\n      architecture: dcgan\n"
                    "      iterations: lots\n")
    r = runner.invoke(cli, ["run", str(path)])
    assert r.exit_code == 1
    assert f"{path}:6: stages[0].train.iterations: expected an integer, got 'lots'" in r.output


def test_unknown_key_suggests_the_right_one(runner, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nstages:\n  - train:\n      dataset: digits\n      architecture: dcgan\n"
                    "      batchsize: 8\n")
    r = runner.invoke(cli, ["run", str(path)])
    assert r.exit_code == 1
    assert ":6:" in r.output and "did you mean 'batch_size'" in r.output


def test_invalid_yaml_names_file_and_line(runner, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nstages:\n  - train: {dataset: digits\n")
    r = runner.invoke(cli, ["run", str(path)])
    assert r.exit_code == 1
    assert str(path) in r.output and "invalid YAML" in r.output


def test_unknown_plugin_parameter_lists_accepted_ones(runner, tiny_pipeline):
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--set", "train.architecture.widht=3"])
    assert r.exit_code == 1
    assert "widht" in r.output and "accepted parameters:" in r.output and "g_width" in r.output


def test_set_override_and_dry_run(runner, tiny_pipeline):
    r = run_cli(runner, "run", tiny_pipeline, "--dry-run", "--set", "train.iterations=123", "--set", "seed=7")
    assert r.exit_code == 0
    assert "iterations: 123" in r.stdout and "seed: 7" in r.stdout


def test_every_command_has_help_with_an_example(runner):
    import click
    for name in cli.list_commands(click.Context(cli)):  # plugins' commands included
        r = runner.invoke(cli, [name, "--help"])
        assert r.exit_code == 0, name
        assert "Example" in r.output, f"`artgan {name} --help` has no example"


def test_plugins_lists_first_party_plugins_and_what_they_registered(runner):
    r = run_cli(runner, "plugins")
    assert r.exit_code == 0
    assert "datasets" in r.output and "digits, image-folder, mnist, shapes" in r.output
    assert "architectures: dcgan" in r.output or "architectures: " in r.output and "dcgan" in r.output
    data = json.loads(run_cli(runner, "plugins", "--json").stdout)
    by_name = {p["name"]: p for p in data}
    assert "dcgan" in by_name["gan"]["registered"]["architecture"]
    assert by_name["datasets"]["distribution"] == "artgan"
    assert by_name["datasets"]["status"] == "ok"


def test_info_reports_versions_device_and_providers(runner):
    r = run_cli(runner, "info")
    assert r.exit_code == 0
    for word in ("torch", "onnx", "onnxruntime", "torch device", "providers"):
        assert word in r.output


def test_generate_from_exported_model_is_deterministic(runner, tiny_pipeline, tmp_path):
    out = tmp_path / "run"
    assert run_cli(runner, "run", tiny_pipeline, "--out", out, "-q").exit_code == 0
    model = out / "export" / "generator.onnx"
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run_cli(runner, "generate", model, "--n", 9, "--seed", 3, "--out", a, "-q").exit_code == 0
    assert run_cli(runner, "generate", model, "--n", 9, "--seed", 3, "--out", b, "-q").exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    r = runner.invoke(cli, ["generate", str(tmp_path / "missing.onnx")])
    assert r.exit_code == 1 and "not found" in r.output
