"""Checkpoints: written atomically, read with ``weights_only=True`` (never unpickle code).

A checkpoint holds everything to continue or rebuild a run: the recipe's constructor arguments
(architecture name and params, dataset info, loss), its state (modules and optimisers), the
``iteration`` it was written after (the data position follows from it) and every random number
generator state.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import DatasetInfo
from .errors import ArtganError, describe_os_error
from .files import atomic_path

FORMAT = 1


def save(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically: a failure (the disk full) leaves the previous checkpoint as it was."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save({"format": FORMAT, **payload}, tmp)
    except OSError as exc:
        raise ArtganError(f"{path}: could not write the checkpoint: {describe_os_error(exc)}") from None
    except RuntimeError as exc:  # torch reports a failed write (the disk full) as a RuntimeError
        detail = " ".join(str(exc).split())
        if "writ" not in detail.lower():
            raise
        raise ArtganError(f"{path}: could not write the checkpoint ({detail[:200]}); is the disk full? Free some "
                          f"space and continue with --resume (the previous checkpoint is kept)") from None
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu",
         require: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a checkpoint (weights only); ``require``: keys whose absence makes it incomplete (a
    partial file or another program's), reported in one line instead of a KeyError later."""
    path = Path(path)
    if not path.is_file():
        raise ArtganError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise ArtganError(f"{path}: the checkpoint is empty (0 bytes); use an earlier checkpoint or train again")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except MemoryError:
        raise ArtganError(f"{path}: not enough memory to load this checkpoint") from None
    except Exception as exc:
        # torch's messages run to several sentences; the first says what failed
        detail = " ".join(str(exc).split()).split(". ")[0] or type(exc).__name__
        raise ArtganError(f"{path}: not a readable artgan checkpoint, truncated or not one ({detail}); "
                          f"use an earlier checkpoint or train again") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ArtganError(f"{path}: not an artgan checkpoint (format {FORMAT})")
    if "iteration" not in ckpt and "recipe" in ckpt and "state" in ckpt:  # counted under another name before 0.2
        raise ArtganError(f"{path}: this checkpoint predates artgan 0.2 (it has no 'iteration'); train again "
                          f"with this version, or export it with artgan 0.1")
    missing = [k for k in require if k not in ckpt or (k in ("recipe", "state") and not isinstance(ckpt[k], dict))]
    if missing:
        raise ArtganError(f"{path}: an incomplete artgan checkpoint (missing or malformed: {', '.join(missing)}); "
                          f"use an earlier checkpoint or train again")
    iteration = ckpt.get("iteration", 0)
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise ArtganError(f"{path}: the checkpoint's iteration is {_short(iteration)}, not a whole number >= 0 (a "
                          f"damaged checkpoint, or not one artgan wrote); use an earlier checkpoint or train again")
    return ckpt


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def nonfinite_weights(state: Any) -> str:
    """The first ``module.tensor`` of a checkpoint's ``state`` holding NaN or infinite values
    (a run that diverged before the checkpoint was written), or ''."""
    modules = state.get("modules") if isinstance(state, dict) else None
    if not isinstance(modules, dict):
        return ""
    for module, tensors in modules.items():
        if not isinstance(tensors, dict):
            continue
        for name, t in tensors.items():
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
                return f"{module}.{name}"
    return ""


def refuse_nonfinite(path: str | Path, ckpt: dict[str, Any]) -> None:
    """One line naming the file and a tensor when the checkpoint's weights hold NaN or infinities."""
    where = nonfinite_weights(ckpt.get("state"))
    if where:
        raise ArtganError(f"{path}: the checkpoint's weights are not finite (NaN or infinite values in {where}): "
                          f"the run had diverged when it was written; use an earlier checkpoint, or train again "
                          f"with a lower learning rate")


def recipe_differences(saved: dict[str, Any], wanted: dict[str, Any], limit: int = 3) -> str:
    """What differs between two recipe configs (a checkpoint's and a pipeline's), named as a
    pipeline names it: ``architecture.g_width is 8 in the checkpoint, 16 in the pipeline``."""
    def flat(config: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not isinstance(config, dict):
            return out
        for top in ("architecture", "params", "loss", "dataset", "dataset_params", "info"):
            value = config.get(top)
            if top == "params" or top == "dataset_params" or top == "info":
                prefix = "architecture" if top == "params" else "dataset"
                for k, v in (value or {}).items() if isinstance(value, dict) else ():
                    out.setdefault("dataset" if (top, k) == ("info", "name") else f"{prefix}.{k}", v)
            elif top == "loss" and isinstance(value, dict):
                out["loss"] = value.get("name")
                for k, v in (value.get("params") or {}).items():
                    out[f"loss.{k}"] = v
            else:
                out.setdefault(top, value)
        return out

    a, b = flat(saved), flat(wanted)
    diffs = [f"{k} is {_short(a[k]) if k in a else 'not set'} in the checkpoint, "
             f"{_short(b[k]) if k in b else 'not set'} in the pipeline"
             for k in dict.fromkeys([*a, *b]) if a.get(k, None) != b.get(k, None) or (k in a) != (k in b)]
    more = f" (and {len(diffs) - limit} more)" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": _py_state_to_safe(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    random.setstate(_py_state_from_safe(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _py_state_to_safe(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _py_state_from_safe(state: list) -> tuple:
    version, internal, gauss = state
    return (int(version), tuple(int(x) for x in internal), gauss)


def build_recipe(registry, recipe_config: dict[str, Any]):
    """Rebuild a recipe from the constructor arguments stored in a checkpoint or a pipeline."""
    info = DatasetInfo(**recipe_config["info"])
    loss = None
    if recipe_config.get("loss"):
        loss = registry.create("loss", recipe_config["loss"]["name"], **recipe_config["loss"].get("params", {}))
    return registry.create("architecture", recipe_config["architecture"],
                           info=info, loss=loss, **recipe_config.get("params", {}))


def load_recipe(path: str | Path, registry, device: str | torch.device = "cpu"):
    """``(recipe, checkpoint)``: the recipe rebuilt with its trained weights, ready for sampling or
    export, and the checkpoint's dict (``iteration``, ``recipe``, ``train_seconds`` ...)."""
    ckpt = load(path, map_location=device, require=("recipe", "state", "iteration"))
    refuse_nonfinite(path, ckpt)
    try:
        recipe = build_recipe(registry, ckpt["recipe"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ArtganError(f"{path}: the checkpoint's recipe cannot be rebuilt ({type(exc).__name__}: {exc}); "
                          f"was it written by another artgan version?") from None
    try:
        recipe.load_state_dict(ckpt["state"], optimizers=False)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise ArtganError(f"{path}: the checkpoint's weights do not fit its architecture ({detail}); "
                          f"use an earlier checkpoint or train again") from None
    recipe.to(device).train(False)
    return recipe, ckpt
