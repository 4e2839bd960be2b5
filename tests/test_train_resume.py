"""Crash safety: a run killed with SIGKILL resumes with --resume and continues the exact sequence
of losses of an uninterrupted run (CPU); checkpoints are never half-written."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artgan.files import read_jsonl

# EMA, DiffAugment (random draws every step) and R1 make the state worth restoring.
PIPELINE = """\
name: crash
seed: 3
stages:
  - train:
      dataset: {{name: digits, image_size: 16}}
      architecture: {{name: dcgan, latent_dim: 8, g_width: 4, d_width: 4, ema: 0.9,
                     diffaugment: "color,translation,cutout", r1: 0.1}}
      iterations: {iterations}
      batch_size: 8
      checkpoint_every: {ckpt}
      log_every: 1
      sample_count: 4
      collapse_ratio: 0
"""

VOLATILE = {"time", "images_per_s"}


def _losses(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_jsonl(run / "metrics.jsonl")
            if "precision" not in r]  # the first record says what the trainer computes with


def _run(path: Path, out: Path, resume: bool = False):
    from artgan.pipeline import RunContext, load_pipeline, run_pipeline
    from artgan.plugins import get_registry

    reg = get_registry()
    ctx = RunContext(run_dir=out, registry=reg, resume=resume, progress=False, log=lambda m: None)
    run_pipeline(load_pipeline(path, registry=reg), ctx)


def test_resume_continues_the_same_losses(tmp_path):
    # in-process: stop cleanly at a checkpoint (iterations=12), then extend the run to 30 with resume
    full, parts = tmp_path / "full.yaml", tmp_path / "parts.yaml"
    full.write_text(PIPELINE.format(iterations=30, ckpt=7))
    parts.write_text(PIPELINE.format(iterations=12, ckpt=7))
    _run(full, tmp_path / "a")
    _run(parts, tmp_path / "b")
    _run(full, tmp_path / "b", resume=True)
    a, b = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert len(a) == 30 and [r["iteration"] for r in b] == list(range(1, 31))
    assert a == b  # bit-identical losses, logits, penalties and sample diversity


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_matches_uninterrupted(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.format(iterations=400, ckpt=5))
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "artgan", "run", str(path), "--out", str(killed), "-q"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = killed / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    time.sleep(random.uniform(0.0, 0.5))  # somewhere mid-training, maybe mid-save
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    iterations_logged = len([r for r in read_jsonl(killed / "metrics.jsonl") if "precision" not in r])
    assert 0 < iterations_logged < 400, "the kill must land mid-training"

    from artgan import checkpoints
    state = checkpoints.load(ckpt)  # whatever the moment, the checkpoint is whole
    assert 5 <= state["iteration"] <= iterations_logged

    # resume it (through the CLI), shortened to 60 iterations, and compare with an uninterrupted run
    from click.testing import CliRunner

    from artgan.cli import cli
    short = tmp_path / "short.yaml"
    short.write_text(PIPELINE.format(iterations=max(60, state["iteration"] + 10), ckpt=5))
    result = CliRunner().invoke(cli, ["run", str(short), "--out", str(killed), "--resume", "-q"])
    assert result.exit_code == 0, result.output
    assert not list((killed / "checkpoints").glob("*.tmp"))
    _run(short, tmp_path / "clean")
    assert _losses(killed) == _losses(tmp_path / "clean")


def test_run_refuses_to_overwrite_without_resume(tmp_path, runner):
    from artgan.cli import cli
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.format(iterations=2, ckpt=1))
    assert runner.invoke(cli, ["run", str(path), "--out", str(tmp_path / "r"), "-q"]).exit_code == 0
    result = runner.invoke(cli, ["run", str(path), "--out", str(tmp_path / "r"), "-q"])
    assert result.exit_code == 1 and "--resume" in result.output


def test_resume_loads_state_after_the_modules_reach_their_device(tmp_path, monkeypatch):
    """On CUDA, loading optimizer state before moving the modules left Adam's moments on the CPU
    ('Expected all tensors to be on the same device'). The order is checked here on the CPU."""
    from artgan.data import DatasetInfo
    from artgan.recipe import GANRecipe
    from artgan.train import TrainOptions, train
    from artgan_gan.dcgan import DCGANRecipe
    from artgan_datasets.builtin import DigitsDataset

    events = []
    orig_to, orig_load = GANRecipe.to, GANRecipe.load_state_dict
    monkeypatch.setattr(GANRecipe, "to", lambda self, d: (events.append("to"), orig_to(self, d))[1])
    monkeypatch.setattr(GANRecipe, "load_state_dict",
                        lambda self, *a, **k: (events.append("load"), orig_load(self, *a, **k))[1])
    ds = DigitsDataset(image_size=32)
    config = {"architecture": "dcgan", "params": {"latent_dim": 8, "g_width": 4, "d_width": 4},
              "info": ds.info.to_dict(), "loss": None}

    def recipe():
        return DCGANRecipe(info=DatasetInfo(**ds.info.to_dict()), latent_dim=8, g_width=4, d_width=4)

    opts = TrainOptions(iterations=2, batch_size=8, checkpoint_every=2, log_every=1, sample_count=4)
    train(recipe(), ds, tmp_path, opts, recipe_config=config, progress=False)
    events.clear()
    opts.iterations = 3
    train(recipe(), ds, tmp_path, opts, recipe_config=config, resume=True, progress=False)
    assert events.index("to") < events.index("load"), events


def _same(a, b) -> bool:
    """Equal, tensors bit for bit, nested mappings and lists walked."""
    import torch
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_half_then_resume_leaves_the_checkpoint_of_an_uninterrupted_run(tmp_path, registry):
    """12 iterations straight == 6, then resume to 12: the same weights, optimiser moments, random
    streams, loss window, diversity record, metrics lines and sample grids. EMA, DiffAugment, R1 and
    the collapse watch all carry state across the resume."""
    from artgan import checkpoints
    from artgan.train import TrainOptions, seed_everything, train

    def run(out: Path, iterations: int, resume: bool = False) -> None:
        dataset = registry.create("dataset", "digits", image_size=16)
        seed_everything(5)  # the initial weights, as a pipeline's train stage seeds them
        recipe = registry.create("architecture", "dcgan", info=dataset.info, loss=None, latent_dim=8, g_width=4,
                                 d_width=4, ema=0.9, diffaugment="color,translation,cutout", r1=0.1)
        options = TrainOptions(iterations=iterations, batch_size=8, device="cpu", seed=5, sample_count=4,
                               log_every=2, checkpoint_every=3, collapse_ratio=0.5)
        train(recipe, dataset, out, options, recipe_config={"architecture": "dcgan"}, resume=resume, progress=False)

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run(straight, 12)
    run(resumed, 6)
    run(resumed, 12, resume=True)
    a, b = (checkpoints.load(d / "checkpoints" / "last.pt") for d in (straight, resumed))
    for ckpt in (a, b):  # the clock, and the resumed run's note that its precision is the first run's
        del ckpt["train_seconds"], ckpt["precision"]["reason"]
    assert a["iteration"] == 12 and _same(a, b)
    assert _losses(straight) == _losses(resumed)
    grids = [{p.name: p.read_bytes() for p in (d / "samples").iterdir()} for d in (straight, resumed)]
    assert sorted(grids[0]) == [f"iteration_{i:06d}.png" for i in (3, 6, 9, 12)] and grids[0] == grids[1]
