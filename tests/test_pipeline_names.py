"""One meaning of "step": a post-processing step. A pipeline has stages and training runs
iterations; the old names keep working for one release, each with a DeprecationWarning."""

from __future__ import annotations

import warnings

import pytest

from artgan import pipeline as P

NEW = """\
name: names
stages:
  - train:
      dataset: digits
      architecture: dcgan
      iterations: 7
  - export: {}
  - process: {steps: [lanczos:scale=2]}
"""
OLD = NEW.replace("stages:", "steps:").replace("iterations: 7", "steps: 7")


def test_old_pipeline_keys_load_as_the_new_ones_with_a_located_warning():
    with pytest.warns(DeprecationWarning) as caught:
        old = P.load_pipeline(text=OLD)
    messages = [str(w.message) for w in caught]
    assert any("<string>:2: `steps:` is deprecated, use `stages:`" in m for m in messages), messages
    assert any("<string>:6: `train.steps:` is deprecated, use `train.iterations:`" in m for m in messages), messages
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        new = P.load_pipeline(text=NEW)
    assert old.stages == new.stages and old.raw == new.raw
    assert new.stages[0][1].iterations == 7 and new.stages[2][1].steps == ["lanczos:scale=2"]


def test_errors_in_an_old_pipeline_still_name_the_line():
    with pytest.warns(DeprecationWarning), pytest.raises(Exception, match=r"<string>:6: stages\[0\].train.iterations"):
        P.load_pipeline(text=OLD.replace("steps: 7", "steps: lots"))


def test_set_train_steps_still_sets_the_iterations():
    with pytest.warns(DeprecationWarning, match="--set train.steps is deprecated, use --set train.iterations"):
        p = P.load_pipeline(text=NEW, overrides=["train.steps=3"])
    assert p.stages[0][1].iterations == 3


@pytest.mark.parametrize("old, new", sorted(P._RENAMED.items()))
def test_old_python_names_are_the_new_ones(old, new):
    with pytest.warns(DeprecationWarning, match=f"artgan.pipeline.{old} is deprecated"):
        assert getattr(P, old) is getattr(P, new)


def test_old_attributes_read_and_write_the_new_ones():
    p = P.load_pipeline(text=NEW)
    with pytest.warns(DeprecationWarning, match="Pipeline.steps is deprecated"):
        assert p.steps is p.stages
    with pytest.warns(DeprecationWarning):
        p.steps = p.stages[:1]
    assert [kind for kind, _ in p.stages] == ["train"]
    with pytest.warns(DeprecationWarning, match="TrainStep.steps is deprecated"):
        assert p.stages[0][1].steps == 7
