"""``artgan evaluate style``: how far each method moves photos towards a painting's style, how much of
the picture it keeps and how fast it runs; registered with the core (no torch, no downloads).

For every photo of the split and every method, against one painting (``--painting``; one command
per painting, so one per model): tone (light and dark kept), colour ratio and texture ratio (sliced Wasserstein distance to
the painting, output over input; lower is closer), edge SSIM with and without a blur (Sobel edges
of input vs output; higher keeps more of the picture), seconds per photo, and milliseconds for one
512x512 image. :mod:`.measure` has the exact protocol. The methods: colour transfer, histogram
matching, the instant mode (``style:painting=``, no training), each model alone and finished with
colour transfer at half strength, and a floor, ``another photo``: each photo replaced by the next
photo of the split.

The core (:mod:`artgan.evaluation`) runs it, with the options, results JSON, table and card every
task has.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from artgan.errors import ArtganError
from artgan.evaluation import Evaluation, Metric, Option, Request
from artgan.images import list_images, load_image, to_float, to_uint8
from artgan.splits import split_files

from . import measure

FLOOR = "another photo"
CLASSICAL = ("color-transfer", "histogram-match")
INSTANT = "instant"  # style:painting=PATH: the any-painting network, no training (what a trained model must beat)
FINISH_STRENGTH = 0.5  # a model's output finished with colour transfer at this strength
METRICS = [Metric("tone", "tone", ".3f"), Metric("color_ratio", "colour ratio", ".3f"),
           Metric("texture_ratio", "texture ratio", ".3f"),
           Metric("edge_ssim", "edge SSIM", ".3f"), Metric("edge_ssim_fine", "edge SSIM, no blur", ".3f"),
           Metric("seconds_per_photo", "s/photo", ".3f"), Metric("ms_512x512", "ms per 512x512", ".0f")]
NOTE = ("Tone: the correlation of input and output luminance after a blur of sigma 3 px (1: light and dark "
        "kept, below 0: a negative). Ratios: the sliced Wasserstein distance to the painting of the output over that of the input (lower "
        "is closer to the painting). Edge SSIM compares the Sobel edges of input and output after a Gaussian "
        "blur of sigma 1 px (and without it): higher keeps more of the picture. 'another photo' replaces each "
        "photo with the next photo of the split: content figures near it mean the picture was lost (it does "
        "no work, so its times are 0). s/photo includes the model's run for a finished model.")


class _Tagged(np.ndarray):
    """An image batch carrying what the core's loop has no other channel for: which photo ``load``
    read (the floor needs it) and what a method's run took (``score`` reports it). The core hands
    ``load``'s inputs to each method, and each method's outputs to ``score``, unchanged."""

    facts: dict[str, Any] = {}


def _tagged(images: np.ndarray, **facts: Any) -> _Tagged:
    out = np.asarray(images).view(_Tagged)
    out.facts = facts
    return out


def time_512(method: Callable[[np.ndarray], np.ndarray], repeats: int = 3) -> float:
    """Median milliseconds for one 512x512 image through ``method`` (after one warm-up run)."""
    image = np.random.default_rng(0).random((1, 512, 512, 3), dtype=np.float32)
    method(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        method(image)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


class Timed:
    """A method whose outputs say how long they took, and its milliseconds per 512x512 image."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray]):
        self.run = run
        self.ms_512x512 = time_512(run)

    def __call__(self, images: np.ndarray) -> _Tagged:
        start = time.perf_counter()
        out = self.run(np.asarray(images))
        return _tagged(out, seconds=time.perf_counter() - start, ms_512x512=self.ms_512x512)


class AnotherPhoto:
    """The floor: each photo 'stylised' into the next photo of the split, resized to fit."""

    def __init__(self, files: list[Path]):
        self.files = files
        self.index = {f: i for i, f in enumerate(files)}

    def __call__(self, images: np.ndarray) -> _Tagged:
        path = images.facts["path"]
        other = self.files[(self.index[path] + 1) % len(self.files)]
        h, w = images.shape[1:3]
        return _tagged(_resized(to_float(load_image(other)), (h, w))[None], seconds=0.0, ms_512x512=0.0)


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return to_float(np.asarray(Image.fromarray(to_uint8(image)).resize((size[1], size[0]), Image.BICUBIC)))


def _chain(first: Callable, then: Callable) -> Callable[[np.ndarray], np.ndarray]:
    return lambda images: then(first(images))


# -- what the core calls ----------------------------------------------------------------------

def painting(request: Request) -> Path:
    """The painting the methods reach for (``--painting``)."""
    path = request.options.get("painting")
    if not path:
        raise ArtganError("evaluate style: give --painting PAINTING (the painting image to measure against)")
    return Path(path)


