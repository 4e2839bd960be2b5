"""Inpainting without torch: masks, the classical steps, mask errors, the process step of a
pipeline, and `artgan evaluate inpaint` (the core's command from the plugin's evaluation)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from artgan.errors import ArtganError
from artgan.steps import build_step

from artgan_inpaint.evaluate import BANDS, eval_mask
from artgan_inpaint.masks import MaskSource, random_mask


def synthetic_image(h: int, w: int, seed: int) -> np.ndarray:
    """uint8 HWC: gradients and stripes, smooth enough for diffusion methods to do well."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    chans = [0.5 + 0.4 * np.sin(2 * np.pi * (rng.uniform(1, 3) * x + rng.uniform(1, 3) * y + rng.uniform()))
             for _ in range(3)]
    return (np.stack(chans, -1) * 255).astype(np.uint8)


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(synthetic_image(48, 64, i)).save(folder / f"img{i:02d}.png")
    return folder


def write_mask(path, h, w, box=None):
    m = np.zeros((h, w), np.uint8)
    if box:
        x, y, bw, bh = box
        m[y:y + bh, x:x + bw] = 255
    Image.fromarray(m).save(path)
    return path


# -- masks -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(64, 64), (48, 80), (321, 481)])
@pytest.mark.parametrize("area", [(0.05, 0.10), (0.20, 0.40)])
def test_random_masks_cover_the_requested_area(size, area):
    rng = np.random.default_rng(1)
    for _ in range(10):
        m = random_mask(*size, rng, area=area)
        assert m.shape == size and m.dtype == np.float32
        assert set(np.unique(m)) <= {0.0, 1.0}
        assert area[0] <= m.mean() <= area[1]


