"""The browser page against onnxruntime in Python (#24): x2 superres of a 512x512 image in WASM in
headless Chromium (target < 2 s) and the page's load time (target < 3 s).

    python benchmarks/web.py [--repeat 3] [--size 512]

Needs Chromium (apt-get install -y chromium) and playwright (pip install -e '.[web]'). The site is
built with `artgan web` into a temporary folder and served on 127.0.0.1 twice: by a plain static
server (no headers: onnxruntime-web runs one thread) and with the COOP/COEP headers that make the
page cross-origin isolated (WASM threads, one per core). Page load is from navigation to the model
session ready (onnxruntime-web's WASM compiled, the model loaded), cold browser cache, wall clock.
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


def browser_run(exe: str, url: str, image: Path, repeat: int) -> tuple[float, list[float], str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_context().new_page()  # a fresh context: nothing cached
        start = time.perf_counter()
        page.goto(f"{url}?model={X2.stem}&backend=wasm")
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
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


if __name__ == "__main__":
    main()
