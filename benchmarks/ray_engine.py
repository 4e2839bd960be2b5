"""`artgan process --engine ray` against `--engine local` on 500 images; prints a table of ratios.

    pip install -e '.[ray]'
    python benchmarks/ray_engine.py                      # 500 images, both cases, 1 round
    python benchmarks/ray_engine.py --images 100 --rounds 3 --cases lanczos

Each run is the whole command as a user types it (`python -m artgan process DIR --step ... --out
NEW -q --engine E`), timed from start to exit, so Ray's start-up (a local Ray: raylet, workers,
each worker's onnxruntime sessions) is in the figure: on one machine that start-up is the whole
overhead, since both engines use every core. The images are synthetic (smooth gradients plus
noise, one seed), written once to a temporary folder. Cases: a classical step (lanczos x2 on
64x64: the per-image work is tiny, so it shows the engine's fixed cost) and the shipped x2-gan
upscaler on 96x96 (a model's work per image). Within a round the two engines run back to back
(order alternating between rounds); the table shows the median over rounds. The outputs of the
two engines are checked byte for byte in every round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ENGINES = ("local", "ray", "ray-cluster")
CASES = {"lanczos": (64, ["lanczos:scale=2"]), "x2-gan": (96, ["superres:model=x2-gan"])}


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        a, b, c = rng.uniform(0, 1, 3)
        base = np.stack([a * x + (1 - a) * y, b * y, c * (1 - x)], -1) * 200
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i:04d}.png")


def run(engine: str, src: Path, steps: list[str], out: Path) -> float:
    """``engine``: local, ray (a local Ray started by the command) or ray-cluster (a Ray already
    running, as on a cluster: `ray start --head` first, the command joins it with --address)."""
    extra = ["--engine", "ray", "--address", "auto"] if engine == "ray-cluster" else ["--engine", engine]
    cmd = [sys.executable, "-m", "artgan", "process", str(src), *[a for s in steps for a in ("--step", s)],
           "--out", str(out), "-q", *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return seconds


def same_outputs(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    return bool(files) and files == sorted(p.relative_to(b) for p in b.rglob("*.png")) and all(
        (a / f).read_bytes() == (b / f).read_bytes() for f in files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="artgan-ray-bench-") as tmp:
        rows = measure(args, Path(tmp))
    report(args, rows)


def timed(engine: str, src: Path, steps: list[str], out: Path) -> float:
    """One run; for ray-cluster a head node is started first and stopped after (not timed)."""
    if engine != "ray-cluster":
        return run(engine, src, steps, out)
    subprocess.run(["ray", "start", "--head", "--num-cpus", str(os.cpu_count()), "--include-dashboard=false",
                    "--disable-usage-stats"], check=True, capture_output=True)
    try:
        return run(engine, src, steps, out)
    finally:
        subprocess.run(["ray", "stop"], capture_output=True)


def measure(args, tmp: Path) -> list[tuple]:
    rows = []
    for case in args.cases.split(","):
        size, steps = CASES[case]
        src = tmp / f"in-{case}"
        make_images(src, args.images, size)
        times: dict[str, list[float]] = {e: [] for e in ENGINES}
        for r in range(args.rounds):
            order = ENGINES if r % 2 == 0 else ENGINES[::-1]
            outs = {}
            for engine in order:
                outs[engine] = tmp / f"out-{case}-{engine}-{r}"
                times[engine].append(timed(engine, src, steps, outs[engine]))
            if not all(same_outputs(outs["local"], outs[e]) for e in ENGINES[1:]):
                sys.exit(f"{case}: the engines' outputs differ")
        rows.append((f"{case} {size}x{size}", *[statistics.median(times[e]) for e in ENGINES], args.images))
    # the fixed cost: one image, the first case's step
    one = tmp / "one"
    make_images(one, 1, 64)
    steps = CASES[args.cases.split(",")[0]][1]
    rows.append(("start-up, 1 image", *[timed(e, one, steps, tmp / f"one-{e}") for e in ENGINES], 1))
    return rows


def report(args, rows) -> None:
    print(f"{args.images} images, {args.rounds} round(s), {os.cpu_count()} CPUs; whole command, start to exit; "
          f"outputs identical")
    print(f"{'case':<18}{'local s':>9}{'ray s':>8}{'ray/local':>11}{'cluster s':>11}{'cluster/local':>15}"
          f"{'local img/s':>13}{'ray img/s':>11}")
    for name, local, ray, cluster, n in rows:
        print(f"{name:<18}{local:>9.1f}{ray:>8.1f}{ray / local:>10.2f}x{cluster:>11.1f}{cluster / local:>14.2f}x"
              f"{n / local:>13.1f}{n / ray:>11.1f}")
    print("ray: a local Ray started by the command; cluster: joining a Ray already running (`ray start --head`)")


if __name__ == "__main__":
    main()
