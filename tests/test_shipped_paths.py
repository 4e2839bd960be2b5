"""No shipped file names an absolute path of the machine it was made on: a clone has no /work,
and the reference pipelines name their data relative to the repository (``../shared/data/...``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SHIPPED = ["README.md", "docs", "exports", "pipelines", "scripts", "examples", "benchmarks"]
TEXT = {".md", ".yaml", ".yml", ".sh", ".json", ".py", ".txt", ".toml"}
ABSOLUTE = re.compile(r"(?<![\w.~-])/(?:work|root|tmp|home)/")


def shipped_files() -> list[Path]:
    files = []
    for name in SHIPPED:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return files


def absolute_paths(text: str) -> list[str]:
    return [line.strip()[:120] for line in text.splitlines() if ABSOLUTE.search(line)]


@pytest.mark.parametrize("path", [p for p in shipped_files() if p.suffix in TEXT],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shipped_text_file_names_an_absolute_path_of_this_machine(path):
    found = absolute_paths(path.read_text(encoding="utf-8", errors="replace"))
    assert not found, f"{path.relative_to(ROOT)} names an absolute path (make it relative): {found}"


@pytest.mark.parametrize("path", sorted((ROOT / "exports").rglob("*.onnx")), ids=lambda p: p.name)
def test_no_shipped_model_names_an_absolute_path_in_its_metadata(path):
    import onnx

    metadata = "\n".join(f"{p.key}: {p.value}" for p in onnx.load(str(path), load_external_data=False).metadata_props)
    assert not absolute_paths(metadata), absolute_paths(metadata)


def test_the_check_finds_the_paths_it_looks_for():
    assert absolute_paths("path: /work/shared/data/BSD68\nx: /tmp/a.png\ny: /root/.cache\nz: /home/me")
    assert not absolute_paths("path: ../shared/data/BSD68\nurl: https://example.org/tmp/x\nrel: runs/tmp/x")
