"""Broken, misspelled, conflicting and disabled plugins: each is reported with its name, and
artgan keeps working without it.

Plugins here are real entry points: a fake distribution (a ``*.dist-info`` folder with
``entry_points.txt``) on ``sys.path``, found by ``importlib.metadata`` as an installed one is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import types
import warnings
from pathlib import Path

import click
import pytest

from artgan import plugins as P
from artgan.cli import cli
from artgan.errors import ArtganError, UnknownNameError

GOOD_STEP = '''
import artgan
from artgan.plugins import lazy

@artgan.hookimpl
def artgan_register_steps(register):
    register("{name}", lazy("artgan.testing:_fail"))
'''


class FakeSite:
    """Installs fake distributions with ``artgan`` entry points into a folder on sys.path."""

    def __init__(self, root: Path, monkeypatch):
        self.root, self.monkeypatch, self.modules = root, monkeypatch, []
        root.mkdir(parents=True, exist_ok=True)
        monkeypatch.syspath_prepend(str(root))

    def add(self, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
        for name, source in modules.items():
            (self.root / f"{name}.py").write_text(textwrap.dedent(source))
            self.modules.append(name)
        info = self.root / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(
            "[artgan]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
        P.reset()


@pytest.fixture
def site(tmp_path, monkeypatch):
    s = FakeSite(tmp_path / "site", monkeypatch)
    P.reset()
    yield s
    for name in s.modules:
        sys.modules.pop(name, None)
    P.reset()


def load(**kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm, registry = P.make_plugin_manager(**kw)
    return pm, registry, [str(w.message) for w in caught if issubclass(w.category, P.PluginWarning)]


# -- a plugin that fails to import ----------------------------------------------------------------

def test_plugin_failing_at_import_is_broken_and_the_others_load(site):
    site.add("artgan-bad", {"bad": "bad_import"}, {"bad_import": "import artgan\nraise RuntimeError('boom at import')\n"})
    _, registry, warned = load()
    bad = registry.plugins["bad"]
    assert bad.status == "broken"
    assert bad.error == "RuntimeError: boom at import"
    assert bad.error_at.endswith("bad_import.py:2")
    assert bad.distribution == "artgan-bad"
    assert registry.plugins["datasets"].status == "ok" and "digits" in registry.names("dataset")
    assert any("plugin 'bad' (artgan-bad) failed to load and is skipped: RuntimeError: boom" in w for w in warned)


def test_artgan_plugins_shows_the_broken_plugin_and_the_quickstart_still_runs(site, runner, tmp_path):
    site.add("artgan-bad", {"bad": "bad_import2"}, {"bad_import2": "raise ImportError('no module named shiny')\n"})
    with pytest.warns(P.PluginWarning, match="plugin 'bad'"):
        r = runner.invoke(cli, ["plugins"])
    assert r.exit_code == 0
    assert "bad  [broken]  artgan-bad 0.1  bad_import2" in r.output
    assert "error: ImportError: no module named shiny" in r.output
    assert "turn it off: artgan plugins --disable bad" in r.output
    assert "datasets  [ok]" in r.output
    data = {p["name"]: p for p in json.loads(runner.invoke(cli, ["plugins", "--json"]).stdout)}
    assert data["bad"]["status"] == "broken" and "shiny" in data["bad"]["error"]
    # the real quickstart, shortened: train, export (verified), generate
    quickstart = Path(__file__).parents[1] / "pipelines" / "quickstart.yaml"
    r = runner.invoke(cli, ["run", str(quickstart), "--out", str(tmp_path / "run"), "-q", "--set", "train.iterations=2",
                            "--set", "train.checkpoint_every=2", "--set", "generate.n=4"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "generated" / "grid.png").exists()


def test_the_real_command_line_survives_a_broken_plugin(site):
    # the installed entry point path end to end: one Warning line, no traceback, exit 0
    site.add("artgan-bad", {"bad": "bad_import3"}, {"bad_import3": "1 / 0\n"})
    env = {**os.environ, "PYTHONPATH": str(site.root)}
    code = "from artgan.cli import main; main()"
    r = subprocess.run([sys.executable, "-c", code, "plugins"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "bad  [broken]" in r.stdout and "ZeroDivisionError: division by zero" in r.stdout
    assert r.stderr.count("Warning: plugin 'bad' (artgan-bad) failed to load") == 1
    assert "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and "Commands:" in r.stdout


# -- a plugin that raises while registering ------------------------------------------------------

RAISER = '''
import artgan
from artgan.plugins import lazy

@artgan.hookimpl
def artgan_register_datasets(register):
    register("half-made", lazy("artgan.testing:SyntheticImages"))
    raise ValueError("cannot find my data files")
'''


def test_plugin_raising_during_registration_is_broken_and_rolled_back(site):
    site.add("artgan-raiser", {"raiser": "raiser_mod"}, {"raiser_mod": RAISER})
    pm, registry, warned = load()
    rec = registry.plugins["raiser"]
    assert rec.status == "broken" and rec.error == "ValueError: cannot find my data files"
    assert rec.error_at.endswith("raiser_mod.py:8")
    assert "half-made" not in registry.names("dataset")  # half a plugin is worse than none
    assert pm.get_plugin("raiser") is None  # and none of its hooks will be called later
    with pytest.raises(UnknownNameError) as exc:
        registry.get("dataset", "half-made")
    msg = str(exc.value)
    assert "unknown dataset 'half-made'" in msg
    assert "plugin 'raiser' (artgan-raiser) is broken: ValueError: cannot find my data files" in msg


def test_using_a_name_of_a_broken_plugin_in_a_pipeline_says_which_plugin_and_why(site, runner, tmp_path):
    site.add("artgan-raiser", {"raiser": "raiser_mod2"}, {"raiser_mod2": RAISER})
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("name: p\nstages:\n  - train:\n      dataset: half-made\n      architecture: dcgan\n")
    with pytest.warns(P.PluginWarning):
        r = runner.invoke(cli, ["run", str(pipeline), "--dry-run"])
    assert r.exit_code == 1
    assert "unknown dataset 'half-made'" in r.output
    assert "plugin 'raiser' (artgan-raiser) is broken: ValueError: cannot find my data files" in r.output


# -- hook API checks at start-up ----------------------------------------------------------------

def test_misspelled_hook_name_is_reported_with_the_plugin_name(site):
    site.add("artgan-typo", {"typo": "typo_mod"}, {"typo_mod": '''
        import artgan

        @artgan.hookimpl
        def artgan_register_dataset(register):
            register("never", lambda: None)
        '''})
    _, registry, warned = load()
    rec = registry.plugins["typo"]
    assert rec.status == "broken"
    assert "implements unknown hook(s) artgan_register_dataset (did you mean artgan_register_datasets?)" in rec.error
    assert any("plugin 'typo' (artgan-typo)" in w and "artgan_register_dataset " in w for w in warned)
    assert "never" not in registry.names("dataset")


def test_wrong_argument_names_are_reported_with_the_plugin_name(site):
    site.add("artgan-args", {"args": "args_mod"}, {"args_mod": '''
        import artgan

        @artgan.hookimpl
        def artgan_register_steps(reg):
            reg("never", lambda: None)
        '''})
    _, registry, warned = load()
    rec = registry.plugins["args"]
    assert rec.status == "broken"
    assert rec.error == ("hook artgan_register_steps takes argument(s) reg that artgan does not pass; "
                         "its signature is artgan_register_steps(register)")
    assert any(w.startswith("plugin 'args' (artgan-args) failed to load") for w in warned)


def plugin_module(name: str, **hooks) -> types.ModuleType:
    """A throwaway plugin: a module holding the given functions as hook implementations."""
    import artgan

    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, artgan.hookimpl(function))
    return module


def test_an_implementation_may_take_fewer_arguments_than_the_hook():
    seen = []
    quiet = plugin_module("quiet", artgan_on_metrics=lambda iteration: seen.append(iteration))
    pm, registry = P.make_plugin_manager((quiet,), load_entry_points=False)
    assert registry.plugins["quiet"].status == "ok"
    pm.hook.artgan_on_metrics(run_dir="r", iteration=3, metrics={})
    assert seen == [3]


def test_plugin_needing_a_newer_hook_api_is_refused(site):
    site.add("artgan-future", {"future": "future_mod"}, {"future_mod": "ARTGAN_HOOK_API = 99\n"})
    _, registry, _ = load()
    assert "needs artgan hook API 99; this artgan" in registry.plugins["future"].error
    assert "upgrade artgan" in registry.plugins["future"].error


@pytest.mark.parametrize("name, factory, message", [
    ("bad:name", "lambda: None", "invalid name 'bad:name'"),
    ("", "lambda: None", "invalid name ''"),
    ("fine", "42", "non-callable factory 42"),
])
def test_invalid_registrations_break_only_that_plugin(site, name, factory, message):
    site.add("artgan-invalid", {"invalid": "invalid_mod"}, {"invalid_mod": f'''
        import artgan

        @artgan.hookimpl
        def artgan_register_steps(register):
            register({name!r}, {factory})
        '''})
    _, registry, _ = load()
    assert message in registry.plugins["invalid"].error
    assert registry.plugins["gan"].status == "ok"


# -- duplicate names ---------------------------------------------------------------------------

def test_a_name_claimed_by_two_third_party_plugins_names_both_and_neither_wins(site):
    site.add("artgan-a", {"aaa": "twin_a"}, {"twin_a": GOOD_STEP.format(name="twin")})
    site.add("artgan-b", {"bbb": "twin_b"}, {"twin_b": GOOD_STEP.format(name="twin")})
    site.add("artgan-c", {"ccc": "twin_c3"}, {"twin_c3": GOOD_STEP.format(name="twin")})
    _, registry, warned = load()
    assert any("step 'twin' is registered twice: by plugin 'aaa' and by plugin 'bbb'" in w for w in warned)
    assert any("step 'twin' is registered twice: by plugin 'aaa', 'bbb' and by plugin 'ccc'" in w for w in warned)
    with pytest.raises(ArtganError, match=r"step 'twin' is registered by more than one plugin \('aaa', 'bbb', 'ccc'\)"):
        registry.get("step", "twin")
    assert any("step 'twin' is also registered by plugin 'bbb', 'ccc'" in c for c in registry.plugins["aaa"].conflicts)


SQUATTER = '''
import artgan
from artgan.plugins import lazy

@artgan.hookimpl
def artgan_register_datasets(register):
    register("mnist", lazy("artgan.testing:SyntheticImages"))    # artgan's own names, all three
    register("squatter-data", lazy("artgan.testing:SyntheticImages"))

@artgan.hookimpl
def artgan_register_steps(register):
    register("lanczos", lazy("artgan.testing:_fail"))

@artgan.hookimpl
def artgan_register_evaluations(register):
    register("superres", lazy("artgan.testing:_fail"))
'''


def test_a_third_party_registering_a_first_party_name_is_the_one_dropped(site, runner, tmp_path):
    site.add("artgan-squatter", {"squatter": "squatter_mod"}, {"squatter_mod": SQUATTER})
    _, registry, warned = load()
    # artgan's own keep their names, and every other name of both plugins works
    assert registry.get("dataset", "mnist").plugin == "datasets"
    assert registry.get("step", "lanczos").plugin == "superres"
    assert registry.get("evaluation", "superres").plugin == "superres"
    assert registry.get("dataset", "squatter-data").plugin == "squatter"
    assert registry.plugins["squatter"].status == "ok" and registry.plugins["datasets"].conflicts == []
    assert registry.plugins["squatter"].registered == {"dataset": ["squatter-data"]}
    # one line per name, naming both plugins and the name; never "disable artgan's own"
    dropped = [w for w in warned if "squatter" in w]
    assert dropped == [
        f"plugin 'squatter' (artgan-squatter) registered {kind} {name!r}, which artgan's own plugin {owner!r} "
        f"provides: artgan's is used and this one is ignored (rename it in plugin 'squatter' (artgan-squatter))"
        for kind, name, owner in [("dataset", "mnist", "datasets"), ("step", "lanczos", "superres"),
                                  ("evaluation", "superres", "superres")]]
    assert not any("disable" in w for w in dropped)
    assert registry.plugins["squatter"].conflicts[0] == ("dataset 'mnist' is artgan's own (plugin 'datasets'): this "
                                                         "plugin's is ignored; rename it")
    with pytest.warns(P.PluginWarning):
        r = runner.invoke(cli, ["plugins"])
    assert "conflict: dataset 'mnist' is artgan's own" in r.output and "--disable datasets" not in r.output
    # `artgan evaluate superres` is artgan's superres, and the quickstart runs
    r = runner.invoke(cli, ["evaluate", "superres", "--help"])
    assert r.exit_code == 0 and "--scale" in r.output, r.output
    quickstart = Path(__file__).parents[1] / "pipelines" / "quickstart.yaml"
    r = runner.invoke(cli, ["run", str(quickstart), "--out", str(tmp_path / "run"), "-q", "--set", "train.iterations=2",
                            "--set", "train.checkpoint_every=2", "--set", "generate.n=4"])
    assert r.exit_code == 0, r.output


def test_a_third_party_first_party_clash_in_strict_mode_breaks_the_third_party(site, monkeypatch):
    site.add("artgan-squatter", {"squatter": "squatter_mod2"}, {"squatter_mod2": SQUATTER})
    monkeypatch.setenv("ARTGAN_STRICT_PLUGINS", "1")
    with pytest.raises(ArtganError) as exc:
        load()
    assert str(exc.value).startswith("plugin 'squatter' (artgan-squatter) is broken: plugin 'squatter' "
                                      "(artgan-squatter) registered dataset 'mnist', which artgan's own plugin "
                                      "'datasets' provides")


def test_a_third_party_registering_first_still_loses_the_name(site):
    # an extra plugin (tests, embedding) is third-party too, whatever the order of registration
    squatter = types.ModuleType("squatter_extra")
    exec(SQUATTER, squatter.__dict__)
    _, registry, warned = load(extra_plugins=(squatter,))
    assert registry.get("dataset", "mnist").plugin == "datasets"
    assert "mnist" not in registry.plugins["squatter_extra"].registered.get("dataset", [])
    assert any("plugin 'squatter_extra' registered dataset 'mnist', which artgan's own plugin 'datasets'" in w
               for w in warned)
    # the Registry API resolves it either way round
    both = P.Registry()
    both.plugins["mine"] = P.PluginRecord(name="mine", distribution="artgan")
    both.plugins["theirs"] = P.PluginRecord(name="theirs", distribution="artgan-theirs")
    both.add("step", "x", lambda: None, "theirs")
    assert both.first_party_claim("step", "x", "mine") == ("mine", ["theirs"])
    assert "artgan's own plugin 'mine'" in both.keep_first_party("step", "x", lambda: None, "mine")
    assert both.get("step", "x").plugin == "mine" and both.plugins["theirs"].registered == {"step": []}


@pytest.mark.parametrize("second", ["conflict", "broken", "not-an-evaluation"])
def test_an_evaluation_that_cannot_be_used_says_why_instead_of_no_such_command(site, runner, second):
    evaluation = '''
import artgan
from artgan.plugins import lazy

@artgan.hookimpl
def artgan_register_evaluations(register):
    register("twin", lazy("{target}"))
'''
    site.add("artgan-a", {"aaa": "twin_eval_a"},
             {"twin_eval_a": evaluation.format(target="artgan_superres.evaluate:superres_evaluation")})
    if second == "conflict":
        site.add("artgan-b", {"bbb": "twin_eval_b"},
                 {"twin_eval_b": evaluation.format(target="artgan_superres.evaluate:superres_evaluation")})
        reason = ("Error: evaluate twin: evaluation 'twin' is registered by more than one plugin ('aaa', 'bbb'), so "
                  "none is used; turn all but one off, e.g. `artgan plugins --disable bbb`")
    elif second == "broken":
        site.add("artgan-b", {"bbb": "twin_eval_b2"}, {"twin_eval_b2": evaluation.format(
            target="no_such_module_here:evaluation").replace('"twin"', '"other"')})
        reason = ("Error: evaluate other: evaluation 'other' of plugin 'bbb': cannot load "
                  "'no_such_module_here:evaluation' (ModuleNotFoundError")
    else:
        site.add("artgan-b", {"bbb": "twin_eval_b3"}, {"twin_eval_b3": evaluation.format(
            target="artgan.errors:ArtganError").replace('"twin"', '"wrong"')})
        reason = ("Error: evaluate wrong: evaluation 'wrong' (plugin 'bbb'): its factory returned ArtganError, not an "
                  "artgan.evaluation.Evaluation")
    # a name of its own per case: the CLI keeps a command it has already made
    task = {"conflict": "twin", "broken": "other"}.get(second, "wrong")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", P.PluginWarning)
        r = runner.invoke(cli, ["evaluate", task, "--data", "photos", "--scale", "2"])
        listed = runner.invoke(cli, ["evaluate", "--help"])
    assert r.exit_code == 1 and "No such command" not in r.output, r.output
    assert r.output.startswith(reason) and r.output.count("\n") == 1, r.output
    assert re.search(rf"^  {task} +unavailable \(run it to see why\)$", listed.output, flags=re.M), listed.output


def test_conflicts_are_shown_by_artgan_plugins_and_fail_check(site, runner):
    site.add("artgan-a", {"aaa": "twin_c"}, {"twin_c": GOOD_STEP.format(name="twin")})
    site.add("artgan-b", {"bbb": "twin_d"}, {"twin_d": GOOD_STEP.format(name="twin")})
    with pytest.warns(P.PluginWarning):
        r = runner.invoke(cli, ["plugins"])
    assert r.exit_code == 0
    assert "conflict: step 'twin' is also registered by plugin 'bbb'" in r.output
    r = runner.invoke(cli, ["plugins", "--check"])
    assert r.exit_code == 1 and "with problems" in r.stderr


def test_disabling_one_side_of_a_conflict_resolves_it(site, monkeypatch):
    site.add("artgan-a", {"aaa": "twin_e"}, {"twin_e": GOOD_STEP.format(name="twin")})
    site.add("artgan-b", {"bbb": "twin_f"}, {"twin_f": GOOD_STEP.format(name="twin")})
    monkeypatch.setenv("ARTGAN_DISABLE_PLUGINS", "artgan-b")  # a distribution name works too
    _, registry, _ = load()
    assert registry.get("step", "twin").plugin == "aaa"
    assert registry.plugins["bbb"].status == "disabled"


def test_a_conflict_with_a_plugin_that_then_breaks_goes_away(site):
    site.add("artgan-a", {"aaa": "twin_g"}, {"twin_g": GOOD_STEP.format(name="twin")})
    site.add("artgan-b", {"bbb": "twin_h"}, {"twin_h": GOOD_STEP.format(name="twin") + "    raise KeyError('late')\n"})
    _, registry, _ = load()
    assert registry.plugins["bbb"].status == "broken"
    assert registry.get("step", "twin").plugin == "aaa"
    assert registry.plugins["aaa"].conflicts == [] and registry.plugins["aaa"].registered == {"step": ["twin"]}


def test_two_distributions_using_one_entry_point_name(site):
    site.add("artgan-one", {"same": "same_one"}, {"same_one": GOOD_STEP.format(name="one")})
    site.add("artgan-two", {"same": "same_two"}, {"same_two": GOOD_STEP.format(name="two")})
    _, registry, _ = load()
    loaded = registry.plugins["same"]
    other = next(r for n, r in registry.plugins.items() if n.startswith("same@"))
    assert loaded.status == "ok" and other.status == "broken"
    assert f"entry-point name 'same' is already used by distribution '{loaded.distribution}'" in other.error


# -- unknown names -----------------------------------------------------------------------------

def test_unknown_name_lists_known_ones_with_did_you_mean(runner, tmp_path):
    P.reset()
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("name: p\nstages:\n  - train:\n      dataset: digts\n      architecture: dcgan\n")
    r = runner.invoke(cli, ["run", str(pipeline), "--dry-run"])
    assert r.exit_code == 1
    assert "unknown dataset 'digts' (did you mean 'digits'?); known datasets: digits," in r.output
    assert "p.yaml:4" in r.output


# -- a lazy factory that cannot be imported when used -------------------------------------------

GHOST = '''
import artgan
from artgan.plugins import lazy

@artgan.hookimpl
def artgan_register_datasets(register):
    register("ghost", lazy("ghost_data_module_that_is_not_there:Ghost"))
'''


def test_lazy_target_failing_at_use_names_the_plugin(site, runner, tmp_path):
    site.add("artgan-ghostly", {"ghostly": "ghostly_mod"}, {"ghostly_mod": GHOST})
    _, registry, _ = load()
    assert registry.plugins["ghostly"].status == "ok"  # nothing imported yet: start-up stays fast
    with pytest.raises(ArtganError) as exc:
        registry.create("dataset", "ghost")
    msg = str(exc.value)
    assert msg.startswith("dataset 'ghost' of plugin 'ghostly': cannot load "
                          "'ghost_data_module_that_is_not_there:Ghost' (ModuleNotFoundError: No module named")
    assert "`artgan plugins --disable ghostly`" in msg
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("name: p\nstages:\n  - train:\n      dataset: ghost\n      architecture: dcgan\n")
    r = runner.invoke(cli, ["run", str(pipeline)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "Error: dataset 'ghost' of plugin 'ghostly': cannot load" in r.output


def test_plugins_check_imports_every_factory_and_fails_on_a_bad_one(site, runner):
    site.add("artgan-ghostly", {"ghostly": "ghostly_mod2"}, {"ghostly_mod2": GHOST})
    r = runner.invoke(cli, ["plugins", "--check"])
    assert r.exit_code == 1
    assert "check: dataset 'ghost' of plugin 'ghostly': cannot load" in r.output
    assert "with problems" in r.stderr
    data = {p["name"]: p for p in json.loads(runner.invoke(cli, ["plugins", "--check", "--json"]).stdout)}
    assert data["ghostly"]["check"] and data["gan"]["check"] == []


def test_plugins_check_passes_on_the_installed_plugins(runner):
    P.reset()
    r = runner.invoke(cli, ["plugins", "--check"])
    assert r.exit_code == 0, r.output
    assert "0 with problems" in r.stderr


def test_lazy_rejects_a_malformed_target():
    for bad in ("no_colon", ":attr", "mod:", ""):
        with pytest.raises(ValueError, match="expected 'module:attribute'"):
            P.lazy(bad)
    with pytest.raises(ArtganError, match="is a int, not a callable factory"):
        P.lazy("artgan.hookspecs:HOOK_API_VERSION").resolve()


# -- turning plugins off ------------------------------------------------------------------------

def test_disable_by_environment_variable(site, monkeypatch):
    site.add("artgan-bad", {"bad": "bad_env"}, {"bad_env": "raise RuntimeError('x')\n"})
    monkeypatch.setenv("ARTGAN_DISABLE_PLUGINS", "bad")
    _, registry, warned = load()
    assert registry.plugins["bad"].status == "disabled"
    assert registry.plugins["bad"].disabled_by == "ARTGAN_DISABLE_PLUGINS"
    assert warned == []  # never imported


def test_load_only_allow_list_and_the_hint_when_a_disabled_plugin_had_the_name(monkeypatch):
    monkeypatch.setenv("ARTGAN_LOAD_PLUGINS", "datasets")
    _, registry, _ = load()
    assert registry.plugins["gan"].status == "disabled"
    with pytest.raises(UnknownNameError, match=r"plugin 'gan' \(artgan\) is disabled by ARTGAN_LOAD_PLUGINS"):
        registry.get("architecture", "dcgan")


def test_disable_and_enable_from_the_command_line_are_remembered(runner, tmp_path, monkeypatch, tiny_pipeline):
    monkeypatch.setenv("ARTGAN_CONFIG_DIR", str(tmp_path / "config"))
    P.reset()
    r = runner.invoke(cli, ["plugins", "--disable", "gan"])
    assert r.exit_code == 0, r.output
    settings = tmp_path / "config" / "plugins.json"
    assert json.loads(settings.read_text()) == {"disabled": ["gan"]}
    assert f"remembered in {settings}" in r.output
    P.reset()  # a new process, as far as plugins are concerned
    r = runner.invoke(cli, ["plugins"])
    assert "gan  [disabled]" in r.output and f"disabled by: {settings}" in r.output
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--dry-run"])
    assert r.exit_code == 1
    assert "unknown architecture 'dcgan'" in r.output and "plugin 'gan' (artgan) is disabled" in r.output
    r = runner.invoke(cli, ["plugins", "--enable", "gan"])
    assert r.exit_code == 0 and json.loads(settings.read_text()) == {"disabled": []}
    P.reset()
    assert runner.invoke(cli, ["run", str(tiny_pipeline), "--dry-run"]).exit_code == 0


def test_disable_refuses_unknown_names_and_enable_explains(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("ARTGAN_CONFIG_DIR", str(tmp_path / "config"))
    P.reset()
    r = runner.invoke(cli, ["plugins", "--disable", "gna"])
    assert r.exit_code == 1 and "no installed plugin 'gna' (did you mean 'gan'?)" in r.output
    r = runner.invoke(cli, ["plugins", "--enable", "gan"])
    assert r.exit_code == 1 and "plugin 'gan' is not disabled" in r.output
    monkeypatch.setenv("ARTGAN_DISABLE_PLUGINS", "gan")
    r = runner.invoke(cli, ["plugins", "--enable", "gan"])
    assert r.exit_code == 1 and "disabled by the environment variable ARTGAN_DISABLE_PLUGINS" in r.output


def test_a_corrupt_settings_file_is_reported_and_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTGAN_CONFIG_DIR", str(tmp_path))
    (tmp_path / "plugins.json").write_text("{not json")
    _, registry, warned = load()
    assert registry.plugins["gan"].status == "ok"
    assert any("ignoring" in w and "plugins.json" in w for w in warned)


def test_config_dir_follows_xdg_when_not_set(tmp_path, monkeypatch):
    monkeypatch.delenv("ARTGAN_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert P.plugin_settings_path() == tmp_path / "artgan" / "plugins.json"


def test_strict_mode_makes_a_broken_plugin_an_error(site, runner, monkeypatch):
    site.add("artgan-bad", {"bad": "bad_strict"}, {"bad_strict": "raise RuntimeError('strict boom')\n"})
    monkeypatch.setenv("ARTGAN_STRICT_PLUGINS", "1")
    r = runner.invoke(cli, ["plugins"])
    assert r.exit_code == 1
    assert "Error: plugin 'bad' (artgan-bad) is broken: RuntimeError: strict boom" in r.output


# -- plugins adding commands ----------------------------------------------------------------------

def test_a_plugin_raising_in_its_commands_hook_is_isolated():
    def half_then_raise(cli):
        @cli.command()
        def half():
            """Half-added."""
        raise RuntimeError("click version mismatch")

    def fine(cli):
        @cli.commands["evaluate"].command()
        def fine():
            """Fine."""

    group = click.Group("root", commands={"evaluate": click.Group("evaluate")})
    pm, registry = P.make_plugin_manager((plugin_module("cmds", artgan_register_commands=half_then_raise),
                                          plugin_module("fine", artgan_register_commands=fine)),
                                         load_entry_points=False)
    with pytest.warns(P.PluginWarning, match="plugin 'cmds' failed to load.*click version mismatch"):
        P.register_commands(pm, registry, group)
    assert "half" not in group.commands  # taken back with the plugin
    assert "fine" in group.commands["evaluate"].commands
    assert registry.plugins["cmds"].status == "broken"
