"""``artgan export --target web``: a model onnxruntime-web runs on both its backends (WASM and
WebGPU): no transposed convolution left after the exact rewrites (the WebGPU backend fails on
them, see :mod:`artgan.web.ops`), an opset onnxruntime-web knows, and every op in its tables.
fp16 stays opt-in (``--precision fp16``), under the same quality check as any fp16 export."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ArtganError
from ..web.ops import MAX_OPSET, ORT_WEB_VERSION, check_model

TARGETS = ("onnxruntime", "web")


def check_opset(opset: int) -> None:
    if opset > MAX_OPSET:
        raise ArtganError(f"--target web: opset {opset} is newer than onnxruntime-web {ORT_WEB_VERSION} runs "
                          f"(up to {MAX_OPSET}); drop --opset or give one up to {MAX_OPSET}")


def check_module(module: nn.Module) -> None:
    """Refuse, naming the layer, a transposed convolution the rewrites did not turn into an
    equivalent form (only a 1x1 latent's becomes a matrix product)."""
    for name, layer in module.named_modules():
        if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            raise ArtganError(f"--target web: layer {name!r} ({type(layer).__name__}) exports as ConvTranspose, "
                              f"which onnxruntime-web's WebGPU backend fails on; train the generator with "
                              f"nearest upsampling + convolution (dcgan: `upsample: nearest`)")


def check_graph(model: Any) -> dict[str, Any]:
    """The exported graph through the same op check `artgan web` runs."""
    return check_model(model, "the exported model")
