"""``artgan build style --data PAINTING --name NAME``: a style model for any painting in minutes
on a CPU; the style task's builder (:attr:`artgan.tasks.Task.builder`). ``artgan style train``
(:mod:`.cli`) is the same build under its older name.

It runs one pipeline, written from the painting (:func:`pipeline_text`; ``--set KEY=VALUE``
changes it), through the one trainer (``train`` with a time budget, then ``export``), so everything
it makes is in its run folder. ``--minutes`` (default 15) is the whole build's budget: training
gets what the export and the checks after it leave. Beside the export it writes the painting's
colour reference (``NAME.reference.json``: ``color-transfer:reference=NAME``) and a contact sheet
(``NAME.contact.png``), and the card gets what the model is, how it was trained, the ONNX check
against PyTorch on held-out photos (:func:`artgan.export.verify_on_real_inputs`) and the figures of
``artgan evaluate style`` (:mod:`.evaluate`) on the first of them, beside the instant mode. The core
(:func:`artgan.build.build_task`) then evaluates on ``--eval-data`` (e.g. BSD68, all of it) and
installs it all together where ``--step style:model=NAME`` finds it.

Photos: ``--set train.dataset.photos=DIR``, else ``$ARTGAN_STYLE_PHOTOS``, else the project's
photo folder ``../shared/data/BSDS400`` (beside the source tree or the current folder), else
scikit-image's bundled sample photos when scikit-image is installed, else a one-line error asking
for a photo folder. :mod:`artgan.splits` holds every 4th photo out of training; the card and the
contact sheet are made from those.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from artgan.build import BuildRequest, BuiltModel
from artgan.errors import ArtganError

#: the pipeline key that names the photo folder (``--set train.dataset.photos=DIR``)
PHOTOS_KEY = "train.dataset.photos"
PHOTO_OPTIONS = f"artgan build style: --set {PHOTOS_KEY}=DIR; artgan style train: --photos DIR"

MIN_PAINTING_SIDE = 128
DEFAULT_MINUTES = 15.0
#: What follows training, taken from --minutes: export and its check against PyTorch, the report, the
#: install's checks on held-out photos, evaluation and contact sheet. About 31 s on an idle 2-core EPYC
#: (export 7.7 s, install 22.6 s); the rest is room for a busy machine, where they take 2-3x as long.
EXPORT_RESERVE_S = 90
#: The least training a model is made from (about 80 iterations of the default network here);
#: a shorter --minutes is refused rather than overrun: --minutes 0.5 used to take three times as long.
MIN_TRAIN_S = 30
PREVIEW_EVERY_ITERATIONS = 150  # a checkpoint and a preview image: a few minutes apart on 2 CPU cores
PHOTO_DIRS = ("../shared/data/BSDS400",)
CROP = 128
PAINTING_SIDE = 512
BATCH = 8
ARCHITECTURE = {"name": "perceptual-style"}  # PerceptualStyleConfig's defaults
SHEET_PHOTOS = 4
CARD_PHOTOS = 8

def min_minutes() -> float:
    """The shortest --minutes that holds the work after training and the least training."""
    return (EXPORT_RESERVE_S + MIN_TRAIN_S) / 60


def check_minutes(minutes: float) -> None:

    if minutes < min_minutes() - 1e-9:
        raise ArtganError(f"--minutes {minutes:g}: too short to make a model within it: export, the checks on "
                          f"held-out photos and the install take up to {EXPORT_RESERVE_S:g} s and training needs "
                          f"at least {MIN_TRAIN_S:g} s; give --minutes {min_minutes():g} or more (15 makes a good "
                          f"model)")


def check_painting(path: Path) -> None:
    """A one-line error for a path that is not a readable image or is too small to learn from."""
    from artgan.images import load_image

    if not path.exists():
        raise ArtganError(f"{path}: file not found")
    if path.is_dir():
        raise ArtganError(f"{path}: is a folder; give one painting image file")
    if not os.access(path, os.R_OK):
        raise ArtganError(f"{path}: not readable (permission denied); check the file's permissions")
    image = load_image(path)  # names the file when it is not an image
    h, w = image.shape[:2]
    if min(h, w) < MIN_PAINTING_SIDE:
        raise ArtganError(f"{path}: painting is {w}x{h}; it needs at least {MIN_PAINTING_SIDE} px on each side "
                          f"to have brushwork to learn from (use a larger scan)")


def find_photos(photos: Path | None, workdir: Path) -> tuple[Path, str]:
    """The photo folder to learn from and where it came from (see the module doc)."""
    from artgan.images import list_images

    if photos is not None:
        if not list_images(photos):
            raise ArtganError(f"{photos}: no images in this photo folder")
        return photos, "the photo folder given"
    env = os.environ.get("ARTGAN_STYLE_PHOTOS")
    if env:
        if not Path(env).is_dir() or not list_images(env):
            raise ArtganError(f"ARTGAN_STYLE_PHOTOS={env}: no images there; fix it or give a photo folder "
                              f"({PHOTO_OPTIONS})")
        return Path(env), "ARTGAN_STYLE_PHOTOS"
    source_root = Path(__file__).resolve().parents[2]
    for rel in PHOTO_DIRS:
        for base in (source_root, Path.cwd()):
            candidate = (base / rel).resolve()
            if candidate.is_dir() and list_images(candidate):
                return candidate, "the project's photo folder"
    folder = _skimage_photos(workdir / "photos")
    if folder is not None:
        return folder, "scikit-image's sample photos"
    raise ArtganError(f"no photos to learn from: give a folder of ordinary photos, e.g. BSDS400 ({PHOTO_OPTIONS}), "
                      f"or set ARTGAN_STYLE_PHOTOS")


def _skimage_photos(folder: Path) -> Path | None:
    """scikit-image's bundled colour photos (no download), written as PNGs; None without it."""
    try:
        from skimage import data
    except ImportError:
        return None
    from artgan.images import save_image, to_float

    made = 0
    for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "motorcycle_left",
                 "hubble_deep_field", "retina"):
        try:
            image = getattr(data, name)()
        except Exception:  # not bundled in this version (would need a download): skip it
            continue
        if image.ndim == 3 and image.shape[2] == 3:
            save_image(folder / f"{name}.png", to_float(image))
            made += 1
    return folder if made >= 4 else None


