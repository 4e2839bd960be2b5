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
