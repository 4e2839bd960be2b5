"""docs/plugins.md is the plugin author's only guide: every hook is documented with its exact
signature, and the example plugin it builds (the ``# file:`` code blocks) works as written."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest
from pytest_inprocess import run_pytest

from artgan import hookspecs
from artgan.plugins import HOOK_NAMES, REGISTRATION_HOOKS
from artgan.testing import check_plugin, check_registered, check_step_without_torch

DOCS = Path(__file__).parents[1] / "docs" / "plugins.md"
TEXT = DOCS.read_text(encoding="utf-8")


def signature(hook: str) -> str:
    """``name(param: annotation, ...)`` as written in artgan/hookspecs.py."""
    params = inspect.signature(getattr(hookspecs, hook)).parameters.values()
    ann = [p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation) for p in params]
    return f"{hook}({', '.join(f'{p.name}: {a}' for p, a in zip(params, ann))})"


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_every_hook_is_documented_with_its_exact_signature(hook):
    assert f"### `{signature(hook)}`" in TEXT, f"docs/plugins.md needs a heading: ### `{signature(hook)}`"


def test_every_documented_hook_exists():
    documented = re.findall(r"^### `(artgan_\w+)\(", TEXT, flags=re.M)
    assert sorted(documented) == sorted(HOOK_NAMES)


def test_the_documented_hook_api_version_is_the_real_one():
    assert f"(now **{hookspecs.HOOK_API_VERSION}**)" in TEXT


def code_files() -> dict[str, str]:
    """The fenced code blocks whose first line is ``# file: PATH``."""
    files = {}
    for block in re.findall(r"```python\n(.*?)```", TEXT, flags=re.S):
        first, _, body = block.partition("\n")
        if first.startswith("# file: "):
            files[first[len("# file: "):].strip()] = body
    return files


@pytest.fixture
def tutorial(tmp_path, monkeypatch):
    for rel, body in code_files().items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "artgan_tutorial" or m.startswith("artgan_tutorial.")]:
        del sys.modules[name]


def test_the_documented_example_plugin_meets_every_contract(tutorial):
    assert {"artgan_tutorial/__init__.py", "artgan_tutorial/sepia.py", "artgan_tutorial/checkers.py",
            "artgan_tutorial/hinge.py", "artgan_tutorial/tiny_mlp.py"} <= set(code_files())
    import artgan_tutorial

    registry = check_plugin(artgan_tutorial)
    registered = {kind: registry.names(kind) for kind in REGISTRATION_HOOKS}
    assert registered == {"dataset": ["checkers"], "architecture": ["tiny-mlp"], "loss": ["hinge"], "step": ["sepia"],
                          "evaluation": [], "task": []}
    for kind, names in registered.items():
        for name in names:
            check_registered(registry, kind, name, tutorial / "work" / name)
    check_step_without_torch("sepia:strength=0.5", plugin_module="artgan_tutorial")


def test_the_documented_test_file_passes(tutorial):
    block = re.search(r"```python\n# tests/test_artgan_tutorial.py\n(.*?)```", TEXT, flags=re.S)
    assert block, "docs/plugins.md lost its example test file"
    (tutorial / "tests").mkdir()
    (tutorial / "tests" / "test_artgan_tutorial.py").write_text(block.group(1))
    outcomes, report = run_pytest(tutorial / "tests")
    # check_installed skips: the tutorial is not installed here
    assert outcomes == {"passed": 2, "skipped": 1}, report


def test_the_plugin_command_help_points_to_the_docs(runner):
    from artgan.cli import cli

    r = runner.invoke(cli, ["plugin", "--help"])
    assert r.exit_code == 0 and "docs/plugins.md" in r.output


@pytest.fixture
def task_tutorial(tutorial):
    yield tutorial
    for name in [m for m in sys.modules if m == "artgan_denoise" or m.startswith("artgan_denoise.")]:
        del sys.modules[name]


def test_the_documented_task_plugin_has_the_five_modules_and_meets_every_contract(task_tutorial, tmp_path):
    import numpy as np
    from PIL import Image

    from artgan.evaluation import Request, evaluate
    from artgan.testing import check_dataset

    modules = {p for p in code_files() if p.startswith("artgan_denoise/")}
    assert modules == {f"artgan_denoise/{m}.py" for m in ("__init__", "model", "data", "steps", "evaluate")}
    import artgan_denoise

    registry = check_plugin(artgan_denoise)
    assert {kind: registry.names(kind) for kind in REGISTRATION_HOOKS} == {
        "dataset": ["clean-crops"], "architecture": ["denoise-cnn"], "loss": [], "step": ["box-blur", "denoise"],
        "evaluation": ["denoise"], "task": ["denoise"]}
    report = check_registered(registry, "architecture", "denoise-cnn", tmp_path / "arch")  # trains and exports
    check_registered(registry, "evaluation", "denoise")
    assert check_registered(registry, "task", "denoise").parts() == {
        "architecture": ["denoise-cnn"], "dataset": ["clean-crops"], "step": ["denoise", "box-blur"],
        "evaluation": ["denoise"]}
    check_step_without_torch("box-blur:radius=1", plugin_module="artgan_denoise")

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):  # smooth images: a blur removes noise from them without losing much
        ramp = np.linspace(0, 255, 64)[None, :, None] * rng.random(3)
        Image.fromarray(np.broadcast_to(ramp, (64, 64, 3)).astype(np.uint8)).save(photos / f"p{i}.png")
    check_dataset(registry.create("dataset", "clean-crops", path=str(photos), size=32))

    evaluation = registry.create("evaluation", "denoise")
    request = Request("denoise", photos, "heldout", [str(report["onnx"])], ["noisy", "box-blur"], {"noise": 0.1},
                      registry)
    result = evaluate("denoise", evaluation, request)
    assert result["images"] == 2 and list(result["methods"]) == ["noisy", "box-blur", str(report["onnx"])]
    assert result["methods"]["box-blur"]["psnr"] > result["methods"]["noisy"]["psnr"] + 3