def art_scale(painting: Path) -> list[float]:
    """The painting's crops are taken with its longer side near ``PAINTING_SIDE`` px, about the
    photos' size, so that a stroke covers as much of a styled photo as of the painting."""
    from artgan.images import load_image

    h, w = load_image(painting).shape[:2]
    s = min(PAINTING_SIDE / max(h, w), 1.0)
    s = max(s, CROP / min(h, w))  # a crop must fit
    return [round(s * 0.85, 4), round(s * 1.15, 4)]


def pipeline_text(name: str, painting: Path, photos: Path, seconds: float, export_to: str) -> str:
    """The pipeline ``artgan style train`` runs (saved in the run folder as pipeline.yaml)."""
    import yaml

    doc = {"name": f"style-{name}", "seed": 0, "stages": [
        {"train": {
            "dataset": {"name": "unpaired-folders", "photos": str(photos), "photo_split": "train",
                        "art": str(painting), "image_size": CROP, "photo_scale": [0.8, 1.25], "art_scale": art_scale(painting),
                        "length": 1_000_000},
            "architecture": dict(ARCHITECTURE),
            "iterations": 1_000_000, "seconds": max(float(seconds), 1.0), "batch_size": BATCH,
            "log_every": 25, "checkpoint_every": PREVIEW_EVERY_ITERATIONS, "sample_count": 4,
            "collapse_ratio": 0}},
        {"export": {"out": export_to}},
    ]}
    return yaml.safe_dump(doc, sort_keys=False)


def build_style(request: BuildRequest) -> BuiltModel:
    """Train a photo -> painting model from the painting ``request.data`` within the budget
    (``request.seconds``, default 15 minutes), export it and write its files beside it."""
    t0 = time.monotonic()
    painting, name, log = request.data, request.name, request.log
    if painting is None:
        raise ArtganError("build style: give --data PAINTING, the image of the painting to learn")
    if request.pipeline is not None:
        raise ArtganError("build style: --pipeline: the style build writes its pipeline from the painting; change "
                          "it with --set KEY=VALUE")
    minutes = request.seconds / 60 if request.seconds is not None else DEFAULT_MINUTES
    check_minutes(minutes)
    check_painting(painting)
    photos = _photos_setting(request.overrides)
    run_dir = claim_run_dir(request.runs, name)
    photo_dir, photo_source = find_photos(photos, run_dir)
    log(f"run folder: {run_dir}; photos: {photo_dir} ({photo_source}); previews: {run_dir / 'samples'}")
    # training's own budget counts its set-up (the precision probe) too: the whole command fits --minutes
    budget = max(minutes * 60 - EXPORT_RESERVE_S - (time.monotonic() - t0), MIN_TRAIN_S)
    # the photos are in the pipeline already (resolved); the other settings change it
    changes = [s for s in request.overrides if not s.startswith(f"{PHOTOS_KEY}=")]
    stopped = _train_and_export(request, run_dir, pipeline_text(name, painting.resolve(), photo_dir.resolve(), budget,
                                                                f"export/{name}.onnx"), changes)
    files = write_model_files(run_dir, name, painting, photo_dir, time.monotonic() - t0, photo_source, stopped, log)
    return BuiltModel(run_dir / "export" / f"{name}.onnx", run_dir, run_dir / "checkpoints" / "last.pt", files,
                      evaluation_options={"painting": painting.resolve()},
                      pipeline=str(run_dir / "pipeline.yaml"), settings=list(request.overrides))


