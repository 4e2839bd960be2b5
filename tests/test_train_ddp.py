"""Data-parallel training: two processes on the CPU with the gloo backend, launched by torchrun
exactly as on a multi-GPU machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINE = """\
name: ddp
seed: 0
stages:
  - train:
      dataset: {name: digits, image_size: 16}
      architecture: {name: dcgan, latent_dim: 8, g_width: 4, d_width: 4, ema: 0.9, r1: 0.1}
      iterations: 8
      batch_size: 8
      checkpoint_every: 4
      log_every: 2
      sample_count: 4
"""


def _torchrun() -> list[str]:
    exe = Path(sys.executable).parent / "torchrun"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.slow
def test_two_process_gloo_training_then_resume(tmp_path):
    path = tmp_path / "ddp.yaml"
    path.write_text(PIPELINE)
    out = tmp_path / "run"
    cmd = [*_torchrun(), "--standalone", "--nproc-per-node", "2", "-m", "artgan", "run", str(path),
           "--out", str(out), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    import torch

    from artgan import checkpoints
    from artgan.files import read_jsonl
    ckpt = checkpoints.load(out / "checkpoints" / "last.pt")
    assert ckpt["iteration"] == 8
    assert len(ckpt["rng_per_process"]) == 2  # both processes took part
    # the processes drew different noise (their own random streams)
    assert not torch.equal(ckpt["rng_per_process"][0]["torch"], ckpt["rng_per_process"][1]["torch"])
    # the first process alone wrote the logs: one record per log step, not two
    assert [r["iteration"] for r in read_jsonl(out / "metrics.jsonl") if "precision" not in r] == [2, 4, 6, 8]
    assert (out / "report.html").exists()

    # resume the two-process run for 4 more steps (the weight-divergence check runs at each save)
    cmd_resume = [*cmd, "--resume", "--set", "train.iterations=12"]
    proc = subprocess.run(cmd_resume, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert checkpoints.load(out / "checkpoints" / "last.pt")["iteration"] == 12


@pytest.mark.slow
def test_gradient_averaging_is_a_mean(tmp_path):
    """Processes.average_ in a real two-process gloo group: the mean of every element."""
    import torch.multiprocessing as mp

    mp.spawn(_average_worker, args=(str(tmp_path),), nprocs=2, join=True)
    import torch
    a, b = (torch.load(tmp_path / f"r{r}.pt") for r in (0, 1))
    assert torch.equal(a, b)
    assert torch.allclose(a, torch.tensor([1.5, 15.0, 0.5]))


def _average_worker(rank: int, folder: str) -> None:
    import torch

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(29500 + os.getppid() % 1000),
                      RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    from artgan.train import Processes
    procs = Processes.from_env(torch.device("cpu"))
    try:
        t = torch.tensor([1.0 + rank, 10.0 * (1 + rank)])
        u = torch.tensor([float(rank)])
        procs.average_([t, u])
        torch.save(torch.cat([t, u]), Path(folder) / f"r{rank}.pt")
    finally:
        procs.close()
