"""GANs for data augmentation: labelled datasets (digits split, image-folder labels: folders), class
names through export, and `artgan synth` (torch-free, deterministic, refuses unconditional models)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from artgan.cli import cli
from artgan.errors import ArtganError
from artgan.plugins import get_registry


def _export(tmp_path, name, *, num_classes=0, class_names=None, image_size=16):
    """A tiny exported dcgan (untrained: synth does not care what it draws)."""
    import torch
    from artgan.data import DatasetInfo
    from artgan.export import export_onnx

    torch.manual_seed(0)
    info = DatasetInfo(image_size=image_size, channels=1, num_classes=num_classes, name="test",
                       class_names=class_names)
    recipe = get_registry().create("architecture", "dcgan", info=info, loss=None, conditional=num_classes > 0,
                                   latent_dim=8, g_width=4, d_width=4)
    path = tmp_path / f"{name}.onnx"
    card = export_onnx(recipe.export_spec(), path, extra_metadata={"run": "test", "train_iterations": 0})
    return path, card


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {"pets": _export(d, "pets", num_classes=3, class_names=["cat", "dog", "newt"])[0],
            "numbered": _export(d, "numbered", num_classes=2)[0],
            "plain": _export(d, "plain")[0]}


# -- datasets -----------------------------------------------------------------------------------

def test_digits_split_is_fixed_and_disjoint():
    reg = get_registry()
    every = reg.create("dataset", "digits", image_size=8, split="all")
    train = reg.create("dataset", "digits", image_size=8, split="train")
    test = reg.create("dataset", "digits", image_size=8, split="test")
    assert (len(every), len(train), len(test)) == (1797, 1347, 450)
    assert np.array_equal(test.images.numpy(), every.images[1347:].numpy())
    assert np.array_equal(train.labels.numpy(), every.labels[:1347].numpy())
    assert set(test.labels.tolist()) == set(range(10))
    assert train.info.class_names == [str(i) for i in range(10)]
    with pytest.raises(ArtganError, match="split must be one of all, train, test"):
        reg.create("dataset", "digits", image_size=8, split="valid")


def _tree(root, layout):
    rng = np.random.default_rng(0)
    for rel in layout:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / rel)


def test_image_folder_labels_from_subfolders(tmp_path, artgan_contract):
    _tree(tmp_path, ["b-dogs/1.png", "a-cats/x.png", "a-cats/deeper/y.png", "b-dogs/2.png", "b-dogs/3.png"])
    reg = get_registry()
    ds = reg.create("dataset", "image-folder", path=str(tmp_path), image_size=8, labels="folders")
    assert ds.info.num_classes == 2 and ds.info.class_names == ["a-cats", "b-dogs"]
    labels = sorted((f.relative_to(tmp_path).parts[0], int(ds[i]["label"])) for i, f in enumerate(ds.files))
    assert labels == [("a-cats", 0), ("a-cats", 0), ("b-dogs", 1), ("b-dogs", 1), ("b-dogs", 1)]
    artgan_contract.dataset(ds)
    plain = reg.create("dataset", "image-folder", path=str(tmp_path), image_size=8)
    assert "label" not in plain[0] and plain.info.num_classes == 0


def test_image_folder_labels_errors(tmp_path):
    reg = get_registry()
    _tree(tmp_path, ["a/1.png", "b/2.png", "loose.png"])
    with pytest.raises(ArtganError, match=r"1 are directly in it \(e.g. loose.png\)"):
        reg.create("dataset", "image-folder", path=str(tmp_path), image_size=8, labels="folders")
    with pytest.raises(ArtganError, match="labels must be 'none' or 'folders'"):
        reg.create("dataset", "image-folder", path=str(tmp_path), image_size=8, labels="subdirs")
    one = tmp_path / "one"
    _tree(one, ["only/1.png"])
    with pytest.raises(ArtganError, match="needs at least 2"):
        reg.create("dataset", "image-folder", path=str(one), image_size=8, labels="folders")


# -- class names through export -------------------------------------------------------------------

def test_export_records_class_names(models, tmp_path):
    from artgan.runtime import Generator

    assert Generator(models["pets"]).metadata["class_names"] == ["cat", "dog", "newt"]
    assert Generator(models["numbered"]).metadata["class_names"] == ["0", "1"]  # no names: the numbers
    assert "class_names" not in Generator(models["plain"]).metadata
    md = (models["pets"].with_suffix(".card.md")).read_text()
    assert "| classes | 3: cat, dog, newt" in md
    with pytest.raises(ArtganError, match="class_names must be 3 distinct names"):
        _export(tmp_path, "bad", num_classes=3, class_names=["cat", "cat", "dog"])


# -- artgan synth ---------------------------------------------------------------------------------

def _synth(*args):
    return CliRunner().invoke(cli, ["synth", *map(str, args)])


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_writes_a_labelled_folder(models, tmp_path):
    out = tmp_path / "pets"
    r = _synth(models["pets"], "--per-class", 4, "--out", out, "--seed", 3, "--truncation", 1.5)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out)
    assert sorted(p.name for p in out.iterdir()) == ["cat", "dataset.json", "dog", "labels.csv", "newt"]
    assert sorted(p.name for p in (out / "dog").iterdir()) == [f"0000{i}.png" for i in range(4)]
    with Image.open(out / "newt" / "00003.png") as im:
        assert im.size == (16, 16) and im.mode == "L"
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert len(rows) == 12 and rows[0] == {"path": "cat/00000.png", "label": "0", "class": "cat"}
    assert {r["class"] for r in rows if r["label"] == "2"} == {"newt"}
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["model"] == "pets.onnx" and meta["seed"] == 3 and meta["truncation"] == 1.5
    assert meta["counts"] == {"cat": 4, "dog": 4, "newt": 4} and meta["total"] == 12
    assert len(meta["model_sha256"]) == 64


def test_synth_is_deterministic_and_prefix_stable(models, tmp_path):
    for name, seed, n in (("a", 1, 3), ("b", 1, 3), ("c", 2, 3), ("d", 1, 5)):
        assert _synth(models["pets"], "--per-class", n, "--out", tmp_path / name, "--seed", seed,
                      "-q").exit_code == 0
    a, b, c, d = (_files(tmp_path / n) for n in "abcd")
    images = lambda files: {k: v for k, v in files.items() if k.endswith(".png")}  # noqa: E731
    assert images(a) == images(b) and a["labels.csv"] == b["labels.csv"]
    assert images(a) != images(c)  # another seed, other images
    assert all(d[k] == v for k, v in images(a).items())  # --per-class 5 starts with --per-class 3


def test_synth_output_trains_as_labelled_image_folder(models, tmp_path):
    out = tmp_path / "s"
    assert _synth(models["pets"], "--per-class", 2, "--out", out, "-q").exit_code == 0
    ds = get_registry().create("dataset", "image-folder", path=str(out), image_size=16, channels=1,
                               labels="folders")
    assert ds.info.class_names == ["cat", "dog", "newt"] and len(ds) == 6


def test_synth_refuses_unconditional_and_non_empty(models, tmp_path):
    r = _synth(models["plain"], "--per-class", 2, "--out", tmp_path / "x")
    assert r.exit_code == 1
    assert r.output.count("\n") == 1 and "is an unconditional generator" in r.output
    assert "conditional: true" in r.output and not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    r = _synth(models["pets"], "--per-class", 2, "--out", tmp_path / "full")
    assert r.exit_code == 1 and "is not an empty folder" in r.output
    r = _synth(tmp_path / "missing.onnx", "--per-class", 2, "--out", tmp_path / "y")
    assert r.exit_code == 1 and "not found" in r.output


def test_synth_never_imports_torch(models, tmp_path):
    code = textwrap.dedent("""
        import sys
        from artgan.cli import main
        sys.argv = ["artgan", "synth", sys.argv[1], "--per-class", "2", "--out", sys.argv[2], "-q"]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
        print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
    """)
    r = subprocess.run([sys.executable, "-c", code, str(models["numbered"]), str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "o" / "1" / "00001.png").is_file()


def test_synth_shows_progress(models, tmp_path):
    r = _synth(models["pets"], "--per-class", 4, "--out", tmp_path / "p", "--batch-size", 4)
    assert r.exit_code == 0 and "synth" in r.stderr and "3/3" in r.stderr
    assert "12 images, 4 for each of 3 classes (cat, dog, newt)" in r.stderr
