"""`artgan web`: the op check and the --out rules (no browser needed), and the built page in a
real browser (Debian's chromium, headless, driven by playwright) served by a plain static file
server: its outputs match onnxruntime in Python to within 1/255 per pixel."""

from __future__ import annotations

import base64
import functools
import http.server
import io
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from artgan.cli import cli
from artgan.errors import ArtganError

ROOT = Path(__file__).resolve().parents[1]
X2 = ROOT / "exports" / "superres" / "x2-gan.onnx"
STYLE = sorted((ROOT / "exports" / "style").glob("*.onnx"))[0]
GET_A_BROWSER = "no Chromium for the browser tests: apt-get install -y chromium && pip install -e '.[web]'"


def _onnx_model(path: Path, op: str = "ConvTranspose") -> Path:
    """A tiny image-to-image model made of one ``op`` node, with artgan metadata."""
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 1, 1], np.eye(3, dtype=np.float32).ravel())
    node = helper.make_node(op, ["image", "w"], ["out"], name="up1")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for k, v in {"task": "image-to-image", "scale": 1, "size_multiple": 1, "channels": 3, "value_range": [-1, 1]}.items():
        model.metadata_props.add(key=f"artgan.{k}", value=json.dumps(v))
    onnx.save(model, path)
    return path


# -- the CLI, no browser -----------------------------------------------------------------------------

def test_unsupported_op_is_one_line_naming_it(runner, tmp_path):
    bad = _onnx_model(tmp_path / "deconv.onnx")
    result = runner.invoke(cli, ["web", str(bad), "--out", str(tmp_path / "site")])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "ConvTranspose" in lines[0] and "artgan export" in lines[0] and "--target web" in lines[0]
    assert not (tmp_path / "site").exists()
    assert "Traceback" not in result.output


def test_artgan_web_never_imports_torch(tmp_path):
    import subprocess
    import sys

    bad = _onnx_model(tmp_path / "deconv.onnx")
    code = ("import sys\nfrom click.testing import CliRunner\nfrom artgan.cli import cli\n"
            f"r = CliRunner().invoke(cli, ['web', {str(X2)!r}, {str(bad)!r}, '--out', {str(tmp_path / 's')!r}])\n"
            "assert r.exit_code == 1 and 'ConvTranspose' in r.output, r.output\n"
            "assert 'torch' not in sys.modules, 'artgan web imported torch'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_op_check_accepts_the_shipped_models_and_reads_opsets():
    from artgan.web.ops import MAX_OPSET, check_file

    for path in [X2, STYLE, *ROOT.glob("exports/inpaint/*.onnx"), *ROOT.glob("exports/augment/*.onnx")]:
        assert check_file(path)["opset"] <= MAX_OPSET


def test_op_check_refuses_an_opset_newer_than_onnxruntime_web(tmp_path):
    import onnx
    from artgan.web.ops import MAX_OPSET, check_model

    model = onnx.load(_onnx_model(tmp_path / "conv.onnx", op="Conv"))
    check_model(model, "conv.onnx")  # a Conv passes
    model.opset_import[0].version = MAX_OPSET + 1
    with pytest.raises(ArtganError, match=f"opset {MAX_OPSET + 1} is newer"):
        check_model(model, "conv.onnx")


def test_out_that_is_not_a_site_is_not_clobbered(runner, tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "keep.jpg").write_bytes(b"mine")
    result = runner.invoke(cli, ["web", str(X2), "--out", str(out)])
    assert result.exit_code != 0 and "not a site" in result.output and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["keep.jpg"] and (out / "keep.jpg").read_bytes() == b"mine"


def test_missing_runtime_and_no_registry_is_one_line_with_the_fix(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", "http://127.0.0.1:9/")  # nothing listens on the discard port
    result = runner.invoke(cli, ["web", str(X2), "--out", str(tmp_path / "site")])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "onnxruntime-web" in lines[0] and "--fetch-runtime" in lines[0] and "npm pack" in lines[0]
    assert not (tmp_path / "site").exists()


def test_export_target_web_rewrites_transposed_convolutions(runner, tiny_pipeline, tmp_path):
    """The tiny DCGAN has transposed convolutions (dcgan's default): --target web exports them as
    exactly equivalent sub-pixel convolutions, verified against PyTorch, and the file passes."""
    import onnx

    from artgan.web.ops import check_file

    run = runner.invoke(cli, ["run", str(tiny_pipeline), "--out", str(tmp_path / "run"), "-q"])
    assert run.exit_code == 0, run.output
    plain, web = tmp_path / "plain.onnx", tmp_path / "web.onnx"
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.pt")
    assert runner.invoke(cli, ["export", ckpt, "--out", str(plain)]).exit_code == 0
    with pytest.raises(ArtganError, match="op ConvTranspose"):
        check_file(plain)
    result = runner.invoke(cli, ["export", ckpt, "--out", str(web), "--target", "web"])
    assert result.exit_code == 0, result.output
    assert "ConvTranspose" not in {n.op_type for n in onnx.load(str(web)).graph.node}
    check_file(web)
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(web)).metadata_props}
    assert meta["artgan.target"] == "web" and "sub-pixel convolutions (for the web)" in meta["artgan.rewrites"]
    assert meta["artgan.verification"]["max_abs_diff"] < 1e-3


