"""One vocabulary (docs/glossary.md): a training *iteration*, a pipeline *stage*, a post-processing
*step*. The trainer's modules and everything a training writes (metrics.jsonl, evaluations.jsonl,
the checkpoint, sample grids, the exported model's metadata, the CLI's lines) never say "step" for
an iteration; no deprecated alias or DeprecationWarning is left in artgan or its plugins."""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

import pytest

from artgan.cli import cli

ROOT = Path(__file__).parents[1]

#: The modules of training: here "step" could only mean an iteration.
TRAINER_MODULES = ["train.py", "checkpoints.py", "precision.py", "recipe.py", "report.py", "training_tricks.py",
                   "cards.py"]

STEP_WORD = re.compile(r"(?i)(?<![a-z])steps?(?![a-z])")
#: The legitimate uses in prose: the optimiser's update, and a post-processing step.
ALLOWED_PROSE = re.compile(r"(?i)optimi[sz]er(?:'s)? steps?|optimi[sz]er\.step\(\)|steps the optimi[sz]er|"
                           r"post-processing steps?")


def step_uses(source: str) -> list[str]:
    """``line: token`` for every identifier, string or comment that says step(s) for something
    other than an optimiser's update (``optimizer.step()``, a scheduler's ``.step()``) or a
    post-processing step."""
    found = []
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.NAME and STEP_WORD.search(tok.string):
            is_method_call = (i > 0 and tokens[i - 1].string == "." and tok.string == "step"
                              and i + 1 < len(tokens) and tokens[i + 1].string == "(")
            if not is_method_call:
                found.append(f"{tok.start[0]}: {tok.string}")
        elif tok.type in (tokenize.STRING, tokenize.COMMENT) and STEP_WORD.search(ALLOWED_PROSE.sub("", tok.string)):
            found.append(f"{tok.start[0]}: {tok.string.strip()[:80]}")
    return found


@pytest.mark.parametrize("module", TRAINER_MODULES)
def test_the_trainers_modules_never_say_step_for_an_iteration(module):
    uses = step_uses((ROOT / "artgan" / module).read_text(encoding="utf-8"))
    assert not uses, f"artgan/{module} says 'step' (a training iteration is an 'iteration'): {uses}"


@pytest.mark.parametrize("source, caught", [
    ('append_jsonl(path, {"step": run.iteration})', True),
    ("def _loop(steps: int): pass", True),
    ('save_image(run_dir / f"step_{i:06d}.png", grid)', True),
    ("x = train_steps", True),
    ("# the first step", True),
    ("phase.optimizer.step()", False),
    ("# zero grads, backward, optimiser step", False),
    ('"""a post-processing step"""', False),
    ("run.iteration += 1", False),
])
def test_the_scan_catches_step_and_lets_the_optimisers_step_pass(source, caught):
    assert bool(step_uses(source + "\n")) == caught, step_uses(source + "\n")


def _keys(obj) -> set[str]:
    """Every key of a nested mapping (lists walked too)."""
    if isinstance(obj, dict):
        return {str(k) for k in obj} | {k for v in obj.values() for k in _keys(v)}
    if isinstance(obj, (list, tuple)):
        return {k for v in obj for k in _keys(v)}
    return set()


def _steppy(names) -> list[str]:
    return sorted(n for n in names if STEP_WORD.search(n.replace("_", " ")))


def test_a_trainings_outputs_never_say_step(runner, tiny_pipeline, tmp_path):
    import onnx

    from artgan import checkpoints
    from artgan.files import read_jsonl

    out = tmp_path / "run"
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--out", str(out), "--set", "train.eval_every=3",
                            "--set", "train.eval_samples=64"])
    assert r.exit_code == 0, r.output
    assert re.search(r"trained 6 iterations", r.output), r.output
    assert not STEP_WORD.search(ALLOWED_PROSE.sub("", r.output)), r.output

    metrics = read_jsonl(out / "metrics.jsonl")
    assert [m["iteration"] for m in metrics if "G_loss" in m] == [2, 4, 6]
    assert not _steppy(_keys(metrics)), _steppy(_keys(metrics))
    evaluations = read_jsonl(out / "evaluations.jsonl")
    assert [e["iteration"] for e in evaluations] == [3, 6]
    assert not _steppy(_keys(evaluations)), _steppy(_keys(evaluations))

    ckpt = checkpoints.load(out / "checkpoints" / "last.pt")
    assert ckpt["iteration"] == 6 and ckpt["options"]["iterations"] == 6
    top = {k: v for k, v in ckpt.items() if k not in ("state", "rng", "rng_per_process")}  # weights and RNGs: not ours
    assert not _steppy(_keys(top)), _steppy(_keys(top))

    samples = sorted(p.name for p in (out / "samples").iterdir())
    assert samples == ["iteration_000003.png", "iteration_000006.png"]

    metadata = {p.key: p.value for p in onnx.load(str(out / "export" / "generator.onnx")).metadata_props}
    assert json.loads(metadata["artgan.train_iterations"]) == 6
    assert not _steppy(metadata), _steppy(metadata)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "iteration_000006" in report and not re.search(r">\s*steps?\s*<", report)


def test_a_checkpoint_from_before_0_2_is_one_line_not_a_crash(runner, tmp_path):
    import torch

    path = tmp_path / "old.pt"
    # what artgan 0.1 wrote: the iteration under its old name
    torch.save({"format": 1, "step": 3, "recipe": {"architecture": "dcgan"}, "state": {}}, path)
    r = runner.invoke(cli, ["export", str(path), "--out", str(tmp_path / "m.onnx")])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output.strip().count("\n") == 0 and "predates artgan 0.2" in r.output, r.output


def test_no_deprecated_alias_is_left():
    offenders = [f"{p.relative_to(ROOT)}" for folder in ("artgan", "plugins") for p in sorted((ROOT / folder).rglob("*.py"))
                 if "DeprecationWarning" in p.read_text(encoding="utf-8")]
    assert not offenders, f"0.x keeps no deprecated alias (rename cleanly): {offenders}"
    assert not (ROOT / "artgan" / "models.py").exists()