def _photos_setting(overrides: list[str]) -> Path | None:
    """The photo folder ``--set train.dataset.photos=DIR`` names, or None."""
    given = [s.split("=", 1)[1] for s in overrides if s.startswith(f"{PHOTOS_KEY}=")]
    if not given:
        return None
    photos = Path(given[-1])
    if not photos.is_dir():
        raise ArtganError(f"--set {PHOTOS_KEY}={photos}: no such folder")
    return photos


def claim_run_dir(runs: Path, name: str) -> Path:
    from artgan.files import claim_new_dir

    return claim_new_dir(runs, f"style-{name}")


def _train_and_export(request: BuildRequest, run_dir: Path, text: str, changes: list[str]) -> bool:
    """Run the pipeline; Ctrl-C during training exports the last checkpoint. Whether it was stopped."""
    from artgan.pipeline import RunContext, load_pipeline, run_pipeline

    registry, export_to = request.registry, f"export/{request.name}.onnx"
    pipeline = load_pipeline(text=text, overrides=changes, registry=registry)
    ctx = RunContext(run_dir=run_dir, registry=registry, plugin_manager=request.plugin_manager,
                     progress=request.progress, log=request.log)
    try:
        run_pipeline(pipeline, ctx)
        return False
    except KeyboardInterrupt:
        request.log("stopped: exporting the last checkpoint")
        ckpt = run_dir / "checkpoints" / "last.pt"
        if not ckpt.exists():
            raise ArtganError(f"stopped before the first checkpoint (every {PREVIEW_EVERY_ITERATIONS} iterations); "
                              f"nothing to export. Run again and let it reach one") from None
        import yaml
        export_stage = {"name": pipeline.name, "stages": [{"export": {"out": export_to}}]}
        export_only = load_pipeline(text=yaml.safe_dump(export_stage), registry=registry)
        ctx.checkpoint = ckpt
        run_pipeline(export_only, ctx)
        return True


def write_model_files(run_dir: Path, name: str, painting: Path, photo_dir: Path, seconds: float, photo_source: str,
                      stopped: bool, log) -> tuple[Path, ...]:
    """The card's style sections and the model's other files, beside the export (``run_dir/export``):
    the files the install puts beside the model."""
    from artgan.cards import update_card
    from artgan.files import read_jsonl
    from artgan.images import list_images, load_image, save_image, to_float
    from artgan.splits import split_files

    from .classical import Reference
    from .evaluate import INSTANT

    folder = run_dir / "export"
    model = folder / f"{name}.onnx"
    reference = folder / f"{name}.reference.json"
    Reference.from_image(to_float(load_image(painting)), name=name).save(reference)
    metrics = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    update_card(model, "summary", card_summary(name))
    update_card(model, "training", {"painting": painting.name,
                                    "photos": f"{photo_dir} ({photo_source}), training split",
                                    "seconds_total": round(seconds), "stopped_early": stopped,
                                    "last_logged_iteration": metrics[-1].get("iteration") if metrics else None,
                                    "run": str(run_dir)})
    held = split_files(list_images(photo_dir), "heldout")[:CARD_PHOTOS] or list_images(photo_dir)[:CARD_PHOTOS]
    check_on_photos(run_dir / "checkpoints" / "last.pt", model, held)
    result = evaluate_on(model, painting, held, photo_dir.name, run_dir / "card-photos")
    sheet = _contact_sheet(model, painting, held[:SHEET_PHOTOS])
    contact = folder / f"{name}.contact.png"
    save_image(contact, sheet)
    save_image(run_dir / f"contact-{name}.png", sheet)
    methods = result["methods"]
    trained = describe(headline(methods[name]))
    instant = describe(headline(methods[INSTANT])) if INSTANT in methods else "not measured"
    # strings: the card's Markdown shows them as written (the numbers are in the evaluation section)
    update_card(model, "figures", {"photos": f"{len(held)} held-out photos of {photo_dir.name}, strength 1",
                                   "trained model": trained, "instant mode (style:painting=, no training)": instant,
                                   "look": f"{name}.contact.png: input, trained model, instant mode, colour "
                                           f"transfer, side by side"})
    log(f"  {len(held)} held-out photos: {trained}; instant mode: {instant}; contact sheet {name}.contact.png")
    return reference, contact


