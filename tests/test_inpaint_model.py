"""The inpainting model: the residual network over a classical pre-fill, dataset, training, ONNX
export with dynamic sizes, the `inpaint` step (pre-fill, tiling, model lookup, no torch at run
time, masks from the image's transparency) and a whole pipeline."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.steps import build_step

from artgan_inpaint.model import InpaintNet, InpaintNetConfig, InpaintRecipe, PastedInpainter

from test_inpaint import synthetic_image


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # tiny networks: on a busy machine, a second intra-op thread only adds waiting (50x slower seen)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(synthetic_image(48, 64, i)).save(folder / f"img{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny inpainting network with random (non-zero) weights, exported as models/inpaint/tiny.onnx."""
    from artgan.export import export_onnx

    torch.manual_seed(0)
    recipe = InpaintRecipe(info=DatasetInfo(image_size=32), width=4, blocks=2)
    torch.nn.init.normal_(recipe.sampling_generator.out.weight, std=0.3)  # else the correction is zero
    root = tmp_path_factory.mktemp("models")
    path = root / "inpaint" / "tiny.onnx"
    card = export_onnx(recipe.export_spec(), path)
    return recipe, path, card


def test_untrained_network_is_the_classical_fill_and_keeps_known_pixels():
    torch.manual_seed(0)
    net = InpaintNet(InpaintNetConfig(width=8, blocks=2)).eval()
    image = torch.rand(2, 3, 40, 56) * 2 - 1
    mask = torch.zeros(2, 1, 40, 56)
    mask[..., 8:24, 16:40] = 1
    assert torch.equal(PastedInpainter(net)(image, mask), image)  # zero last layer: no correction
    torch.nn.init.normal_(net.out.weight, std=0.5)
    out = PastedInpainter(net)(image, mask * 0.9)  # soft masks are thresholded at 0.5
    assert out.shape == image.shape and out.abs().max() <= 1
    assert torch.equal(out * (1 - mask), image * (1 - mask))  # known pixels pasted back exactly
    assert not torch.equal(out * mask, image * mask)


def test_network_config_is_checked():
    with pytest.raises(ArtganError, match="width must be a positive integer"):
        InpaintNetConfig(width=0)
    with pytest.raises(ArtganError, match="dilations must be a list of integers >= 1"):
        InpaintNetConfig(dilations=[1, 0])
    with pytest.raises(ArtganError, match="pixel_loss must be one of l2, l1"):
        InpaintRecipe(info=DatasetInfo(image_size=32), pixel_loss="l3")
    with pytest.raises(ArtganError, match="trains without a discriminator"):
        InpaintRecipe(info=DatasetInfo(image_size=32), loss=object())