@pytest.mark.parametrize("k,s,p,extra,h,w", [(4, 2, 1, 0, 5, 7), (4, 2, 1, 0, 1, 1), (3, 2, 1, 1, 6, 4),
                                             (5, 3, 2, 0, 4, 5), (3, 1, 2, 0, 5, 5)])
def test_sub_pixel_form_equals_the_transposed_convolution(k, s, p, extra, h, w):
    import torch
    from torch import nn

    from artgan.export.web import SubPixelTransposedConv

    torch.manual_seed(0)
    deconv = nn.ConvTranspose2d(6, 5, k, s, p, output_padding=extra)
    x = torch.randn(2, 6, h, w)
    with torch.no_grad():
        want, got = deconv(x), SubPixelTransposedConv(deconv)(x)
    assert got.shape == want.shape and (got - want).abs().max() < 1e-5


def test_export_target_web_names_a_transposed_convolution_it_cannot_rewrite():
    from torch import nn

    from artgan.export.web import check_module, transposed_convs_as_subpixel

    g, n = transposed_convs_as_subpixel(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Sequential(
        nn.ConvTranspose2d(8, 3, 4, (2, 1), 1))))
    assert n == 0
    with pytest.raises(ArtganError, match=r"layer '1\.0' \(ConvTranspose2d\).*upsample: nearest"):
        check_module(g)


# -- the page in a browser -----------------------------------------------------------------------------

def _chromium() -> str | None:
    return os.environ.get("ARTGAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        exe = None
    if not exe:
        pytest.skip(GET_A_BROWSER)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def quickstart_generator(tmp_path_factory):
    """The quickstart's generator (dcgan, nearest upsampling) trained for a few iterations through
    the CLI, exported with --target web."""
    from click.testing import CliRunner

    tmp = tmp_path_factory.mktemp("quickstart")
    runner = CliRunner()
    r = runner.invoke(cli, ["run", str(ROOT / "pipelines" / "quickstart.yaml"), "--out", str(tmp / "run"), "-q",
                            "--set", "train.iterations=3", "--set", "train.batch_size=8",
                            "--set", "train.dataset.name=digits", "--set", "train.architecture.g_width=8",
                            "--set", "train.architecture.d_width=8", "--set", "train.checkpoint_every=3",
                            "--set", "train.log_every=3", "--set", "generate.n=1"])
    assert r.exit_code == 0, r.output
    out = tmp / "generator.onnx"
    r = runner.invoke(cli, ["export", str(tmp / "run" / "checkpoints" / "last.pt"), "--out", str(out), "--target", "web"])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory, quickstart_generator):
    from artgan.web import build_site

    out = tmp_path_factory.mktemp("web") / "site"
    try:
        build_site([X2, STYLE, quickstart_generator], out)
    except ArtganError as exc:  # onnxruntime-web neither cached nor fetchable: CI fetches it first
        pytest.skip(str(exc))
    return out


