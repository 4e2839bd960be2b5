"""The export-mode contract: what is exported runs in eval mode, takes any noise as an input
(no random op inside), and treats each sample of a batch on its own. A module that breaks it
fails here with the layer named, not at deployment."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ArtganError
from .common import RANDOM_OPS, _like


def check_export_mode(module: nn.Module, inputs: dict[str, torch.Tensor]) -> None:
    """Refuse a module that is not a pure function of its inputs in eval mode, naming the layer.

    Two runs on the same inputs with different random states must agree (noise is an input, not a
    ``torch.randn`` inside ``forward``; dropout is off), and the first sample's output must not
    depend on the others in its batch (BatchNorm uses running statistics, not batch ones).
    """
    for name, m in module.named_modules():
        if m.training:
            raise ArtganError(f"layer {name or type(m).__name__!r} ({type(m).__name__}) stays in training "
                              f"mode after eval(); export needs eval mode throughout")
    # randomness: same inputs, two random states
    culprit = _first_divergent_layer(module, [inputs, inputs], seeds=(1, 2))
    if culprit:
        raise ArtganError(f"layer {culprit} draws random numbers inside forward(), so the same input gives "
                          f"different images; pass the noise in as a model input instead (export-mode contract)")
    # batch independence: sample 0 alone vs sample 0 in a batch of 3
    g = torch.Generator().manual_seed(123)
    batch = {k: _like(v, 3, g) for k, v in inputs.items()}
    alone = {k: v[:1] for k, v in batch.items()}
    culprit = _first_divergent_layer(module, [batch, alone], seeds=(1, 1), first_sample=True)
    if culprit:
        raise ArtganError(f"layer {culprit} mixes samples within a batch (BatchNorm with batch statistics?): "
                          f"one image depends on the others; use running statistics in eval mode "
                          f"(export-mode contract)")


def _first_divergent_layer(module: nn.Module, feeds: list[dict[str, torch.Tensor]], seeds: tuple[int, int],
                           first_sample: bool = False) -> str:
    """Run ``module`` on each of two feeds and return the first layer (in the order layers finish)
    whose inputs agree between the runs but whose outputs do not; '' when the outputs agree."""
    records: list[list[tuple[str, torch.Tensor | None, torch.Tensor | None]]] = [[], []]
    names = {id(m): n for n, m in module.named_modules()}

    def first_tensor(x):
        if isinstance(x, torch.Tensor):
            return x[:1].clone() if first_sample else x  # a copy: a view would keep the batch alive
        if isinstance(x, (tuple, list)):
            for item in x:
                t = first_tensor(item)
                if t is not None:
                    return t
        return None

    for run, (feed, seed) in enumerate(zip(feeds, seeds)):
        def hook(m, args, out, _run=run):
            records[_run].append((names.get(id(m), "?"), first_tensor(args), first_tensor(out)))
        handles = [m.register_forward_hook(hook) for m in module.modules()]
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                module(*feed.values())
        finally:
            for h in handles:
                h.remove()
    for (name, in_a, out_a), (_, in_b, out_b) in zip(*records):
        if _same(in_a, in_b, 1e-5) and not _same(out_a, out_b, 1e-3):
            cls = type(dict(module.named_modules())[name]).__name__ if name != "?" else "?"
            return f"{name or '(the whole module)'!r} ({cls})"
    return ""


def _same(a: torch.Tensor | None, b: torch.Tensor | None, rel: float) -> bool:
    if a is None or b is None or a.shape != b.shape:
        return a is None and b is None
    if not a.is_floating_point():
        return bool(torch.equal(a, b))
    scale = 1.0 + float(torch.maximum(a.abs().max(), b.abs().max()))
    return float((a - b).abs().max()) <= rel * scale


def check_graph(model) -> None:
    """The exported graph holds no random op and no training-mode BatchNorm or Dropout."""
    from onnx import helper

    for node in model.graph.node:
        where = f"layer {_layer_of(node.name)!r} (ONNX node {node.name or node.op_type})"
        if node.op_type in RANDOM_OPS:
            raise ArtganError(f"{where} is a random op ({node.op_type}); pass the noise in as a model "
                              f"input instead (export-mode contract)")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "BatchNormalization" and attrs.get("training_mode", 0):
            raise ArtganError(f"{where} is BatchNorm in training mode; export needs running statistics")
        if node.op_type == "Dropout" and len(node.input) >= 3 and node.input[2]:
            raise ArtganError(f"{where} is Dropout that may be active; export needs eval mode")


def _layer_of(node_name: str) -> str:
    """``/net/net.3/RandomNormalLike`` -> ``net.3``: TorchScript names nodes by module path."""
    parts = [p for p in node_name.split("/") if p]
    return parts[-2] if len(parts) >= 2 else (parts[0] if parts else "?")