def test_dataset_crops_masks_and_prefills(image_folder):
    from artgan_inpaint.data import InpaintMaskDataset
    from artgan_inpaint.steps import classical_fill

    ds = InpaintMaskDataset(str(image_folder), crop_size=32, mask_area=[0.2, 0.3], items_per_image=3)
    assert len(ds) == 6 * 3  # artgan.splits' train split: 8 files less the held-out 3 and 7
    np.random.seed(0)
    item = ds[0]
    assert item["image"].shape == item["prefill"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
    assert -1 <= item["image"].min() and item["image"].max() <= 1
    hole = item["mask"][0] > 0.5
    assert set(item["mask"].unique().tolist()) <= {0.0, 1.0} and 0.2 <= item["mask"].mean() <= 0.3
    # the pre-fill is OpenCV's Navier-Stokes fill of the 8-bit crop: known pixels equal, the hole filled
    assert torch.equal(item["prefill"][:, ~hole], item["image"][:, ~hole])
    crop = np.round((item["image"].numpy().transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
    expected = classical_fill(crop, hole.numpy(), "ns").astype(np.float32) / 127.5 - 1
    assert np.allclose(item["prefill"].numpy().transpose(1, 2, 0), expected, atol=1e-6)
    np.random.seed(0)
    again = ds[0]
    assert all(torch.equal(item[k], again[k]) for k in item)
    big = InpaintMaskDataset(str(image_folder), crop_size=80, split="heldout")  # padded up to the crop
    assert len(big.images) == 2 and big[0]["image"].shape == (3, 80, 80)
    held = [np.asarray(Image.open(image_folder / f"img{i:02d}.png")) for i in (3, 7)]
    assert all(np.array_equal(a, b) for a, b in zip(big.images, held))
    with pytest.raises(ArtganError, match="inpaint-masks: split must be one of"):
        InpaintMaskDataset(str(image_folder), split="test")
    with pytest.raises(ArtganError, match="crop_size must be a multiple of 8"):
        InpaintMaskDataset(str(image_folder), crop_size=30)
    with pytest.raises(ArtganError, match="mask_area must satisfy"):
        InpaintMaskDataset(str(image_folder), mask_area=[0.5, 0.2])
    with pytest.raises(ArtganError, match="prefill must be one of ns, telea"):
        InpaintMaskDataset(str(image_folder), prefill="magic")


def test_training_beats_the_prefill(image_folder):
    """The recipe's phase trains the network: on a fixed batch the hole error falls below the
    classical fill it starts from (gain > 0 dB), and the hole loss is what it reports."""
    from artgan.data import batches
    from artgan_inpaint.data import InpaintMaskDataset

    torch.manual_seed(0)
    np.random.seed(0)
    ds = InpaintMaskDataset(str(image_folder), crop_size=32, items_per_image=8)
    recipe = InpaintRecipe(info=ds.info, width=8, blocks=2, lr=2e-3, ema=0)
    batch = next(batches(ds, 6, seed=0))
    gains, losses = [], []
    for step in range(1, 41):
        (phase,) = recipe.phases()
        phase.optimizer.zero_grad()
        out = phase.losses(batch)
        out["loss"].backward()
        phase.optimizer.step()
        recipe.after_iteration(step)
        gains.append(float(out["psnr_gain_db"]))
        losses.append(float(out["loss"].detach()))
    assert gains[0] == pytest.approx(0.0, abs=1e-6)  # the untrained network is the pre-fill
    assert gains[-1] > 1.0 and losses[-1] < 0.8 * losses[0], (np.round(gains, 2), np.round(losses, 4))


def test_lr_decay_and_ema():
    recipe = InpaintRecipe(info=DatasetInfo(image_size=32), width=4, blocks=1, lr=1e-3, decay_to=10)
    recipe.after_iteration(5)
    assert recipe.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))
    recipe.after_iteration(10)
    assert recipe.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(1e-5)
    with torch.no_grad():
        for p in recipe.net.parameters():
            p.add_(1.0)
    before = [e.clone() for e in recipe.ema.module.parameters()]
    recipe.after_iteration(1000)
    moved = [(e - b).abs().mean() for e, b in zip(recipe.ema.module.parameters(), before)]
    assert all(0.0005 < float(m) < 0.01 for m in moved)  # decay 0.999: a step of 1/1000 toward the net
    assert recipe.sampling_generator is recipe.ema.module
    assert InpaintRecipe(info=DatasetInfo(image_size=32), width=4, blocks=1, ema=0).sampling_generator is not None


def test_export_metadata_and_dynamic_sizes(tiny_model):
    import onnxruntime as ort
    from artgan.metrics import psnr

    recipe, path, card = tiny_model
    md = card["metadata"]
    assert md["task"] == "image-to-image" and md["step"] == "inpaint" and md["size_multiple"] == 4
    assert md["inputs"] == ["image", "mask"] and md["pasted"] is True and md["value_range"] == [-1.0, 1.0]
    assert md["prefill"] == {"method": "ns", "radius": 3.0}
    assert card["verification"]["psnr_db"] >= 50
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image", "mask"]
    module = PastedInpainter(recipe.sampling_generator).eval()
    for h, w in [(40, 56), (72, 32)]:
        x = torch.rand(2, 3, h, w) * 2 - 1
        m = (torch.rand(2, 1, h, w) > 0.6).float()
        with torch.no_grad():
            ref = module(x, m).numpy()
        out = sess.run(None, {"image": x.numpy(), "mask": m.numpy()})[0]
        assert out.shape == ref.shape and psnr(out, ref, data_range=2.0) >= 50
        assert np.array_equal(out[m.numpy().repeat(3, 1) == 0], x.numpy()[m.numpy().repeat(3, 1) == 0])


def test_inpaint_step_finds_the_model_and_pastes(tiny_model, monkeypatch, tmp_path, registry):
    recipe, path, _ = tiny_model
    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(path.parent.parent))
    step = build_step(registry, "inpaint:box=10,5,20,12,model=tiny")
    image = synthetic_image(45, 61, 3).astype(np.float32)[None] / 255  # not a multiple of 4: padded
    out = step(image)
    hole = np.zeros((45, 61), bool)
    hole[5:17, 10:30] = True
    assert out.shape == image.shape
    assert np.array_equal(out[0][~hole], image[0][~hole])
    # the same as PyTorch on the padded, Navier-Stokes pre-filled image
    from artgan.tiling import pad_to_multiple
    from artgan_inpaint.steps import classical_fill
    start = classical_fill(synthetic_image(45, 61, 3), hole, "ns").astype(np.float32) / 255
    start = np.where(hole[..., None], start, image[0])
    padded = pad_to_multiple(start, 4)
    pmask = pad_to_multiple(hole[..., None].astype(np.float32), 4)
    with torch.no_grad():
        ref = PastedInpainter(recipe.sampling_generator)(torch.from_numpy(padded.transpose(2, 0, 1))[None] * 2 - 1,
                                                   torch.from_numpy(pmask.transpose(2, 0, 1))[None])
    ref = ((ref[0].numpy().transpose(1, 2, 0) + 1) / 2)[:45, :61]
    assert np.abs(out[0] - ref).max() < 1e-4
    assert np.abs(out[0] - start).max() > 0.01  # the network changed the pre-fill
    with pytest.raises(ArtganError, match=r"no model named 'nope'; available: tiny"):
        build_step(registry, "inpaint:box=1,1,4,4,model=nope")


