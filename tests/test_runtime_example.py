"""The second app (examples/generate_app.py) runs where PyTorch is not installed at all.

A virtual environment without system site-packages gets onnxruntime, numpy and Pillow and
nothing else (linked from this environment's site-packages: no network, well under a second),
so `import torch` and `import artgan` fail there for real, not through a mock.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "generate_app.py"
ALLOWED = ("onnxruntime", "numpy", "PIL")


def torch_free_python(root: Path) -> Path:
    venv.EnvBuilder(with_pip=False, system_site_packages=False, symlinks=True).create(root)
    python = root / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():  # the packages, their .libs folders of shared libraries and dist-info
        name = entry.name.lower()
        if any(name == p.lower() or name.startswith((p.lower() + "-", p.lower() + ".", p.lower() + "_"))
               for p in (*ALLOWED, "pillow", "onnxruntime_gpu")):
            (site / entry.name).symlink_to(entry)
    return python


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    return torch_free_python(tmp_path_factory.mktemp("venv") / "env")


def test_the_venv_really_has_no_torch_and_no_artgan(bare_python):
    r = subprocess.run([str(bare_python), "-c", "import onnxruntime, numpy, PIL\n"
                        "for m in ('torch', 'artgan', 'click'):\n"
                        "    try:\n        __import__(m); print('found', m)\n"
                        "    except ImportError:\n        print('missing', m)"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == ["missing torch", "missing artgan", "missing click"]


def test_example_app_draws_the_same_images_as_artgan_generate(bare_python, tmp_path, runner):
    import torch
    from artgan.cli import cli
    from artgan.data import DatasetInfo
    from artgan.export import export_onnx
    from artgan_gan.dcgan import DCGANRecipe
    torch.manual_seed(0)
    recipe = DCGANRecipe(info=DatasetInfo(image_size=32, channels=1), latent_dim=8, g_width=4, d_width=4,
                         upsample="nearest")
    export_onnx(recipe.export_spec(), tmp_path / "g.onnx")  # freshly exported
    r = subprocess.run([str(bare_python), str(EXAMPLE), str(tmp_path / "g.onnx"), "--n", "9", "--seed", "5",
                        "--out", str(tmp_path / "app.png")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "9 images of 32 px" in r.stdout
    ours = runner.invoke(cli, ["generate", str(tmp_path / "g.onnx"), "--n", "9", "--seed", "5", "--out",
                               str(tmp_path / "artgan.png"), "-q"])
    assert ours.exit_code == 0, ours.output
    app, ref = (np.asarray(Image.open(tmp_path / p), np.int16) for p in ("app.png", "artgan.png"))
    assert app.shape == ref.shape and np.abs(app - ref).max() <= 1


def test_example_imports_only_onnxruntime_numpy_pillow_and_the_standard_library():
    import ast
    tree = ast.parse(EXAMPLE.read_text())
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert {m for m in modules if m not in sys.stdlib_module_names} == set(ALLOWED)
