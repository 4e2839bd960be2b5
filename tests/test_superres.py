"""Super-resolution plugin: networks, training pairs, the recipe, export, steps and evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from artgan.cli import cli
from artgan.errors import ArtganError
from artgan.images import load_image, to_float
from superres_testing import images_dir, sr_models, synthetic_image, with_models, write_images  # noqa: F401


# -- networks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 3, 4])
def test_generator_any_size_and_starts_as_bicubic(scale):
    from artgan_superres.model import SRGenerator

    g = SRGenerator(scale, width=8, blocks=2).eval()
    x = torch.rand(2, 3, 13, 21) * 2 - 1
    with torch.no_grad():
        y = g(x)
    assert y.shape == (2, 3, 13 * scale, 21 * scale)
    # the tail starts at zero: an untrained generator is exactly bicubic, training adds detail
    ref = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    assert torch.allclose(y, ref, atol=1e-6)


def test_discriminator_gives_patch_logits_and_features():
    from artgan_superres.model import PatchDiscriminator

    d = PatchDiscriminator(width=8, layers=3)
    logits, feats = d(torch.randn(2, 3, 64, 64), features=True)
    assert logits.ndim == 4 and logits.shape[0] == 2 and logits.shape[1] == 1 and logits.shape[2] > 1
    assert len(feats) == 4


def test_generator_from_onnx_matches_the_export(sr_models):
    from artgan_superres.model import generator_from_onnx
    from artgan.runtime import Model

    path = sr_models / "superres" / "x2-psnr.onnx"
    g = generator_from_onnx(path)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 20, 28)).astype(np.float32)
    with torch.no_grad():
        ref = g(torch.from_numpy(x)).numpy()
    out = Model(path, providers=["CPUExecutionProvider"]).run({"lr": x})
    assert out.shape == (1, 3, 40, 56)
    assert np.abs(out - ref).max() < 1e-4


# -- training pairs -------------------------------------------------------------------------------

def test_pairs_are_bicubic_downscales_of_random_crops(tmp_path):
    from artgan_superres.data import SRPairsDataset
    from artgan_superres.resize import bicubic_downscale

    write_images(tmp_path / "hr", [(60, 80), (70, 50)])
    ds = SRPairsDataset(str(tmp_path / "hr"), scale=2, patch_size=32, items_per_image=3)
    assert len(ds) == 6 and ds.info.image_size == 32
    np.random.seed(0)
    item = ds[1]
    hr, lr = item["image"], item["lr"]
    assert hr.shape == (3, 32, 32) and lr.shape == (3, 16, 16)
    assert hr.dtype == torch.float32 and -1 <= hr.min() and hr.max() <= 1
    hr_u8 = ((hr.permute(1, 2, 0).numpy() + 1) * 127.5 + 0.5).astype(np.uint8)
    lr_u8 = ((lr.permute(1, 2, 0).numpy() + 1) * 127.5 + 0.5).astype(np.uint8)
    assert np.array_equal(lr_u8, bicubic_downscale(hr_u8, 2))
    # the trainer seeds numpy: the same seed gives the same crop and flips
    np.random.seed(0)
    assert torch.equal(ds[1]["image"], hr)


def test_pairs_degradations_change_only_the_lr(tmp_path):
    from artgan_superres.data import SRPairsDataset

    write_images(tmp_path / "hr", [(64, 64)])
    clean = SRPairsDataset(str(tmp_path / "hr"), scale=2, patch_size=32)
    noisy = SRPairsDataset(str(tmp_path / "hr"), scale=2, patch_size=32, blur=1.0, noise=1.0,
                           noise_std=[0.05, 0.05], jpeg=1.0, jpeg_quality=[20, 20])
    np.random.seed(3)
    a = clean[0]
    np.random.seed(3)
    b = noisy[0]
    assert torch.equal(a["image"], b["image"])
    assert (a["lr"] - b["lr"]).abs().mean() > 0.02


@pytest.mark.parametrize("params, message", [
    ({"patch_size": 33}, "patch_size must be a multiple of scale"),
    ({"scale": 5}, "scale must be 2, 3 or 4"),
    ({"noise": 2.0}, "noise is a probability"),
    ({"jpeg_quality": [90, 10]}, "jpeg_quality must be [low, high]"),
    ({"patch_size": 512}, "no usable images"),
])
@pytest.mark.filterwarnings("ignore:superres-pairs. skipped")
def test_pairs_reject_bad_parameters(tmp_path, params, message):
    from artgan_superres.data import SRPairsDataset

    write_images(tmp_path / "hr", [(64, 64)])
    with pytest.raises(ArtganError, match=message.replace("[", r"\[")):
        SRPairsDataset(str(tmp_path / "hr"), **params)


# -- the recipe ---------------------------------------------------------------------------------

def _batch(scale=2, n=2, size=16):
    hr = torch.rand(n, 3, size * scale, size * scale) * 2 - 1
    return {"image": hr, "lr": F.avg_pool2d(hr, scale)}


def test_psnr_recipe_trains_the_generator_only():
    from artgan.data import DatasetInfo
    from artgan_superres.model import SuperResRecipe

    recipe = SuperResRecipe(info=DatasetInfo(image_size=32), width=8, blocks=1, decay_to=10, ema=0.5)
    phases = recipe.phases()
    assert [p.name for p in phases] == ["G"]
    losses = phases[0].losses(_batch())
    assert set(losses) >= {"loss", "l1", "psnr"} and torch.isfinite(losses["loss"])
    before = [p.clone() for p in recipe.ema.module.parameters()]
    losses["loss"].backward()
    phases[0].optimizer.step()
    recipe.after_iteration(5)
    assert recipe.optimizers["generator"].param_groups[0]["lr"] < 2e-4  # cosine decay at work
    assert any(not torch.equal(a, b) for a, b in zip(before, recipe.ema.module.parameters()))  # EMA moved
    assert recipe.export_spec().module is recipe.ema.module


def test_gan_recipe_has_d_and_g_phases_with_adversarial_terms():
    from artgan.data import DatasetInfo
    from artgan_superres.model import SuperResRecipe

    recipe = SuperResRecipe(info=DatasetInfo(image_size=32), width=8, blocks=1, d_width=8,
                            adv_weight=0.01, feature_weight=0.1)
    d, g = recipe.phases()
    assert (d.name, g.name) == ("D", "G")
    d_losses, g_losses = d.losses(_batch()), g.losses(_batch())
    assert {"real_score", "fake_score"} <= set(d_losses)
    assert {"adv", "feature_match", "l1"} <= set(g_losses)
    assert all(torch.isfinite(v) for v in g_losses.values())


def test_recipe_names_a_scale_mismatch():
    from artgan.data import DatasetInfo
    from artgan_superres.model import SuperResRecipe

    recipe = SuperResRecipe(info=DatasetInfo(image_size=32), scale=4, width=8, blocks=1)
    with pytest.raises(ArtganError, match="same scale for the dataset and the architecture"):
        recipe.phases()[0].losses(_batch(scale=2))


def test_samples_are_bicubic_output_target_side_by_side():
    from artgan.data import DatasetInfo
    from artgan_superres.model import SuperResRecipe

    recipe = SuperResRecipe(info=DatasetInfo(image_size=32), width=8, blocks=1, sample_size=32)
    inputs = recipe.fixed_inputs(64, torch.Generator().manual_seed(0))
    assert inputs["lr"].shape == (16, 3, 16, 16)  # capped: triptychs
    grid = recipe.sample(inputs)
    assert grid.shape == (16, 3, 32, 96)


@pytest.mark.slow
def test_pipeline_trains_exports_and_gan_fine_tunes_from_it(tmp_path, runner):
    """The two-stage recipe end to end: PSNR training, export, then GAN fine-tuning init_from it."""
    from artgan.runtime import Model

    write_images(tmp_path / "hr", [(48, 48), (40, 56)])

    def pipeline(name: str, architecture: str, out: str) -> str:
        return textwrap.dedent(f"""\
            name: {name}
            stages:
              - train:
                  dataset: {{name: superres-pairs, path: {tmp_path / 'hr'}, scale: 2, patch_size: 24, items_per_image: 4}}
                  architecture: {architecture}
                  iterations: 3
                  batch_size: 4
                  checkpoint_every: 3
                  log_every: 1
                  sample_count: 2
                  device: cpu
              - export: {{out: export/{out}}}
            """)

    (tmp_path / "psnr.yaml").write_text(pipeline(
        "sr-psnr", "{name: superres-gan, width: 8, blocks: 1, sample_size: 24, decay_to: 3}", "x2-psnr.onnx"))
    # built as the reference models are: trained on all of one folder, evaluated on another
    from artgan.build import build_task
    from artgan.plugins import get_registry
    from artgan.tasks import load_tasks

    write_images(tmp_path / "test", [(40, 48), (32, 40)])
    registry = get_registry()
    report = build_task(load_tasks(registry)[0]["superres"], data=tmp_path / "hr", eval_data=tmp_path / "test",
                        name="x2-psnr", pipeline=tmp_path / "psnr.yaml", overrides=["train.dataset.split=all"],
                        registry=registry, runs=tmp_path / "runs", to=tmp_path / "models", progress=False,
                        log=lambda msg: None)
    psnr_run = report.run_dir
    model = Model(report.installed)
    md = model.metadata
    assert (md["task"], md["step"], md["scale"], md["objective"]) == ("image-to-image", "superres", 2, "psnr")
    assert md["value_range"] == [-1.0, 1.0] and md["generator"] == {"scale": 2, "width": 8, "blocks": 1, "res_scale": 1.0}
    assert model.run({"lr": np.zeros((1, 3, 7, 9), np.float32)}).shape == (1, 3, 14, 18)  # dynamic H, W
    metrics = [json.loads(line) for line in (psnr_run / "metrics.jsonl").read_text().splitlines()]
    assert "G/l1" in metrics[-1] and "D_loss" not in metrics[-1]
    assert (psnr_run / "samples" / "iteration_000003.png").exists()

    # the card: what the model is, how it was trained, ONNX vs PyTorch on the LR image the step
    # gets for the first test image, the evaluation at the model's scale, the command
    from artgan.cards import read_card

    card = read_card(report.installed)
    assert card["summary"]["title"] == "superres `x2-psnr`: enlarge photos x2/x4 with a trained GAN upscaler"
    assert card["training"]["iterations"] == 3 and card["training"]["dataset"]["split"] == "all"
    assert card["real_inputs"]["count"] == 1 and "1 input(s) of 24x20 (WxH)" in card["real_inputs"]["inputs"]
    assert card["real_inputs"]["min_psnr_db"] is None or card["real_inputs"]["min_psnr_db"] > 60
    (title, table), = card["evaluation"].items()
    assert table["options"]["scale"] == 2 and table["images"] == 2 and list(table["methods"])[-1] == "x2-psnr"
    assert f"--eval-data {tmp_path / 'test'} --set train.dataset.split=all" in card["command"]
    md = report.installed.with_name("x2-psnr.card.md").read_text()
    assert "## Data and training" in md and "## Speed" in md and "on real inputs (img0.png (test, split all)" in md

    ckpt = psnr_run / "checkpoints" / "last.pt"
    (tmp_path / "gan.yaml").write_text(pipeline(
        "sr-gan", f"{{name: superres-gan, width: 8, blocks: 1, d_width: 8, adv_weight: 0.01, sample_size: 24, "
                  f"init_from: {ckpt}}}", "x2-gan.onnx"))
    r = runner.invoke(cli, ["run", str(tmp_path / "gan.yaml"), "--out", str(tmp_path / "gan"), "-q"])
    assert r.exit_code == 0, r.output
    assert Model(tmp_path / "gan" / "export" / "x2-gan.onnx").metadata["objective"] == "gan"
    assert "D_loss" in json.loads((tmp_path / "gan" / "metrics.jsonl").read_text().splitlines()[-1])


def test_init_from_a_different_generator_is_named(tmp_path):
    from artgan import checkpoints
    from artgan.data import DatasetInfo
    from artgan_superres.model import SuperResRecipe

    other = SuperResRecipe(info=DatasetInfo(image_size=32), width=8, blocks=1)
    path = checkpoints.save(tmp_path / "c.pt", {"iteration": 1, "recipe": {"architecture": "superres-gan",
                                                                         "params": {"width": 8, "blocks": 1}},
                                                "state": other.state_dict()})
    SuperResRecipe(info=DatasetInfo(image_size=32), width=8, blocks=1, init_from=str(path))  # same: fine
    with pytest.raises(ArtganError, match="different generator"):
        SuperResRecipe(info=DatasetInfo(image_size=32), width=16, blocks=1, init_from=str(path))
    with pytest.raises(ArtganError, match="checkpoint not found"):
        SuperResRecipe(info=DatasetInfo(image_size=32), init_from=str(tmp_path / "missing.pt"))


def test_init_from_an_exported_model(sr_models, tmp_path):
    """GAN fine-tuning can start from a shipped .onnx when the PSNR run folder is gone."""
    from artgan.data import DatasetInfo
    from artgan_superres.model import generator_from_onnx
    from artgan_superres.model import SuperResRecipe

    path = sr_models / "superres" / "x2-psnr.onnx"
    recipe = SuperResRecipe(info=DatasetInfo(image_size=32), width=8, blocks=1, ema=0.9, init_from=str(path))
    shipped = generator_from_onnx(path).state_dict()
    assert all(torch.equal(v, shipped[k]) for k, v in recipe.G.state_dict().items())
    assert all(torch.equal(v, shipped[k]) for k, v in recipe.sampling_generator.state_dict().items())
    with pytest.raises(ArtganError, match=r"different generator \({'scale': 2, 'width': 8, 'blocks': 1}\)"):
        SuperResRecipe(info=DatasetInfo(image_size=32), width=16, blocks=1, init_from=str(path))
    with pytest.raises(ArtganError, match="file not found"):
        SuperResRecipe(info=DatasetInfo(image_size=32), init_from=str(tmp_path / "gone.onnx"))


# -- steps -----------------------------------------------------------------------------------------

def test_classical_steps_upscale_in_float(registry):
    from artgan.steps import build_step
    from artgan_superres.resize import resize

    img = to_float(synthetic_image(20, 30))[None]
    for name in ("bicubic", "lanczos"):
        out = build_step(registry, f"{name}:scale=3")(img)
        assert out.shape == (1, 60, 90, 3) and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
    # on a smooth image (no overshoot for Pillow's 8-bit passes to clip) the float resize agrees
    # with Pillow's own 8-bit bicubic to within rounding
    y, x = np.mgrid[0:20, 0:30]
    smooth = np.stack([x / 29, y / 19, 0.5 + 0.4 * np.sin(x / 5.0)], -1)
    ref = resize((smooth * 255 + 0.5).astype(np.uint8), 60, 40, "bicubic").astype(np.float32) / 255
    out = build_step(registry, "bicubic:scale=2")(smooth[None].astype(np.float32))[0]
    assert np.abs(out - ref).max() <= 1.5 / 255


def test_superres_step_resolves_models_by_scale_and_name(with_models, registry):
    from artgan.steps import build_step

    step = build_step(registry, "superres:scale=2")
    assert step.model_name == "x2-psnr" and step.scale == 2
    out = step(to_float(synthetic_image(21, 35))[None])
    assert out.shape == (1, 42, 70, 3) and 0 <= out.min() and out.max() <= 1
    assert build_step(registry, "superres:model=x2-gan").model_path.name == "x2-gan.onnx"
    assert build_step(registry, "superres:scale=4").scale == 4
    assert build_step(registry, "superres").model_name == "x2-psnr"  # the default
    path = with_models / "superres" / "x4-psnr.onnx"
    assert build_step(registry, {"name": "superres", "model": str(path)}).scale == 4


@pytest.mark.parametrize("spec, message", [
    ("superres:scale=3", r"no model 'x3-psnr' \(available: .*x2-gan.*x2-psnr.*x4-psnr.*\); train one with "
                         r"`artgan build superres --data PHOTOS --name NAME`"),
    ("superres:scale=4,model=x2-gan", "model 'x2-gan' upscales x2, not x4"),
    ("superres:scale=two", "scale must be an integer"),
    ("superres:tile=4", "tile must be an integer >= 16"),
    ("superres:colour=1", "accepted parameters: scale, model, tile, overlap"),
    ("bicubic:scale=0", "scale must be an integer from 1 to 16"),
])
def test_superres_step_errors_name_the_fix(with_models, registry, spec, message):
    from artgan.steps import build_step

    with pytest.raises(ArtganError, match=message):
        build_step(registry, spec)


def test_superres_without_any_model_says_how_to_get_one(tmp_path, monkeypatch, runner, images_dir):
    import artgan.model_search

    monkeypatch.setenv("ARTGAN_MODEL_PATH", str(tmp_path / "none"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(artgan.model_search, "model_search_path", lambda: [tmp_path / "none"])
    r = runner.invoke(cli, ["process", str(images_dir), "--step", "superres:scale=2", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "Error: superres: no model 'x2-psnr' (available: none); train one with" in r.output
    assert "bicubic" in r.output


def test_steps_run_without_torch(with_models, tmp_path):
    """Step factories run on the runtime side: building and running them imports no torch."""
    code = textwrap.dedent("""
        import sys, numpy as np
        from artgan.plugins import get_registry
        from artgan.steps import build_step, run_chain
        reg = get_registry()
        steps = [build_step(reg, s) for s in ("superres:scale=2,tile=16,overlap=4", "lanczos:scale=2", "bicubic")]
        out = run_chain(steps, np.random.default_rng(0).random((1, 20, 24, 3), dtype=np.float32))
        assert out.shape == (1, 160, 192, 3), out.shape
        assert "torch" not in sys.modules, "a step imported torch"
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# -- evaluation ------------------------------------------------------------------------------------

