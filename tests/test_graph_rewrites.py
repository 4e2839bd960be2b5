"""The exact rewrites of an exported graph (artgan.export.graph_rewrites)."""

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from artgan.export import export_onnx
from artgan.recipe import ExportSpec
from artgan.export.graph_rewrites import cubic_phase_kernels
from artgan.runtime import cpu_session


class Upscaler(nn.Module):
    """A learned residual over an interpolated upscale: the shape of the superres generator."""

    def __init__(self, channels: int, scale: int, mode: str = "bicubic", align_corners: bool = False):
        super().__init__()
        self.scale, self.mode, self.align_corners = scale, mode, align_corners
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        base = F.interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=self.align_corners)
        return base + F.interpolate(self.conv(x), scale_factor=self.scale, mode="nearest")


def exported(module, channels, path, **options):
    torch.manual_seed(0)
    spec = ExportSpec(module=module.eval(), inputs={"image": torch.rand(1, channels, 12, 10) * 2 - 1},
                      outputs=["output"], dynamic_axes={},
                      metadata={"task": "image-to-image", "scale": module.scale, "size_multiple": 1,
                                "channels": channels, "value_range": [-1.0, 1.0]})
    card = export_onnx(spec, path, **options)
    return card, [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_each_output_phase_is_a_five_tap_filter_whose_weights_sum_to_one(scale):
    kernels = cubic_phase_kernels(scale, -0.75)
    assert kernels.shape == (scale, 5)
    np.testing.assert_allclose(kernels.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("channels,scale", [(3, 2), (1, 3), (3, 4)])
def test_a_bicubic_upscale_exports_as_a_convolution_that_matches_pytorch_at_the_borders_too(tmp_path, channels, scale):
    module = Upscaler(channels, scale)
    card, ops = exported(module, channels, tmp_path / "up.onnx")
    assert ops.count("Resize") == 1  # the nearest one stays: only cubic is rewritten
    assert "cubic upscale(s) as sub-pixel convolutions" in card["metadata"]["rewrites"]
    session = cpu_session(tmp_path / "up.onnx")
    x = torch.rand(2, channels, 9, 13) * 2 - 1  # odd sizes: every border case
    with torch.no_grad():
        want = module(x).numpy()
    got = session.run(None, {"image": x.numpy()})[0]
    assert np.abs(got - want).max() < 1e-5


def test_other_resizes_and_an_export_without_optimize_keep_their_resize(tmp_path):
    for name, module in (("corners", Upscaler(3, 2, align_corners=True)), ("bilinear", Upscaler(3, 2, mode="bilinear"))):
        card, ops = exported(module, 3, tmp_path / f"{name}.onnx")
        assert ops.count("Resize") == 2 and "cubic" not in card["metadata"].get("rewrites", "")
    _, ops = exported(Upscaler(3, 2), 3, tmp_path / "plain.onnx", optimize=False)
    assert ops.count("Resize") == 2
