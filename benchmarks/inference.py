"""PyTorch eager against onnxruntime (fp32 and int8) for two generators, and the cold start of
`artgan generate`; prints one table of ratios measured in one run.

    python benchmarks/inference.py                                   # untrained weights
    python benchmarks/inference.py --quickstart runs/quickstart/checkpoints/last.pt

Models: the quickstart generator (its checkpoint when given, else the quickstart's architecture
with fresh weights; speed does not depend on the weights, int8 PSNR does) and a 64 px RGB DCGAN
(latent 100, width 64) twice: with transposed convolutions as in the DCGAN paper, and with
nearest upsampling + 3x3 convolutions (2.25x the multiply-adds; the form that quantises to int8).
All are exported with `artgan.export`, so this measures the files users get. On a shared machine
the load changes from second to second: every round times all variants back to back and ratios are
taken within a round, then the median over rounds is reported. The float32 matrix-multiply rate
(the faster of PyTorch and onnxruntime on 1024x1024, same threads) is measured in every round too;
"of matmul" is the fp32 runtime's achieved FLOP rate (convolutions and linear layers, counted)
over it.
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

# Neither side spin-waits between ops (artgan's runtime does not; OpenMP's default would let
# PyTorch's idle threads steal the CPU from whatever is timed next): set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def build_models(quickstart: Path | None, upsample: str | None, dcgan64: tuple[str, ...] = ("transpose", "nearest")):
    from artgan.checkpoints import load_recipe
    from artgan.data import DatasetInfo
    from artgan.plugins import get_registry
    from artgan_gan.dcgan import DCGANRecipe

    torch.manual_seed(0)
    models = {}
    if quickstart:
        recipe, state = load_recipe(quickstart, get_registry())
        models["quickstart"] = (recipe, f"{quickstart} ({state['iteration']} iterations, {recipe.upsample})")
    else:
        import yaml
        arch = yaml.safe_load((ROOT / "pipelines" / "quickstart.yaml").read_text())["stages"][0]["train"]["architecture"]
        params = {k: v for k, v in arch.items() if k != "name" and k not in ("g_lr", "d_lr")}
        if upsample:
            params["upsample"] = upsample
        recipe = DCGANRecipe(info=DatasetInfo(image_size=32, channels=1, name="digits"), **params)
        models["quickstart"] = (recipe, f"quickstart architecture, untrained ({recipe.upsample})")
    for up in dcgan64:
        name = "dcgan64" if up == "transpose" else f"dcgan64-{up}"
        models[name] = (DCGANRecipe(info=DatasetInfo(image_size=64, channels=3), latent_dim=100, g_width=64,
                                    d_width=64, upsample=up), f"64 px RGB DCGAN, width 64, untrained ({up})")
    for name, (recipe, desc) in models.items():
        if "untrained" in desc:
            settle_batchnorm(recipe.G, recipe.latent_dim)
    return models


def settle_batchnorm(G: torch.nn.Module, latent_dim: int) -> None:
    """Untrained generators put out almost nothing (DCGAN's N(0, 0.02) weights shrink every
    layer), which makes any int8 PSNR look perfect. Running statistics gathered on a few batches
    rescale each layer as training would, so the output spans the range and PSNR means something."""
    norms = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the batches below
    G.train()
    with torch.no_grad():
        for _ in range(20):
            G(torch.randn(64, latent_dim))
    G.eval()
    for m in norms:
        m.momentum = 0.1


def flops_per_image(module: torch.nn.Module, z: torch.Tensor) -> float:
    """Multiply-adds x 2 of the convolutions and linear layers, counted with forward hooks."""
    total = [0.0]

    def hook(m, args, out):
        x = args[0]
        if isinstance(m, torch.nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total[0] += 2.0 * out[0].numel() * k
        elif isinstance(m, torch.nn.ConvTranspose2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            total[0] += 2.0 * x[0].numel() * k
        elif isinstance(m, torch.nn.Linear):
            total[0] += 2.0 * m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    with torch.no_grad():
        module(z[:1])
    for h in handles:
        h.remove()
    return total[0]


def timed(fn, min_seconds: float = 0.1) -> float:
    """Seconds per call: repeat until ``min_seconds`` have passed, take the fastest of 3 bursts."""
    time.sleep(0.05)  # let the previous variant's threads go idle
    fn()
    best = float("inf")
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / n)
    return best


def matmul_rate(ort_matmul, n: int = 1024) -> float:
    """The machine's float32 matrix-multiply rate: the faster of PyTorch (MKL/oneDNN) and
    onnxruntime's own MatMul (MLAS) on n x n matrices, with the same threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    t_torch = timed(lambda: torch.mm(a, b))
    an = a.numpy()
    t_ort = timed(lambda: ort_matmul.run(None, {"a": an}))
    return 2.0 * n**3 / min(t_torch, t_ort)


