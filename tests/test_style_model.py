"""The trained side of style transfer: the photo/painting dataset, the patch-distribution recipe and
its losses, export and the ONNX ``style`` step, pipelines and ``artgan evaluate style``. Tiny
networks and images throughout."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan.export import export_onnx
from artgan.images import load_image, save_image, to_float
from artgan.metrics import psnr
from artgan.steps import build_step
from artgan_style import model as M
from artgan_style.model import PatchStyleRecipe, StyleNet
from artgan_style.data import UnpairedFoldersDataset

TINY_ARCH = {"width": 8, "blocks": 1, "style_scales": 2}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Eight smooth 'photos' (two sizes) and one textured 'painting'."""
    root = tmp_path_factory.mktemp("style-data")
    rng = np.random.default_rng(0)
    for i in range(8):
        h, w = (40, 56) if i % 2 else (56, 40)
        y, x = np.mgrid[0:h, 0:w] / max(h, w)
        img = np.stack([x, y, 0.5 * (x + y)], -1) * rng.uniform(0.5, 1.0) + rng.uniform(0, 0.3)
        save_image(root / "photos" / f"{i:03d}.png", np.clip(img, 0, 1))
    stripes = 0.5 + 0.5 * np.sin(np.add.outer(np.arange(72), np.arange(88)) / 2.0)
    painting = np.stack([0.2 * stripes, 0.3 * stripes, 0.4 + 0.5 * stripes], -1)
    save_image(root / "art" / "stripes.png", np.clip(painting + rng.normal(0, 0.05, painting.shape), 0, 1))
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained tiny generator exported as a style model (weights do not matter here)."""
    torch.manual_seed(0)
    recipe = PatchStyleRecipe(info=DatasetInfo(image_size=32, name="unpaired:photos(train)->stripes"), **TINY_ARCH)
    root = tmp_path_factory.mktemp("models")
    path = root / "style" / "stripes.onnx"
    card = export_onnx(recipe.export_spec(), path)
    return {"root": root, "path": path, "card": card, "recipe": recipe,
            "card_path": root / "style" / "stripes.card.json"}


def test_generator_keeps_any_size_and_range():
    g = StyleNet(width=8, blocks=1).eval()
    for h, w in ((32, 32), (36, 52)):
        out = g(torch.rand(2, 3, h, w) * 2 - 1)
        assert out.shape == (2, 3, h, w) and out.abs().max() <= 1


def test_dataset_crops_both_domains(folders):
    ds = UnpairedFoldersDataset(str(folders / "photos"), str(folders / "art" / "stripes.png"),
                                image_size=32, photo_split="train", art_scale=[0.8, 1.2], length=10)
    assert len(ds) == 10 and len(ds.photos) == 6  # 8 photos, every 4th held out
    item = ds[3]
    assert set(item) == {"image", "art"}
    for t in item.values():
        assert t.shape == (3, 32, 32) and t.dtype == torch.float32 and -1 <= t.min() and t.max() <= 1
    assert ds.info.image_size == 32 and ds.info.name == "unpaired:photos(train)->stripes"
    # crops differ from call to call (random position), and a glob finds the painting too
    assert not torch.equal(ds[0]["art"], ds[0]["art"])
    globbed = UnpairedFoldersDataset(str(folders / "photos"), str(folders / "art" / "*.png"), image_size=32)
    assert len(globbed.art) == 1 and len(globbed.photos) == 8


def test_dataset_redraws_flat_crops(tmp_path):
    """A crop of a white sky would make instance normalisation blow the gradients up."""
    sky = np.ones((64, 64, 3), np.float32)
    sky[:, :32] = np.random.default_rng(0).random((64, 32, 3))  # only the left half has detail
    save_image(tmp_path / "photos" / "sky.png", sky)
    save_image(tmp_path / "art.png", np.random.default_rng(1).random((64, 64, 3)))
    ds = UnpairedFoldersDataset(str(tmp_path / "photos"), str(tmp_path / "art.png"), image_size=16, length=50)
    assert all(ds[i]["image"].std() > 0.02 for i in range(50))  # some detail in every crop
    flat_ok = UnpairedFoldersDataset(str(tmp_path / "photos"), str(tmp_path / "art.png"), image_size=16,
                                     length=50, min_std=0)
    assert any(flat_ok[i]["image"].std() == 0 for i in range(50))


@pytest.mark.parametrize("params, message", [
    ({"photos": "nowhere"}, "photos path nowhere does not exist"),
    ({"image_size": 8}, "image_size must be an integer from 16 to 2048"),
    ({"photo_split": "test"}, "photo_split must be one of train, heldout, all"),
    ({"art_scale": [2, 1]}, "art_scale must be a positive number or"),
    ({"art": "ART/*.jpg"}, "no images for art"),
])
def test_dataset_errors(folders, params, message):
    kwargs = {"photos": str(folders / "photos"), "art": str(folders / "art"), "image_size": 32, **params}
    kwargs["art"] = kwargs["art"].replace("ART", str(folders / "art"))
    with pytest.raises(ArtganError, match=message):
        UnpairedFoldersDataset(**kwargs)


def test_recipe_learns_reports_its_terms_and_decays(folders):
    torch.manual_seed(0)
    ds = UnpairedFoldersDataset(str(folders / "photos"), str(folders / "art"), image_size=32, length=4)
    recipe = PatchStyleRecipe(info=ds.info, decay_from=1, decay_to=3, **TINY_ARCH)
    batch = {k: torch.stack([ds[i][k] for i in range(2)]) for k in ("image", "art")}
    before = [p.clone() for p in recipe.G.parameters()]
    (phase,) = recipe.phases()
    phase.optimizer.zero_grad()
    losses = phase.losses(batch)
    assert set(losses) == {"loss", "texture", "style", "colour", "edges"} and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    phase.optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, recipe.G.parameters()))
    recipe.after_iteration(2)
    assert recipe.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(2e-3 * (1 - 0.45))
    recipe.after_iteration(3)
    assert recipe.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(2e-4)
    assert recipe.sample({}).shape == (2, 3, 32, 64)  # photo | stylised
    # a term with weight 0 is neither computed nor reported
    off = PatchStyleRecipe(info=ds.info, edge_weight=0, **TINY_ARCH).generator_step(batch)
    assert "edges" not in off


def test_recipe_loss_falls_on_a_fixed_batch(folders):
    """A few steps on one batch: the distribution losses can be optimised at all."""
    torch.manual_seed(0)
    ds = UnpairedFoldersDataset(str(folders / "photos"), str(folders / "art"), image_size=32, length=4)
    recipe = PatchStyleRecipe(info=ds.info, **TINY_ARCH)
    batch = {k: torch.stack([ds[i][k] for i in range(4)]) for k in ("image", "art")}
    (phase,) = recipe.phases()
    first = None
    for _ in range(30):
        phase.optimizer.zero_grad()
        loss = phase.losses(batch)["loss"]
        loss.backward()
        phase.optimizer.step()
        first = first if first is not None else loss.item()
    torch.manual_seed(1)
    assert recipe.generator_step(batch)["loss"].item() < 0.7 * first


def test_ratio_losses_divide_by_the_photos_own_distance_and_resume_with_it(folders):
    """With ratios (the default) a term is its distance over the photos' distance to the painting,
    estimated over the first batches, then fixed; a checkpoint carries the estimate."""
    torch.manual_seed(0)
    ds = UnpairedFoldersDataset(str(folders / "photos"), str(folders / "art"), image_size=32, length=4)
    batch = {k: torch.stack([ds[i][k] for i in range(2)]) for k in ("image", "art")}
    recipe = PatchStyleRecipe(info=ds.info, **TINY_ARCH)
    recipe.reference.steps = 2
    for _ in range(3):
        recipe.generator_step(batch)
    assert recipe.reference.counts == {"texture": 2, "style": 2, "colour": 2}
    ref = recipe.reference.sums["texture"] / 2
    torch.manual_seed(5)
    expected = M.texture_distance(batch["image"], batch["art"], projections=recipe.cfg.projections)
    assert ref == pytest.approx(float(expected), rel=0.5)  # a random-projection estimate of the same
    resumed = PatchStyleRecipe(info=ds.info, **TINY_ARCH)
    resumed.load_state_dict(recipe.state_dict())
    assert resumed.reference.sums == recipe.reference.sums and resumed.reference.counts == recipe.reference.counts
    # raw distances when ratios are off: nothing estimated
    raw = PatchStyleRecipe(info=ds.info, ratios=False, **TINY_ARCH)
    raw.generator_step(batch)
    assert raw.reference.counts == {}


def test_sliced_wasserstein_is_a_distance_between_sets():
    torch.manual_seed(0)
    a = torch.rand(500, 5)
    assert M.sliced_wasserstein(a, a[torch.randperm(500)]).item() == pytest.approx(0, abs=1e-6)  # order-free
    near, far = M.sliced_wasserstein(a, a + 0.05).item(), M.sliced_wasserstein(a, a + 0.5).item()
    assert 0 < near < far
    # with a gradient (the numpy sort path) it pulls one set towards the other
    x = torch.rand(200, 3, requires_grad=True)
    M.sliced_wasserstein(x, torch.rand(200, 3) + 1).backward()
    assert x.grad is not None and (x.grad.sum(0) < 0).all()  # every coordinate should grow


def test_texture_and_colour_terms_measure_what_the_evaluation_measures():
    """Brighter image, same texture: the texture term (mean-removed patches) does not see it,
    the colour term does; noise: the other way round."""
    torch.manual_seed(0)
    y, x = torch.meshgrid(torch.linspace(-1, 1, 48), torch.linspace(-1, 1, 48), indexing="ij")
    smooth = torch.stack([x, y, x * y]).unsqueeze(0) * 0.5
    brighter = smooth + 0.3
    noisy = smooth + torch.randn_like(smooth) * 0.3
    tex = lambda a, b: M.texture_distance(a, b, points=2000).item()  # noqa: E731
    col = lambda a, b: M.colour_distance(a, b, points=2000).item()  # noqa: E731
    assert tex(smooth, brighter) < 0.2 * tex(smooth, noisy)
    assert col(smooth, brighter) > 0.05 and tex(smooth, smooth) < 0.02 * tex(smooth, noisy)  # patches sampled: ~0


def test_random_patches_are_patches():
    images = torch.arange(2 * 3 * 8 * 9, dtype=torch.float32).view(2, 3, 8, 9)
    p = M.random_patches(images, 3, 50)
    assert p.shape == (50, 27)
    every = torch.nn.functional.unfold(images, 3)  # (N, C*9, L) in channel-major order
    every = every.view(2, 3, 9, -1).permute(0, 3, 2, 1).reshape(-1, 27)  # ours: (dy, dx, c)
    assert all((every == row).all(1).any() for row in p)


def test_edge_loss_measures_what_the_evaluation_measures():
    from skimage import data, transform

    from artgan_style import measure
    img = transform.resize(data.astronaut(), (64, 80)).astype(np.float32)
    noisy = np.clip(img + np.random.default_rng(0).normal(0, 0.05, img.shape), 0, 1).astype(np.float32)
    as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None] * 2 - 1  # noqa: E731
    ours = M.edge_map(as_tensor(img))[0, 0].numpy()
    assert np.abs(ours - measure.edge_map(img))[5:-5, 5:-5].max() < 1e-5  # borders: replicated, not reflected
    kept = 1 - M.edge_loss(as_tensor(img), as_tensor(noisy)).item()
    assert kept == pytest.approx(measure.edge_ssim(img, noisy), abs=0.02)
    assert M.edge_loss(as_tensor(img), as_tensor(img)).item() == pytest.approx(0, abs=1e-5)


def test_losses_run_in_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 24, 24) * 2 - 1, torch.rand(2, 3, 24, 24) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for fn in (M.texture_distance, M.multiscale_patch_distance, M.colour_distance, M.edge_loss):
            assert fn(a.bfloat16(), b).dtype == torch.float32


@pytest.mark.parametrize("params, message", [
    ({"width": 0}, "width must be at least 1"),
    ({"edge_weight": -1}, "edge_weight must be a non-negative number"),
    ({"decay_from": 5, "decay_to": 5}, "need decay_from < decay_to"),
    ({"colour": 1}, "unknown parameter 'colour'"),
])
def test_recipe_rejects_bad_params(params, message):
    with pytest.raises(ArtganError, match=message):
        PatchStyleRecipe(info=DatasetInfo(image_size=32), **params)


def test_export_metadata_and_onnx_matches_pytorch(tiny_model):
    md = tiny_model["card"]["metadata"]
    assert md["task"] == "image-to-image" and md["step"] == "style" and md["style"] == "stripes"
    assert md["size_multiple"] == 4 and md["scale"] == 1 and md["value_range"] == [-1.0, 1.0]
    assert tiny_model["card"]["verification"]["psnr_db"] >= 50
    # on a real-sized, non-square image through the step (float [0, 1] NHWC), PSNR >= 50 dB
    step = build_step(_registry(), f"style:model={tiny_model['path']}")
    image = np.random.default_rng(0).random((1, 60, 92, 3), dtype=np.float32)
    with torch.no_grad():
        g = tiny_model["recipe"].G.eval()
        ref = g(torch.from_numpy(image).permute(0, 3, 1, 2) * 2 - 1)
    ref = ((ref.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    # the step pads 60x92 to a multiple of 4 (it already is) and runs the whole image
    assert psnr(step(image)[0], ref[0]) >= 50


def _registry():
    from artgan.plugins import get_registry
    return get_registry()


def test_style_step_by_name_and_strength(registry, tiny_model, monkeypatch):
    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(tiny_model["root"]))
    image = np.random.default_rng(1).random((2, 37, 51, 3), dtype=np.float32)  # padded inside
    full = build_step(registry, "style:model=stripes")(image)
    half = build_step(registry, "style:model=stripes,strength=0.5")(image)
    zero = build_step(registry, "style:model=stripes,strength=0")(image)
    assert full.shape == image.shape and full.dtype == np.float32
    assert np.allclose(half, (image + full) / 2, atol=1e-5) and np.array_equal(zero, image)
    with pytest.raises(ArtganError, match="no model named 'stripe'; available: stripes"):
        build_step(registry, "style:model=stripe")
    with pytest.raises(ArtganError, match="name a model, e.g. style:model=starry-night, or any painting at once "
                                          "with style:painting=PATH; available: stripes"):
        build_step(registry, "style")
    with pytest.raises(ArtganError, match="strength must be a number from 0 to 1, got -1"):
        build_step(registry, "style:model=stripes,strength=-1")


def test_steps_run_without_torch(tiny_model, folders):
    """The style steps are runtime code: building and running them must not import torch."""
    code = textwrap.dedent(f"""
        import sys, numpy as np
        from artgan.plugins import get_registry
        from artgan.steps import build_step, run_chain
        reg = get_registry()
        steps = [build_step(reg, s) for s in ["style:model={tiny_model['path']},strength=0.8",
                 "color-transfer:reference={folders / 'art' / 'stripes.png'},strength=0.5",
                 "histogram-match:reference={folders / 'art' / 'stripes.png'}"]]
        out = run_chain(steps, np.random.default_rng(0).random((1, 40, 48, 3), dtype=np.float32))
        assert out.shape == (1, 40, 48, 3), out.shape
        print("torch" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


PIPELINE = """\
name: style-tiny
seed: 0
stages:
  - train:
      dataset: {{name: unpaired-folders, photos: {photos}, art: {art}, image_size: 32, length: 8,
                photo_split: train}}
      architecture: {{name: patch-style, width: 8, blocks: 1, style_scales: 2}}
      iterations: 2
      batch_size: 2
      log_every: 1
      checkpoint_every: 2
      sample_count: 2
  - export: {{out: export/style.onnx}}
  - process:
      input: {photos}
      steps: ["style:model=export/style.onnx,strength=0.9", {{name: color-transfer, reference: {art}, strength: 0.3}}]
"""


@pytest.mark.slow
def test_pipeline_trains_exports_and_processes(runner, folders, tmp_path, monkeypatch):
    from artgan.cli import cli

    monkeypatch.chdir(tmp_path)
    # the process step names the model relative to the run folder's parent: give it a full path
    text = PIPELINE.format(photos=folders / "photos", art=folders / "art" / "stripes.png")
    text = text.replace("model=export/style.onnx", f"model={tmp_path / 'run' / 'export' / 'style.onnx'}")
    (tmp_path / "p.yaml").write_text(text)
    result = runner.invoke(cli, ["run", "p.yaml", "--out", "run", "-q"])
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "run" / "export" / "style.card.json").read_text())
    assert card["metadata"]["step"] == "style" and card["metadata"]["train_iterations"] == 2
    outs = sorted((tmp_path / "run" / "processed").glob("*.png"))
    assert len(outs) == 8
    assert load_image(outs[1]).shape == load_image(folders / "photos" / "001.png").shape
    assert (tmp_path / "run" / "samples" / "iteration_000002.png").exists()


