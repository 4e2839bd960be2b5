"""The inpainting GAN: networks, dataset, training, ONNX export with dynamic sizes, the `inpaint`
step (tiling, model lookup, no torch at run time) and a whole pipeline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.steps import build_step

from artgan_inpaint.model import InpaintGenerator, InpaintRecipe, PastedInpainter, PatchDiscriminator

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
    """A randomly initialised tiny inpainting GAN exported as models/inpaint/tiny.onnx."""
    from artgan.export import export_onnx

    torch.manual_seed(0)
    recipe = InpaintRecipe(info=DatasetInfo(image_size=32), width=4, d_width=4)
    root = tmp_path_factory.mktemp("models")
    path = root / "inpaint" / "tiny.onnx"
    card = export_onnx(recipe.export_spec(), path)
    return recipe, path, card


def test_generator_keeps_sizes_and_ignores_the_hole_content():
    torch.manual_seed(0)
    G = InpaintGenerator(width=4).eval()
    image = torch.rand(2, 3, 40, 56) * 2 - 1
    mask = torch.zeros(2, 1, 40, 56)
    mask[..., 8:24, 16:40] = 1
    out = G(image, mask)
    assert out.shape == image.shape and out.abs().max() <= 1
    other = image.clone()
    other[..., 8:24, 16:40] = torch.rand(2, 3, 16, 24)  # change only what is inside the hole
    assert torch.allclose(G(other, mask), out)
    pasted = PastedInpainter(G)(image, mask * 0.9)  # soft masks are thresholded at 0.5
    assert torch.equal(pasted[..., :8, :], image[..., :8, :])


def test_push_pull_fills_holes_smoothly_at_any_size():
    from artgan_inpaint.model import push_pull_fill

    for h, w in [(40, 56), (37, 61)]:
        mask = torch.zeros(1, 1, h, w)
        mask[..., 5:30, 10:50] = 1
        flat = torch.full((1, 3, h, w), 0.3)
        assert torch.allclose(push_pull_fill(flat, mask), flat, atol=1e-5)  # constant in, constant out
        ramp = torch.linspace(-1, 1, w).expand(1, 3, h, w).contiguous()
        filled = push_pull_fill(ramp * (1 - mask), mask)
        assert torch.equal(filled[mask.expand_as(filled) == 0], ramp[mask.expand_as(ramp) == 0])
        assert (filled - ramp)[mask.expand_as(ramp) == 1].abs().mean() < 0.25  # close to the truth


def test_discriminator_is_spectrally_normalised_and_scores_patches():
    D = PatchDiscriminator(width=8)
    convs = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in convs)
    logits = D(torch.zeros(3, 3, 128, 96), torch.zeros(3, 1, 128, 96))
    assert logits.shape == (3, 1, 4, 3)


def test_dataset_crops_and_masks(image_folder):
    from artgan_inpaint.data import InpaintMaskDataset

    ds = InpaintMaskDataset(str(image_folder), crop_size=32, mask_area=[0.2, 0.3], items_per_image=3)
    assert len(ds) == 6 * 3  # the train split: 8 files less the held-out 0 and 4
    np.random.seed(0)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
    assert -1 <= item["image"].min() and item["image"].max() <= 1
    assert set(item["mask"].unique().tolist()) <= {0.0, 1.0} and 0.2 <= item["mask"].mean() <= 0.3
    np.random.seed(0)
    again = ds[0]
    assert torch.equal(item["image"], again["image"]) and torch.equal(item["mask"], again["mask"])
    big = InpaintMaskDataset(str(image_folder), crop_size=80, split="heldout")  # padded up to the crop
    assert len(big.images) == 2 and big[0]["image"].shape == (3, 80, 80)
    with pytest.raises(ArtganError, match="crop_size must be a multiple of 8"):
        InpaintMaskDataset(str(image_folder), crop_size=30)
    with pytest.raises(ArtganError, match="mask_area must satisfy"):
        InpaintMaskDataset(str(image_folder), mask_area=[0.5, 0.2])


def test_training_lowers_the_hole_error(image_folder):
    """The recipe's phases train G: on a fixed batch, the hole error falls well below the
    push-pull fill the generator starts from."""
    from artgan.data import batches
    from artgan_inpaint.data import InpaintMaskDataset

    torch.manual_seed(0)
    np.random.seed(0)
    ds = InpaintMaskDataset(str(image_folder), crop_size=32, items_per_image=8)
    recipe = InpaintRecipe(info=ds.info, width=6, d_width=4, lr=2e-3, ema=0)
    batch = next(batches(ds, 6, seed=0))
    history = []
    for step in range(1, 31):
        for phase in recipe.phases():
            phase.optimizer.zero_grad()
            losses = phase.step(batch)
            losses["loss"].backward()
            phase.optimizer.step()
            if phase.name == "G":
                history.append(float(losses["l1_hole"].detach()))
        recipe.after_step(step)
    assert history[-1] < 0.7 * history[0], np.round(history, 3)


def test_lr_decay_and_ema():
    recipe = InpaintRecipe(info=DatasetInfo(image_size=32), width=4, d_width=4, lr=1e-3, lr_decay_steps=10)
    recipe.after_step(5)
    assert recipe.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(5e-4)
    recipe.after_step(10)
    assert recipe.optimizers["discriminator"].param_groups[0]["lr"] == pytest.approx(0.0)
    with torch.no_grad():
        for p in recipe.G.parameters():
            p.add_(1.0)
    before = [e.clone() for e in recipe.G_ema.parameters()]
    recipe.after_step(1000)
    moved = [(e - b).abs().mean() for e, b in zip(recipe.G_ema.parameters(), before)]
    assert all(0.0005 < float(m) < 0.01 for m in moved)  # decay 0.999: a step of 1/1000 toward G


def test_export_metadata_and_dynamic_sizes(tiny_model):
    import onnxruntime as ort
    from artgan.export import psnr

    recipe, path, card = tiny_model
    md = card["metadata"]
    assert md["task"] == "image-to-image" and md["step"] == "inpaint" and md["size_multiple"] == 8
    assert md["inputs"] == ["image", "mask"] and md["pasted"] is True and md["value_range"] == [-1.0, 1.0]
    assert card["verification"]["psnr_db"] >= 50
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image", "mask"]
    module = PastedInpainter(recipe.G_ema).eval()
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
    image = synthetic_image(45, 61, 3).astype(np.float32)[None] / 255  # not a multiple of 8: padded
    out = step(image)
    hole = np.zeros((45, 61), bool)
    hole[5:17, 10:30] = True
    assert out.shape == image.shape
    assert np.array_equal(out[0][~hole], image[0][~hole])
    # the same as PyTorch on the padded image
    from artgan.tiling import pad_to_multiple
    padded = pad_to_multiple(image[0], 8)
    pmask = pad_to_multiple(hole[..., None].astype(np.float32), 8)
    with torch.no_grad():
        ref = PastedInpainter(recipe.G_ema)(torch.from_numpy(padded.transpose(2, 0, 1))[None] * 2 - 1,
                                            torch.from_numpy(pmask.transpose(2, 0, 1))[None])
    ref = ((ref[0].numpy().transpose(1, 2, 0) + 1) / 2)[:45, :61]
    assert np.abs(out[0] - ref).max() < 1e-4
    with pytest.raises(ArtganError, match=r"no model named 'nope'; available: tiny"):
        build_step(registry, "inpaint:box=1,1,4,4,model=nope")


def test_inpaint_step_tiles_large_images_only(tiny_model):
    from artgan_inpaint.steps import GANInpaint

    _, path, _ = tiny_model
    step = GANInpaint(model=str(path))
    assert step.tile_for(1080, 1920) == 1920  # whole image: the hole keeps all its context
    assert step.tile_for(3000, 4000) == 1024
    tiled = GANInpaint(model=str(path), tile=64)
    image = synthetic_image(100, 130, 1).astype(np.float32) / 255
    hole = np.zeros((100, 130), bool)
    hole[40:60, 50:90] = True
    out = tiled.inpaint(image, hole)
    assert np.isfinite(out).all() and np.array_equal(out[~hole], image[~hole])
    with pytest.raises(ArtganError, match="tile must be an integer >= 64"):
        GANInpaint(model=str(path), tile=10)


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
    from artgan.cli import cli, _add_plugin_commands

    run = tmp_path / "run"
    pipe = tmp_path / "inpaint.yaml"
    pipe.write_text(f"""\
name: inpaint-tiny
steps:
  - train:
      dataset: {{name: inpaint-masks, path: {image_folder}, crop_size: 32, items_per_image: 2}}
      architecture: {{name: inpaint-gan, width: 4, d_width: 4, lr_decay_steps: 4, sample_images: {image_folder}}}
      steps: 4
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
    assert (run / "samples" / "step_000004.png").exists()
    from artgan_inpaint.parity import main as parity
    assert parity([str(run / "checkpoints" / "last.pt"), str(run / "export" / "tiny.onnx"),
                   "--image", str(image_folder / "img00.png"), "--card", str(run / "export" / "tiny.card.json")]) == 0
    _add_plugin_commands()
    res = runner.invoke(cli, ["evaluate", "inpaint", "--data", str(image_folder), "--model",
                              str(run / "export" / "tiny.onnx"), "--methods", "telea,gan",
                              "--out", str(tmp_path / "eval"), "--card", str(run / "export" / "tiny.card.json"), "-q"])
    assert res.exit_code == 0, res.output
    assert "| gan (tiny) |" in res.stdout and "gan (tiny) PSNR gain over the best other method" in res.stdout
    assert "## Evaluation" in (run / "export" / "tiny.md").read_text()
