"""Which ONNX ops onnxruntime-web {version} runs, as tables in code, and the check of a model against them.

Sources (onnxruntime-web and onnxruntime {version}, one source release):

- WASM is onnxruntime's CPU execution provider compiled to WebAssembly, so its ops are the CPU
  EP's: onnxruntime's ``docs/OperatorKernels.md`` ("Operators implemented by
  CPUExecutionProvider", domain ai.onnx), here as read from the registered CPU kernels of the
  onnxruntime 1.31.1 wheel (``onnxruntime.capi._pybind_state.get_all_opkernel_def()``).
- WebGPU: ``docs/webgpu-operators.md`` shipped in the ``onnxruntime-web`` 1.31.1 npm package
  (js/web/docs/webgpu-operators.md in the onnxruntime repository), domain ai.onnx. An op the
  WebGPU list lacks runs on WASM inside the same session (onnxruntime assigns nodes per
  provider), so it is noted, not refused.
- Refused although listed: ``ConvTranspose``. The WebGPU backend fails on it ("Only Conv2d or
  Conv1d are supported", microsoft/onnxruntime#28356, onnxruntime-web 1.25.1) or gives an output
  one pixel off (microsoft/onnxruntime#23403); the WebGL backend never had it (#9257).
  ``artgan export --target web`` writes models without it.

Each table maps an op to the first opset its kernels start at; to regenerate them, see
docs/web.md ("Op check").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ArtganError

ORT_WEB_VERSION = "1.31.1"

#: Newest ai.onnx opset onnxruntime 1.31 registers kernels for (its CPU kernels' newest since-version).
MAX_OPSET = 26

#: Oldest ai.onnx opset the page is built for: older models rely on ops' old forms (Upsample).
MIN_OPSET = 7


def _table(text: str) -> dict[str, int]:
    return {op: int(v) for op, v in (item.split(":") for item in text.split())}


#: ai.onnx ops of the WASM backend (onnxruntime's CPU EP), op -> first opset.
WASM_OPS = _table(
    "Abs:6 Acos:7 Acosh:9 Add:7 Affine:1 AffineGrid:20 And:7 ArgMax:1 ArgMin:1 Asin:7 Asinh:9 Atan:7 Atanh:9 "
    "Attention:23 AveragePool:7 BatchNormalization:7 BitCast:26 BitShift:11 BitwiseAnd:18 BitwiseNot:18 "
    "BitwiseOr:18 BitwiseXor:18 BlackmanWindow:17 Cast:6 Ceil:6 Celu:12 Clip:6 Col2Im:18 Compress:9 Concat:4 "
    "ConcatFromSequence:11 ConstantOfShape:9 Conv:1 ConvInteger:10 ConvTranspose:1 Cos:7 Cosh:9 Crop:1 "
    "CumProd:26 CumSum:11 DFT:17 DeformConv:19 DepthToSpace:1 DequantizeLinear:10 Det:11 Div:7 Dropout:7 "
    "DynamicQuantizeLinear:11 DynamicSlice:1 Einsum:12 Elu:6 Equal:7 Erf:9 Exp:6 Expand:8 EyeLike:9 Flatten:1 "
    "Floor:6 GRU:7 Gather:1 GatherElements:11 GatherND:11 Gelu:20 Gemm:7 GlobalAveragePool:1 GlobalLpPool:2 "
    "GlobalMaxPool:1 Greater:7 GreaterOrEqual:12 GridSample:16 HammingWindow:17 HannWindow:17 HardSigmoid:6 "
    "Hardmax:1 Identity:1 If:1 ImageScaler:1 InstanceNormalization:6 IsInf:10 IsNaN:9 LRN:1 LSTM:7 "
    "LayerNormalization:1 LeakyRelu:6 Less:7 LessOrEqual:12 Log:6 LogSoftmax:1 Loop:1 LpNormalization:1 "
    "LpPool:2 MatMul:1 MatMulInteger:10 Max:6 MaxPool:1 MaxRoiPool:1 MaxUnpool:9 Mean:6 "
    "MeanVarianceNormalization:1 MelWeightMatrix:17 MemcpyFromHost:1 MemcpyToHost:1 Min:6 Mod:10 Mul:7 "
    "Multinomial:7 Neg:6 NonMaxSuppression:10 NonZero:9 Not:1 OneHot:9 Optional:15 OptionalGetElement:15 "
    "OptionalHasElement:15 Or:7 PRelu:7 Pad:2 ParametricSoftplus:1 Pow:7 QLinearConv:10 QLinearMatMul:10 "
    "QuantizeLinear:10 RMSNormalization:23 RNN:7 RandomNormal:1 RandomNormalLike:1 RandomUniform:1 "
    "RandomUniformLike:1 Range:11 Reciprocal:6 ReduceL1:1 ReduceL2:1 ReduceLogSum:1 ReduceLogSumExp:1 "
    "ReduceMax:1 ReduceMean:1 ReduceMin:1 ReduceProd:1 ReduceSum:1 ReduceSumSquare:1 RegexFullMatch:20 Relu:6 "
    "Reshape:1 Resize:10 ReverseSequence:10 RoiAlign:10 RotaryEmbedding:23 Round:11 STFT:17 Scale:1 "
    "ScaledTanh:1 Scan:8 Scatter:9 ScatterElements:11 ScatterND:11 Selu:6 SequenceAt:11 SequenceConstruct:11 "
    "SequenceEmpty:11 SequenceErase:11 SequenceInsert:11 SequenceLength:11 Shape:1 Shrink:9 Sigmoid:6 Sign:9 "
    "SimplifiedLayerNormalization:1 Sin:7 Sinh:9 Size:1 Slice:1 Softmax:1 Softplus:1 Softsign:1 "
    "SpaceToDepth:1 Split:2 SplitToSequence:11 Sqrt:6 Squeeze:1 StringConcat:20 StringNormalizer:10 "
    "StringSplit:20 Sub:7 Sum:6 Tan:7 Tanh:6 TensorScatter:24 TfIdfVectorizer:9 ThresholdedRelu:1 Tile:6 "
    "TopK:1 Transpose:1 Trilu:14 Unique:11 Unsqueeze:1 Upsample:7 Where:9 Xor:7 "
)

#: ai.onnx ops of the WebGPU backend, op -> first opset.
WEBGPU_OPS = _table(
    "Abs:6 Acos:7 Acosh:9 Add:7 ArgMax:1 ArgMin:1 Asin:7 Asinh:9 Atan:7 Atanh:9 AveragePool:7 "
    "BatchNormalization:7 Cast:6 Ceil:6 Clip:6 Concat:1 Conv:1 ConvTranspose:1 Cos:7 Cosh:9 CumSum:11 DFT:17 "
    "DepthToSpace:11 DequantizeLinear:10 Div:7 Einsum:12 Elu:6 Equal:7 Erf:9 Exp:6 Expand:8 Flatten:1 Floor:6 "
    "Gather:1 GatherElements:11 GatherND:11 Gelu:20 Gemm:7 GlobalAveragePool:1 GlobalMaxPool:1 Greater:7 "
    "GreaterOrEqual:12 GridSample:16 HardSigmoid:6 HardSwish:14 If:1 InstanceNormalization:6 "
    "LayerNormalization:1 LeakyRelu:6 Less:7 LessOrEqual:12 Log:6 MatMul:1 MaxPool:1 MemcpyFromHost:1 "
    "MemcpyToHost:1 Mul:7 Neg:6 Not:1 Pad:2 Pow:7 Range:11 Reciprocal:6 ReduceL1:1 ReduceL2:1 ReduceLogSum:1 "
    "ReduceLogSumExp:1 ReduceMax:1 ReduceMean:1 ReduceMin:1 ReduceProd:1 ReduceSum:1 ReduceSumSquare:1 Relu:6 "
    "Reshape:5 Resize:10 ScatterND:11 Shape:1 Sigmoid:6 SimplifiedLayerNormalization:1 Sin:7 Sinh:9 Slice:1 "
    "Softmax:1 Split:1 Sqrt:6 Squeeze:1 Sub:7 Tan:7 Tanh:6 ThresholdedRelu:10 Tile:6 Transpose:1 Unsqueeze:1 "
    "Where:9 "
)

#: Ops no backend needs a kernel for: folded into initializers when the session loads.
FOLDED_OPS = {"Constant"}

#: Listed by onnxruntime-web but refused here, with why (see the module docstring).
REFUSED_OPS = {
    "ConvTranspose": "onnxruntime-web's WebGPU backend fails on it (microsoft/onnxruntime#28356)",
}

#: ops that draw random numbers: a generator takes its noise as an input instead
RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}

FIX = "re-export it with `artgan export CHECKPOINT --target web`"


def check_model(model: Any, name: str) -> dict[str, Any]:
    """Check a loaded ``onnx.ModelProto`` against onnxruntime-web's backends; raise
    :class:`ArtganError` naming the first op (or opset) it cannot run, with the fix. Returns
    ``{"opset": N, "webgpu_fallback": [ops run on WASM inside a WebGPU session]}``."""
    opset = None
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = int(imp.version)
        elif any(n.domain == imp.domain for n in model.graph.node):
            op = next(n.op_type for n in model.graph.node if n.domain == imp.domain)
            raise ArtganError(f"{name}: op {imp.domain}.{op} is not a standard ONNX op and onnxruntime-web "
                                  f"{ORT_WEB_VERSION} may not run it; {FIX}")
    if opset is None:
        raise ArtganError(f"{name}: the model declares no ai.onnx opset; {FIX}")
    if opset > MAX_OPSET:
        raise ArtganError(f"{name}: opset {opset} is newer than onnxruntime-web {ORT_WEB_VERSION} runs "
                          f"(up to {MAX_OPSET}); {FIX}")
    if opset < MIN_OPSET:
        raise ArtganError(f"{name}: opset {opset} is older than the web page supports (from {MIN_OPSET}); {FIX}")
    fallback: list[str] = []
    for node in _nodes(model.graph):
        op = node.op_type
        where = f"op {op} (node {node.name!r})" if node.name else f"op {op}"
        if op in FOLDED_OPS:
            continue
        if op in REFUSED_OPS:
            raise ArtganError(f"{name}: {where} is not supported on the web: {REFUSED_OPS[op]}; {FIX}")
        if op in RANDOM_OPS:
            raise ArtganError(f"{name}: {where} draws random numbers inside the model; {FIX}")
        if op not in WASM_OPS or opset < WASM_OPS[op]:
            raise ArtganError(f"{name}: {where} at opset {opset} is not supported by onnxruntime-web "
                              f"{ORT_WEB_VERSION} (WASM); {FIX}")
        if (op not in WEBGPU_OPS or opset < WEBGPU_OPS[op]) and op not in fallback:
            fallback.append(op)
    return {"opset": opset, "webgpu_fallback": fallback}


def _nodes(graph):
    """Every node, including those of subgraphs (If/Loop bodies)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _nodes(attr.g)
            for g in attr.graphs:
                yield from _nodes(g)


def check_file(path: str | Path) -> dict[str, Any]:
    """:func:`check_model` on a file (loaded without torch)."""
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # not ONNX, truncated, unreadable
        raise ArtganError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return check_model(model, str(path))