def test_random_masks_are_seeded():
    a = random_mask(64, 64, np.random.default_rng(7))
    b = random_mask(64, 64, np.random.default_rng(7))
    c = random_mask(64, 64, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_eval_masks_are_fixed_per_file_and_band_and_lie_in_the_band():
    for b, (_, lo, hi) in enumerate(BANDS):
        m = eval_mask("101085.png", b, 321, 481)
        assert m.dtype == bool and lo <= m.mean() <= hi
        assert np.array_equal(m, eval_mask("101085.png", b, 321, 481))
    assert not np.array_equal(eval_mask("a.png", 2, 100, 120), eval_mask("b.png", 2, 100, 120))
    assert not np.array_equal(eval_mask("a.png", 2, 100, 120), eval_mask("a.png", 2, 100, 120, seed=1))


# -- the user's mask -------------------------------------------------------------------------------

def test_box_parses_from_a_step_spec_and_a_list():
    assert MaskSource("s", box="10,20,30,40").box == (10, 20, 30, 40)
    assert MaskSource("s", box=[1, 2, 3, 4]).box == (1, 2, 3, 4)
    hole = MaskSource("s", box="60,40,100,100").for_image(48, 64)  # clipped to the image
    assert hole.sum() == 4 * 8


@pytest.mark.parametrize("box, message", [
    ("1,2,3", "box must be x,y,w,h"), ("a,b,c,d", "box must be x,y,w,h"),
    ("0,0,0,5", "w and h > 0"), ("-1,0,5,5", "x and y must be >= 0"),
])
def test_bad_boxes_are_clear_errors(box, message):
    with pytest.raises(ArtganError, match=message):
        MaskSource("inpaint", box=box)


def test_box_outside_the_image_is_an_error():
    with pytest.raises(ArtganError, match="outside the 64x48 image"):
        MaskSource("inpaint", box="100,0,5,5").for_image(48, 64)


def test_mask_or_box_is_required_and_not_both(tmp_path):
    with pytest.raises(ArtganError, match="give the hole as mask=MASK.png"):
        MaskSource("inpaint")
    with pytest.raises(ArtganError, match="not both"):
        MaskSource("inpaint", mask="m.png", box="1,2,3,4")


def test_empty_mask_is_an_error(tmp_path):
    path = write_mask(tmp_path / "empty.png", 48, 64)
    with pytest.raises(ArtganError, match=r"empty.png has no hole: mark the region to fill in white"):
        MaskSource("inpaint-telea", mask=str(path))


def test_full_mask_is_an_error(tmp_path):
    full = np.full((48, 64), 255, np.uint8)
    Image.fromarray(full).save(tmp_path / "full.png")
    with pytest.raises(ArtganError, match=r"full.png covers the whole image, leaving nothing to fill from"):
        MaskSource("inpaint", mask=str(tmp_path / "full.png"))
    with pytest.raises(ArtganError, match=r"box=0,0,64,48 covers the whole image"):
        MaskSource("inpaint", box="0,0,64,48").for_image(48, 64)


def test_mask_alpha_needs_an_image_file():
    with pytest.raises(ArtganError, match=r"mask=alpha reads the transparency of the image file, which only "
                                          r"`artgan process` has"):
        MaskSource("inpaint-ns", mask="alpha").for_image(48, 64)


def test_hole_window_shows_the_hole_with_context():
    from artgan_inpaint.evaluate import hole_window

    hole = np.zeros((300, 400), bool)
    hole[100:250, 200:390] = True
    top, left, side = hole_window(hole, 120)
    window = hole[top:top + side, left:left + side]
    assert side == 120 and 0.55 <= window.mean() <= 0.6  # mostly hole, some known pixels around it


def test_wrong_size_mask_is_an_error(tmp_path):
    path = write_mask(tmp_path / "m.png", 10, 12, box=(0, 0, 5, 5))
    source = MaskSource("inpaint-telea", mask=str(path))
    with pytest.raises(ArtganError, match=r"m.png is 12x10 but the image is 64x48; draw the mask at the image's size"):
        source.for_image(48, 64)


def test_missing_mask_file_is_an_error(tmp_path):
    with pytest.raises(ArtganError, match="nope.png: file not found"):
        MaskSource("inpaint", mask=str(tmp_path / "nope.png"))


# -- classical steps -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["inpaint-telea", "inpaint-ns", "inpaint-biharmonic"])
def test_classical_steps_fill_only_the_hole(registry, tmp_path, name):
    if name == "inpaint-biharmonic":
        pytest.importorskip("skimage")
    image = synthetic_image(48, 64, 0).astype(np.float32) / 255
    mask = write_mask(tmp_path / "m.png", 48, 64, box=(20, 10, 16, 12))
    hole = np.zeros((48, 64), bool)
    hole[10:22, 20:36] = True
    damaged = np.where(hole[..., None], 0.0, image)[None]  # a black hole
    for spec in (f"{name}:mask={mask}", f"{name}:box=20,10,16,12"):
        step = build_step(registry, spec)
        out = step(damaged)
        assert out.shape == damaged.shape and out.dtype == np.float32
        assert np.array_equal(out[0][~hole], damaged[0][~hole])  # known pixels untouched
        err_before = np.abs(damaged[0][hole] - image[hole]).mean()
        err_after = np.abs(out[0][hole] - image[hole]).mean()
        assert err_after < 0.3 * err_before  # smooth content: the fill is close to the truth


def test_step_params_are_checked(registry):
    with pytest.raises(ArtganError, match="radius must be"):
        build_step(registry, "inpaint-telea:box=1,1,4,4,radius=-2")
    with pytest.raises(ArtganError, match="give the hole as mask=MASK.png"):
        build_step(registry, "inpaint-ns")


def test_biharmonic_without_scikit_image_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_skimage(name, *args, **kwargs):
        if name.startswith("skimage"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skimage)
    from artgan_inpaint.steps import BiharmonicInpaint
    with pytest.raises(ArtganError, match=r"pip install 'artgan\[classical\]'"):
        BiharmonicInpaint()


def test_classical_steps_run_without_torch(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from artgan.plugins import get_registry\n"
        "from artgan.steps import build_step\n"
        "r = get_registry()\n"
        "for n in ('inpaint-telea', 'inpaint-ns'):\n"
        "    out = build_step(r, n + ':box=2,2,8,8')(np.full((1, 16, 16, 3), 0.5, np.float32))\n"
        "    assert out.shape == (1, 16, 16, 3)\n"
        "import artgan_inpaint.evaluate\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


# -- pipelines and the CLI -------------------------------------------------------------------------

def test_pipeline_process_step_inpaints_a_folder(runner, image_folder, tmp_path):
    from artgan.cli import cli

    mask = write_mask(tmp_path / "m.png", 48, 64, box=(8, 8, 20, 10))
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"name: fill\nstages:\n  - process:\n      input: {image_folder}\n"
                    f"      steps: ['inpaint-telea:mask={mask}', {{name: inpaint-ns, box: '30,20,10,10'}}]\n")
    res = runner.invoke(cli, ["run", str(pipe), "--out", str(tmp_path / "run"), "-q"])
    assert res.exit_code == 0, res.output
    made = sorted((tmp_path / "run" / "processed").glob("*.png"))
    assert len(made) == 6
    before = np.asarray(Image.open(image_folder / "img00.png"))
    after = np.asarray(Image.open(made[0]))
    assert np.array_equal(before[:8], after[:8]) and not np.array_equal(before[8:18, 8:28], after[8:18, 8:28])


def test_pipeline_with_a_wrong_size_mask_fails_clearly(runner, image_folder, tmp_path):
    from artgan.cli import cli

    mask = write_mask(tmp_path / "small.png", 10, 10, box=(1, 1, 3, 3))
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"name: fill\nstages:\n  - process:\n      input: {image_folder}\n"
                    f"      steps: ['inpaint-telea:mask={mask}']\n")
    res = runner.invoke(cli, ["run", str(pipe), "--out", str(tmp_path / "run"), "-q"])
    assert res.exit_code == 1
    assert "Error: inpaint-telea: mask" in res.output and "is 10x10 but the image is 64x48" in res.output


