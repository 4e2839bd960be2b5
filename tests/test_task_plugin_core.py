"""The core pieces every task plugin uses: model search, cards, the held-out split, evaluations."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_artgan_models_is_a_deprecated_name_of_model_search():
    import artgan.model_search

    sys.modules.pop("artgan.models", None)
    with pytest.warns(DeprecationWarning, match="artgan.model_search"):
        old = importlib.import_module("artgan.models")
    assert old.find_model is artgan.model_search.find_model
    assert old.list_models is artgan.model_search.list_models