@lru_cache(maxsize=4)
def _signature(path: str) -> measure.StyleSignature:
    image = to_float(load_image(path))
    _measurable(image, path, "the painting", "give a larger painting")
    return measure.StyleSignature.of(image)


def _measurable(image: np.ndarray, path: str | Path, what: str, fix: str) -> None:
    """The texture measure draws PATCH x PATCH patches: a smaller image has none to draw."""
    h, w = image.shape[:2]
    if min(h, w) < measure.PATCH:
        raise ArtganError(f"{path}: {what} is {w}x{h} pixels, smaller than the {measure.PATCH}x{measure.PATCH} "
                          f"patches evaluate style measures texture on; {fix}")


def model_names(request: Request, painting_path: Path) -> list[str]:
    """``--model`` (``none``: no model), else the style model named like the painting, if there is one."""
    from artgan.model_search import list_models

    if request.models:
        return [m for m in request.models if m.lower() not in ("none", "")]
    return [painting_path.stem] if painting_path.stem in list_models("style") else []


def methods(request: Request) -> dict[str, Callable]:
    """The baselines (the floor, colour transfer, histogram matching), then each model, alone and
    finished with colour transfer."""
    ref, strength = str(painting(request)), request.options["strength"]
    out: dict[str, Callable] = {}
    for name in request.baselines:
        if name == FLOOR:
            out[name] = AnotherPhoto(split_files(list_images(request.data), request.split))
        elif name in CLASSICAL:
            out[name] = Timed(request.step({"name": name, "reference": ref, "strength": strength}))
        elif name == INSTANT:
            out[name] = Timed(request.step({"name": "style", "painting": ref, "strength": strength}))
        else:
            raise ArtganError(f"evaluate style: unknown baseline {name!r}; choose from {FLOOR}, "
                              f"{', '.join(CLASSICAL)}, {INSTANT}")
    finish = request.step({"name": "color-transfer", "reference": ref, "strength": FINISH_STRENGTH})
    for name in model_names(request, Path(ref)):
        model = request.step({"name": "style", "model": name, "strength": strength})
        label = Path(name).stem if name.endswith(".onnx") else name
        out[label] = Timed(model)
        out[f"{label} + color-transfer {FINISH_STRENGTH:g}"] = Timed(_chain(model, finish))
    return out


def load(path: Path, request: Request) -> tuple[_Tagged, tuple[np.ndarray, measure.StyleSignature]]:
    """(the photo as a batch of one, tagged with its path; the photo and its style signature)."""
    image = to_float(load_image(path))
    _measurable(image, path, "the photo", f"leave it out of --data (every photo needs at least "
                f"{measure.PATCH}x{measure.PATCH} pixels)")
    return _tagged(image[None], path=path), (image, measure.StyleSignature.of(image))


def score(outputs: _Tagged, photo: tuple[np.ndarray, measure.StyleSignature], request: Request) -> dict[str, float]:
    image, signature = photo
    out = np.asarray(outputs)[0]
    if out.shape != image.shape:
        raise ArtganError(f"made {out.shape[1]}x{out.shape[0]}, expected {image.shape[1]}x{image.shape[0]}")
    figures = measure.score(image, out, _signature(str(painting(request))), signature)
    return {**figures, "seconds_per_photo": outputs.facts["seconds"], "ms_512x512": outputs.facts["ms_512x512"]}


def _protocol(request: Request) -> str:
    return f"painting {painting(request).name}, strength {request.options['strength']:g}; {measure.PROTOCOL}"


def _card_title(result: dict[str, Any]) -> str:
    return (f"{result['dataset']} (split {result['split']}), {Path(str(result['options']['painting'])).stem}, "
            f"strength {result['options']['strength']:g}")


def style_evaluation() -> Evaluation:
    """What ``artgan_register_evaluations`` registers as ``style``."""
    import click  # for the options' types: the command line is what builds the command

    return Evaluation(
        help="""Style transfer against one painting: tone (light and dark kept), colour and texture distance
        to it (as ratios to the photo's), edge SSIM to the photo, speed; for colour transfer, histogram
        matching, the instant mode (style:painting=, no training), the trained
        model (default: the one named like the painting; --model none for the classical methods alone)
        and a floor, another photo.

        \b
        Example:
          artgan evaluate style --data ../shared/data/BSD68 --split heldout \\
              --painting ../shared/data/style/starry-night.jpg --model starry-night
        """,
        metrics=METRICS, load=load, score=score, methods=methods,
        baselines=("color-transfer", "histogram-match", INSTANT, FLOOR),  # gains: from colour transfer
        options={"painting": Option(None, "The painting image to reach (required).",
                                    click.Path(exists=True, dir_okay=False, path_type=Path)),
                 "strength": Option(1.0, "Strength of every step.", click.FloatRange(0, 1))},
        default_split="heldout", protocol=_protocol, note=NOTE, card_title=_card_title,
    )
