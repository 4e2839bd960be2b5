"""The augmentation protocol itself (torch): what a fixed classifier learns from synthetic data.

On scikit-learn's digits (docs/training.md, "GANs for data augmentation"):

- Held-out split: the ``digits`` dataset's ``split: test``, the last 450 of the 1797 images;
  everything trains on ``split: train``, the first 1347. Every row is tested on the same 450.
- The classifier: :mod:`.classifier` (a small CNN, a fixed number of Adam iterations, the same light
  shift augmentation), identical in every row; only its training images change.
- Rows, for each seed:
  1. ``real``: the 1347 training digits;
  2. ``synthetic``: ``per_class`` images per class from the model, a conditional generator
     trained on the training split (the shipped ``digits-cgan``), drawn exactly as ``artgan
     synth`` writes them (seeded, 8-bit);
  3. ``real-k``: ``k`` real digits per class, picked by the seed from the training split;
  4. ``real-k+synthetic``: those ``k`` per class plus ``per_class`` synthetic per class from a
     conditional GAN trained here on those ``k`` per class alone, with DiffAugment
     (:data:`FEW_SHOT_GAN`), through artgan's own trainer into ``RUNS/few-shot-seed<S>/``.
- Measured: accuracy per row (mean and sample standard deviation over the seeds), the CAS ratio
  (Ravuri & Vinyals, 2019: synthetic-only accuracy / real accuracy, per seed) and the gain of row
  4 over row 3 in accuracy points.

:mod:`.evaluate` registers it with the core, which makes it ``artgan evaluate augment``.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artgan.errors import ArtganError

from .classifier import ClassifierRecipe, accuracy, to_input, train_classifier

#: The conditional GAN that row 4 trains on k real images per class (an architecture from the
#: registry, so the protocol runs artgan's own recipe and trainer; hinge loss, its default).
FEW_SHOT_GAN: dict[str, Any] = {
    "image_size": 16,
    "architecture": {"name": "small-cgan", "latent_dim": 64, "width": 32, "ema": 0.999,
                     "diffaugment": "translation,cutout"},
    "batch_size": 64,
}
TARGETS = {"cas": 0.9, "gain_points": 2.0}
NUM_CLASSES = 10
ROWS = ("real", "synthetic", "real-k", "real-k+synthetic")


@dataclass(frozen=True)
class Protocol:
    k: int = 10
    per_class: int = 200  # synthetic images per class in rows 2 and 4
    gan_iterations: int = 1500  # training iterations of each few-shot GAN
    truncation: float | None = None  # of the synthetic latents (None: plain standard normal)
    classifier: ClassifierRecipe = field(default_factory=ClassifierRecipe)

    @classmethod
    def default(cls) -> "Protocol":
        return cls()

    def replace(self, *, k: int | None = None, per_class: int | None = None, gan_iterations: int | None = None,
                classifier_iterations: int | None = None) -> "Protocol":
        """The protocol with the given values changed (None keeps the default)."""
        out = self
        if k is not None:
            out = replace(out, k=k)
        if per_class is not None:
            out = replace(out, per_class=per_class)
        if gan_iterations is not None:
            out = replace(out, gan_iterations=gan_iterations)
        if classifier_iterations is not None:
            out = replace(out, classifier=replace(out.classifier, iterations=classifier_iterations))
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classifier"] = self.classifier.to_dict()
        d["few_shot_gan"] = FEW_SHOT_GAN
        d["held_out"] = "digits split: test (the last 450 of scikit-learn's 1797 digits)"
        return d


def digits_split(split: str, image_size: int) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """The ``digits`` dataset's split from the registry: images (N, 1, S, S) in [-1, 1], labels, info."""
    from artgan.plugins import get_registry

    ds = get_registry().create("dataset", "digits", image_size=image_size, channels=1, split=split)
    x = torch.stack([ds[i]["image"] for i in range(len(ds))])
    y = torch.stack([ds[i]["label"] for i in range(len(ds))])
    return x, y, ds.info


