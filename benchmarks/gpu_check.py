"""On a GPU machine: do the CUDA/TensorRT paths of the runtime work, and how fast are they?

    python benchmarks/gpu_check.py            # fresh weights; about a minute

Prints what `artgan doctor` finds, then for a 64 px DCGAN exported in fp32 and fp16: the provider
that ran, whether I/O binding and plain runs agree with the CPU (largest difference), whether the
fp16 export's own check ran on the GPU, and images per second at batch 64 against PyTorch on the
same GPU. Everything is printed; nothing is written outside a temporary folder.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def per_second(fn, n_images: int, seconds: float = 2.0) -> float:
    fn()
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        count += 1
    return count * n_images / (time.perf_counter() - t0)


def main() -> None:
    from artgan.data import DatasetInfo
    from artgan.doctor import diagnose, format_report
    from artgan.export import export_onnx
    from artgan.runtime import Model
    from artgan_gan.dcgan import DCGANRecipe

    print(format_report(diagnose()), "\n")
    torch.manual_seed(0)
    recipe = DCGANRecipe(info=DatasetInfo(image_size=64, channels=3), latent_dim=100, g_width=64, d_width=64)
    tmp = Path(tempfile.mkdtemp(prefix="artgan-gpu-"))
    z = np.random.default_rng(0).standard_normal((64, 100), dtype=np.float32)
    cards = {p: export_onnx(recipe.export_spec(), tmp / f"{p}.onnx", precision=p) for p in ("fp32", "fp16")}
    cpu = Model(tmp / "fp32.onnx", providers=["CPUExecutionProvider"]).run({"z": z})
    for precision, card in cards.items():
        print(f"{precision}: fp16 check ran on {card['fp16_check']['checked_on']!r}, safe={card['fp16_check']['safe']}")
        for providers in (["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
                          ["CUDAExecutionProvider", "CPUExecutionProvider"]):
            for binding in (True, False):
                m = Model(tmp / f"{precision}.onnx", providers=providers, io_binding=binding)
                out = m.run({"z": z})
                ips = per_second(lambda: m.run({"z": z}), 64)
                print(f"  asked {providers[0]:<26} ran {m.describe():<40} io_binding={binding!s:<5} "
                      f"max|gpu-cpu|={np.abs(out - cpu).max():.2e}  {ips:9.0f} images/s")
    if torch.cuda.is_available():
        G = recipe.G.cuda().eval()
        zt = torch.from_numpy(z).cuda()
        for half in (False, True):
            g = G.half() if half else G
            x = zt.half() if half else zt

            def run():
                with torch.inference_mode():
                    g(x)
                torch.cuda.synchronize()
            print(f"PyTorch eager CUDA {'fp16' if half else 'fp32'}: {per_second(run, 64):9.0f} images/s")
    else:
        print("PyTorch sees no CUDA GPU", file=sys.stderr)


if __name__ == "__main__":
    main()
