"""An evaluation with its own protocol (``Evaluation.run``, as augment's): the core builds its
command without --data/--split/--baselines/--per-image and adds the fields every results JSON has."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from artgan.errors import ArtganError


def coin_evaluation():
    """A protocol with its own data: 'trains' nothing, tosses seeded coins per method."""
    import click
    import numpy as np

    from artgan.evaluation import Evaluation, Metric, Option

    def run(request, progress):
        if request.options["tosses"] == 13:
            return {"dataset": "coins"}  # a broken plugin: the core names what is missing
        rng = np.random.default_rng(request.options["seed"])
        heads = {name: float(rng.random(request.options["tosses"]).mean()) for name in ("fair", "fairer")}
        return {"dataset": "coins", "split": "tosses", "images": request.options["tosses"],
                "methods": {name: {"heads": h} for name, h in heads.items()},
                "summary": [f"fairer - fair: {heads['fairer'] - heads['fair']:+.3f}"],
                "seen": {"data": request.data, "split": request.split, "models": request.models}}

    return Evaluation(help="Coins.\n\n\\b\nExample:\n  artgan evaluate coins --tosses 10\n",
                      metrics=[Metric("heads", "heads share", ".3f")], run=run,
                      options={"tosses": Option(8, "Tosses per method.", click.IntRange(min=1)),
                               "seed": Option(0, "Seed.", int),
                               "folder": Option("somewhere", "A folder.", click.Path(path_type=Path))},
                      protocol=lambda request: f"{request.options['tosses']} tosses", note="heads: a share")


@pytest.fixture
def with_coins(monkeypatch):
    import artgan
    from artgan import cli as cli_module
    from artgan.evaluation import add_evaluation_commands
    from artgan.plugins import lazy, make_plugin_manager

    class Plugin:
        @artgan.hookimpl
        def artgan_register_evaluations(self, register):
            register("coins", lazy(f"{__name__}:coin_evaluation"))

    pm, registry = make_plugin_manager((Plugin(),), load_entry_points=False)
    monkeypatch.setattr("artgan.plugins.get_registry", lambda: registry)
    add_evaluation_commands(cli_module.evaluate, registry)
    yield cli_module.cli
    cli_module.evaluate.commands.pop("coins", None)


def test_the_core_runs_an_evaluation_with_its_own_protocol(with_coins, tmp_path, runner):
    from artgan.cards import read_card, write_card

    write_card(tmp_path / "m.onnx", {"file": "m.onnx"})
    r = runner.invoke(with_coins, ["evaluate", "coins", "--tosses", "50", "--model", "x", "--out",
                                   str(tmp_path / "r.json"), "--card", str(tmp_path / "m.card.json"), "-q"])
    assert r.exit_code == 0, r.output
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["seen"] == {"data": None, "split": None, "models": ["x"]}  # no --data, no --split
    assert result["task"] == "coins" and result["protocol"] == "50 tosses" and result["note"] == "heads: a share"
    assert result["options"] == {"tosses": 50, "seed": 0, "folder": "somewhere"} and result["baseline"] is None
    assert result["metrics"] == {"heads": {"label": "heads share", "format": ".3f", "unit": ""}}
    lines = r.stdout.splitlines()
    assert lines[0] == "coins (50 images, split tosses): 50 tosses"
    assert lines[1].split() == ["method", "heads", "share"] and lines[2].split()[0] == "fair"
    assert lines[4] == "" and lines[5].startswith("fairer - fair: ")  # the summary, under the table
    md = (tmp_path / "m.card.md").read_text()
    assert "| fairer |" in md and "\n- fairer - fair: " in md and "heads: a share" in md
    assert "coins (split tosses)" in read_card(tmp_path / "m")["evaluation"]


def test_its_command_has_only_the_options_that_mean_something(with_coins, runner):
    r = runner.invoke(with_coins, ["evaluate", "coins", "--help"])
    assert r.exit_code == 0 and "--tosses" in r.output and "--out" in r.output and "--model" in r.output
    assert not {"--data", "--split", "--baselines", "--per-image"} & set(r.output.split())


def test_json_output_takes_path_options(with_coins, runner):
    r = runner.invoke(with_coins, ["evaluate", "coins", "--json", "-q", "--folder", "a/b"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["options"]["folder"] == "a/b"


def test_a_run_that_returns_too_little_is_one_line(with_coins, runner):
    r = runner.invoke(with_coins, ["evaluate", "coins", "--tosses", "13"])
    assert r.exit_code == 1
    assert r.output == "Error: evaluate coins: plugin 'Plugin': its run() returned no split, images, methods\n"


def test_an_evaluation_is_either_per_file_or_a_protocol():
    from artgan.evaluation import Evaluation, Metric

    metrics = [Metric("m")]
    with pytest.raises(ArtganError, match="give load, score and methods"):
        Evaluation(help="h", metrics=metrics, load=lambda p, r: None)
    with pytest.raises(ArtganError, match="not both"):
        Evaluation(help="h", metrics=metrics, run=lambda r, p: {}, methods=lambda r: {})
    assert not Evaluation(help="h", metrics=metrics, run=lambda r, p: {}).per_file


def test_a_protocol_evaluation_meets_the_contract_check():
    from artgan.testing import check_evaluation

    check_evaluation(coin_evaluation())


def test_out_is_the_results_json_and_a_folder_is_refused(with_coins, tmp_path, runner):
    out = tmp_path / "eval.json"
    r = runner.invoke(with_coins, ["evaluate", "coins", "--tosses", "20", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["task"] == "coins"
    r = runner.invoke(with_coins, ["evaluate", "coins", "--tosses", "20", "--out", str(tmp_path), "-q"])
    assert r.exit_code != 0 and "is a directory" in r.output, r.output