def _serve(site: Path):
    """A plain static file server (no special headers): the page must work from any."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


@pytest.fixture(scope="module")
def server(site):
    httpd, url = _serve(site)
    yield url
    httpd.shutdown()


def _canvas(page, canvas_id: str) -> np.ndarray:
    url = page.evaluate(f"document.getElementById('{canvas_id}').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def _wait(page, state: str = "done", timeout: float = 30_000):
    page.wait_for_function(f"['{state}', 'error'].includes(document.getElementById('status').dataset.state)",
                           timeout=timeout)
    status = page.text_content("#status")
    assert page.get_attribute("#status", "data-state") == state, status
    return status


def _photo(path: Path, h: int = 70, w: int = 90, seed: int = 0) -> Path:
    """A smooth-plus-texture test picture (sides not multiples of 4: the page pads like runtime)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.stack([128 + 90 * np.sin(x / 9) * np.cos(y / 13), 120 + 100 * np.cos((x + y) / 15),
                    100 + 60 * np.sin(y / 7)], -1) + rng.normal(0, 12, (h, w, 3))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("model", [X2, STYLE], ids=["superres-x2", "style"])
def test_page_image_to_image_matches_onnxruntime(browser, server, model, tmp_path, capsys):
    from artgan.images import load_image, to_float, to_uint8
    from artgan.steps import OnnxImageStep

    photo = _photo(tmp_path / "photo.png")
    page = browser.new_page()
    page.goto(f"{server}?model={model.stem}&backend=wasm")
    _wait(page, "idle")
    # a plain static server sends no COOP/COEP headers: isolate.js adds them, so WASM gets threads
    assert page.evaluate("self.crossOriginIsolated")
    page.set_input_files("#file", str(photo))  # the file picker, as a person uses it
    status = _wait(page)
    got = _canvas(page, "after")
    ms = page.evaluate("window.artgan.last.ms")
    page.close()

    want = to_uint8(OnnxImageStep(model).run_one(to_float(load_image(photo))))
    assert got.shape == want.shape
    diff = np.abs(got.astype(int) - want.astype(int)).max()
    with capsys.disabled():  # the time per image, shown in every run
        print(f"\n{model.stem}: {ms:.0f} ms per image in the browser ({status}); max diff {diff}/255")
    assert diff <= 1


@pytest.fixture(scope="module")
def int8_site(tmp_path_factory):
    """x2 superres through `artgan web --int8` on eight generated photos."""
    tmp = tmp_path_factory.mktemp("int8")
    for i in range(8):
        _photo(tmp / "photos" / f"p{i}.png", 96 + 8 * i, 120 - 4 * i, seed=i)
    r = CliRunner().invoke(cli, ["web", str(X2), "--out", str(tmp / "site"), "--int8", str(tmp / "photos"),
                                 "--no-webgpu"])
    if r.exit_code != 0 and "onnxruntime-web" in r.output:
        pytest.skip(r.output.strip())
    assert r.exit_code == 0, r.output
    assert "x2-gan: int8, " in r.output
    return tmp / "site"


