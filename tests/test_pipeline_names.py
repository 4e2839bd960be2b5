"""One meaning of "step": a post-processing step. A pipeline has stages and training runs
iterations (docs/glossary.md); the names before 0.2 are unknown keys, with a located error."""

from __future__ import annotations

import pytest

from artgan import pipeline as P
from artgan.errors import ConfigError

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


def test_a_pipeline_is_stages_and_training_runs_iterations():
    p = P.load_pipeline(text=NEW)
    assert [kind for kind, _ in p.stages] == ["train", "export", "process"]
    assert p.stages[0][1].iterations == 7 and p.stages[2][1].steps == ["lanczos:scale=2"]
    assert P.load_pipeline(text=NEW, overrides=["train.iterations=3"]).stages[0][1].iterations == 3


def test_the_old_keys_are_errors_that_name_the_line():
    with pytest.raises(ConfigError, match=r"<string>:2.*unknown key; expected name, seed, description, stages"):
        P.load_pipeline(text=NEW.replace("stages:", "steps:"))
    with pytest.raises(ConfigError, match=r"<string>:6.*steps"):
        P.load_pipeline(text=NEW.replace("iterations: 7", "steps: 7"))


def test_a_train_stage_is_the_trainers_options_and_names_what_to_train():
    from artgan.train import TrainOptions

    stage = P.load_pipeline(text=NEW).stages[0][1]
    assert type(stage) is TrainOptions and P.STAGE_KINDS["train"] is TrainOptions
    assert stage.dataset == "digits" and stage.iterations == 7
    for key in ("dataset", "architecture"):
        text = NEW.replace(f"      {key}: {'digits' if key == 'dataset' else 'dcgan'}\n", "")
        with pytest.raises(ConfigError, match=rf"<string>:3.*stages\[0\].train: missing required key '{key}'"):
            P.load_pipeline(text=text)
