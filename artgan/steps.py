"""The post-processing step contract (no torch).

A step maps a batch of images to a batch of images: float32 NHWC in [0, 1] in and out (the
height and width may change, e.g. super-resolution). Steps are registered by plugins through
``artgan_register_steps`` and built from a spec such as ``superres:scale=4,model=x2-psnr``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import yaml

from .errors import ArtganError


class Step:
    """Base class for post-processing steps. Subclasses set ``name`` and implement ``__call__``."""

    name = "step"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def parse_step_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"superres:scale=4,model=x2"`` -> ("superres", {"scale": 4, "model": "x2"}).

    Values are read as YAML scalars (``4`` is an int, ``0.7`` a float, ``true`` a bool). A value
    that itself holds commas (``box=10,20,30,40``) keeps them: a comma starts a new parameter
    only when ``key=`` follows it.
    """
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise ArtganError(f"step {spec!r}: expected NAME or NAME:key=value,...")
    params: dict[str, Any] = {}
    if rest.strip():
        parts: list[str] = []
        for piece in rest.split(","):
            if "=" in piece or not parts:
                parts.append(piece)
            else:
                parts[-1] += "," + piece
        for part in parts:
            key, eq, value = part.partition("=")
            if not eq or not key.strip():
                raise ArtganError(f"step {spec!r}: parameter {part!r} is not key=value")
            try:
                params[key.strip()] = yaml.safe_load(value) if value.strip() else ""
            except yaml.YAMLError:
                params[key.strip()] = value
    return name, params


def build_step(registry, spec: str | dict[str, Any]) -> Step:
    """Build a step from ``"name:k=v"`` or ``{name: ..., k: v}`` through the registry."""
    if isinstance(spec, str):
        name, params = parse_step_spec(spec)
    elif isinstance(spec, dict) and "name" in spec:
        name, params = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    else:
        raise ArtganError(f"step {spec!r}: expected 'name:key=value' or a mapping with 'name:'")
    return registry.create("step", name, **params)


def run_chain(steps: list[Step], images: np.ndarray) -> np.ndarray:
    for step in steps:
        images = step(images)
        if not isinstance(images, np.ndarray) or images.ndim != 4:
            raise ArtganError(f"step {step.name!r} returned {type(images).__name__} "
                              f"{getattr(images, 'shape', '')}, not an NHWC batch")
    return images
