"""Export: metadata, verification, the export-mode contract, fp16 and int8, the CLI."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from artgan.errors import ArtganError
from artgan.export import check_graph, export_onnx
from artgan.recipe import ExportSpec


def dcgan_spec(upsample="transpose", latent_dim=8, width=4, size=32, channels=1):
    from artgan.data import DatasetInfo
    from artgan_gan.dcgan import DCGANRecipe
    torch.manual_seed(0)
    recipe = DCGANRecipe(info=DatasetInfo(image_size=size, channels=channels, name="digits"),
                         latent_dim=latent_dim, g_width=width, d_width=width, upsample=upsample)
    return recipe, recipe.export_spec()


def generator_spec(module: nn.Module, latent_dim: int = 8) -> ExportSpec:
    """A generator-shaped spec around any module mapping (N, latent_dim) -> (N, 1, 8, 8)."""
    return ExportSpec(module=module, inputs={"z": torch.randn(1, latent_dim)}, outputs=["image"],
                      dynamic_axes={}, metadata={"task": "generate", "latent_dim": latent_dim, "image_size": 8,
                                                 "channels": 1, "value_range": [-1.0, 1.0]})


class Project(nn.Module):
    """z -> 1x8x8 through a linear layer, then ``body`` (an image-to-image module)."""

    def __init__(self, body: nn.Module, latent_dim: int = 8):
        super().__init__()
        self.fc = nn.Linear(latent_dim, 64)
        self.body = body

    def forward(self, z):
        return torch.tanh(self.body(self.fc(z).view(-1, 1, 8, 8)))


def session_metadata(path) -> dict:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    props = sess.get_modelmeta().custom_metadata_map
    return {k[len("artgan."):]: json.loads(v) for k, v in props.items() if k.startswith("artgan.")}


def test_fp32_export_is_self_describing_verified_and_has_a_dynamic_batch(tmp_path):
    _, spec = dcgan_spec()
    card = export_onnx(spec, tmp_path / "g.onnx", extra_metadata={"run": "r1", "architecture": "dcgan"})
    md = session_metadata(tmp_path / "g.onnx")
    for key in ("task", "latent_dim", "input_spec", "image_size", "channels", "color_order", "value_range",
                "fp16_safe", "architecture", "run", "version", "precision", "opset", "inputs", "outputs"):
        assert key in md, key
    assert md["task"] == "generate" and md["precision"] == "fp32" and md["opset"] == 20 and md["run"] == "r1"
    assert md["inputs"] == ["z"] and md["fp16_safe"] is True
    v = card["verification"]
    assert v["verified"] and v["max_abs_diff"] < 1e-4 and "fresh random" in v["inputs"]
    assert md["verification"]["max_abs_diff"] == v["max_abs_diff"]
    assert json.loads((tmp_path / "g.card.json").read_text())["verification"]["max_abs_diff"] == v["max_abs_diff"]
    assert "Verification against PyTorch" in (tmp_path / "g.card.md").read_text()
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"z": np.zeros((5, 8), np.float32)})[0].shape == (5, 1, 32, 32)


def test_a_tolerance_of_zero_fails_with_a_clear_message_and_writes_nothing(tmp_path):
    _, spec = dcgan_spec()
    with pytest.raises(ArtganError, match=r"export verification failed \(fp32\): largest \|onnxruntime - "
                                          r"PyTorch\| is .* > tolerance 0 .*nothing written"):
        export_onnx(spec, tmp_path / "g.onnx", tolerance=0.0)
    assert list(tmp_path.iterdir()) == []


def test_a_non_exportable_op_fails_naming_the_op_and_the_layer(tmp_path):
    class Spectrum(nn.Module):
        def forward(self, x):
            return torch.fft.fft2(x).real

    spec = generator_spec(Project(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), Spectrum())))
    with pytest.raises(ArtganError) as err:
        export_onnx(spec, tmp_path / "g.onnx")
    assert "aten::fft_fft2" in str(err.value) and "'body.1' (Spectrum)" in str(err.value)
    assert "\n" not in str(err.value) and list(tmp_path.iterdir()) == []


def test_noise_drawn_inside_forward_is_refused_naming_the_layer(tmp_path):
    class Noise(nn.Module):
        def forward(self, x):
            return x + 0.1 * torch.randn_like(x)

    spec = generator_spec(Project(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), Noise())))
    with pytest.raises(ArtganError, match=r"layer 'body.1' \(Noise\) draws random numbers inside forward\(\)"):
        export_onnx(spec, tmp_path / "g.onnx")


def test_dropout_forced_on_is_refused(tmp_path):
    class AlwaysDropout(nn.Module):
        def forward(self, x):
            return nn.functional.dropout(x, 0.5, training=True)

    spec = generator_spec(Project(nn.Sequential(AlwaysDropout())))
    with pytest.raises(ArtganError, match=r"layer 'body.0' \(AlwaysDropout\) draws random numbers"):
        export_onnx(spec, tmp_path / "g.onnx")


def test_batchnorm_on_batch_statistics_is_refused(tmp_path):
    class BatchStats(nn.BatchNorm2d):
        def forward(self, x):  # ignores eval(): normalises with this batch's own statistics
            return nn.functional.batch_norm(x, None, None, self.weight, self.bias, training=True)

    spec = generator_spec(Project(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), BatchStats(2), nn.Conv2d(2, 1, 1))))
    with pytest.raises(ArtganError, match=r"layer 'body.1' \(BatchStats\) mixes samples within a batch"):
        export_onnx(spec, tmp_path / "g.onnx")


def test_graph_check_names_the_layer_of_a_random_op():
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("RandomNormalLike", ["x"], ["y"], name="/net/noise/RandomNormalLike")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]))
    with pytest.raises(ArtganError, match=r"layer 'noise' .* is a random op \(RandomNormalLike\)"):
        check_graph(model)


def test_metadata_without_a_task_is_refused(tmp_path):
    _, spec = dcgan_spec()
    spec.metadata.pop("task")
    with pytest.raises(ArtganError, match="has no 'task'"):
        export_onnx(spec, tmp_path / "g.onnx")
    _, spec = dcgan_spec()
    spec.metadata.pop("latent_dim")
    with pytest.raises(ArtganError, match="lacks latent_dim"):
        export_onnx(spec, tmp_path / "g.onnx")


def test_fp16_keeps_float32_inputs_and_outputs_and_records_its_check(tmp_path):
    _, spec = dcgan_spec(upsample="nearest")
    card = export_onnx(spec, tmp_path / "g16.onnx", precision="fp16")
    export_onnx(spec, tmp_path / "g32.onnx")
    model = onnx.load(str(tmp_path / "g16.onnx"))
    fp = onnx.TensorProto.FLOAT
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [fp]
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [fp]
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    md = session_metadata(tmp_path / "g16.onnx")
    assert md["precision"] == "fp16" and md["fp16_safe"] is True
    assert md["fp16_check"]["checked_on"].startswith("onnxruntime") and md["fp16_check"]["psnr_db"] >= 40
    assert card["fp16_check"]["checked_on"].startswith("onnxruntime")
    assert card["verification"]["psnr_db"] >= 40
    weight_bytes = lambda m: sum(len(i.raw_data) for i in m.graph.initializer)  # noqa: E731
    assert weight_bytes(model) < 0.55 * weight_bytes(onnx.load(str(tmp_path / "g32.onnx")))


class Overflow(nn.Module):
    """Fine in float32, Inf in float16 (whose largest value is 65504)."""

    def forward(self, x):
        return (x * 1e5 + 1e5) / 1e5


def test_fp16_export_of_a_model_that_overflows_is_refused(tmp_path):
    spec = generator_spec(Project(Overflow()))
    card = export_onnx(spec, tmp_path / "g.onnx")  # fp32 is fine, and says fp16 is not
    assert card["metadata"]["fp16_safe"] is False and "NaN or Inf" in card["fp16_check"]["problem"]
    with pytest.raises(ArtganError, match="fp16 export refused: float16 output holds NaN or Inf"):
        export_onnx(spec, tmp_path / "g16.onnx", precision="fp16")
    assert not (tmp_path / "g16.onnx").exists()


def test_int8_quantises_convolutions_and_is_judged_by_psnr(tmp_path):
    _, spec = dcgan_spec(upsample="nearest", width=8)
    card = export_onnx(spec, tmp_path / "g8.onnx", quantize="int8", calibration_samples=64)
    model = onnx.load(str(tmp_path / "g8.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    md = session_metadata(tmp_path / "g8.onnx")
    assert md["precision"] == "int8" and "standard normal" in json.dumps(md["input_spec"])
    assert "64 random inputs" in md["calibration"] and "4 of 4 weighted layers in int8" in md["calibration"]
    assert card["int8_layers"] == [4, 4]  # the latent projection (a Gemm) too
    assert card["verification"]["psnr_db"] >= 30 and card["verification"]["min_psnr"] == 30
    with pytest.raises(ArtganError, match=r"export verification failed \(int8\): PSNR .* dB < 200 dB"):
        export_onnx(spec, tmp_path / "bad.onnx", quantize="int8", min_psnr=200, calibration_samples=16)


def test_image_to_image_export_has_dynamic_height_and_width(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1),
                        nn.PixelShuffle(2), nn.Tanh())
    spec = ExportSpec(module=net, inputs={"image": torch.rand(1, 3, 16, 16) * 2 - 1}, outputs=["output"],
                      dynamic_axes={}, metadata={"task": "image-to-image", "scale": 2, "size_multiple": 4,
                                                 "channels": 3, "value_range": [-1.0, 1.0],
                                                 "input_spec": {"image": {"range": [-1.0, 1.0]}}})
    card = export_onnx(spec, tmp_path / "sr.onnx")
    assert "a second height/width" in card["verification"]["inputs"]
    sess = ort.InferenceSession(str(tmp_path / "sr.onnx"), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"image": np.zeros((2, 3, 20, 28), np.float32)})[0].shape == (2, 3, 40, 56)
    md = session_metadata(tmp_path / "sr.onnx")
    assert md["scale"] == 2 and md["size_multiple"] == 4 and md["inputs"] == ["image"]


@pytest.fixture
def checkpoint(tmp_path):
    """A (not trained) quickstart-shaped DCGAN checkpoint, written as the trainer writes one."""
    from artgan import checkpoints
    recipe, _ = dcgan_spec()
    config = {"architecture": "dcgan", "params": {"latent_dim": 8, "g_width": 4, "d_width": 4},
              "info": recipe.info.to_dict(), "loss": None, "dataset": "digits"}
    return checkpoints.save(tmp_path / "run" / "checkpoints" / "last.pt",
                            {"iteration": 0, "recipe": config, "state": recipe.state_dict()})


def test_cli_export_precisions_and_a_failing_verification(runner, checkpoint, tmp_path):
    from artgan.cli import cli
    r = runner.invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "g.onnx")])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(tmp_path / "g.onnx") and "fp32: max |onnxruntime - pytorch|" in r.stderr
    assert session_metadata(tmp_path / "g.onnx")["run"] == "run"
    r = runner.invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "h.onnx"), "--precision", "fp16"])
    assert r.exit_code == 0 and session_metadata(tmp_path / "h.onnx")["precision"] == "fp16"
    r = runner.invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "z.onnx"), "--tolerance", "0"])
    assert r.exit_code == 1 and "Error: export verification failed (fp32)" in r.output
    assert not (tmp_path / "z.onnx").exists()
    r = runner.invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "z.onnx"), "--tolerance", "0",
                            "--no-verify"])
    assert r.exit_code == 0 and "not verified" in r.stderr
    r = runner.invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "q.onnx"), "--quantize", "int8"])
    # the latent projection (a matrix product) quantises, the transposed convolutions cannot
    assert r.exit_code == 0 and "warning: only 1 of 4 weighted layers could be quantised" in r.stderr
    r = runner.invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "q.onnx"), "--precision", "fp16",
                            "--quantize", "int8"])
    assert r.exit_code == 1 and "drop --precision fp16" in r.output


def test_upsample_conv_batchnorm_is_exported_as_an_exact_sub_pixel_convolution(tmp_path):
    from artgan.export import SubPixelUpConv, fuse_upsample_conv
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 1), nn.Upsample(scale_factor=2, mode="nearest"),
                        nn.Conv2d(6, 5, 3, 1, 1), nn.BatchNorm2d(5), nn.ReLU(),
                        nn.Upsample(scale_factor=2), nn.Conv2d(5, 2, 3, 1, 1, bias=False), nn.Tanh(),
                        nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(2, 2, 3, 1, 1))  # not fused
    net[3].running_mean.uniform_(-1, 1)
    net[3].running_var.uniform_(0.5, 2)
    net.eval()
    import copy
    fused, count = fuse_upsample_conv(copy.deepcopy(net))
    layers = fused._modules
    assert count == 2 and isinstance(layers["1"], SubPixelUpConv) and isinstance(layers["5"], SubPixelUpConv)
    # layer names survive; the ReLU and the Tanh moved inside, before the shuffle
    assert list(fused._modules) == ["0", "1", "5", "8", "9"]
    assert isinstance(layers["1"].act, nn.ReLU) and isinstance(layers["5"].act, nn.Tanh)
    x = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        assert (fused(x) - net(x)).abs().max() < 1e-5
    spec = ExportSpec(module=net, inputs={"image": x[:1]}, outputs=["output"], dynamic_axes={},
                      metadata={"task": "image-to-image", "scale": 8, "size_multiple": 1, "channels": 2,
                                "value_range": [-1.0, 1.0]})
    card = export_onnx(spec, tmp_path / "f.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "f.onnx")).graph.node]
    assert ops.count("DepthToSpace") == 2 and ops.count("Resize") == 1
    # the activation comes straight after its convolution, where onnxruntime fuses the two
    assert ops[ops.index("Relu") - 1] == "Conv" and ops[ops.index("Tanh") - 1] == "Conv"
    assert card["verification"]["max_abs_diff"] < 1e-4 and card["metadata"]["rewrites"].startswith("2 ")
    export_onnx(spec, tmp_path / "plain.onnx", optimize=False)
    assert [n.op_type for n in onnx.load(str(tmp_path / "plain.onnx")).graph.node].count("Resize") == 3


@pytest.mark.parametrize("channels", [1, 3])
def test_a_one_channel_last_layer_is_computed_before_the_previous_pixel_shuffle(tmp_path, channels):
    from artgan.export import SubPixelPairToOneChannel, fuse_upsample_conv, one_channel_outputs_in_phases
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Upsample(scale_factor=2), nn.Conv2d(8, 6, 3, 1, 1),
                        nn.BatchNorm2d(6), nn.ReLU(), nn.Upsample(scale_factor=2),
                        nn.Conv2d(6, channels, 3, 1, 1), nn.Tanh())
    net[3].running_mean.uniform_(-1, 1)
    net[3].running_var.uniform_(0.5, 2)
    net.eval()
    import copy
    rewritten, count = one_channel_outputs_in_phases(fuse_upsample_conv(copy.deepcopy(net))[0])
    assert count == (channels == 1)
    assert isinstance(rewritten[1], SubPixelPairToOneChannel) == (channels == 1)
    x = torch.randn(2, 3, 5, 7)  # odd sizes: the borders are exact too
    with torch.no_grad():
        assert (rewritten(x) - net(x)).abs().max() < 1e-5
    spec = ExportSpec(module=net, inputs={"image": x[:1]}, outputs=["output"], dynamic_axes={},
                      metadata={"task": "image-to-image", "scale": 4, "size_multiple": 1, "channels": channels,
                                "value_range": [-1.0, 1.0]})
    card = export_onnx(spec, tmp_path / "f.onnx")
    shuffles = [n for n in onnx.load(str(tmp_path / "f.onnx")).graph.node if n.op_type == "DepthToSpace"]
    assert [a.i for n in shuffles for a in n.attribute if a.name == "blocksize"] == ([4] if channels == 1 else [2, 2])
    assert card["verification"]["max_abs_diff"] < 1e-4
    assert ("one-channel output" in card["metadata"]["rewrites"]) == (channels == 1)


def test_transposed_convolution_of_the_latent_is_exported_as_an_exact_matrix_product(tmp_path):
    from artgan.export import LatentProjection, latent_projections_as_gemm

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.ConvTranspose2d(8, 6, 4, 1, 0), nn.BatchNorm2d(6), nn.ReLU(),
                                     nn.ConvTranspose2d(6, 3, 4, 2, 1), nn.Tanh())  # 4x4 input: kept

        def forward(self, z):
            return self.net(z[:, :, None, None])

    torch.manual_seed(0)
    G = Generator()
    G.net[1].running_mean.uniform_(-1, 1)
    G.net[1].running_var.uniform_(0.5, 2)
    G.eval()
    import copy
    z = torch.randn(5, 8)
    rewritten, count = latent_projections_as_gemm(copy.deepcopy(G), {"z": z})
    assert count == 1 and isinstance(rewritten.net[0], LatentProjection) and list(rewritten.net._modules) == ["0", "2", "3", "4"]
    with torch.no_grad():
        assert (rewritten(z) - G(z)).abs().max() < 1e-5
    # an image input could be larger than 1x1 on other images: left alone
    conv_net = nn.Sequential(nn.ConvTranspose2d(3, 3, 2)).eval()
    assert latent_projections_as_gemm(conv_net, {"image": torch.randn(1, 3, 1, 1)})[1] == 0

    spec = ExportSpec(module=G, inputs={"z": z[:1]}, outputs=["image"], dynamic_axes={},
                      metadata={"task": "generate", "latent_dim": 8, "image_size": 8, "channels": 3,
                                "value_range": [-1.0, 1.0]})
    card = export_onnx(spec, tmp_path / "g.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "g.onnx")).graph.node]
    assert ops.count("ConvTranspose") == 1 and "Gemm" in ops
    assert "1 transposed convolution(s) of a 1x1 latent" in card["metadata"]["rewrites"]
    assert card["verification"]["max_abs_diff"] < 1e-4
