"""torch -> ONNX, through one small wrapper, verified against PyTorch.

Reads top to bottom in :func:`export_onnx` (:mod:`.wrapper`): copy the module, put it in eval mode
and check the export-mode contract (:mod:`.checks`: deterministic, batch-independent: noise is an
input, never an in-graph random op), rewrite layer patterns into exactly equivalent faster forms
(:mod:`.rewrites`), trace it with a dynamic batch axis (and dynamic height/width for
image-to-image models), check the graph, turn it into fp16 or int8 when asked (:mod:`.quantize`),
verify it with onnxruntime on fresh random inputs (:mod:`.verify`), stamp the ``artgan.*``
metadata and write the model card beside the file (:mod:`artgan.cards`). After an export,
:func:`verify_on_real_inputs` compares the two on real data a caller gives and records it in
the card.

Everything importable from ``artgan.export`` before it became a package still is.
"""

from ..cards import render_markdown as model_card_markdown  # the card's Markdown (was here)
from ..metrics import psnr  # the one PSNR (export had its own copy)
from .checks import check_export_mode, check_graph
from .common import (DEFAULT_OPSET, METADATA_PREFIX, PRECISIONS, QUANTIZATIONS, RANDOM_OPS, REQUIRED_METADATA,
                     TOLERANCES, HalfPrecision)
from .rewrites import (SUB_PIXEL_MAX_WEIGHT_BYTES, LatentProjection, SubPixelPairToOneChannel, SubPixelUpConv,
                       fuse_upsample_conv, latent_projections_as_gemm, one_channel_outputs_in_phases, optimized)
from .verify import fp16_check, verify_export, verify_on_real_inputs
from .wrapper import export_onnx, set_metadata

__all__ = [
    "DEFAULT_OPSET", "METADATA_PREFIX", "PRECISIONS", "QUANTIZATIONS", "RANDOM_OPS", "REQUIRED_METADATA",
    "SUB_PIXEL_MAX_WEIGHT_BYTES", "TOLERANCES", "HalfPrecision", "LatentProjection", "SubPixelPairToOneChannel",
    "SubPixelUpConv", "check_export_mode", "check_graph", "export_onnx", "fp16_check", "fuse_upsample_conv",
    "latent_projections_as_gemm", "model_card_markdown", "one_channel_outputs_in_phases", "optimized", "psnr",
    "set_metadata", "verify_export", "verify_on_real_inputs",
]