def ort_matmul_session(threads: int, n: int = 1024):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    b = numpy_helper.from_array(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32), "b")
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])], [b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def cold_start(model: Path, repeats: int) -> tuple[float, float, float]:
    """Median seconds from spawning `artgan generate -n 1` to its image on disk; and, measured
    alternately with it, the floor (a python that imports numpy, onnxruntime and Pillow, which any
    runtime needs) and `python -c "import torch"`."""
    script = Path(sys.executable).parent / "artgan"
    cmd = [str(script)] if script.exists() else [sys.executable, "-c", "from artgan.cli import main; main()"]
    ours, floor, torch_import = [], [], []

    def wall(args):
        t0 = time.perf_counter()
        subprocess.run(args, check=True)
        return time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            out = Path(tmp) / f"{i}.png"
            t0 = time.time_ns()
            subprocess.run([*cmd, "generate", str(model), "-n", "1", "-o", str(out), "-q"], check=True,
                           stdout=subprocess.DEVNULL)
            ours.append((out.stat().st_mtime_ns - t0) / 1e9)
            floor.append(wall([sys.executable, "-c", "import numpy, onnxruntime, PIL.Image"]))
            torch_import.append(wall([sys.executable, "-c", "import torch"]))
    return statistics.median(ours), statistics.median(floor), statistics.median(torch_import)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quickstart", type=Path, help="a quickstart checkpoint (default: fresh weights)")
    parser.add_argument("--upsample", choices=["transpose", "nearest"], default=None,
                        help="upsampling of the untrained quickstart model (default: as in its pipeline)")
    parser.add_argument("--dcgan64", default="transpose,nearest",
                        help="upsamplings of the 64 px DCGAN to measure (comma list; empty: none)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--threads", type=int, default=None, help="default: the CPUs this process may use")
    parser.add_argument("--cold-starts", type=int, default=7)
    args = parser.parse_args()

    from artgan.export import export_onnx
    from artgan.runtime import Model, cpu_count

    threads = args.threads or cpu_count()
    torch.set_num_threads(threads)
    batches = [int(b) for b in args.batches.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="artgan-bench-"))
    rows, rates = [], []
    mm_session = ort_matmul_session(threads)
    for name, (recipe, desc) in build_models(args.quickstart, args.upsample,
                                                   tuple(u for u in args.dcgan64.split(",") if u)).items():
        spec = recipe.export_spec()
        G = spec.module.eval()
        fp32 = export_onnx(spec, tmp / f"{name}.onnx", verify=False)
        int8 = export_onnx(spec, tmp / f"{name}-int8.onnx", quantize="int8", verify=False)
        print(f"{name}: {desc}; {fp32['bytes'] / 1e6:.1f} MB fp32, {int8['bytes'] / 1e6:.1f} MB int8",
              file=sys.stderr)
        m32 = Model(tmp / f"{name}.onnx", providers=["CPUExecutionProvider"], threads=threads)
        m8 = Model(tmp / f"{name}-int8.onnx", providers=["CPUExecutionProvider"], threads=threads)
        latent = spec.inputs["z"].shape[1]
        for b in batches:
            z = torch.from_numpy(np.random.default_rng(b).standard_normal((b, latent), dtype=np.float32))
            zn = z.numpy()
            flops = flops_per_image(G, z) * b
            per_round = []
            for _ in range(args.rounds):
                with torch.inference_mode():
                    t_eager = timed(lambda: G(z))
                t32 = timed(lambda: m32.run({"z": zn}))
                t8 = timed(lambda: m8.run({"z": zn}))
                rate = matmul_rate(mm_session)
                rates.append(rate)
                per_round.append((t_eager, t32, t8, t_eager / t32, t32 / t8, flops / t32 / rate))
            med = [statistics.median(col) for col in zip(*per_round)]
            a, q = m32.run({"z": zn}), m8.run({"z": zn})
            mse = float(np.mean((a.astype(np.float64) - q) ** 2))
            psnr = 10 * np.log10(4.0 / mse) if mse > 0 else float("inf")
            rows.append((name, b, *med[:3], med[3], med[4], psnr, flops / med[1] / 1e9, med[5]))

    cold, floor, torch_cold = cold_start(tmp / "quickstart.onnx", args.cold_starts)

    print(f"\nonnxruntime {__import__('onnxruntime').__version__}, torch {torch.__version__}, {threads} threads, "
          f"{args.rounds} rounds (medians; ratios within a round)")
    head = ("model", "batch", "eager ms", "ort fp32 ms", "ort int8 ms", "fp32/eager", "int8/fp32",
            "int8 PSNR", "fp32 GFLOP/s", "of matmul")
    print(f"{head[0]:>15} " + " ".join(f"{h:>12}" for h in head[1:]))
    for name, b, te, t32, t8, r32, r8, psnr, gf, frac in rows:
        print(f"{name:>15} {b:>12} {te * 1e3:>12.3f} {t32 * 1e3:>12.3f} {t8 * 1e3:>12.3f} {r32:>11.2f}x "
              f"{r8:>11.2f}x {psnr:>9.1f} dB {gf:>12.1f} {frac:>11.0%}")
    print(f"float32 matmul (faster of PyTorch and onnxruntime, 1024^3): {statistics.median(rates) / 1e9:.1f} "
          f"GFLOP/s (median of {len(rates)}, one per round)")
    print(f"cold start `artgan generate -n 1` (quickstart): {cold:.3f} s to the image on disk; floor (python "
          f"importing numpy, onnxruntime, Pillow): {floor:.3f} s; `import torch` alone: {torch_cold:.3f} s "
          f"(ours / torch {cold / torch_cold:.2f})")

    # the targets, for each model, from the rows above
    by = {(r[0], r[1]): r for r in rows}
    lo, hi = min(batches), max(batches)
    print("\ntargets (batch %d and %d):" % (lo, hi))
    for name in dict.fromkeys(r[0] for r in rows):
        checks = [("fp32/eager b%d >= 3x" % lo, by[name, lo][5], 3.0),
                  ("fp32/eager b%d >= 1.1x" % hi, by[name, hi][5], 1.1),
                  ("fp32 of matmul b%d >= 70%%" % hi, by[name, hi][9], 0.7),
                  ("int8/fp32 b%d >= 1.5x" % hi, by[name, hi][6], 1.5),
                  ("int8 PSNR >= 30 dB", by[name, hi][7], 30.0)]
        print(f"  {name:<15} " + "; ".join(f"{label}: {value:.2f} {'ok' if value >= goal else 'MISSED'}"
                                           for label, value, goal in checks))
    print(f"  cold start < 0.5 s: {cold:.3f} s {'ok' if cold < 0.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