def test_evaluation_protocol_on_known_images(tmp_path):
    from artgan.evaluation import Request, evaluate
    from artgan_superres.evaluate import superres_evaluation
    from artgan_superres.resize import make_pair

    write_images(tmp_path / "hr", [(41, 50), (36, 36)])
    hr, lr = make_pair(load_image(tmp_path / "hr" / "img0.png"), 2)
    assert hr.shape == (40, 50, 3) and lr.shape == (20, 25, 3)  # cropped to a multiple of the scale

    def oracle(images):  # returns the HR image itself: infinite PSNR, SSIM 1
        return to_float(make_pair(load_image(files[calls.pop(0)]), 2)[0])[None]

    files = sorted((tmp_path / "hr").glob("*.png"))
    calls = [0, 1]
    evaluation = superres_evaluation()
    evaluation.methods = lambda request: {"oracle": oracle}
    request = Request("superres", tmp_path / "hr", "all", [], [], {"scale": 2, "tile": None})
    result = evaluate("superres", evaluation, request)
    assert result["methods"]["oracle"]["psnr"] == float("inf")
    assert result["methods"]["oracle"]["ssim"] == pytest.approx(1.0)
    assert result["methods"]["oracle"]["detail"] == pytest.approx(1.0)
    assert result["images"] == 2 and "2 px border cropped" in result["protocol"]