def few_shot_indices(labels: torch.Tensor, k: int, seed: int, num_classes: int) -> torch.Tensor:
    """``k`` indices per class, drawn without replacement by ``seed`` (class order, then draw order)."""
    rng = np.random.default_rng(seed)
    y = labels.numpy()
    picks = []
    for c in range(num_classes):
        pool = np.flatnonzero(y == c)
        if len(pool) < k:
            raise ArtganError(f"k={k} real images per class asked for, but class {c} has {len(pool)} in the "
                              f"training split; lower --k")
        picks.append(rng.choice(pool, k, replace=False))
    return torch.from_numpy(np.concatenate(picks))


class LabelledTensors(torch.utils.data.Dataset):
    """An in-memory labelled dataset meeting the dataset contract (for the few-shot GAN)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, info):
        self.images, self.labels, self.info = images, labels, info

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i], "label": self.labels[i]}


def train_few_shot_gan(images: torch.Tensor, labels: torch.Tensor, info, iterations: int, seed: int,
                       run_dir: Path, progress: bool):
    """Train :data:`FEW_SHOT_GAN` on ``images`` into ``run_dir``; return the trained recipe."""
    from artgan.checkpoints import build_recipe
    from artgan.plugins import get_registry
    from artgan.train import TrainOptions, seed_everything, train

    if run_dir.exists():  # a previous evaluation's run: start again, the protocol is a fresh GAN
        shutil.rmtree(run_dir)
    cfg = FEW_SHOT_GAN
    arch = dict(cfg["architecture"])
    name = arch.pop("name")
    recipe_config = {"architecture": name, "params": arch, "info": info.to_dict(), "loss": None,
                     "dataset": "digits (few-shot)"}
    seed_everything(seed)
    recipe = build_recipe(get_registry(), recipe_config)
    options = TrainOptions(iterations=iterations, batch_size=min(cfg["batch_size"], len(images)), seed=seed,
                           log_every=max(1, iterations // 10), checkpoint_every=iterations, sample_count=100,
                           precision="fp32", device="cpu")
    train(recipe, LabelledTensors(images, labels, info), run_dir, options, recipe_config=recipe_config,
          progress=progress)
    return recipe


def _sample_recipe(recipe, per_class: int, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of every class from a trained recipe, interleaved by class like
    ``artgan synth``, quantised to 8 bits as PNG files would be."""
    from artgan.train import sample_images

    n = per_class * num_classes
    images = sample_images(recipe, n, seed)  # labels of recipe.fixed_inputs: i % num_classes
    return np.floor(images * 255.0 + 0.5) / 255.0, np.arange(n, dtype=np.int64) % num_classes


