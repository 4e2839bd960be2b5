"""Run another project's tests (a generated plugin, the example plugin) with pytest, in this process.

Why not pytester's ``runpytest_inprocess``: it forgets every module the run imported, and C
extensions (torch, numpy.random, PIL, ...) cannot be imported twice in one process. Here only the
modules that live inside the project under test are forgotten; libraries stay loaded.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest


class _Outcomes:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            key = "skipped" if report.skipped else ("failed" if report.failed else "passed")
            self.counts[key] = self.counts.get(key, 0) + 1

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.counts["errors"] = self.counts.get("errors", 0) + 1


def run_pytest(project: str | Path, *args: str) -> tuple[dict[str, int], str]:
    """pytest on ``project`` (its own pyproject settings apply); returns the outcome counts
    (``passed``, ``failed``, ``skipped``, ``errors``) and the report text."""
    project = Path(project).resolve()
    modules, path = set(sys.modules), list(sys.path)
    outcomes, out = _Outcomes(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            pytest.main([str(project), "-p", "no:cacheprovider", "-q", *args], plugins=[outcomes])
    finally:
        for name in set(sys.modules) - modules:
            if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(project)):
                del sys.modules[name]
        sys.path[:] = path
    return outcomes.counts, out.getvalue()