def test_evaluate_inpaint_scores_every_method_per_band(runner, image_folder, tmp_path):
    from artgan.cli import cli

    out, sheet = tmp_path / "results.json", tmp_path / "sheet.png"
    res = runner.invoke(cli, ["evaluate", "inpaint", "--data", str(image_folder), "--baselines", "telea,ns",
                              "--out", str(out), "--sheet", str(sheet), "-q"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith("photos (6 images, split all): over the hole, per mask-area band")
    assert "PSNR 20-40%" in lines[1] and "SSIM 5-10%" in lines[1] and lines[1].split()[-2:] == ["vs", "telea"]
    results = json.loads(out.read_text())
    assert list(results["methods"]) == ["telea", "ns", "detail-bsds400", "residual-bsds400"]  # the shipped models by default
    for method in results["methods"].values():
        assert sorted(method["per_image"]) == [f"img{i:02d}" for i in range(6)]
        for band, _, _ in BANDS:
            assert 10 < method[f"psnr {band}"] < 60 and 0 < method[f"ssim {band}"] <= 1
            assert 0 < method[f"l1 {band}"] < 0.5 and 0 < method[f"detail {band}"] < 100  # smooth test photos: a ratio over a small std
    # the sheet: input, mask, telea, ns, the two models, original; for each of 4 photos its whole
    # photos (64 px wide enlarged to 240 px: 180 high), its hole's crops at full resolution
    # (48 px, the photo's shorter side) and their captions (14 px), each + gaps
    image = Image.open(sheet)
    assert image.size == (7 * (240 + 4), 22 + 4 * (180 + 4 + 48 + 4 + 14))
    # under the table: each model against the best classical fill of each photo, per band
    assert "hole PSNR against the best classical fill per photo (telea, ns):" in res.stdout
    assert results["summary"][1].startswith("  detail-bsds400 5-10%: ") and len(results["summary"]) == 1 + 2 * len(BANDS)

    res = runner.invoke(cli, ["evaluate", "inpaint", "--data", str(image_folder), "--split", "heldout",
                              "--baselines", "telea", "--model", "residual-bsds400", "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert list(json.loads(res.stdout)["methods"]["telea"]["per_image"]) == ["img03"]  # artgan.splits


def test_evaluate_inpaint_bad_input_is_one_line(runner, image_folder):
    from artgan.cli import cli

    res = runner.invoke(cli, ["evaluate", "inpaint", "--data", str(image_folder), "--baselines", "telea,magic"])
    assert res.exit_code == 1 and "Error: evaluate inpaint: unknown baseline 'magic'; choose among telea" in res.output
    res = runner.invoke(cli, ["evaluate", "inpaint", "--data", str(image_folder), "--masks-per-image", "0"])
    assert res.exit_code == 2 and "--masks-per-image" in res.output


def test_the_evaluation_meets_the_core_contract(registry):
    from artgan.testing import check_evaluation

    check_evaluation(registry.create("evaluation", "inpaint"), "inpaint")


def test_evaluation_inputs_are_the_photo_with_each_bands_hole(image_folder):
    from artgan.evaluation import Request
    from artgan_inpaint.evaluate import load, score

    request = Request("inpaint", image_folder, "all", [], ["telea"], {"seed": 0, "masks_per_image": 2, "radius": 3.0})
    inputs, (image, holes) = load(image_folder / "img01.png", request)
    assert inputs.shape == (2 * len(BANDS), 48, 64, 4) and len(holes) == 2 * len(BANDS)
    assert all(np.array_equal(x[..., :3], image) for x in inputs)
    for b in range(len(BANDS)):  # band-major, then the masks of a band
        for k in range(2):
            expected = eval_mask("img01.png", b, 48, 64, k=k)
            assert np.array_equal(inputs[2 * b + k, ..., 3] > 0.5, expected) and np.array_equal(holes[2 * b + k], expected)
    perfect = score(inputs[..., :3], (image, holes), request)
    assert perfect["l1 5-10%"] == 0 and perfect["ssim 20-40%"] == pytest.approx(1.0)
    assert perfect["detail 40-60%"] == pytest.approx(1.0)
    with pytest.raises(ArtganError, match="expected"):
        score(inputs[:3, ..., :3], (image, holes), request)


def test_detail_ratio_is_one_for_the_photo_and_low_for_a_blur():
    import cv2

    from artgan_inpaint.evaluate import detail_ratio

    rng = np.random.default_rng(3)  # a textured photo: fine grain over a smooth scene
    photo = np.clip(synthetic_image(96, 128, 3) / 255.0 + rng.normal(0, 0.08, (96, 128, 3)), 0, 1).astype(np.float32)
    hole = np.zeros(photo.shape[:2], bool)
    hole[20:76, 30:100] = True
    assert detail_ratio(photo, photo, hole) == pytest.approx(1.0)
    blurred = np.where(hole[..., None], cv2.GaussianBlur(photo, (0, 0), 3), photo)
    assert detail_ratio(blurred, photo, hole) < 0.2
    flat = np.where(hole[..., None], photo[hole].mean(0), photo)  # a constant fill: no detail at all
    assert detail_ratio(flat, photo, hole) == pytest.approx(0.0, abs=1e-6)
    # the rim is left out: a fill that differs only in the 2 px inside the hole's edge scores 1
    rim = hole & ~np.pad(hole[2:-2, 2:-2], 2)
    assert detail_ratio(np.where(rim[..., None], 0.5, photo), photo, hole) == pytest.approx(1.0)


def test_the_40_to_60_percent_band_is_evaluated():
    assert [band for band, _, _ in BANDS] == ["5-10%", "10-20%", "20-40%", "40-60%"]
    hole = eval_mask("photo.png", 3, 321, 481, seed=1)
    assert 0.4 <= hole.mean() <= 0.6


def test_xphoto_fills_are_listed_when_opencv_contrib_is_there(monkeypatch):
    from artgan_inpaint import evaluate, steps

    monkeypatch.setattr(evaluate, "xphoto_available", lambda: True)
    evaluation = evaluate.inpaint_evaluation()
    assert evaluation.baselines[:2] == ("telea", "ns") and evaluation.baselines[-2:] == ("fsr_fast", "shiftmap")
    assert "skipped" not in evaluation.note
    monkeypatch.setattr(evaluate, "xphoto_available", lambda: False)
    evaluation = evaluate.inpaint_evaluation()
    assert "fsr_fast" not in evaluation.baselines and "shiftmap" not in evaluation.baselines
    assert "fsr_fast and shiftmap skipped: no cv2.xphoto" in evaluation.note
    assert "opencv-contrib-python-headless" in evaluation.note.splitlines()[-1]
    # asked for anyway: one line that says how to install it
    monkeypatch.setattr(steps, "xphoto_available", lambda: False)
    with pytest.raises(ArtganError, match="inpaint-shiftmap needs opencv-contrib's cv2.xphoto"):
        steps.XPhotoInpaint("shiftmap")


def test_xphoto_availability_needs_the_function_not_the_folder(monkeypatch):
    import types

    from artgan_inpaint.steps import xphoto_available

    # a contrib install overwritten by opencv-python-headless leaves an empty cv2/xphoto behind
    monkeypatch.setitem(sys.modules, "cv2", types.SimpleNamespace(xphoto=types.SimpleNamespace()))
    assert not xphoto_available()
    monkeypatch.setitem(sys.modules, "cv2", types.SimpleNamespace(xphoto=types.SimpleNamespace(inpaint=print)))
    assert xphoto_available()


@pytest.mark.skipif(not __import__("artgan_inpaint.steps", fromlist=["x"]).xphoto_available(),
                    reason="opencv-contrib's cv2.xphoto is not installed")
@pytest.mark.parametrize("method", ["fsr_fast", "shiftmap"])
def test_xphoto_fills_change_only_the_hole(method):
    from artgan_inpaint.steps import XPhotoInpaint

    photo = synthetic_image(48, 64, 5).astype(np.float32) / 255.0
    hole = np.zeros((48, 64), bool)
    hole[10:30, 20:44] = True
    out = XPhotoInpaint(method).inpaint(photo, hole)
    assert np.array_equal(out[~hole], photo[~hole])
    assert np.abs(out[hole] - photo[hole]).mean() < 0.25  # a fill, not garbage


def test_the_summary_compares_each_model_with_the_best_classical_fill_of_each_photo():
    from artgan_inpaint.evaluate import against_best_classical

    def method(per_photo):  # psnr 20-40% per photo; the other bands the same; detail 0.5
        per = {im: {f"{m} {band}": (v if m == "psnr" else 0.5) for m in ("psnr", "detail") for band, _, _ in BANDS}
               for im, v in per_photo.items()}
        return {**{k: 0.5 for k in next(iter(per.values()))}, "per_image": per}

    result = {"methods": {"telea": method({"a": 20.0, "b": 15.0}), "ns": method({"a": 18.0, "b": 17.0}),
                          "mine": method({"a": 20.5, "b": 16.0})}}
    lines = against_best_classical(result)
    assert lines[0] == "hole PSNR against the best classical fill per photo (telea, ns):"
    # a: 20.5 against telea's 20.0 (+0.5); b: 16.0 against ns's 17.0 (-1.0)
    assert "  mine 20-40%: -0.25 dB mean, -1.00 worst, won 1/2; detail 0.500" in lines
    assert against_best_classical({"methods": {"telea": result["methods"]["telea"]}}) == []
