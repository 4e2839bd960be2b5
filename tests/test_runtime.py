"""The runtime: torch-free, deterministic, clear errors, providers, interpolation, doctor."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from artgan.errors import ArtganError


@pytest.fixture(scope="module")
def generator_onnx(tmp_path_factory):
    """A tiny exported DCGAN (untrained: the runtime does not care)."""
    import torch
    from artgan.data import DatasetInfo
    from artgan.export import export_onnx
    from artgan_gan.dcgan import DCGANRecipe
    torch.manual_seed(0)
    recipe = DCGANRecipe(info=DatasetInfo(image_size=32, channels=1, name="digits"), latent_dim=8,
                         g_width=4, d_width=4)
    path = tmp_path_factory.mktemp("model") / "g.onnx"
    export_onnx(recipe.export_spec(), path, extra_metadata={"run": "test", "architecture": "dcgan"})
    return path


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=120)


def test_runtime_and_generate_command_never_import_torch(generator_onnx, tmp_path):
    r = run_python("""
        import sys
        from artgan.runtime import Generator
        from artgan.images import save_image
        images = Generator(sys.argv[1]).generate(3, seed=1)
        save_image(sys.argv[2], images[0])
        print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
    """, str(generator_onnx), str(tmp_path / "a.png"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]" and (tmp_path / "a.png").is_file()
    # the whole command line, plugins loaded, as `artgan generate` runs
    r = run_python("""
        import sys
        from artgan.cli import main
        sys.argv = ["artgan", "generate", sys.argv[1], "--n", "4", "--out", sys.argv[2], "-q"]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
        import artgan.plugins
        print("torch" in sys.modules, artgan.plugins._STATE is None)
    """, str(generator_onnx), str(tmp_path / "grid.png"))
    assert r.returncode == 0, r.stderr
    # no torch, and no plugin loaded either: generate needs none (start-up time)
    assert r.stdout.strip().splitlines()[-1] == "False True" and (tmp_path / "grid.png").is_file()


def test_same_seed_same_images_whatever_the_count_and_batch_size(generator_onnx):
    from artgan.runtime import Generator
    gen = Generator(generator_onnx)
    a = gen.generate(5, seed=3, batch_size=2)
    b = gen.generate(8, seed=3, batch_size=8)
    assert a.shape == (5, 32, 32, 1) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    np.testing.assert_allclose(a, b[:5], atol=1e-6)
    assert not np.allclose(gen.latents(2, 3), gen.latents(2, 4))
    # truncation: bounded, and row i still does not depend on how many are drawn
    z4, z9 = gen.latents(4, 7, truncation=0.5), gen.latents(9, 7, truncation=0.5)
    assert np.abs(z9).max() <= 0.5 and np.array_equal(z4, z9[:4])
    with pytest.raises(ArtganError, match="truncation must be > 0"):
        gen.latents(2, 0, truncation=0)


def test_wrong_inputs_give_clear_errors(generator_onnx):
    from artgan.runtime import Model
    m = Model(generator_onnx)
    with pytest.raises(ArtganError, match=r"input 'z' must be float32, got float64 \(convert with"):
        m.run({"z": np.zeros((1, 8))})
    with pytest.raises(ArtganError, match=r"input 'z' must have shape \(batch, 8\), got \(2, 7\)"):
        m.run({"z": np.zeros((2, 7), np.float32)})
    with pytest.raises(ArtganError, match=r"missing input 'z'; inputs: z"):
        m.run({})
    with pytest.raises(ArtganError, match=r"unknown input\(s\) 'label'"):
        m.run({"z": np.zeros((1, 8), np.float32), "label": np.zeros(1, np.int64)})


def test_models_that_are_not_artgan_models_give_clear_errors(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    from artgan.runtime import Generator, Model
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    plain = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    with pytest.raises(ArtganError, match=r"plain.onnx: no artgan metadata \(artgan.task\)"):
        Model(tmp_path / "plain.onnx")
    plain.ir_version = 99
    onnx.save(plain, str(tmp_path / "future.onnx"))
    with pytest.raises(ArtganError, match=r"future.onnx: onnxruntime cannot load it \(Load model from .* failed: "
                                          r"Unsupported model IR version: 99, max supported IR version: \d+\)$"):
        Model(tmp_path / "future.onnx")
    plain.ir_version = 8
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ArtganError, match="junk.onnx: onnxruntime cannot load it"):
        Model(tmp_path / "junk.onnx")
    with pytest.raises(ArtganError, match="missing.onnx: model file not found"):
        Model(tmp_path / "missing.onnx")
    prop = plain.metadata_props.add()
    prop.key, prop.value = "artgan.task", json.dumps("image-to-image")
    onnx.save(plain, str(tmp_path / "i2i.onnx"))
    with pytest.raises(ArtganError, match="task is 'image-to-image', not a generator"):
        Generator(tmp_path / "i2i.onnx")


def test_io_binding_gives_the_same_output(generator_onnx):
    from artgan.runtime import Model
    z = np.random.default_rng(0).standard_normal((3, 8), dtype=np.float32)
    plain, bound = Model(generator_onnx, io_binding=False), Model(generator_onnx, io_binding=True)
    np.testing.assert_array_equal(plain.run({"z": z}), bound.run({"z": z}))


def test_a_gpu_provider_that_cannot_start_falls_back_to_cpu_and_says_why(generator_onnx):
    from artgan.runtime import Model, available_providers, provider_problem
    if "CUDAExecutionProvider" not in available_providers() or not provider_problem("CUDAExecutionProvider"):
        pytest.skip("needs an onnxruntime that lists CUDA but cannot start it (as on the CI machine)")
    m = Model(generator_onnx, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert m.provider == "CPUExecutionProvider"
    assert m.describe().startswith("CPUExecutionProvider (CUDAExecutionProvider could not start")


def test_provider_choice_is_overridable(generator_onnx, monkeypatch):
    from artgan.runtime import Model, choose_providers, cpu_count
    monkeypatch.setenv("ARTGAN_PROVIDERS", "CPUExecutionProvider")
    assert choose_providers() == ["CPUExecutionProvider"]
    assert Model(generator_onnx).describe() == "CPUExecutionProvider"
    monkeypatch.delenv("ARTGAN_PROVIDERS")
    assert choose_providers()[-1] == "CPUExecutionProvider" and cpu_count() >= 1


def test_slerp_keeps_endpoints_and_norms():
    from artgan.runtime import slerp
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(64).astype(np.float32), rng.standard_normal(64).astype(np.float32)
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-5)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a, b, 0.5)
    assert abs(np.linalg.norm(mid) - (np.linalg.norm(a) + np.linalg.norm(b)) / 2) < 1e-3
    assert np.linalg.norm(mid) > np.linalg.norm((a + b) / 2)  # a straight line sags towards 0


def test_interpolation_walks_between_seeds(generator_onnx):
    from artgan.runtime import Generator
    gen = Generator(generator_onnx)
    frames = gen.interpolate([1, 2], frames=4, loop=False)
    assert frames.shape == (5, 32, 32, 1)
    np.testing.assert_allclose(frames[0], gen.generate(1, seed=1)[0], atol=1e-5)
    np.testing.assert_allclose(frames[-1], gen.generate(1, seed=2)[0], atol=1e-5)
    assert gen.interpolate([1, 2, 3], frames=4).shape[0] == 12  # loops back to seed 1
    with pytest.raises(ArtganError, match="at least two seeds"):
        gen.interpolate([1])


def test_generate_command_writes_gif_frames_and_grids(runner, generator_onnx, tmp_path):
    from artgan.cli import cli
    r = runner.invoke(cli, ["generate", str(generator_onnx), "--interpolate", "1,2,3", "--frames", "3",
                            "--out", str(tmp_path / "walk.gif"), "--truncation", "0.8"])
    assert r.exit_code == 0, r.output
    assert "9 frames through seeds 1,2,3 on CPUExecutionProvider" in r.stderr
    with Image.open(tmp_path / "walk.gif") as im:
        assert im.n_frames == 9 and im.info.get("loop") == 0
    r = runner.invoke(cli, ["generate", str(generator_onnx), "--interpolate", "1,2", "--frames", "2",
                            "--out", str(tmp_path / "frames"), "-q"])
    assert r.exit_code == 0 and len(list((tmp_path / "frames").glob("frame_*.png"))) == 4
    r = runner.invoke(cli, ["generate", str(generator_onnx), "--interpolate", "1,x"])
    assert r.exit_code == 2 and "expected whole numbers" in r.output
    r = runner.invoke(cli, ["generate", str(generator_onnx), "--n", "4", "--out", str(tmp_path / "g.png"), "-q"])
    assert r.exit_code == 0 and Image.open(tmp_path / "g.png").size == (2 * 34 + 2, 2 * 34 + 2)


def test_doctor_reports_providers_torch_and_silent_fallbacks(runner, monkeypatch):
    from artgan import doctor
    from artgan.cli import cli
    r = runner.invoke(cli, ["doctor"])
    assert r.exit_code == 0, r.output
    for text in ("onnxruntime providers", "CPUExecutionProvider", "starts", "torch", "artgan generate runs on"):
        assert text in r.output
    data = json.loads(runner.invoke(cli, ["doctor", "--json"]).output)
    assert {p["name"] for p in data["providers"]} >= {"CPUExecutionProvider"}
    assert any(p["name"] == "CPUExecutionProvider" and p["starts"] for p in data["providers"])
    # a machine with a GPU where onnxruntime lists CUDA but cuDNN is missing, and torch is a CPU build
    monkeypatch.setattr(doctor, "available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(doctor, "provider_problem",
                        lambda p: "libcudnn.so.9: cannot open shared object file" if p != "CPUExecutionProvider" else "")
    monkeypatch.setattr(doctor, "_gpu", lambda: {"present": True, "devices": ["GPU 0: Test"], "how": "test"})
    monkeypatch.setattr(doctor, "_torch", lambda: {"installed": True, "version": "2.13.0+cpu", "cuda_build": "",
                                                   "cuda_available": False, "devices": [], "threads": 2})
    text = doctor.format_report(doctor.diagnose())
    assert "CUDAExecutionProvider        cannot start  (libcudnn.so.9" in text
    assert "warning: CUDAExecutionProvider is listed by onnxruntime but cannot start here (libcudnn.so.9" in text
    assert "falls back to the CPU" in text and "a GPU is here but onnxruntime cannot use it" in text
    assert "warning: PyTorch 2.13.0+cpu is a CPU-only build: training silently runs on the CPU" in text


def test_image_to_image_size_errors_say_what_sizes_work(tmp_path):
    import torch
    from torch import nn
    from artgan.export import export_onnx
    from artgan.recipe import ExportSpec
    from artgan.runtime import Model

    class Skip(nn.Module):  # down, up, add: needs even sizes
        def __init__(self):
            super().__init__()
            self.down, self.up = nn.Conv2d(3, 3, 3, 2, 1), nn.Upsample(scale_factor=2)

        def forward(self, x):
            return torch.tanh(x + self.up(self.down(x)))

    spec = ExportSpec(module=Skip(), inputs={"image": torch.rand(1, 3, 8, 8) * 2 - 1}, outputs=["output"],
                      dynamic_axes={}, metadata={"task": "image-to-image", "scale": 1, "size_multiple": 2,
                                                 "channels": 3, "value_range": [-1.0, 1.0]})
    export_onnx(spec, tmp_path / "skip.onnx")
    m = Model(tmp_path / "skip.onnx")
    assert m.run({"image": np.zeros((1, 3, 6, 10), np.float32)}).shape == (1, 3, 6, 10)
    with pytest.raises(ArtganError, match=r"onnxruntime failed on inputs image \(1, 3, 7, 10\) \(height and "
                                          r"width must be multiples of 2: pad the image"):
        m.run({"image": np.zeros((1, 3, 7, 10), np.float32)})
