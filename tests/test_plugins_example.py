"""The example third-party plugin (``plugins/artgan-example``, its own distribution), used the way
an outside author's plugin is: found through its entry point, run in an end-to-end pipeline."""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pytest_inprocess import run_pytest

from artgan import plugins as P
from artgan.cli import cli

EXAMPLE = Path(__file__).parents[1] / "plugins" / "artgan-example"

PIPELINE = """\
name: example
seed: 0
stages:
  - train:
      dataset: {name: rings, image_size: 32, count: 64}
      architecture: {name: dcgan, latent_dim: 16, g_width: 8, d_width: 8}
      iterations: 2
      batch_size: 8
      checkpoint_every: 2
      log_every: 1
      sample_count: 4
  - export: {}
  - generate: {n: 3, seed: 0}
  - process:
      steps: ["posterize:levels=3", {name: vignette, strength: 1.0, radius: 0.2}]
"""


def example_is_installed() -> bool:
    try:
        distribution("artgan-example")
        return True
    except PackageNotFoundError:
        return False


@pytest.fixture
def example_plugin(tmp_path, monkeypatch):
    """The installed artgan-example (CI installs it: pip install -e plugins/artgan-example).
    Where a developer has not installed it, the same entry point from a distribution record on
    sys.path, so the test still runs the real path through importlib.metadata."""
    if not example_is_installed():
        info = tmp_path / "site" / "artgan_example-0.1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: artgan-example\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text("[artgan]\nexample = artgan_example\n")
        monkeypatch.syspath_prepend(str(EXAMPLE))
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
    P.reset()
    yield
    P.reset()


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI only: there, the example plugin must be installed")
def test_ci_installs_the_example_plugin():
    assert example_is_installed(), "CI must run: pip install -e plugins/artgan-example"


def test_example_plugin_in_an_end_to_end_pipeline(example_plugin, runner, tmp_path):
    r = runner.invoke(cli, ["plugins", "--json"])
    example = {p["name"]: p for p in json.loads(r.stdout)}["example"]
    assert example["status"] == "ok" and example["distribution"] == "artgan-example"
    assert example["registered"] == {"dataset": ["rings"], "step": ["posterize", "vignette"]}

    pipeline = tmp_path / "example.yaml"
    pipeline.write_text(PIPELINE)
    out = tmp_path / "run"
    r = runner.invoke(cli, ["run", str(pipeline), "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    generated = sorted((out / "generated").glob("0000_*.png"))
    processed = sorted((out / "processed").glob("*.png"))
    assert len(generated) == 3 and [p.name for p in processed] == [p.name for p in generated]
    for src, dst in zip(generated, processed):
        before = np.asarray(Image.open(src)).astype(int)
        after = np.asarray(Image.open(dst)).astype(int)
        assert after.shape == before.shape == (32, 32, 3)
        # posterize:levels=3 at the centre, where the vignette leaves full brightness
        assert set(np.unique(after[15:17, 15:17]).tolist()) <= {0, 127, 128, 255}
        # vignette: strength 1.0 takes the corners (almost: pixel centres lie inside) to black
        assert after[0, 0].max() <= 2 and after[-1, -1].max() <= 2


def test_example_plugin_passes_its_own_tests():
    outcomes, report = run_pytest(EXAMPLE)
    assert "failed" not in outcomes and "errors" not in outcomes and outcomes["passed"] >= 10, report
    if example_is_installed():
        assert "skipped" not in outcomes