def _stats(values: list[float]) -> dict[str, Any]:
    return {"per_seed": [round(v, 4) for v in values], "mean": round(statistics.fmean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0}


class Run:
    """One run of the protocol: the model, the digits, each row's accuracies and where time went."""

    def __init__(self, model: str | Path, protocol: Protocol, runs_dir: Path, progress: bool):
        from artgan.runtime import Generator

        from .synth import class_names

        self.protocol, self.runs_dir, self.progress = protocol, Path(runs_dir), progress
        self.gen = Generator(model, threads=1)
        names = class_names(self.gen)
        if names != [str(d) for d in range(NUM_CLASSES)]:
            raise ArtganError(f"{self.gen.path.name}: classes {names} are not the digits 0-9; evaluate augment "
                              f"needs a conditional generator trained on the digits dataset (split: train)")
        self.x_train, self.y_train, _ = digits_split("train", 16)
        self.x_test, self.y_test, _ = digits_split("test", 16)
        self.x_gan, _, self.gan_info = digits_split("train", FEW_SHOT_GAN["image_size"])
        self.accuracy: dict[str, list[float]] = {row: [] for row in ROWS}
        self.seconds: dict[str, float] = {"classifiers": 0.0, "few_shot_gans": 0.0, "synthesis": 0.0}

    def log(self, message: str) -> None:
        if self.progress:
            print(message, file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def timed(self, what: str):
        start = time.perf_counter()
        yield
        self.seconds[what] += time.perf_counter() - start

    def fit_and_test(self, row: str, x: torch.Tensor, y: torch.Tensor, seed: int) -> None:
        """Train the classifier on (x, y) and record its accuracy on the held-out digits."""
        with self.timed("classifiers"):
            model = train_classifier(x, y, NUM_CLASSES, seed, self.protocol.classifier)
            self.accuracy[row].append(accuracy(model, self.x_test, self.y_test))

    def run_seed(self, seed: int) -> None:
        """The four rows for one seed, in the protocol's order."""
        from .synth import sample_labelled

        p, x_train, y_train = self.protocol, self.x_train, self.y_train
        self.log(f"seed {seed}: real ({len(x_train)} images)")
        self.fit_and_test("real", x_train, y_train, seed)

        with self.timed("synthesis"):
            synth, synth_labels = sample_labelled(self.gen, p.per_class, seed, p.truncation)
        self.log(f"seed {seed}: synthetic only ({len(synth)} images from {self.gen.path.name})")
        self.fit_and_test("synthetic", to_input(synth), torch.from_numpy(synth_labels), seed)

        idx = few_shot_indices(y_train, p.k, seed, NUM_CLASSES)
        self.log(f"seed {seed}: real, {p.k} per class")
        self.fit_and_test("real-k", x_train[idx], y_train[idx], seed)

        self.log(f"seed {seed}: few-shot GAN on {len(idx)} images, {p.gan_iterations} iterations")
        with self.timed("few_shot_gans"):
            few = train_few_shot_gan(self.x_gan[idx], y_train[idx], self.gan_info, p.gan_iterations, seed,
                                     self.runs_dir / f"few-shot-seed{seed}", self.progress)
        with self.timed("synthesis"):
            few_images, few_labels = _sample_recipe(few, p.per_class, NUM_CLASSES, 1000 + seed)
        self.log(f"seed {seed}: real {p.k} per class + {len(few_images)} synthetic")
        self.fit_and_test("real-k+synthetic", torch.cat([x_train[idx], to_input(few_images)]),
                          torch.cat([y_train[idx], torch.from_numpy(few_labels)]), seed)


def run_protocol(model: str | Path, protocol: Protocol, seeds: list[int], runs_dir: str | Path, *,
                 progress: bool = True) -> dict[str, Any]:
    """Run the protocol for each seed; return its figures (rows, CAS, gain, timings)."""
    from .synth import _sha256

    started = time.perf_counter()
    run = Run(model, protocol, Path(runs_dir), progress)
    for seed in seeds:
        run.run_seed(seed)
    rows = run.accuracy
    cas = [s / r for s, r in zip(rows["synthetic"], rows["real"])]
    gain = [100.0 * (a - b) for a, b in zip(rows["real-k+synthetic"], rows["real-k"])]
    n_synth = protocol.per_class * NUM_CLASSES
    return {
        "dataset": "digits", "split": "test", "images": len(run.x_test),
        "model": run.gen.path.name, "model_sha256": _sha256(run.gen.path), "seeds": list(seeds),
        "setup": protocol.to_dict(),
        "training_images": {"real": len(run.x_train), "synthetic": n_synth, "real-k": protocol.k * NUM_CLASSES,
                            "real-k+synthetic": protocol.k * NUM_CLASSES + n_synth},
        "accuracy": {row: _stats(values) for row, values in rows.items()},
        "cas": _stats(cas), "gain_points": _stats(gain),
        "targets": {**TARGETS, "cas_met": statistics.fmean(cas) >= TARGETS["cas"],
                    "gain_met": statistics.fmean(gain) >= TARGETS["gain_points"]},
        "seconds": {**{k: round(v, 1) for k, v in run.seconds.items()},
                    "total": round(time.perf_counter() - started, 1)},
        "torch_threads": torch.get_num_threads(),
    }
