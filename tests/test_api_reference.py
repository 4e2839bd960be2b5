"""docs/api.md holds the signature of every public name, as the code has it: a renamed parameter, a
new default or a public name added without its entry fails here."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest

import artgan
import artgan.testing
from artgan import hookspecs

ROOT = Path(__file__).parents[1]
PAGE = ROOT / "docs" / "api.md"
REGENERATE = "run `python scripts/api_reference.py` and commit docs/api.md"


def _generator():
    spec = importlib.util.spec_from_file_location("api_reference", ROOT / "scripts" / "api_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


api_reference = _generator()


@pytest.fixture(scope="module")
def page() -> str:
    assert PAGE.exists(), f"docs/api.md is missing: {REGENERATE}"
    return PAGE.read_text(encoding="utf-8")


def required_names() -> set[str]:
    """What must have an entry, read from the code and docs/plugins.md independently of the page's
    generator: the package's and the test kit's ``__all__``, every hook, everything plugins.md's
    Public API lists, and the classes and checks plugin authors use most."""
    names = {f"artgan.{n}" for n in artgan.__all__}
    names |= {f"artgan.testing.{n}" for n in artgan.testing.__all__}
    names |= {f"artgan.hookspecs.{n}" for n in dir(hookspecs) if n.startswith("artgan_")} | {
        "artgan.hookspecs.HOOK_API_VERSION"}
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = re.search(r"^## Public API\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S).group(1)
    names |= {n for n in re.findall(r"^- `(artgan(?:\.\w+)+)`", section, flags=re.M) if n != "artgan.testing"}
    names |= {"artgan.recipe.GANRecipe", "artgan.recipe.Phase", "artgan.recipe.ExportSpec",
              "artgan.recipe.RecipeConfig", "artgan.recipe.AdversarialLoss", "artgan.steps.Step",
              "artgan.steps.OnnxImageStep", "artgan.evaluation.Evaluation", "artgan.evaluation.Metric",
              "artgan.evaluation.Option", "artgan.evaluation.Request", "artgan.data.DatasetInfo",
              "artgan.testing.check_evaluation", "artgan.testing.check_registered",
              "artgan.recipe.GANRecipe.phases", "artgan.recipe.GANRecipe.export_spec", "artgan.steps.Step.__call__"}
    return names


def test_every_public_name_has_an_entry(page):
    documented = api_reference.documented_names(page)
    missing = sorted(required_names() - documented)
    assert not missing, f"docs/api.md has no entry for {', '.join(missing)}: {REGENERATE}"


def test_every_entry_shows_the_signature_the_code_has(page):
    # each entry's code line, against the code's own inspect.signature (not the page's generator)
    blocks = dict(re.findall(r"^#{3,4} `(artgan(?:\.\w+)+)`\n\n```python\n(.*?)\n```", page, flags=re.M))
    assert len(blocks) == len(api_reference.documented_names(page)) > 150
    wrong = []
    for name in ["artgan.recipe.Phase", "artgan.evaluation.Evaluation", "artgan.testing.check_evaluation",
                 "artgan.testing.check_registered", "artgan.steps.OnnxImageStep", "artgan.data.DatasetInfo",
                 "artgan.checkpoints.load_recipe", "artgan.hookspecs.artgan_register_steps"]:
        params = inspect.signature(api_reference.resolve(name)).parameters
        shown = blocks[name]
        for p in params.values():
            if f"{p.name}" not in shown or (p.default is not p.empty and repr(p.default) not in shown):
                wrong.append(f"{name}: parameter {p.name} (default {p.default!r}) not as in {shown}")
    assert not wrong, "; ".join(wrong)


def test_the_page_is_what_the_code_gives(page):
    expected = api_reference.render()
    if page != expected:
        changed = [line for line in expected.splitlines() if line not in set(page.splitlines())][:5]
        pytest.fail(f"docs/api.md differs from the code (e.g. {changed}): {REGENERATE}")


def test_the_plugin_guide_links_the_reference():
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert "(api.md)" in text
    section = re.search(r"^## Public API\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S).group(1)
    assert "[API reference](api.md)" in section


def test_load_recipe_is_documented_as_the_pair_it_returns(page):
    # it returns (recipe, checkpoint); its docs once said "a recipe"
    from artgan.checkpoints import load_recipe

    assert inspect.getdoc(load_recipe).startswith("``(recipe, checkpoint)``")
    line = re.search(r"^- `artgan\.checkpoints\.load_recipe`: (.*)$",
                     (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8"), flags=re.M).group(1)
    assert line.startswith("`(recipe, checkpoint)`"), line
    assert "`(recipe, checkpoint)`: the recipe rebuilt with its trained weights" in page