def test_cyclegan_trains_two_steps_and_exports_a_style_model(runner, folders, tmp_path):
    """The older recipe (great-wave.onnx comes from it): a tiny one trains, exports and runs as a step."""
    from artgan.cli import cli

    text = PIPELINE.format(photos=folders / "photos", art=folders / "art" / "stripes.png")
    text = text.replace("{name: patch-style, width: 8, blocks: 1, style_scales: 2}",
                        "{name: cyclegan, g_width: 4, g_blocks: 1, d_width: 8, d_layers: 2}")
    text = text[: text.index("  - process:")]
    (tmp_path / "p.yaml").write_text(text)
    result = runner.invoke(cli, ["run", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    model = tmp_path / "run" / "export" / "style.onnx"
    card = json.loads(model.with_name("style.card.json").read_text())
    assert card["metadata"]["architecture"] == "cyclegan" and card["metadata"]["train_iterations"] == 2
    assert card["verification"]["psnr_db"] >= 50
    image = np.random.default_rng(0).random((1, 36, 52, 3), dtype=np.float32)
    out = build_step(_registry(), f"style:model={model}")(image)
    assert out.shape == image.shape and np.isfinite(out).all()


def test_pipeline_rejects_unknown_step_parameter(runner, folders, tmp_path):
    from artgan.cli import cli

    text = PIPELINE.format(photos=folders / "photos", art=folders / "art" / "stripes.png")
    (tmp_path / "p.yaml").write_text(text.replace("strength=0.9", "strenght=0.9"))
    result = runner.invoke(cli, ["run", str(tmp_path / "p.yaml"), "--dry-run"])
    assert result.exit_code == 1
    assert "step 'style'" in result.output and "accepted parameters: model, strength, tile, overlap" in result.output


def test_generate_then_style_in_one_pipeline(runner, tiny_pipeline, tiny_model, tmp_path):
    """generate -> process [style]: the style step takes the generator's images (RGB digits)."""
    from artgan.cli import cli

    text = tiny_pipeline.read_text().replace("image_size: 32}", "image_size: 32, channels: 3}")
    text += f"  - process:\n      steps: ['style:model={tiny_model['path']},strength=0.7']\n"
    tiny_pipeline.write_text(text)
    result = runner.invoke(cli, ["run", str(tiny_pipeline), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    made = sorted((tmp_path / "run" / "processed").glob("*.png"))
    assert len(made) == 4 and load_image(made[0]).shape == (32, 32, 3)


def test_evaluate_style_command(runner, folders, tiny_model, tmp_path):
    """Through the core's `artgan evaluate`: every method a row, the floor pairs each held-out
    photo with the next, the card gets the table."""
    from artgan.cli import cli
    from artgan_style import measure
    from artgan_style.evaluate import _resized

    photos, painting = folders / "photos", folders / "art" / "stripes.png"
    out = tmp_path / "eval.json"
    result = runner.invoke(cli, ["evaluate", "style", "--data", str(photos), "--painting", str(painting),
                                 "--model", str(tiny_model["path"]), "--out", str(out), "--card",
                                 str(tiny_model["card_path"]), "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["split"] == "heldout" and data["images"] == 2  # 003 and 007: artgan.splits' held-out quarter
    assert list(data["methods"]) == ["color-transfer", "histogram-match", "instant", "another photo", "stripes",
                                     "stripes + color-transfer 0.5"]
    assert all(label in result.stdout for label in data["methods"])
    methods = data["methods"]
    assert methods["histogram-match"]["color_ratio"] < 1.0
    assert methods["stripes"]["ms_512x512"] > 0 and methods["stripes"]["seconds_per_photo"] > 0
    assert methods["another photo"]["seconds_per_photo"] == 0
    # the floor: photo 003 'stylised' into photo 007 (resized to fit), and 007 into 003
    p3, p7 = (to_float(load_image(photos / f"00{i}.png")) for i in (3, 7))
    floor = methods["another photo"]["per_image"]
    assert floor["003"]["edge_ssim"] == pytest.approx(measure.edge_ssim(p3, _resized(p7, p3.shape[:2])))
    assert floor["007"]["edge_ssim"] == pytest.approx(measure.edge_ssim(p7, _resized(p3, p7.shape[:2])))
    card = json.loads(tiny_model["card_path"].read_text())
    assert "photos (split heldout), stripes, strength 1" in card["evaluation"]
    assert "| stripes + color-transfer 0.5 |" in (tiny_model["root"] / "style" / "stripes.card.md").read_text()


def test_evaluate_style_errors(runner, folders, tmp_path):
    from artgan.cli import cli

    args = ["evaluate", "style", "--data", str(folders / "photos")]
    painting = ["--painting", str(folders / "art" / "stripes.png")]
    for extra, message in ([[], "Error: evaluate style: give --painting PAINTING"],
                           [painting + ["--model", "no-such-model"], "Error: style: no model named 'no-such-model'"],
                           [painting + ["--baselines", "blur"], "unknown baseline 'blur'; choose from another photo"],
                           [painting + ["--model", "none", "--baselines", ""], "nothing to evaluate"]):
        result = runner.invoke(cli, args + extra)
        assert result.exit_code == 1 and message in result.output and len(result.output.strip().splitlines()) == 1


def test_contact_sheet_rows_follow_the_photos_aspect(folders):
    from artgan_style.sheet import contact_sheet, run_methods

    photos = [folders / "photos" / "003.png", folders / "photos" / "004.png"]  # 40x56 and 56x40
    inputs, columns = run_methods(photos, {"same": lambda x: x, "dark": lambda x: x / 2})
    assert [label for label, _ in columns] == ["same", "dark"] and np.allclose(columns[1][1][0], inputs[0] / 2)
    sheet = contact_sheet(folders / "art" / "stripes.png", inputs, columns)
    # every row fills the sheet's width: the landscape row (3 x 56:40 pictures) at 240 px high sets
    # it, the portrait row (40:56) is as wide and so taller; no blank margin right of any row
    inner = 3 * 240 * 56 / 40 + 2 * 6
    assert abs(sheet.shape[1] - (inner + 12)) <= 1
    portrait = round((inner - 12) / (3 * 40 / 56))
    white = (sheet == 255).all(axis=2)
    for r in range(sheet.shape[0]):
        row = np.flatnonzero(~white[r])
        if len(row) and r > sheet.shape[0] - 240:  # inside the last picture row: pictures reach the right edge
            assert row[-1] >= sheet.shape[1] - 6 - 2
    assert sheet.shape[0] > 6 + (22 + 240 + 6) + (22 + portrait + 6)  # + the painting's row


def test_style_step_tiles_only_when_memory_is_short(registry, tiny_model, monkeypatch):
    image = np.random.default_rng(2).random((1, 96, 128, 3), dtype=np.float32)
    step = build_step(registry, f"style:model={tiny_model['path']}")
    whole = step(image)
    assert step.runner.tile_for(96, 128) is None  # the whole image in one run
    monkeypatch.setenv("ARTGAN_TILE_BUDGET_MB", "1")  # 1 MB: 64x64 tiles
    tiled = step(image)
    assert step.runner.tile_for(96, 128) == 64 and tiled.shape == whole.shape
    assert not np.allclose(tiled, whole, atol=1e-4)  # instance norm per tile: not the same picture
    explicit = build_step(registry, f"style:model={tiny_model['path']},tile=64")(image)
    assert np.allclose(explicit, tiled, atol=1e-6)


def test_texture_distance_per_image_sees_a_batch_that_matches_only_on_average():
    """Half the batch flat, half noisy, against a painting that is half of each: pooled over the
    batch the patch distributions match; each image on its own (the default, as the evaluation
    scores photos) does not."""
    torch.manual_seed(0)
    flat, noisy = torch.zeros(1, 3, 40, 40), (torch.rand(1, 3, 40, 40) * 2 - 1)
    out = torch.cat([flat, flat, noisy, noisy])
    art = torch.cat([flat, noisy, flat, noisy])[:, :, torch.randperm(40)]  # another sample of the same mix
    pooled = M.texture_distance(out, art, points=4000, per_image=False).item()
    per_image = M.texture_distance(out, art, points=4000).item()
    assert per_image > 5 * pooled
    same = M.texture_distance(art, art[torch.randperm(4)], points=4000, per_image=False).item()
    assert pooled < 3 * same + 1e-3


def test_random_patches_per_image_come_from_their_own_image():
    images = torch.stack([torch.full((3, 8, 9), float(i)) for i in range(3)])
    p = M.random_patches(images, 3, 20, per_image=True)
    assert p.shape == (3, 20, 27)
    assert all((p[i] == i).all() for i in range(3))


def test_paired_sliced_wasserstein_is_the_mean_of_the_pairs():
    torch.manual_seed(0)
    a = torch.rand(2, 300, 4)
    b = torch.stack([a[0][torch.randperm(300)], a[1] + 0.5])
    d = M.paired_sliced_wasserstein(a, b, projections=256).item()
    torch.manual_seed(1)
    far = M.sliced_wasserstein(a[1], b[1], projections=256).item()
    assert d == pytest.approx(far / 2, rel=0.1)


@pytest.mark.parametrize("dim", [-1, -2])
def test_correlate_is_a_one_channel_convolution(dim):
    """The banded-matrix filter the edge loss uses gives conv2d's numbers, values and gradients."""
    torch.manual_seed(0)
    x = torch.rand(2, 5, 20, 23, requires_grad=True)
    taps = M._gaussian(1.5, 5)
    kernel = torch.tensor(taps).view(1, 1, 1, -1) if dim == -1 else torch.tensor(taps).view(1, 1, -1, 1)
    ours = M._correlate(x, taps, dim)
    ref = torch.nn.functional.conv2d(x.reshape(-1, 1, 20, 23), kernel).view_as(ours)
    assert torch.allclose(ours, ref, atol=1e-6)
    g = torch.rand_like(ours)
    (grad_ours,) = torch.autograd.grad(ours, x, g)
    (grad_ref,) = torch.autograd.grad(ref, x, g)
    assert torch.allclose(grad_ours, grad_ref, atol=1e-6)
