"""The run report (HTML + PNG) written at the end of every pipeline run, `artgan report`, and
`artgan evaluate gan` on a run and on an exported model."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from artgan.cli import cli


@pytest.fixture
def tiny_run(runner, tiny_pipeline, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(cli, ["run", str(tiny_pipeline), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def test_pipeline_writes_a_self_contained_report(tiny_run):
    page = (tiny_run / "report.html").read_text()
    assert "<svg" in page and "losses" in page and "D_loss" in page  # curves
    assert page.count("data:image/png;base64,") >= 3  # summary + grids over time, embedded
    assert "iteration_000003" in page and "iteration_000006" in page
    assert "Configuration" in page and "dcgan" in page  # the config
    assert "Model card: generator.card.json" in page and "max_abs_diff" in page
    for remote in ("src='http", 'src="http', "<link", "<script"):  # nothing fetched when opened
        assert remote not in page
    png = Image.open(tiny_run / "report.png")
    assert png.width > 600 and png.height > 300


def test_report_command(runner, tiny_run, tmp_path):
    result = runner.invoke(cli, ["report", str(tiny_run), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "r.html")
    assert (tmp_path / "r.png").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(cli, ["report", str(empty)])
    assert result.exit_code == 1 and "nothing to report" in result.output
    assert runner.invoke(cli, ["report", "--help"]).exit_code == 0


def test_evaluate_gan_on_a_run_and_on_its_export(runner, tiny_run):
    args = ["--samples", "200", "--real-samples", "300", "--pr-samples", "100"]
    result = runner.invoke(cli, ["evaluate", "gan", "--model", str(tiny_run), *args, "--json", "--device", "cpu",
                                 "-q"])
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)
    assert res["task"] == "gan" and list(res["methods"]) == [str(tiny_run)]  # the results JSON every task has
    row = res["methods"][str(tiny_run)]
    m, prov = {k: row[k] for k in json.loads((tiny_run / "evaluation.json").read_text())["metrics"]}, row["provenance"]
    assert m["num_modes"] == 10 and 1 <= m["modes"] <= 10 and m["kl"] >= 0
    assert set(m) >= {"fd", "precision", "recall"}
    assert prov["samples"] == 200 and prov["real_samples"] == 300 and prov["pr_samples"] == 100
    assert prov["train_iterations"] == 6 and len(prov["feature_weights_sha256"]) == 64
    assert json.loads((tiny_run / "evaluation.json").read_text())["metrics"] == m
    assert runner.invoke(cli, ["report", str(tiny_run)]).exit_code == 0
    page = (tiny_run / "report.html").read_text()
    assert "artgan evaluate gan)" in page and prov["feature_weights_sha256"] in page

    onnx = tiny_run / "export" / "generator.onnx"
    result = runner.invoke(cli, ["evaluate", "gan", "--model", str(onnx), *args, "-q"])
    assert result.exit_code == 0, result.output
    assert "modes" in result.stdout and "reference sha256" in result.stdout
    # the exported model carries the EMA-free DCGAN of the tiny pipeline: same reference data
    assert prov["reference_stats_sha256"][:12] in result.stdout


def test_evaluate_gan_names_a_missing_dataset(runner, tiny_run):
    result = runner.invoke(cli, ["evaluate", "gan", "--model", str(tiny_run), "--dataset", "nope", "--samples", "10"])
    assert result.exit_code == 1 and "unknown dataset 'nope'" in result.output and "--dataset" in result.output


def test_a_failed_run_still_gets_a_report(runner, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("""\
name: bad
stages:
  - train:
      dataset: {name: digits, image_size: 16}
      architecture: {name: dcgan, latent_dim: 8, g_width: 4, d_width: 4}
      iterations: 2
      batch_size: 8
      sample_count: 4
  - generate: {model: missing.onnx}
""")
    result = runner.invoke(cli, ["run", str(bad), "--out", str(tmp_path / "r"), "-q"])
    assert result.exit_code == 1 and "missing.onnx" in result.output
    assert "D_loss" in (tmp_path / "r" / "report.html").read_text()
