"""``artgan process --engine ray`` on a local Ray (the `ray` extra): the same bytes as the local
engine, bad files listed, resumable. One Ray session is shared by the module's tests (starting
Ray takes ~5 s here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artgan.cli import cli
from superres_testing import write_images

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[test,ray]'")

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    if started:
        ray.shutdown()


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    write_images(root, [(24, 30), (31, 17), (40, 40), (16, 50), (33, 33)], seed=1)
    write_images(root / "sub", [(20, 28)], seed=9)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def _outputs(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_ray_matches_local_lists_bad_files_and_resumes(local_ray, photos, tmp_path, runner):
    chain = ["--step", "superres:model=x2-gan", "--step", "lanczos:scale=1"]
    r = runner.invoke(cli, ["process", str(photos), *chain, "--out", str(tmp_path / "local"), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["process", str(photos), *chain, "--out", str(tmp_path / "ray"), "--engine", "ray"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(tmp_path / "ray")
    assert "6 image(s) ->" in r.stderr and "1 failed" in r.stderr and "broken.png" in r.stderr
    assert r.stderr.count("\n") < 12, r.stderr  # our bar and lines, not Ray's logs

    local, on_ray = _outputs(tmp_path / "local"), _outputs(tmp_path / "ray")
    assert len(local) == 6 and on_ray == local  # byte for byte
    failures = [json.loads(x) for x in (tmp_path / "ray" / "failures.jsonl").read_text().splitlines()]
    assert [f["output"] for f in failures] == ["broken.png"]
    record = json.loads((tmp_path / "ray" / "process.json").read_text())
    assert record["engine"] == "ray" and record["made"] == 6 and record["failed"] == 1
    assert record["ray"]["cpus"] == 2 and record["ray"]["nodes"] == 1 and record["ray"]["workers"] >= 1

    # stopped halfway (two outputs missing): the second run does only those
    for name in ("img0.png", "sub/img0.png"):
        (tmp_path / "ray" / name).unlink()
    r = runner.invoke(cli, ["process", str(photos), *chain, "--out", str(tmp_path / "ray"), "--engine", "ray"])
    assert r.exit_code == 0, r.output
    assert "2 image(s) ->" in r.stderr and "4 already there" in r.stderr
    assert _outputs(tmp_path / "ray") == local


def test_ray_through_the_api_and_its_errors(local_ray, photos, tmp_path):
    import artgan

    report = artgan.Steps("lanczos:scale=2").process([photos / "img1.png"], tmp_path / "o", engine="ray")
    assert report.made == 1 and report.ray["workers"] == 1
    with pytest.raises(artgan.ArtganError, match="not a readable image"):  # one input: its own error
        artgan.Steps("lanczos:scale=2").process([photos / "broken.png"], tmp_path / "o2", engine="ray")
    from artgan.steps import build_step
    from artgan.plugins import get_registry
    built = artgan.Steps(build_step(get_registry(), "lanczos:scale=2"))
    assert built(np.zeros((2, 2, 3), np.uint8)).shape == (4, 4, 3)
    with pytest.raises(artgan.ArtganError, match="give the steps as specs"):
        built.process([photos], tmp_path / "o3", engine="ray")