def test_evaluate_cli_compares_models_with_bicubic(with_models, tmp_path, runner):
    from artgan.cards import read_card

    write_images(tmp_path / "hr", [(48, 64), (50, 40)])
    card = tmp_path / "x2-psnr.card.json"
    card.write_text((with_models / "superres" / "x2-psnr.card.json").read_text())
    r = runner.invoke(cli, ["evaluate", "superres", "--data", str(tmp_path / "hr"), "--scale", "2",
                            "--per-image", "--card", str(card), "-q"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("hr (2 images, split all): Y channel")
    assert [ln.split()[0] for ln in lines[2:6]] == ["bicubic", "lanczos", "x2-gan", "x2-psnr"]
    assert lines[2].split()[-2:] == ["+0.00", "dB"]
    assert "img0" in r.stdout
    saved = read_card(card)["evaluation"]["hr x2"]["methods"]
    assert saved["lanczos"]["psnr"] > saved["bicubic"]["psnr"]  # Lanczos is the sharper resampler
    assert saved["bicubic"]["detail"] < saved["lanczos"]["detail"] < 1.0  # neither restores the detail
    assert "| x2-psnr |" in (tmp_path / "x2-psnr.card.md").read_text()

    r = runner.invoke(cli, ["evaluate", "superres", "--data", str(tmp_path / "hr"), "--scale", "4",
                            "--model", "x4-psnr", "--baselines", "bicubic", "--json", "-q"])
    assert r.exit_code == 0, r.output
    assert list(json.loads(r.stdout)["methods"]) == ["bicubic", "x4-psnr"]
    r = runner.invoke(cli, ["evaluate", "superres", "--data", str(tmp_path / "hr"), "--model", "nope"])
    assert r.exit_code == 1 and "no model 'nope'" in r.output
