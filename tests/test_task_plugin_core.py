"""The core pieces every task plugin uses: model search, cards, the held-out split, evaluations."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest


def test_held_out_split_is_every_fourth_sorted_file_from_index_3():
    from artgan.splits import held_out, split_files

    files = [f"img_{i:02d}.png" for i in reversed(range(10))]  # order given does not matter
    train, held = held_out(files)
    assert [p.name for p in held] == ["img_03.png", "img_07.png"]
    assert len(train) == 8 and not set(train) & set(held)
    assert split_files(files, "heldout") == held
    assert split_files(files, "train") == train
    assert [p.name for p in split_files(files, "all")] == [f"img_{i:02d}.png" for i in range(10)]


def test_held_out_split_matches_the_style_split_on_bsd68_names():
    # the shipped style models were measured on this split: 68 files -> 17 held out
    from artgan.splits import split_files

    names = [f"test{i:03d}.png" for i in range(1, 69)]
    held = split_files(names, "heldout")
    assert len(held) == 17 and held[0].name == "test004.png"


def test_held_out_split_errors_name_the_fix():
    from artgan.errors import ArtganError
    from artgan.splits import held_out, split_files

    with pytest.raises(ArtganError, match="split must be one of train, heldout, all, got 'test'"):
        split_files(["a.png"], "test")
    with pytest.raises(ArtganError, match="offset < every"):
        held_out(["a.png"], every=4, offset=4)


# -- cards ---------------------------------------------------------------------------------------

def test_card_paths_accept_the_model_either_card_file_or_the_name(tmp_path):
    from artgan.cards import card_paths

    expected = (tmp_path / "x2.card.json", tmp_path / "x2.card.md")
    for given in ("x2.onnx", "x2.card.json", "x2.card.md", "x2"):
        assert card_paths(tmp_path / given) == expected


def test_update_card_sets_a_section_and_renders_the_markdown(tmp_path):
    import json

    from artgan.cards import read_card, update_card, write_card

    write_card(tmp_path / "m.onnx", {"file": "m.onnx"})
    update_card(tmp_path / "m.onnx", "summary", {"title": "an upscaler", "lines": ["Makes images larger."]})
    update_card(tmp_path / "m.card.json", "training", {"iterations": 12, "lines": ["- trained 12 iterations"]})
    update_card(tmp_path / "m.card.md", "evaluation/Set5 x2", {
        "dataset": "Set5", "images": 5, "protocol": "Y channel", "baseline": "bicubic",
        "metrics": {"psnr": {"label": "PSNR (dB)", "format": ".2f", "unit": "dB"}},
        "methods": {"bicubic": {"psnr": 30.0}, "m": {"psnr": 31.5}}})
    update_card(tmp_path / "m", "real_inputs", {"inputs": "a.png, 8x8", "count": 1, "max_abs_diff": 1e-7,
                                                "min_psnr_db": 150.0, "mean_psnr_db": 150.0})
    update_card(tmp_path / "m", "speed", {"ms_512": 12})
    card = read_card(tmp_path / "m.onnx")
    assert json.loads((tmp_path / "m.card.json").read_text()) == card
    assert card["evaluation"]["Set5 x2"]["methods"]["m"]["psnr"] == 31.5
    md = (tmp_path / "m.card.md").read_text()
    assert md.startswith("# an upscaler\n\nMakes images larger.")
    assert "- trained 12 iterations" in md and "iterations: 12" not in md  # lines replace the fields
    assert "| method | PSNR (dB) | vs bicubic |" in md and "| m | 31.50 | +1.50 dB |" in md
    assert "on real inputs (a.png, 8x8)" in md and "PSNR min 150.0 dB" in md
    assert "## Speed\n\n- ms_512: 12" in md  # a section the renderer does not know: its fields
    update_card(tmp_path / "m", "speed", None)
    assert "speed" not in read_card(tmp_path / "m") and "Speed" not in (tmp_path / "m.card.md").read_text()


def test_card_errors_say_what_to_do(tmp_path):
    from artgan.cards import read_card, update_card, write_card
    from artgan.errors import ArtganError

    with pytest.raises(ArtganError, match=r"no model card; export the model first"):
        read_card(tmp_path / "none.onnx")
    (tmp_path / "bad.card.json").write_text("{not json")
    with pytest.raises(ArtganError, match="not a readable model card"):
        read_card(tmp_path / "bad.onnx")
    write_card(tmp_path / "m", {"command": "x"})
    with pytest.raises(ArtganError, match="section 'command' is not a mapping"):
        update_card(tmp_path / "m", "command/sub", 1)


# -- evaluations ---------------------------------------------------------------------------------

def brighten_evaluation():
    """The smallest evaluation: methods brighten an image; the score is the mean error vs 2x it."""
    import numpy as np

    from artgan.evaluation import Evaluation, Metric, Option
    from artgan.images import load_image, to_float

    def load(path, request):
        image = to_float(load_image(path, "RGB"))[None]
        return image, np.clip(image * request.options["gain"], 0, 1)

    def score(outputs, reference, request):
        return {"error": float(np.abs(outputs - reference).mean())}

    def methods(request):
        out = {"identity": lambda x: x} if "identity" in request.baselines else {}
        for m in request.models:
            out[f"x{m}"] = lambda x, g=float(m): np.clip(x * g, 0, 1)
        return out

    return Evaluation(help="Brightening.\n\n\\b\nExample:\n  artgan evaluate brighten --data imgs --model 2\n",
                      metrics=[Metric("error", "mean error", ".3f")], load=load, score=score, methods=methods,
                      baselines=("identity",), options={"gain": Option(2.0, "Target gain.", float)},
                      protocol="mean |output - gain x input|", default_split="heldout")


@pytest.fixture
def with_brighten(monkeypatch):
    """A registry with the throwaway evaluation, and `artgan evaluate brighten` built from it."""
    import artgan
    from artgan import cli as cli_module
    from artgan.evaluation import add_evaluation_commands
    from artgan.plugins import lazy, make_plugin_manager

    class Plugin:
        @artgan.hookimpl
        def artgan_register_evaluations(self, register):
            register("brighten", lazy(f"{__name__}:brighten_evaluation"))

    pm, registry = make_plugin_manager((Plugin(),), load_entry_points=False)
    monkeypatch.setattr("artgan.plugins.get_registry", lambda: registry)
    add_evaluation_commands(cli_module.evaluate, registry)
    yield cli_module.cli
    cli_module.evaluate.commands.pop("brighten", None)


def write_grey_images(folder, n):
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), 40 + 10 * i, np.uint8)).save(folder / f"img{i}.png")


def test_the_core_builds_evaluate_task_from_a_registered_evaluation(with_brighten, tmp_path, runner):
    import json

    from artgan.cards import read_card, write_card

    write_grey_images(tmp_path / "data", 8)
    write_card(tmp_path / "m.onnx", {"file": "m.onnx"})
    r = runner.invoke(with_brighten, ["evaluate", "brighten", "--data", str(tmp_path / "data"), "--model", "2",
                                      "--model", "1.5", "--out", str(tmp_path / "r.json"), "--card",
                                      str(tmp_path / "m.card.json"), "--per-image", "-q"])
    assert r.exit_code == 0, r.output
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["split"] == "heldout" and result["images"] == 2  # the default split: img3, img7
    assert list(result["methods"]["x2"]["per_image"]) == ["img3", "img7"]
    assert result["methods"]["x2"]["error"] == 0.0 and result["methods"]["identity"]["error"] > 0
    assert result["options"] == {"gain": 2.0} and result["baseline"] == "identity"
    lines = r.stdout.splitlines()
    assert lines[0] == "data (2 images, split heldout): mean |output - gain x input|"
    assert lines[1].split() == ["method", "mean", "error", "vs", "identity"]
    assert lines[3].split()[:2] == ["x2", "0.000"] and "img7" in r.stdout
    assert "data (split heldout)" in read_card(tmp_path / "m")["evaluation"]
    assert "| x2 | 0.000 |" in (tmp_path / "m.card.md").read_text()


def test_evaluate_task_errors_are_one_line(with_brighten, tmp_path, runner):
    (tmp_path / "empty").mkdir()
    r = runner.invoke(with_brighten, ["evaluate", "brighten", "--data", str(tmp_path / "empty")])
    assert r.exit_code == 1 and r.output.strip().startswith("Error: evaluate brighten: no images in")
    write_grey_images(tmp_path / "data", 2)
    r = runner.invoke(with_brighten, ["evaluate", "brighten", "--data", str(tmp_path / "data"), "--split", "all",
                                      "--baselines", ""])
    assert r.exit_code == 1 and "nothing to evaluate; give --model or --baselines" in r.output
    r = runner.invoke(with_brighten, ["evaluate", "brighten", "--data", str(tmp_path / "data"), "--split", "test"])
    assert r.exit_code == 2 and "'test' is not one of" in r.output


def test_a_registered_evaluation_meets_the_contract_check(tmp_path):
    from artgan.testing import check_evaluation

    scores = check_evaluation(brighten_evaluation(), workdir=tmp_path)
    # it ran: the default baseline on the default split's file (heldout: the 4th generated image)
    assert list(scores) == ["identity"] and list(scores["identity"]) == ["image3"]
    assert scores["identity"]["image3"]["error"] > 0
    broken = brighten_evaluation()
    broken.metrics = []
    with pytest.raises(AssertionError, match="metrics is empty"):
        check_evaluation(broken)


def _raises_value_error(*args):
    raise ValueError("boom")


def _with(**changes):
    evaluation = brighten_evaluation()
    for name, value in changes.items():
        setattr(evaluation, name, value)
    return evaluation


_HELD = "image3.png (48x64 RGB, split heldout of 4 generated RGB images in "


@pytest.mark.parametrize("evaluation, message", [
    (_with(load=_raises_value_error), f"evaluation: load on {_HELD}"),
    (_with(load=lambda path, request: (np.zeros((1, 8, 8, 3), np.uint8), None)),
     "the inputs load returned for image3.png has dtype uint8"),
    (_with(load=lambda path, request: np.zeros((1, 8, 8, 3), np.float32)), "load on image3.png (48x64 RGB"),
    (_with(methods=_raises_value_error),
     "evaluation: methods(request) (baselines identity, no --model) failed (ValueError: boom)"),
    (_with(methods=lambda request: {}), "methods(request) returned no method for the default baselines (identity)"),
    (_with(methods=lambda request: {"identity": lambda x: x * 4}), "method 'identity''s outputs for image3.png span"),
    (_with(methods=lambda request: {"identity": _raises_value_error}),
     f"method 'identity' on the inputs of {_HELD}"),
    (_with(score=_raises_value_error), f"score of method 'identity' on {_HELD}"),
    (_with(score=lambda outputs, reference, request: {"eror": 1.0}),
     "score of method 'identity' on image3.png returned no error (Evaluation.metrics lists them; it returned eror)"),
    (_with(score=lambda outputs, reference, request: {"error": float("nan")}), "returned NaN for error"),
    (_with(score=lambda outputs, reference, request: {"error": "low"}), "returned a non-number"),
], ids=["load-raises", "load-uint8", "load-no-pair", "methods-raises", "no-method", "method-range", "method-raises",
        "score-raises", "score-missing-metric", "score-nan", "score-not-a-number"])
def test_check_evaluation_runs_load_methods_and_score_and_names_what_failed(evaluation, message, tmp_path):
    from artgan.testing import check_evaluation

    with pytest.raises(AssertionError) as exc:
        check_evaluation(evaluation, workdir=tmp_path)
    assert message in str(exc.value)


def test_check_evaluation_fills_a_required_file_option_and_takes_declared_options(tmp_path):
    import types

    import click

    import artgan
    from artgan.evaluation import Option
    from artgan.images import load_image
    from artgan.testing import check_evaluation, check_registered, registry_with

    seen = []

    def methods(request):
        seen.append(load_image(request.options["reference"]).shape)  # a real image file
        return {"identity": lambda x: x}

    needs_file = _with(methods=methods, options={
        "gain": Option(2.0, "Target gain.", float),
        "reference": Option(None, "A reference image.", click.Path(exists=True, dir_okay=False))})
    check_evaluation(needs_file, workdir=tmp_path / "a")
    assert seen == [(48, 64, 3)]

    def factory():
        return _with(score=lambda outputs, reference, request: {"error": request.options["gain"]})

    factory.contract_options = lambda folder: {"gain": 0.5}
    plugin = types.ModuleType("gains")
    plugin.artgan_register_evaluations = artgan.hookimpl(lambda register: register("gains", factory))
    assert check_registered(registry_with(plugin), "evaluation", "gains", tmp_path / "b") == {
        "identity": {"image3": {"error": 0.5}}}
    factory.contract_options = {"gian": 0.5}
    with pytest.raises(AssertionError, match=r"contract options gian are not options of the evaluation \(it has gain\)"):
        check_registered(registry_with(plugin), "evaluation", "gains", tmp_path / "c")


def _broken_brighten(where: str):
    """brighten_evaluation with a bug in one of its functions (``method``: in what methods returns)."""
    evaluation = brighten_evaluation()
    if where == "method":
        evaluation.methods = lambda request: {"identity": _raises_value_error}
    elif where == "score-returns":
        evaluation.score = lambda outputs, reference, request: {"eror": 0.5}  # a misspelled metric
    else:
        setattr(evaluation, where, _raises_value_error)
    return evaluation


def _evaluate_with_plugin(runner, monkeypatch, tmp_path, evaluation, *args):
    """``artgan evaluate brighten ...`` with ``evaluation`` registered by a plugin named 'breaks'."""
    import types

    import artgan
    from artgan import cli as cli_module
    from artgan.evaluation import add_evaluation_commands
    from artgan.plugins import make_plugin_manager

    plugin = types.ModuleType("breaks")
    plugin.artgan_register_evaluations = artgan.hookimpl(lambda register: register("brighten", lambda: evaluation))
    _, registry = make_plugin_manager((plugin,), load_entry_points=False)
    monkeypatch.setattr("artgan.plugins.get_registry", lambda: registry)
    add_evaluation_commands(cli_module.evaluate, registry)
    write_grey_images(tmp_path / "data", 4)
    data = ["--data", str(tmp_path / "data")] if evaluation.per_file else []  # a run() has its own data
    try:
        return runner.invoke(cli_module.cli, ["evaluate", "brighten", *data, "-q", *args])
    finally:
        cli_module.evaluate.commands.pop("brighten", None)


@pytest.mark.parametrize("where, failed", [
    ("load", " failed in load (img3.png): ValueError: boom"),
    ("methods", " failed in methods: ValueError: boom"),
    ("method", " failed in method 'identity' (img3.png): ValueError: boom"),
    ("score", " failed in score (identity on img3.png): ValueError: boom"),
    ("protocol", " failed in protocol: ValueError: boom"),
    ("score-returns", ": score (identity on img3.png) returned no 'error', listed in its Evaluation.metrics; "
                      "it returned 'eror'"),
], ids=lambda x: x if not x.startswith((" ", ":")) else "")
def test_a_bug_inside_an_evaluation_is_one_line_naming_the_plugin_and_the_task(where, failed, runner, monkeypatch,
                                                                                 tmp_path):
    r = _evaluate_with_plugin(runner, monkeypatch, tmp_path, _broken_brighten(where))
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"Error: evaluate brighten: plugin 'breaks'{failed}"), r.output
    assert r.output.count("\n") == 1 and r.output.rstrip().endswith("(a bug in the plugin, not in artgan)")
    assert "please report" not in r.output and "Traceback" not in r.output


def test_a_bug_in_an_evaluations_run_or_card_title_names_the_plugin(runner, monkeypatch, tmp_path):
    from artgan.cards import write_card
    from artgan.evaluation import Evaluation, Metric

    run = Evaluation(help="h\n\n\\b\nExample:\n  artgan evaluate brighten\n", metrics=[Metric("m")],
                     run=_raises_value_error)
    r = _evaluate_with_plugin(runner, monkeypatch, tmp_path, run)
    assert r.exit_code == 1 and r.output.startswith("Error: evaluate brighten: plugin 'breaks' failed in run: "
                                                    "ValueError: boom"), r.output
    titled = brighten_evaluation()
    titled.card_title = _raises_value_error
    write_card(tmp_path / "m.onnx", {"file": "m.onnx"})
    r = _evaluate_with_plugin(runner, monkeypatch, tmp_path, titled, "--card", str(tmp_path / "m.card.json"))
    assert r.exit_code == 1 and r.output.startswith("Error: evaluate brighten: plugin 'breaks' failed in card_title: "
                                                    "ValueError: boom"), r.output


def test_a_bug_inside_an_evaluation_run_from_python_names_its_module(tmp_path):
    from artgan.errors import ArtganError
    from artgan.evaluation import Request, evaluate

    write_grey_images(tmp_path / "data", 4)
    request = Request("brighten", tmp_path / "data", "all", [], ["identity"], {"gain": 2.0})
    with pytest.raises(ArtganError, match=r"^evaluate brighten: plugin 'test_task_plugin_core' failed in load "
                                          r"\(img0.png\): ValueError: boom"):
        evaluate("brighten", _broken_brighten("load"), request)


# -- export verification on real inputs ----------------------------------------------------------

def test_verify_on_real_inputs_records_the_agreement_in_the_card(tmp_path):
    import numpy as np
    import torch
    from torch import nn

    from artgan.cards import read_card
    from artgan.errors import ArtganError
    from artgan.export import export_onnx, verify_on_real_inputs
    from artgan.recipe import ExportSpec

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1), nn.Tanh())
    spec = ExportSpec(module=net, inputs={"x": torch.rand(1, 3, 16, 16) * 2 - 1}, outputs=["y"], dynamic_axes={},
                      metadata={"task": "image-to-image", "scale": 1, "size_multiple": 1, "channels": 3,
                                "value_range": [-1.0, 1.0]})
    export_onnx(spec, tmp_path / "m.onnx")
    photo = np.linspace(-1, 1, 3 * 40 * 56, dtype=np.float32).reshape(1, 3, 40, 56)  # another size than traced
    report = verify_on_real_inputs(net, tmp_path / "m.onnx", [{"x": photo}, {"x": photo[..., :24, :32]}],
                                   describe="two ramps", min_psnr=80)
    assert report["count"] == 2 and report["max_abs_diff"] < 1e-5
    assert report["min_psnr_db"] is None or report["min_psnr_db"] > 80  # None: identical outputs
    card = read_card(tmp_path / "m.onnx")
    assert card["real_inputs"] == report and "on real inputs (two ramps)" in (tmp_path / "m.card.md").read_text()

    other = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Tanh())  # not what was exported: the check must catch it
    with pytest.raises(ArtganError, match=r"ONNX and PyTorch differ on real inputs \(a ramp\): PSNR .* < 80 dB"):
        verify_on_real_inputs(other, tmp_path / "m.onnx", [{"x": photo}], describe="a ramp", min_psnr=80)
