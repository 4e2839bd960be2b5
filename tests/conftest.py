"""Shared fixtures: a CLI runner, the loaded registry, and a tiny pipeline that trains in seconds."""

from __future__ import annotations

import os
import tempfile

import pytest
from click.testing import CliRunner

# Keep tests quiet and independent of the developer's environment.
os.environ.setdefault("ARTGAN_THREADS", "1")
# One torch thread (read when torch is imported; subprocesses inherit it): 2 cores shared by
# many processes make multi-threaded kernels wait on each other, 10-50x slower for tiny models.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# precision: auto measures bf16 against fp32 on CPUs with native bf16; timings differ from run to run,
# so tests that compare two runs would compare two choices. Tests of the choice itself unset this.
os.environ.setdefault("ARTGAN_AUTO_PRECISION", "fp32")
# The metrics' digit classifier is trained once (seconds) and cached in pytest's own cache folder,
# never in the user's home.
os.environ.setdefault("ARTGAN_CACHE_DIR", os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), ".pytest_cache", "artgan"))
# The developer's plugin settings (`artgan plugins --disable`) and plugin env vars must not leak in.
os.environ["ARTGAN_CONFIG_DIR"] = tempfile.mkdtemp(prefix="artgan-test-config-")
for _var in ("ARTGAN_DISABLE_PLUGINS", "ARTGAN_LOAD_PLUGINS", "ARTGAN_STRICT_PLUGINS"):
    os.environ.pop(_var, None)

TINY_PIPELINE = """\
name: tiny
seed: 0
stages:
  - train:
      dataset: {name: digits, image_size: 32}
      architecture: {name: dcgan, latent_dim: 16, g_width: 8, d_width: 8}
      iterations: 6
      batch_size: 16
      checkpoint_every: 3
      log_every: 2
      sample_count: 4
  - export: {}
  - generate: {n: 4, seed: 0}
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def registry():
    from artgan.plugins import get_registry
    return get_registry()


@pytest.fixture
def tiny_pipeline(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_PIPELINE)
    return path


@pytest.fixture
def tiny_and_quick(monkeypatch):
    """A tiny network at 32 px crops and a budget of well under a second."""
    from artgan_style import build as style_build

    monkeypatch.setattr(style_build, "ARCHITECTURE", {"name": "perceptual-style", "width": 8, "blocks": 1})
    monkeypatch.setattr(style_build, "CROP", 32)
    monkeypatch.setattr(style_build, "BATCH", 2)
    monkeypatch.setattr(style_build, "EXPORT_RESERVE_S", 29.7)  # of --minutes 0.5
    monkeypatch.setattr(style_build, "MIN_TRAIN_S", 0.3)
    monkeypatch.setattr(style_build, "PREVIEW_EVERY_ITERATIONS", 3)