def test_inpaint_step_tiles_large_images_only(tiny_model):
    from artgan_inpaint.steps import ModelInpaint

    _, path, _ = tiny_model
    step = ModelInpaint(model=str(path))
    assert step.runner.tile_for(1080, 1920) is None  # whole image: the hole keeps all its context
    assert step.runner.tile_for(3000, 4000) == 1024
    tiled = ModelInpaint(model=str(path), tile=64)
    image = synthetic_image(100, 130, 1).astype(np.float32) / 255
    hole = np.zeros((100, 130), bool)
    hole[40:60, 50:90] = True
    out = tiled.inpaint(image, hole)
    assert np.isfinite(out).all() and np.array_equal(out[~hole], image[~hole])
    with pytest.raises(ArtganError, match="tile must be an integer >= 64"):
        ModelInpaint(model=str(path), tile=10)


def test_inpaint_step_runs_without_torch(tiny_model):
    _, path, _ = tiny_model
    code = (
        "import sys, numpy as np\n"
        "from artgan.plugins import get_registry\n"
        "from artgan.steps import build_step\n"
        f"step = build_step(get_registry(), 'inpaint:box=2,2,8,8,model={path}')\n"
        "out = step(np.full((1, 20, 28, 3), 0.5, np.float32))\n"
        "assert out.shape == (1, 20, 28, 3)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_pipeline_trains_exports_and_inpaints(runner, image_folder, tmp_path):
    from artgan.cli import cli

    run = tmp_path / "run"
    pipe = tmp_path / "inpaint.yaml"
    pipe.write_text(f"""\
name: inpaint-tiny
stages:
  - train:
      dataset: {{name: inpaint-masks, path: {image_folder}, crop_size: 32, items_per_image: 2}}
      architecture: {{name: inpaint-residual, width: 4, blocks: 1, decay_to: 4, sample_images: {image_folder}}}
      iterations: 4
      batch_size: 4
      checkpoint_every: 2
      sample_count: 2
  - export: {{out: export/tiny.onnx}}
  - process:
      input: {image_folder}
      steps: ["inpaint:box=4,4,20,10,model={run}/export/tiny.onnx", "inpaint-telea:box=30,20,8,8"]
""")
    res = runner.invoke(cli, ["run", str(pipe), "--out", str(run), "-q"])
    assert res.exit_code == 0, res.output
    assert len(list((run / "processed").glob("*.png"))) == 8
    assert (run / "samples" / "iteration_000004.png").exists()


def test_build_checks_the_export_on_the_holes_the_step_fills_and_times_it(image_folder, tmp_path):
    """`artgan build inpaint`: the card's ONNX-vs-PyTorch check runs on the photo as the step
    pre-fills it, one input per evaluation hole, and the step is timed at 512x512."""
    from artgan.build import build_task
    from artgan.plugins import get_registry
    from artgan.tasks import load_tasks

    pipe = tmp_path / "inpaint.yaml"
    pipe.write_text("""\
name: inpaint-tiny
description: a tiny inpainting model
stages:
  - train:
      dataset: {name: inpaint-masks, path: photos, crop_size: 32, items_per_image: 2}
      architecture: {name: inpaint-residual, width: 4, blocks: 1, decay_to: 4}
      iterations: 4
      batch_size: 4
      checkpoint_every: 4
      sample_count: 2
  - export: {out: export/tiny.onnx}
""")
    registry = get_registry()
    report = build_task(load_tasks(registry)[0]["inpaint"], data=image_folder, name="tiny", pipeline=pipe,
                        eval_options=["masks_per_image=1"], registry=registry, runs=tmp_path / "runs",
                        to=tmp_path / "models", progress=False, log=lambda msg: None)
    card = json.loads(report.installed.with_name("tiny.card.json").read_text())
    assert card["summary"]["title"] == "inpaint `tiny`: fill the holes a mask marks in a photo"
    assert card["summary"]["lines"][0] == "a tiny inpainting model"
    real = card["real_inputs"]
    assert real["inputs"].startswith("img03.png (photos, split heldout): 4 input(s) of 64x48 (WxH)")  # a hole per band
    assert real["min_psnr_db"] >= real["min_psnr"] == 50.0
    assert card["speed"]["size"] == [512, 512] and card["speed"]["images"] == 4 and card["speed"]["step"] == "inpaint"
    assert card["training"]["iterations"] == 4 and "--eval-set masks_per_image=1" in card["command"]
    md = report.installed.with_name("tiny.card.md").read_text()
    for section in ("# inpaint `tiny`", "- use: `artgan process IMAGES --step inpaint:model=tiny", "## Data and training",
                    "## Reproduce", "## Speed", "## Evaluation: photos (split heldout)", "| tiny |"):
        assert section in md, section


# -- masks through `artgan process`: the user's PNG, the image's transparency, and the errors -------

@pytest.fixture
def installed_tiny(tiny_model, monkeypatch):
    _, path, _ = tiny_model
    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(path.parent.parent))
    return path


