"""``artgan plugin new``: the generated package passes its own tests, in-process (fast) and
installed into a fresh virtual environment (slow), and shows up in ``artgan plugins``."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pytest_inprocess import run_pytest

from artgan.cli import cli
from artgan.plugin_template import names_for

# how many tests each generated package has
EXPECTED = {"dataset": 6, "architecture": 5, "loss": 6, "step": 6}
TASK_TESTS = 6  # a task plugin's: two of them need it installed (the entry point, artgan build)


def new(runner, parent, name, kind):
    r = runner.invoke(cli, ["plugin", "new", name, "--kind", kind, "--out", str(parent)])
    assert r.exit_code == 0, r.output
    return Path(r.stdout.strip())


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_generated_package_passes_its_own_tests(runner, tmp_path, kind):
    pkg = new(runner, tmp_path, f"my-{kind}", kind)
    assert pkg == tmp_path / f"artgan-my-{kind}"
    module = f"artgan_my_{kind}"
    assert sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file()) == sorted([
        ".gitignore", "README.md", "pyproject.toml", f"{module}/__init__.py", f"{module}/{kind}.py",
        f"tests/test_{module}.py"])
    pyproject = (pkg / "pyproject.toml").read_text()
    assert 'name = "artgan-my-' + kind + '"' in pyproject
    assert f'[project.entry-points.artgan]\nmy-{kind} = "{module}"' in pyproject
    outcomes, report = run_pytest(pkg)
    # every test passes; the one that needs the package installed is skipped until it is
    assert outcomes == {"passed": EXPECTED[kind] - 1, "skipped": 1}, report


def test_generated_task_is_a_whole_task_plugin_that_passes_its_own_tests(runner, tmp_path):
    pkg = new(runner, tmp_path, "my-task", "task")
    module = "artgan_my_task"
    assert sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file()) == sorted([
        ".gitignore", "README.md", "pyproject.toml", f"{module}/pipeline.yaml", f"tests/test_{module}.py",
        *(f"{module}/{m}.py" for m in ("__init__", "model", "data", "steps", "evaluate"))])
    outcomes, report = run_pytest(pkg)  # trains, exports and evaluates in-process
    assert outcomes == {"passed": TASK_TESTS - 2, "skipped": 2}, report


def test_a_generated_test_can_fail(runner, tmp_path):
    # the generated tests are real: break the step's contract and they fail
    pkg = new(runner, tmp_path, "broken", "step")
    step = pkg / "artgan_broken" / "step.py"
    step.write_text(step.read_text().replace(".astype(np.float32)", ".astype(np.float64)"))
    outcomes, report = run_pytest(pkg)
    assert outcomes["failed"] == 1
    assert "step 'broken' returned dtype float64; steps return float32 in [0, 1]" in report


def test_names_and_refusals(runner, tmp_path):
    assert names_for("soft-glow") == {"name": "soft-glow", "dist": "artgan-soft-glow",
                                      "module": "artgan_soft_glow", "snake": "soft_glow", "cls": "SoftGlow"}
    assert names_for("artgan-glow")["name"] == "glow"
    for bad in ("Glow", "soft_glow", "glow-", "9lives", "soft--glow", ""):
        r = runner.invoke(cli, ["plugin", "new", "--kind", "step", "--out", str(tmp_path), "--", bad])
        assert r.exit_code == 1 and "use lower-case letters, digits and single hyphens" in r.output, bad
    r = runner.invoke(cli, ["plugin", "new", "digits", "--kind", "dataset", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "a dataset named 'digits' already exists (plugin 'datasets')" in r.output
    new(runner, tmp_path, "glow", "step")
    r = runner.invoke(cli, ["plugin", "new", "glow", "--kind", "step", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(cli, ["plugin", "new", "glow", "--kind", "colour"])
    assert r.exit_code == 2 and "'colour' is not one of" in r.output


def test_templates_ship_with_the_package():
    # pyproject's package-data globs must cover every template file, or `plugin new` breaks
    # in a non-editable install
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["artgan"]
    shipped = {p for g in globs for p in (root / "artgan").glob(g)}
    templates = set((root / "artgan" / "templates").rglob("*.tmpl"))
    assert templates and templates <= shipped, sorted(map(str, templates - shipped))


@pytest.mark.slow
def test_generated_plugins_install_in_a_fresh_venv_pass_their_tests_and_run_in_a_pipeline(runner, tmp_path):
    pytest.importorskip("setuptools", reason="--no-build-isolation installs need setuptools")
    packages = {kind: new(runner, tmp_path, f"my-{kind}", kind) for kind in [*EXPECTED, "task"]}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    # A fresh environment that borrows this one's packages (torch, artgan, pytest, pip) rather
    # than downloading them: `site.addsitedir` also runs their .pth files (editable installs).
    purelib = subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                      text=True).strip()
    Path(purelib, "_borrowed.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in site.getsitepackages()))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*args, cwd=tmp_path, timeout=300):
        return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)

    assert run("-c", "import artgan_my_step").returncode != 0  # not importable before it is installed
    editable = [arg for pkg in packages.values() for arg in ("-e", str(pkg))]
    r = run("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", *editable)
    assert r.returncode == 0, r.stderr
    # one pytest run over the four packages (installed, so no pythonpath setting is needed)
    r = run("-m", "pytest", "-q", "-p", "no:cacheprovider", *[str(p / "tests") for p in packages.values()])
    assert r.returncode == 0, r.stdout + r.stderr
    # install checks ran, and `artgan build` trained, exported, evaluated and installed the task's model
    assert f"{sum(EXPECTED.values()) + TASK_TESTS} passed" in r.stdout and "skipped" not in r.stdout, r.stdout

    main = "from artgan.cli import main; main()"
    r = run("-c", main, "plugins", "--json")
    assert r.returncode == 0, r.stderr
    listed = {p["name"]: p for p in json.loads(r.stdout)}
    assert listed["my-task"]["registered"]["task"] == ["my-task"]
    for kind in EXPECTED:
        record = listed[f"my-{kind}"]
        assert record["status"] == "ok" and record["distribution"] == f"artgan-my-{kind}"
        assert record["registered"] == {kind: [f"my-{kind}"]}

    images = tmp_path / "in"
    images.mkdir()
    Image.fromarray(np.linspace(0, 255, 48 * 32 * 3).astype(np.uint8).reshape(48, 32, 3)).save(images / "a.png")
    pipeline = tmp_path / "mine.yaml"
    pipeline.write_text(f"name: mine\nstages:\n  - process:\n      input: {images}\n      steps: ['my-step:strength=1.0']\n")
    r = run("-c", main, "run", str(pipeline), "--out", str(tmp_path / "run"), "-q")
    assert r.returncode == 0, r.stderr
    x = np.asarray(Image.open(images / "a.png")).astype(np.float64) / 255
    out = np.asarray(Image.open(tmp_path / "run" / "processed" / "a.png")).astype(np.float64)
    assert out.shape == (48, 32, 3)
    assert np.abs(out - x * x * (3 - 2 * x) * 255).max() <= 1.0  # the template's tone curve, applied