def test_int8_site_runs_an_int8_model_that_matches_onnxruntime_on_it(browser, int8_site, tmp_path, capsys):
    from artgan.images import load_image, to_float, to_uint8
    from artgan.steps import OnnxImageStep

    model = int8_site / "models" / f"{X2.stem}.onnx"
    entry = json.loads((int8_site / "models.json").read_text())["models"][0]
    assert entry["metadata"]["precision"] == "int8" and entry["metadata"]["int8_check"]["psnr_db_vs_fp32"] >= 40
    assert model.stat().st_size < X2.stat().st_size / 2
    httpd, url = _serve(int8_site)
    try:
        photo = _photo(tmp_path / "photo.png")
        page = browser.new_page()
        page.goto(f"{url}?model={X2.stem}&backend=wasm")
        _wait(page, "idle")
        page.set_input_files("#file", str(photo))
        _wait(page)
        got = _canvas(page, "after")
        page.close()
    finally:
        httpd.shutdown()
    want = to_uint8(OnnxImageStep(model).run_one(to_float(load_image(photo))))
    diff = np.abs(got.astype(int) - want.astype(int)).max()
    with capsys.disabled():
        print(f"\nx2-gan int8: max diff {diff}/255 against onnxruntime Python on the same file")
    assert diff <= 1


def test_page_generator_grid_and_slider_match_onnxruntime(browser, server, quickstart_generator, capsys):
    from artgan.images import to_uint8
    from artgan.runtime import Generator

    gen = Generator(quickstart_generator)
    page = browser.new_page()
    page.goto(f"{server}?model={quickstart_generator.stem}&backend=wasm")
    _wait(page)
    last = page.evaluate("window.artgan.last")
    grid = _canvas(page, "grid")
    n, s = last["n"], gen.image_shape()[0]
    z = np.asarray(last["latents"], np.float32).reshape(n, gen.latent_dim)
    want = to_uint8(gen.from_latents(z))
    got = np.stack([grid[(i // last["cols"]) * s:(i // last["cols"] + 1) * s, (i % last["cols"]) * s:(i % last["cols"] + 1) * s]
                    for i in range(n)])
    diff = np.abs(got[..., :want.shape[-1]].astype(int) - want.astype(int)).max()
    with capsys.disabled():
        print(f"\nquickstart generator: {n} images in {last['ms']:.0f} ms in the browser "
              f"({last['ms'] / n:.1f} ms per image); max diff {diff}/255")
    assert diff <= 1

    page.wait_for_function("window.artgan.frame && window.artgan.frame.t === 0")
    first = _canvas(page, "frame")
    page.fill("#t", "50")  # the interpolation slider halfway
    page.wait_for_function("window.artgan.frame.t === 0.5")
    time.sleep(0.05)
    frame = page.evaluate("window.artgan.frame")
    mid = _canvas(page, "frame")
    page.close()
    want = to_uint8(gen.from_latents(np.asarray([frame["latent"]], np.float32)))[0]
    assert np.abs(mid[..., :want.shape[-1]].astype(int) - want.astype(int)).max() <= 1
    assert not np.array_equal(first, mid)


def test_int8_keeps_fp32_where_int8_loses_quality_and_says_why(tmp_path, monkeypatch):
    """The quality bar decides: raised out of reach, the same model stays fp32, with one line."""
    import artgan.web.int8 as web_int8
    from artgan.web import build_site

    for i in range(4):
        _photo(tmp_path / "photos" / f"p{i}.png", seed=i)
    monkeypatch.setattr(web_int8, "MIN_PSNR_DB", 200.0)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # the quantiser's scratch files must not land here
    try:
        site = build_site([X2], tmp_path / "site", webgpu=False, int8_photos=tmp_path / "photos")
    except ArtganError as exc:
        if "onnxruntime-web" in str(exc):
            pytest.skip(str(exc))
        raise
    entry = site["models"][0]
    assert entry["int8"].startswith("x2-gan: kept in fp32: int8 reaches ") and "under 200" in entry["int8"]
    assert (tmp_path / "site" / "models" / "x2-gan.onnx").read_bytes() == X2.read_bytes()
    assert list((tmp_path / "cwd").iterdir()) == []


def test_int8_needs_photos_to_calibrate_and_check(runner, tmp_path):
    _photo(tmp_path / "photos" / "only.png")
    r = runner.invoke(cli, ["web", str(X2), "--out", str(tmp_path / "site"), "--int8", str(tmp_path / "photos")])
    assert r.exit_code != 0 and "needs a folder of at least 4 photos" in r.output
    assert not (tmp_path / "site").exists()
