"""The detail-preserving inpainting recipe (inpaint-detail): its contract (trains a few
iterations with the perceptual and patch-GAN terms, checkpoints, exports with inpaint-residual's
contract), its losses and init_from."""

from __future__ import annotations

import pytest
import torch

from artgan.data import DatasetInfo
from artgan.errors import ArtganError
from artgan_inpaint.detail import DetailInpaintRecipe, HolePatchDiscriminator, patch_hole_share
from artgan_inpaint.model import InpaintNetConfig, InpaintRecipe

INFO = DatasetInfo(image_size=32, channels=3, name="tiny")


def batch(n=2, s=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, s, s, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, s, s)
    mask[..., 8:24, 6:20] = 1
    return {"image": image, "prefill": image * (1 - mask), "mask": mask}


def test_the_recipe_meets_the_architecture_contract(registry, tmp_path):
    from artgan.testing import check_registered

    report = check_registered(registry, "architecture", "inpaint-detail", tmp_path)  # trains, reloads, exports
    assert report


def test_phases_train_the_discriminator_then_the_generator_with_all_three_terms():
    recipe = DetailInpaintRecipe(info=INFO, width=8, blocks=1, d_width=4)
    d, g = recipe.phases()
    assert (d.name, g.name) == ("D", "G")
    d_out, g_out = d.losses(batch()), g.losses(batch())
    assert {"loss", "real_score", "hole_score"} <= set(d_out)
    assert {"loss", "pixel", "perceptual", "adversarial", "psnr_gain_db"} <= set(g_out)
    g_out["loss"].backward()
    assert recipe.net.out.weight.grad.abs().sum() > 0  # the generator learns from its terms
    assert [p.name for p in DetailInpaintRecipe(info=INFO, width=8, blocks=1, adversarial_weight=0).phases()] == ["G"]


def test_the_discriminator_is_told_fake_only_where_the_hole_is():
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :32, :] = 1
    logits = HolePatchDiscriminator(4)(torch.zeros(1, 3, 64, 64))
    assert logits.shape[-2:] == (8, 8)
    share = patch_hole_share(mask, logits)
    assert torch.all(share[..., :4, :] == 1) and torch.all(share[..., 4:, :] == 0)


def test_init_from_a_residual_checkpoint_and_onnx(tmp_path):
    residual = InpaintRecipe(info=INFO, width=8, blocks=1, ema=0)  # exported: the trained weights
    with torch.no_grad():
        residual.net.out.weight.add_(0.5)
    spec = residual.export_spec()
    path = tmp_path / "r.onnx"
    torch.onnx.export(spec.module, tuple(spec.inputs.values()), str(path), input_names=list(spec.inputs),
                      output_names=spec.outputs, dynamo=False)
    detail = DetailInpaintRecipe(info=INFO, width=8, blocks=1, init_from=str(path))
    assert torch.equal(detail.net.out.weight, residual.net.out.weight)
    with pytest.raises(ArtganError, match="init_from .* holds a different network"):
        DetailInpaintRecipe(info=INFO, width=16, blocks=1, init_from=str(path))
    with pytest.raises(ArtganError, match="init_from .*: file not found"):
        DetailInpaintRecipe(info=INFO, width=8, blocks=1, init_from=str(tmp_path / "nope.onnx"))


def test_bad_knobs_are_one_line_errors():
    with pytest.raises(ArtganError, match="inpaint-detail: perceptual_weight must be a number >= 0"):
        DetailInpaintRecipe(info=INFO, perceptual_weight=-1)
    with pytest.raises(ArtganError, match="inpaint-detail: d_width must be a positive integer"):
        DetailInpaintRecipe(info=INFO, d_width=0)
    with pytest.raises(ArtganError, match="inpaint-detail: has its own patch-GAN loss"):
        DetailInpaintRecipe(info=INFO, loss="hinge")


def test_export_keeps_the_residual_contract_and_names_itself():
    md = DetailInpaintRecipe(info=INFO, width=8, blocks=1).export_spec().metadata
    assert md["architecture"] == "inpaint-detail" and md["inputs"] == ["image", "mask"]
    assert md["prefill"] == {"method": "ns", "radius": 3.0} and md["step"] == "inpaint"
    assert InpaintNetConfig(width=8, blocks=1).width == 8