def _process(runner, *args):
    from artgan.cli import cli

    return runner.invoke(cli, ["process", *map(str, args), "-q"])


def test_process_inpaints_the_transparent_pixels_with_mask_alpha(runner, installed_tiny, tmp_path):
    rgb = synthetic_image(48, 64, 5)
    alpha = np.full((48, 64), 255, np.uint8)
    alpha[10:30, 12:40] = 0  # erased in an editor
    rgba = np.dstack([rgb, alpha])
    rgba[10:30, 12:40, :3] = 0  # what an editor leaves under erased pixels
    Image.fromarray(rgba, "RGBA").save(tmp_path / "erased.png")
    res = _process(runner, tmp_path / "erased.png", "--step", "inpaint:mask=alpha,model=tiny", "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    out = np.asarray(Image.open(tmp_path / "out" / "erased.png"))
    hole = alpha == 0
    assert out.shape == (48, 64, 3) and np.array_equal(out[~hole], rgb[~hole])
    assert out[hole].mean() > 40  # filled from the surroundings, not left black
    # the same hole as a mask file gives the same result
    Image.fromarray(np.where(hole, 255, 0).astype(np.uint8)).save(tmp_path / "m.png")
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    res = _process(runner, tmp_path / "photo.png", "--step", f"inpaint:mask={tmp_path / 'm.png'},model=tiny",
                   "--out", tmp_path / "out2")
    assert res.exit_code == 0, res.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out2" / "photo.png")), out)


@pytest.mark.parametrize("case, message", [
    ("wrong-size", r"Error: inpaint: mask \S+m.png is 20x10 but the image is 64x48; draw the mask at the image's size"),
    ("empty", r"Error: inpaint: mask \S+m.png has no hole: mark the region to fill in white"),
    ("full", r"Error: inpaint: mask \S+m.png covers the whole image, leaving nothing to fill from"),
    ("no-alpha", r"Error: inpaint: \S+photo.png has no transparency for mask=alpha; erase the region"),
])
def test_bad_masks_are_one_line_errors_through_the_cli(runner, installed_tiny, tmp_path, case, message):
    import re

    Image.fromarray(synthetic_image(48, 64, 1)).save(tmp_path / "photo.png")
    mask = np.full((10, 20) if case == "wrong-size" else (48, 64), 255 if case == "full" else 0, np.uint8)
    if case == "wrong-size":
        mask[2:6, 3:9] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    mask = "alpha" if case == "no-alpha" else tmp_path / "m.png"
    res = _process(runner, tmp_path / "photo.png", "--step", f"inpaint:mask={mask},model=tiny", "--out", tmp_path / "out")
    assert res.exit_code != 0
    errors = [line for line in res.output.splitlines() if line.strip()]
    assert len(errors) == 1 and re.search(message, errors[0]), res.output
    assert "Traceback" not in res.output
