"""Exact rewrites of an exported ONNX graph: patterns that tracing produces and that onnxruntime
runs slowly, each replaced with an equivalent form built from faster ops. Where
:mod:`.rewrites` works on the PyTorch module before tracing, these work on the graph after it, for
what a module does with a function (``F.interpolate``) rather than a layer. The export is verified
against the module as trained afterwards, as for every rewrite.
"""

from __future__ import annotations

import math

import numpy as np

CUBIC_TAPS = 5  # an integer upscale of 2 to 4 reads 5 input pixels per axis across its phases


def cubic_weights(t: float, a: float) -> np.ndarray:
    """The 4 weights of the cubic convolution kernel (Keys, 1981; ``a`` = -0.75 in PyTorch and
    OpenCV, -0.5 in Pillow) for taps at -1, 0, 1, 2 around a point ``t`` in [0, 1) past tap 0."""
    def w(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
        return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a if x < 2 else 0.0
    return np.array([w(t + 1), w(t), w(1 - t), w(2 - t)])


def cubic_phase_kernels(scale: int, a: float) -> np.ndarray:
    """(scale, CUBIC_TAPS): output phase p of each input pixel i (output pixel scale*i + p) as
    weights over input pixels i-2 .. i+2, for half-pixel centres (ONNX's ``half_pixel`` and
    ``pytorch_half_pixel``, PyTorch's ``align_corners=False``)."""
    kernels = np.zeros((scale, CUBIC_TAPS))
    for p in range(scale):
        x = (p + 0.5) / scale - 0.5  # where output phase p falls, relative to input pixel i
        f = math.floor(x)
        kernels[p, f - 1 + 2:f + 3 + 2] = cubic_weights(x - f, a)
    return kernels


def cubic_upscale_as_subpixel(model) -> int:
    """Replace every ``Resize`` that upscales both spatial axes by the same integer (2 to 4) with
    cubic interpolation and half-pixel centres, on an input whose channel count is known, with
    ``Pad`` (edge) -> grouped 5x5 ``Conv`` (one output channel per channel and phase) ->
    ``DepthToSpace``. Exact: the cubic kernel at a fixed phase is a fixed 5-tap filter, and the
    edge padding is the clamping both PyTorch and onnxruntime apply at the borders. onnxruntime's
    cubic Resize is scalar code (a seventh of an x2 upscaler's time on the CPU, in WASM too); the
    convolution runs on its vectorised kernels. ``model`` (an ``onnx.ModelProto``) is changed in
    place; returns how many were replaced."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    inferred = onnx.shape_inference.infer_shapes(model)
    channels = {}
    for value in (*inferred.graph.input, *inferred.graph.value_info):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            channels[value.name] = dims[1].dim_value

    replaced = 0
    for index in range(len(graph.node) - 1, -1, -1):
        node = graph.node[index]
        if node.op_type != "Resize" or len(node.input) < 3:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        decode = (lambda v: v.decode() if isinstance(v, bytes) else v)
        scales = constants.get(node.input[2])
        c = channels.get(node.input[0])
        if (decode(attrs.get("mode", "nearest")) != "cubic"
                or decode(attrs.get("coordinate_transformation_mode", "half_pixel")) not in ("half_pixel", "pytorch_half_pixel")
                or attrs.get("exclude_outside", 0) or attrs.get("antialias", 0)
                or (len(node.input) > 3 and node.input[3]) or scales is None or c is None
                or scales.shape != (4,) or scales[0] != 1 or scales[1] != 1 or scales[2] != scales[3]
                or scales[2] not in (2, 3, 4)):
            continue
        scale = int(scales[2])
        phases = cubic_phase_kernels(scale, float(attrs.get("cubic_coeff_a", -0.75)))
        kernel = np.einsum("ay,bx->abyx", phases, phases).reshape(scale * scale, 1, CUBIC_TAPS, CUBIC_TAPS)
        kernel = np.tile(kernel, (c, 1, 1, 1)).astype(np.float32)  # output channel c*s*s + a*s + b
        name = node.name or node.output[0]
        edge = CUBIC_TAPS // 2
        graph.initializer.extend([
            numpy_helper.from_array(np.array([0, 0, edge, edge, 0, 0, edge, edge], np.int64), f"{name}/subpixel_pads"),
            numpy_helper.from_array(kernel, f"{name}/subpixel_kernel")])
        new = [helper.make_node("Pad", [node.input[0], f"{name}/subpixel_pads"], [f"{name}/padded"],
                                name=f"{name}/Pad", mode="edge"),
               helper.make_node("Conv", [f"{name}/padded", f"{name}/subpixel_kernel"], [f"{name}/phases"],
                                name=f"{name}/Conv", group=c, kernel_shape=[CUBIC_TAPS, CUBIC_TAPS]),
               helper.make_node("DepthToSpace", [f"{name}/phases"], [node.output[0]], name=f"{name}/DepthToSpace",
                                blocksize=scale, mode="CRD")]
        graph.node.remove(node)
        for offset, n in enumerate(new):
            graph.node.insert(index + offset, n)
        replaced += 1
    if replaced:  # the scales the Resize nodes read, now read by nothing
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        for n in [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]:
            graph.node.remove(n)
        for t in [t for t in graph.initializer if t.name not in used]:
            graph.initializer.remove(t)
    return replaced
