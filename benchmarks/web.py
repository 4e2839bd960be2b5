"""The browser page against onnxruntime in Python (#24): x2 superres of a 512x512 image in WASM in
headless Chromium (target < 2 s) and the page's load time (target < 3 s).

    python benchmarks/web.py [--repeat 3] [--size 512]
    python benchmarks/web.py --fp16 runs/quickstart/checkpoints/last.pt   # + fp16 against fp32 for the web
    python benchmarks/web.py --int8 ../shared/data/BSD68   # + the site built with `artgan web --int8 PHOTOS`

Needs Chromium (apt-get install -y chromium) and playwright (pip install -e '.[web]'). The site is
built with `artgan web` into a temporary folder and served on 127.0.0.1 twice: by a plain static
server (no headers: the page's service worker, isolate.js, adds the COOP/COEP headers and the page
reloads once, so WASM gets one thread per core) and by a server that sends the headers itself.
Page load is from navigation to the model session ready (onnxruntime-web's WASM compiled, the model loaded), cold browser cache, wall clock.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
X2 = ROOT / "exports" / "superres" / "x2-gan.onnx"


def photo(path: Path, size: int) -> Path:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    rng = np.random.default_rng(0)
    img = np.stack([128 + 90 * np.sin(x / 9) * np.cos(y / 13), 120 + 100 * np.cos((x + y) / 15),
                    100 + 60 * np.sin(y / 7)], -1) + rng.normal(0, 12, (size, size, 3))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def serve(site: Path, isolated: bool):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def end_headers(self):
            if isolated:
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            super().end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def browser_run(exe: str, url: str, image: Path, repeat: int, model: str = X2.stem) -> tuple[float, list[float], str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_context().new_page()  # a fresh context: nothing cached
        start = time.perf_counter()
        page.goto(f"{url}?model={model}&backend=wasm")
        page.wait_for_function("window.artgan && window.artgan.ready", timeout=60_000)
        load = time.perf_counter() - start
        times = []
        for i in range(repeat):
            page.evaluate("window.artgan.runs = 0")
            page.set_input_files("#file", [])
            page.set_input_files("#file", str(image))
            page.wait_for_function("window.artgan.runs === 1 || document.getElementById('status').dataset.state === 'error'",
                                   timeout=120_000)
            assert page.get_attribute("#status", "data-state") == "done", page.text_content("#status")
            times.append(page.evaluate("window.artgan.last.ms") / 1000)
        label = page.evaluate("window.artgan.backendLabel")
        browser.close()
    return load, times, label


def python_run(image: Path, threads: int, repeat: int) -> list[float]:
    os.environ["ARTGAN_THREADS"] = str(threads)
    from artgan.images import load_image, to_float
    from artgan.steps import OnnxImageStep

    step = OnnxImageStep(X2)
    x = to_float(load_image(image))
    step.run_one(x)  # warm-up, as the page's session is warm after its first image
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        step.run_one(x)
        times.append(time.perf_counter() - t)
    return times


def fp16_table(exe: str, checkpoint: Path, repeat: int) -> None:
    """Export CHECKPOINT for the web in fp32 and fp16, generate 64 images with each in the browser
    (WASM), and compare them with onnxruntime Python's fp32 images of the same latents."""
    import base64
    import io
    import subprocess

    from playwright.sync_api import sync_playwright

    from artgan.images import to_uint8
    from artgan.runtime import Generator
    from artgan.web import build_site

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, extra in (("fp32", []), ("fp16", ["--precision", "fp16"])):
            subprocess.run([sys.executable, "-m", "artgan", "export", str(checkpoint), "--out", str(tmp / f"{name}.onnx"),
                            "--target", "web", *extra], check=True, capture_output=True)
        build_site([tmp / "fp32.onnx", tmp / "fp16.onnx"], tmp / "site", webgpu=False)
        httpd, url = serve(tmp / "site", False)
        print("\n| generator | file MB | 64 images ms (median) | max 8-bit diff vs fp32 Python | PSNR dB |")
        print("|---|---|---|---|---|")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
                for name in ("fp32", "fp16"):
                    page = browser.new_page()
                    page.goto(f"{url}?model={name}&backend=wasm")
                    page.wait_for_function("window.artgan.ready")
                    page.select_option("#count", "64")
                    page.wait_for_function("window.artgan.last.n === 64")
                    times = []
                    for seed in range(1, repeat + 2):
                        page.evaluate("window.artgan.runs = 0")
                        page.fill("#seed", str(seed))
                        page.dispatch_event("#seed", "change")
                        page.wait_for_function("window.artgan.runs >= 1")
                        times.append(page.evaluate("window.artgan.last.ms"))
                    last = page.evaluate("window.artgan.last")
                    data = page.evaluate("document.getElementById('grid').toDataURL()")
                    grid = np.asarray(Image.open(io.BytesIO(base64.b64decode(data.split(",")[1]))).convert("RGB"))
                    gen = Generator(tmp / "fp32.onnx")
                    ref = to_uint8(gen.from_latents(np.asarray(last["latents"], np.float32).reshape(64, -1)))
                    side, cols = ref.shape[1], last["cols"]
                    got = np.stack([grid[(i // cols) * side:(i // cols + 1) * side, (i % cols) * side:(i % cols + 1) * side,
                                         :ref.shape[-1]] for i in range(64)])
                    d = got.astype(np.float64) - ref
                    psnr = 10 * np.log10(255 ** 2 / np.mean(d ** 2)) if d.any() else float("inf")
                    print(f"| {name} | {(tmp / f'{name}.onnx').stat().st_size / 1e6:.2f} | {statistics.median(times):.0f} | "
                          f"{int(np.abs(d).max())} | {psnr:.1f} |")
                    page.close()
                browser.close()
        finally:
            httpd.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--int8", type=Path, metavar="PHOTOS", default=None,
                    help="also: the site built with --int8 PHOTOS (the x2 model in int8), on the plain server")
    ap.add_argument("--fp16", type=Path, metavar="CHECKPOINT", default=None,
                    help="also: a generator's fp32 and fp16 web exports in the browser against fp32 Python")
    args = ap.parse_args()
    exe = os.environ.get("ARTGAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        sys.exit("no Chromium: apt-get install -y chromium && pip install -e '.[web]'")
    from artgan.web import build_site

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        build_site([X2], site)
        image = photo(Path(tmp) / "photo.png", args.size)
        rows = []
        for isolated in (False, True):
            httpd, url = serve(site, isolated)
            try:
                load, times, label = browser_run(exe, url, image, args.repeat)
            finally:
                httpd.shutdown()
            rows.append((("COOP/COEP headers" if isolated else "plain static server"), label, load, times))
        if args.int8:
            build_site([X2], Path(tmp) / "site-int8", int8_photos=args.int8)
            httpd, url = serve(Path(tmp) / "site-int8", False)
            try:
                load, times, label = browser_run(exe, url, image, args.repeat)
            finally:
                httpd.shutdown()
            rows.append(("plain static server, `--int8`", f"{label}, int8", load, times))
        py = {t: python_run(image, t, args.repeat) for t in (1, 2)}

    print(f"\nx2-gan superres, {args.size}x{args.size} -> {2 * args.size}x{2 * args.size}, median of {args.repeat} "
          f"(first run included in the browser), headless Chromium {exe}")
    print("| where | backend | page load s | first image s | median image s | / onnxruntime Python (same threads) |")
    print("|---|---|---|---|---|---|")
    for where, label, load, times in rows:
        threads = 2 if "2 threads" in label else 1
        ratio = statistics.median(times) / statistics.median(py[threads])
        print(f"| browser, {where} | {label} | {load:.2f} | {times[0]:.2f} | {statistics.median(times):.2f} | "
              f"{ratio:.2f}x |")
    for t, times in py.items():
        print(f"| onnxruntime Python | CPU, {t} thread{'s' if t > 1 else ''} | | | {statistics.median(times):.2f} | 1.00x |")
    print("targets: image < 2 s (WASM), page load < 3 s")
    if args.fp16:
        fp16_table(exe, args.fp16, args.repeat)


if __name__ == "__main__":
    main()
