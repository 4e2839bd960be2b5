"""The training bar: iterations out of ``iterations``, or, under a time budget, seconds out of the budget."""

from __future__ import annotations

import io

from artgan.cli import cli
from artgan.train import TrainProgress


def bar_text(**kwargs) -> tuple[TrainProgress, io.StringIO]:
    out = io.StringIO()
    return TrainProgress(file=out, **kwargs), out


def test_a_time_budget_shows_seconds_of_the_budget_not_the_step_ceiling():
    bar, out = bar_text(start=0, iterations=1_000_000, seconds=810, trained_before=100.0)
    bar.update(5, 400.0)
    bar.close()
    last = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "400/810 s of the time budget" in last and "train iteration 5" in last
    assert "1000000" not in out.getvalue()


def test_the_budget_bar_ends_where_the_budget_ends():
    bar, out = bar_text(start=0, iterations=1_000_000, seconds=10)
    bar.update(3, 12.5)  # training ends at the checkpoint after the budget: past it, the bar is full
    bar.close()
    last = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last and "10/10 s" in last


def test_without_a_budget_the_bar_counts_iterations():
    bar, out = bar_text(start=2, iterations=6)
    for step in (3, 4):
        bar.update(step, 0.0)
    bar.close()
    assert "4/6" in out.getvalue().replace("\r", "\n").strip().splitlines()[-1]


def test_a_budgeted_run_shows_the_budget_on_stderr(runner, tiny_pipeline, tmp_path):
    r = runner.invoke(cli, ["run", str(tiny_pipeline), "--out", str(tmp_path / "run"), "--set", "train.iterations=1000000",
                            "--set", "train.seconds=1", "--set", "generate.n=1"])
    assert r.exit_code == 0, r.output
    assert "/1 s of the time budget" in r.stderr and "1000000" not in r.stderr
    assert "time budget of 1 s reached" in r.stderr