# -- what plugin authors copy follows the page's own rules -------------------------------------------

ROOT = Path(__file__).parents[1]


def author_facing_code(scratch: Path) -> dict[str, str]:
    """Every Python example a plugin author may copy: the ```python blocks of docs/*.md and the
    README, what `artgan plugin new` writes for each kind, and the example third-party plugin."""
    from artgan.plugin_template import KINDS, new_plugin

    code = {}
    # docs/api.md's blocks are signatures written from the code, not code to copy
    for doc in [*sorted(set((ROOT / "docs").glob("*.md")) - {ROOT / "docs" / "api.md"}), ROOT / "README.md"]:
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S)):
            code[f"{doc.relative_to(ROOT)} block {i + 1}"] = block
    for kind in KINDS:
        made = new_plugin(f"sample-{kind}", kind, scratch).root
        for path in sorted(made.rglob("*.py")):
            code[f"artgan plugin new --kind {kind}: {path.relative_to(made)}"] = path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "plugins" / "artgan-example").rglob("*.py")):
        code[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return code


def test_no_example_for_plugin_authors_takes_kwargs(tmp_path):
    # the contract says "do not use **kwargs (it hides typos from artgan's checks)": the examples
    # (the denoise task's recipe once took **params) must not teach the opposite
    import ast

    code = author_facing_code(tmp_path)
    assert any("artgan_denoise/model.py" in body for body in code.values())  # the worked task example is read
    assert sum(where.startswith("artgan plugin new --kind architecture") for where in code) >= 2  # templates too
    offenders = []
    for where, body in code.items():
        tree = ast.parse(body, filename=where)  # every example is whole, valid Python
        offenders += [f"{where}: def {node.name}(... **{node.args.kwarg.arg})" for node in ast.walk(tree)
                      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.args.kwarg]
    assert not offenders, "examples take **kwargs against docs/plugins.md's rule: " + "; ".join(offenders)


# -- the opset the docs name is the one export writes ----------------------------------------------

def opset_mentions(text: str) -> list[tuple[str, list[int]]]:
    """(line, the whole numbers within 40 characters after each "opset" on it), for every line
    that names an opset. Versions such as onnxruntime's 1.31.1 are not numbers here."""
    found = []
    for line in text.splitlines():
        numbers = []
        for match in re.finditer(r"opset", line, flags=re.I):
            window = line[match.end():match.end() + 40]
            numbers += [int(n) for n in re.findall(r"(?<![\d.])\d+(?![\d.])", window)]
        if numbers:
            found.append((line.strip(), numbers))
    return found


def test_every_opset_the_docs_name_is_the_export_default_or_a_web_bound(runner):
    # the docs once said opset 17 where export wrote 20
    from artgan.cli import cli
    from artgan.config import MAX_OPSET
    from artgan.export import DEFAULT_OPSET
    from artgan.web.ops import MAX_OPSET as WEB_MAX, MIN_OPSET as WEB_MIN

    assert DEFAULT_OPSET == MAX_OPSET
    texts = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in
             [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", ROOT / "exports" / "README.md",
              *sorted((ROOT / "artgan" / "templates").rglob("*.tmpl"))]}
    help_text = runner.invoke(cli, ["export", "--help"]).output
    texts["artgan export --help"] = " ".join(help_text.split())
    wrong = []
    for where, text in texts.items():
        for line, numbers in opset_mentions(text):
            # an opset above the web's newest is an example of one refused (errors.md)
            stray = [n for n in numbers if n not in (DEFAULT_OPSET, WEB_MIN, WEB_MAX) and n <= WEB_MAX]
            claims_default = "DEFAULT_OPSET" in line or "default" in line.lower()
            if stray or (claims_default and DEFAULT_OPSET not in numbers):
                wrong.append(f"{where}: {line}")
    assert not wrong, f"opsets other than export's default ({DEFAULT_OPSET}): " + " | ".join(wrong)
    assert f"default: {DEFAULT_OPSET}" in texts["artgan export --help"]
    assert sum(DEFAULT_OPSET in n for t in texts.values() for _, n in opset_mentions(t)) >= 3  # the check sees them


def test_the_opset_check_catches_the_old_mistake():
    assert opset_mentions("only **standard ONNX operations** (opset 17), no Python") == [
        ("only **standard ONNX operations** (opset 17), no Python", [17])]
    assert opset_mentions("opset 27 is newer than onnxruntime-web 1.31.1 runs")[0][1] == [27]  # not 1.31.1
