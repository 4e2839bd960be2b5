"""artgan: compose GAN pipelines from plugins; train in PyTorch, run anywhere with onnxruntime.

Importing ``artgan`` is cheap and never imports torch: the runtime side (``artgan.runtime``,
``artgan.images``, ``artgan.steps``) must stay usable without PyTorch.
"""

import pluggy

#: Mark your hook implementations with this: ``@artgan.hookimpl``.
hookimpl = pluggy.HookimplMarker("artgan")


#: The Python API (artgan/api.py), imported on first use: ``import artgan`` stays fast and torch-free
_LAZY = {"Steps": "api", "ImageModel": "api", "Generator": "api", "load_model": "api", "ProcessReport": "api",
         "ArtganError": "errors"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    # ``__version__`` is looked up on first use: importlib.metadata is a large share of the
    # start-up of `artgan generate`, which never needs it
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version
        try:
            value = version("artgan")
        except PackageNotFoundError:  # running from a source tree that was never installed
            value = "0.0.0+unknown"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'artgan' has no attribute {name!r}")

__all__ = ["__version__", "hookimpl", "Steps", "ImageModel", "Generator", "load_model", "ProcessReport",
           "ArtganError"]
