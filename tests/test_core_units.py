"""Unit tests of the core pieces: registry, config, datasets, images, checkpoints, runtime guards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from artgan.errors import ArtganError, ConfigError, UnknownNameError
from artgan.plugins import PluginRecord, Registry


def make_registry():
    reg = Registry()
    reg.plugins["a"] = PluginRecord(name="a")
    reg.plugins["b"] = PluginRecord(name="b")
    return reg


def test_registry_refuses_duplicates_naming_both_plugins():
    reg = make_registry()
    reg.add("dataset", "faces", lambda: None, "a")
    with pytest.raises(ArtganError, match="registered twice: by plugin 'a' and by plugin 'b'"):
        reg.add("dataset", "faces", lambda: None, "b")


def test_registry_unknown_name_lists_known_and_close_match():
    reg = make_registry()
    reg.add("architecture", "dcgan", lambda: None, "a")
    reg.add("architecture", "sngan", lambda: None, "a")
    with pytest.raises(UnknownNameError) as exc:
        reg.get("architecture", "dcgn")
    assert "did you mean 'dcgan'" in str(exc.value)
    assert "known architectures: dcgan, sngan" in str(exc.value)


def test_registry_create_checks_parameters_against_the_factory_signature():
    reg = make_registry()

    def factory(size: int = 3):
        return size

    reg.add("step", "blur", factory, "a")
    assert reg.create("step", "blur", size=5) == 5
    with pytest.raises(ArtganError, match="accepted parameters: size"):
        reg.create("step", "blur", sigma=2)


def test_yaml_locations_and_overrides():
    from artgan.pipeline import load_pipeline
    text = "name: t\nstages:\n  - train:\n      dataset: digits\n      architecture: dcgan\n  - export: {}\n"
    p = load_pipeline(text=text, overrides=["train.iterations=12", "export.opset=18", "train.dataset.image_size=64"])
    (k1, train), (k2, export) = p.stages
    assert (k1, train.iterations, k2, export.opset) == ("train", 12, "export", 18)
    assert train.dataset == {"name": "digits", "image_size": 64}
    with pytest.raises(ConfigError, match="no 'generate' stage"):
        load_pipeline(text=text, overrides=["generate.n=3"])


def test_float_fields_accept_ints_but_not_strings():
    from artgan.pipeline import load_pipeline
    text = "name: t\nstages:\n  - export: {tolerance: 1}\n"
    assert load_pipeline(text=text).stages[0][1].tolerance == 1.0
    with pytest.raises(ConfigError, match="expected a number"):
        load_pipeline(text=text.replace("1}", "'x'}"))


def test_digits_dataset_contract():
    from artgan_datasets.builtin import DigitsDataset
    ds = DigitsDataset(image_size=32)
    item = ds[0]
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.float32
    assert -1.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert ds.info.num_classes == 10 and len(ds) == 1797


def test_shapes_dataset_is_deterministic_by_seed_and_any_size():
    from artgan_datasets.builtin import ShapesDataset
    a, b, c = ShapesDataset(48, seed=1), ShapesDataset(48, seed=1), ShapesDataset(48, seed=2)
    assert torch.equal(a[5]["image"], b[5]["image"])
    assert not torch.equal(a[5]["image"], c[5]["image"])
    assert a[0]["image"].shape == (3, 48, 48)
    assert a[0]["image"].min() >= -1 and a[0]["image"].max() <= 1


def test_image_folder_skips_corrupt_files_with_a_warning(tmp_path):
    from PIL import Image
    from artgan_datasets.builtin import ImageFolderDataset
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "sub" / "ok.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable file\(s\): .*broken.jpg"):
        ds = ImageFolderDataset(str(tmp_path), image_size=16,
                                augment=[{"name": "HorizontalFlip", "p": 1.0}])
    assert len(ds) == 1 and ds[0]["image"].shape == (3, 16, 16)


def test_image_folder_errors(tmp_path):
    from artgan_datasets.builtin import ImageFolderDataset
    with pytest.raises(ArtganError, match="no readable images"):
        ImageFolderDataset(str(tmp_path))
    with pytest.raises(ArtganError, match="does not exist"):
        ImageFolderDataset(str(tmp_path / "nope"))
    from PIL import Image
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(ArtganError, match="no transform 'HorizontalFlp'.*HorizontalFlip"):
        ImageFolderDataset(str(tmp_path), image_size=8, augment=[{"name": "HorizontalFlp"}])


def test_load_image_caps_pixels_and_names_the_file(tmp_path):
    from PIL import Image
    from artgan.images import load_image
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    with pytest.raises(ArtganError, match="big.png: image is 100x100, over the limit"):
        load_image(tmp_path / "big.png", max_pixels=5000)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ArtganError, match="bad.png: not a readable image"):
        load_image(tmp_path / "bad.png")


def test_batch_order_is_a_function_of_seed_and_batch_index():
    from artgan.data import EpochBatchSampler
    full = EpochBatchSampler(100, 8, seed=3)
    it = iter(full)
    seq = [next(it) for _ in range(30)]  # crosses epochs (12 batches each)
    it2 = iter(EpochBatchSampler(100, 8, seed=3, start_batch=17))
    assert [next(it2) for _ in range(13)] == seq[17:]
    assert all(len(set(b)) == 8 for b in seq)


def test_checkpoint_loads_weights_only_and_rejects_foreign_files(tmp_path):
    from artgan import checkpoints
    checkpoints.save(tmp_path / "c.pt", {"iteration": 3, "rng": checkpoints.rng_state()})
    assert checkpoints.load(tmp_path / "c.pt")["iteration"] == 3
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(ArtganError, match="not an artgan checkpoint"):
        checkpoints.load(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ArtganError, match="junk.pt: not a readable artgan checkpoint"):
        checkpoints.load(tmp_path / "junk.pt")
    assert not list(tmp_path.glob("*.tmp"))


def test_rng_state_round_trips():
    import random
    from artgan import checkpoints
    state = checkpoints.rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    checkpoints.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_step_spec_parsing():
    from artgan.steps import parse_step_spec
    assert parse_step_spec("superres:scale=4,model=x2-gan") == ("superres", {"scale": 4, "model": "x2-gan"})
    assert parse_step_spec("inpaint:box=1,2,3,4,feather=0.5") == ("inpaint", {"box": "1,2,3,4", "feather": 0.5})
    assert parse_step_spec("bicubic") == ("bicubic", {})
    with pytest.raises(ArtganError):
        parse_step_spec("style:strength")


def test_make_grid_shape():
    from artgan.images import make_grid
    g = make_grid(np.zeros((5, 4, 4, 3), np.float32), nrow=3, padding=1)
    assert g.shape == (2 * 5 + 1, 3 * 5 + 1, 3)


@pytest.mark.parametrize("size,upsample", [(32, "transpose"), (64, "transpose"), (64, "nearest")])
def test_dcgan_sizes_export_with_a_dynamic_batch(tmp_path, size, upsample):
    from artgan.data import DatasetInfo
    from artgan.export import export_onnx
    from artgan.runtime import Generator
    from artgan_gan.dcgan import DCGANRecipe
    recipe = DCGANRecipe(info=DatasetInfo(image_size=size, channels=3), latent_dim=8, g_width=4,
                         d_width=4, upsample=upsample)
    z = torch.randn(2, 8)
    assert recipe.G(z).shape == (2, 3, size, size) and recipe.D(recipe.G(z)).shape == (2,)
    card = export_onnx(recipe.export_spec(), tmp_path / "g.onnx")
    assert card["verification"]["max_abs_diff"] < 1e-4
    images = Generator(tmp_path / "g.onnx").generate(5, seed=1, batch_size=2)
    assert images.shape == (5, size, size, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_dcgan_rejects_unsupported_sizes():
    from artgan.data import DatasetInfo
    from artgan_gan.dcgan import DCGANRecipe
    with pytest.raises(ArtganError, match="image_size must be 16, 32, 64 or 128, got 48"):
        DCGANRecipe(info=DatasetInfo(image_size=48))


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    import os
    from artgan.files import write_text
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_detail_ratio_is_one_for_the_reference_and_lower_when_blurred():
    from artgan.metrics import detail_ratio
    rng = np.random.default_rng(0)
    img = rng.random((40, 40))
    blurred = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1) + np.roll(img, (1, 1), (0, 1))) / 4
    assert detail_ratio(img, img) == pytest.approx(1.0)
    assert detail_ratio(blurred, img, crop=2) < 0.7
    assert np.isnan(detail_ratio(img, np.zeros((40, 40))))
