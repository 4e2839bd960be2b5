"""Deprecated name of :mod:`artgan.model_search` (it finds ``.onnx`` files; it holds no models).

Kept for one release so plugins written against 0.1 keep working; import from
``artgan.model_search`` instead.
"""

from __future__ import annotations

import warnings

from .model_search import find_model, list_models, model_search_path

__all__ = ["find_model", "list_models", "model_search_path"]

warnings.warn("artgan.models is renamed artgan.model_search (it finds .onnx model files by name); "
              "import find_model, list_models and model_search_path from there", DeprecationWarning,
              stacklevel=2)
