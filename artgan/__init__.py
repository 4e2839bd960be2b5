"""artgan: compose GAN pipelines from plugins; train in PyTorch, run anywhere with onnxruntime.

Importing ``artgan`` is cheap and never imports torch: the runtime side (``artgan.runtime``,
``artgan.images``, ``artgan.steps``) must stay usable without PyTorch.
"""

from importlib.metadata import PackageNotFoundError, version as _version

import pluggy

try:
    __version__ = _version("artgan")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

#: Mark your hook implementations with this: ``@artgan.hookimpl``.
hookimpl = pluggy.HookimplMarker("artgan")

__all__ = ["__version__", "hookimpl"]
