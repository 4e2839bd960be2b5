"""docs/deploy.md's examples run: every ```python block, in order, in a temporary folder holding
the files the page names (photo.jpg, photos/, digits.onnx); and its `artgan process ... --engine
ray` line through the CLI on a local Ray. (The cluster lines, `ray start` and `--address HEAD`,
need a cluster: not run.)"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
from pathlib import Path

import pytest

from superres_testing import write_images

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "deploy.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.M | re.S)


@pytest.fixture
def doc_folder(tmp_path, monkeypatch):
    write_images(tmp_path / "photos", [(40, 52), (33, 47)])
    shutil.copy(tmp_path / "photos" / "img0.png", tmp_path / "photo.png")
    from PIL import Image
    Image.open(tmp_path / "photo.png").convert("RGB").save(tmp_path / "photo.jpg")
    (tmp_path / "photo.png").unlink()
    shutil.copy(ROOT / "exports" / "augment" / "digits-cgan.onnx", tmp_path / "digits.onnx")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_page_has_the_sections_and_examples():
    text = DOC.read_text(encoding="utf-8")
    for heading in ("## In Python", "## On Ray", "## In other languages", "## In the browser"):
        assert heading in text
    assert "exports/README.md" in text and "web.md" in text and "process.json" in text
    assert len(blocks("python")) >= 5


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_each_python_example_runs(index, doc_folder):
    code = blocks("python")[index]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, f"{DOC.name} python block {index + 1}", "exec"), {"__name__": "__doc_example__"})
    assert printed.getvalue().strip(), "an example that prints nothing shows nothing"
    if "photo-art.png" in code:
        assert (doc_folder / "photo-art.png").is_file()
        assert "(52, 40) -> (104, 80)" in printed.getvalue()
    if "x2-gam" in code:
        assert "did you mean 'x2-gan'" in printed.getvalue()
    if '"big/"' in code:
        assert printed.getvalue().startswith("2 made, 0 already there, 0 failed")


def _process_lines(text: str) -> list[list[str]]:
    return [shlex.split(line.split("#")[0]) for block in blocks("bash") for line in block.splitlines()
            if line.startswith("artgan process") and "--address" not in line]


@pytest.mark.ray
@pytest.mark.slow
def test_the_ray_example_runs_on_a_local_ray(doc_folder, runner):
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[test,ray]'")
    from artgan.cli import cli

    lines = _process_lines(DOC.read_text(encoding="utf-8"))
    assert lines and all("--engine" in args for args in lines)
    for args in lines:
        r = runner.invoke(cli, args[1:])
        assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (doc_folder / "big").glob("*.png")) == ["img0.png", "img1.png"]