def headline(method: dict) -> dict:
    """What the card leads with: tone (mean and lowest photo), colour and texture ratio."""
    tones = [p["tone"] for p in method["per_image"].values()]
    return {"tone": round(method["tone"], 3), "lowest_tone": round(min(tones), 3),
            "color_ratio": round(method["color_ratio"], 3), "texture_ratio": round(method["texture_ratio"], 3)}


def describe(figures: dict) -> str:
    return (f"tone {figures['tone']:.2f} (lowest {figures['lowest_tone']:.2f}), colour ratio "
            f"{figures['color_ratio']:.2f}, texture ratio {figures['texture_ratio']:.2f}")


def card_summary(name: str) -> dict:
    """The card's title and what the model is (its card's export metadata says the rest)."""
    return {"title": f"style model `{name}`",
            "lines": [f"Photo -> painting style. Use it: `artgan process photo.jpg --step style:model={name}` "
                      f"(add `,strength=0.7` for less), and `color-transfer:reference={name}` for the painting's "
                      f"colours alone."]}


def check_on_photos(checkpoint: Path, model: Path, photos: list[Path]) -> dict:
    """ONNX vs PyTorch (the checkpoint's exported module) on real photos, recorded in the card.
    The photos are cropped to the model's size multiple, as its inputs always are."""
    from artgan.cards import read_card
    from artgan.checkpoints import load_recipe
    from artgan.export import verify_on_real_inputs
    from artgan.images import load_image, to_float
    from artgan.plugins import get_registry

    recipe, _ = load_recipe(checkpoint, get_registry())
    multiple = int(read_card(model)["metadata"].get("size_multiple", 1))
    feeds = []
    for path in photos:
        image = to_float(load_image(path))
        h, w = (s - s % multiple for s in image.shape[:2])
        feeds.append({"image": image[:h, :w].transpose(2, 0, 1)[None] * 2.0 - 1.0})
    sizes = sorted({f"{f['image'].shape[3]}x{f['image'].shape[2]}" for f in feeds})
    return verify_on_real_inputs(recipe.export_spec().module, model, feeds,
                                 describe=f"{len(feeds)} held-out photos of {photos[0].parent.name}, "
                                          f"{', '.join(sizes)}")


def evaluate_on(model: Path, painting: Path, photos: list[Path], dataset: str, workdir: Path) -> dict:
    """``artgan evaluate style`` of the model on these photos (copied into ``workdir``, a folder of
    their own), added to the card."""
    import shutil

    from artgan.cards import update_card
    from artgan.evaluation import Request, evaluate
    from artgan.plugins import get_registry

    from .evaluate import style_evaluation

    workdir.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        shutil.copyfile(photo, workdir / photo.name)
    evaluation = style_evaluation()
    request = Request("style", workdir, "all", [str(model)], list(evaluation.baselines),
                      {"painting": painting, "strength": 1.0}, get_registry())
    result = evaluate("style", evaluation, request)
    result.update(dataset=dataset, split=f"heldout, first {len(photos)}")
    update_card(model, f"evaluation/{evaluation.card_title(result)}", {k: v for k, v in result.items() if k != "data"})
    return result


def _contact_sheet(model: Path, painting: Path, photos: list[Path]):
    from .sheet import contact_sheet, run_methods
    from .steps import ColorTransferStep, StyleStep

    inputs, columns = run_methods(photos, {"trained model": StyleStep(str(model)),
                                           "instant (style:painting=)": StyleStep(painting=str(painting)),
                                           "color-transfer": ColorTransferStep(str(painting))})
    return contact_sheet(painting, inputs, columns)
