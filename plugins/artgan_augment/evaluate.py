"""``artgan evaluate augment``: what a fixed classifier learns from synthetic data.

The protocol (docs/training.md, "GANs for data augmentation"), on scikit-learn's digits:

- Held-out split: the ``digits`` dataset's ``split: test``, the last 450 of the 1797 images;
  everything trains on ``split: train``, the first 1347. Every row is tested on the same 450.
- The classifier: :mod:`.classifier` (a small CNN, a fixed number of Adam steps, the same light
  shift augmentation), identical in every row; only its training images change.
- Rows, for each seed:
  1. ``real``: the 1347 training digits;
  2. ``synthetic``: ``per_class`` images per class from ``--model``, a conditional generator
     trained on the training split (the shipped ``digits-cgan``), drawn exactly as ``artgan
     synth`` writes them (seeded, 8-bit);
  3. ``real-k``: ``k`` real digits per class, picked by the seed from the training split;
  4. ``real-k+synthetic``: those ``k`` per class plus ``per_class`` synthetic per class from a
     conditional GAN trained here on those ``k`` per class alone, with DiffAugment
     (:data:`FEW_SHOT_GAN`), through artgan's own trainer into ``OUT/few-shot-seed<S>/``.
- Reported: accuracy per row (mean and sample standard deviation over the seeds), the CAS ratio
  (Ravuri & Vinyals, 2019: synthetic-only accuracy / real accuracy, per seed) and the gain of row
  4 over row 3 in accuracy points.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Protocol:
    k: int = 10
    per_class: int = 200  # synthetic images per class in rows 2 and 4
    gan_steps: int = 1500  # training steps of each few-shot GAN
    truncation: float | None = None  # of the synthetic latents (None: plain standard normal)
    classifier: ClassifierRecipe = field(default_factory=ClassifierRecipe)

    @classmethod
    def default(cls) -> "Protocol":
        return cls()

    def replace(self, *, k: int | None = None, per_class: int | None = None, gan_steps: int | None = None,
                classifier_steps: int | None = None) -> "Protocol":
        """The protocol with the given values changed (None keeps the default)."""
        out = self
        if k is not None:
            out = replace(out, k=k)
        if per_class is not None:
            out = replace(out, per_class=per_class)
        if gan_steps is not None:
            out = replace(out, gan_steps=gan_steps)
        if classifier_steps is not None:
            out = replace(out, classifier=replace(out.classifier, steps=classifier_steps))
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


def train_few_shot_gan(images: torch.Tensor, labels: torch.Tensor, info, steps: int, seed: int,
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
    options = TrainOptions(steps=steps, batch_size=min(cfg["batch_size"], len(images)), seed=seed,
                           log_every=max(1, steps // 10), checkpoint_every=steps, sample_count=100,
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


def evaluate(model: str | Path, protocol: Protocol, seeds: list[int], out: str | Path, *,
             progress: bool = True) -> dict[str, Any]:
    """Run the protocol for each seed; return the results (rows, CAS, gain, timings)."""
    from artgan.runtime import Generator

    from .synth import _sha256, class_names, sample_labelled

    started = time.perf_counter()
    out = Path(out)
    gen = Generator(model, threads=1)
    names = class_names(gen)
    if names != [str(d) for d in range(10)]:
        raise ArtganError(f"{gen.path.name}: classes {names} are not the digits 0-9; evaluate augment "
                          f"needs a conditional generator trained on the digits dataset (split: train)")
    x_train, y_train, _ = digits_split("train", 16)
    x_test, y_test, _ = digits_split("test", 16)
    gan_size = FEW_SHOT_GAN["image_size"]
    x_gan, _, gan_info = digits_split("train", gan_size)
    k_classes = 10
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    recipe = protocol.classifier
    rows: dict[str, list[float]] = {"real": [], "synthetic": [], "real-k": [], "real-k+synthetic": []}
    seconds: dict[str, float] = {"classifiers": 0.0, "few_shot_gans": 0.0, "synthesis": 0.0}

    def fit_and_test(x: torch.Tensor, y: torch.Tensor, seed: int) -> float:
        t = time.perf_counter()
        acc = accuracy(train_classifier(x, y, k_classes, seed, recipe), x_test, y_test)
        seconds["classifiers"] += time.perf_counter() - t
        return acc

    for seed in seeds:
        log(f"seed {seed}: real ({len(x_train)} images)")
        rows["real"].append(fit_and_test(x_train, y_train, seed))

        t = time.perf_counter()
        synth, synth_labels = sample_labelled(gen, protocol.per_class, seed, protocol.truncation)
        seconds["synthesis"] += time.perf_counter() - t
        log(f"seed {seed}: synthetic only ({len(synth)} images from {gen.path.name})")
        rows["synthetic"].append(fit_and_test(to_input(synth), torch.from_numpy(synth_labels), seed))

        idx = few_shot_indices(y_train, protocol.k, seed, k_classes)
        log(f"seed {seed}: real, {protocol.k} per class")
        rows["real-k"].append(fit_and_test(x_train[idx], y_train[idx], seed))

        log(f"seed {seed}: few-shot GAN on {len(idx)} images, {protocol.gan_steps} steps")
        t = time.perf_counter()
        few = train_few_shot_gan(x_gan[idx], y_train[idx], gan_info, protocol.gan_steps, seed,
                                 out / f"few-shot-seed{seed}", progress)
        seconds["few_shot_gans"] += time.perf_counter() - t
        t = time.perf_counter()
        few_images, few_labels = _sample_recipe(few, protocol.per_class, k_classes, 1000 + seed)
        seconds["synthesis"] += time.perf_counter() - t
        log(f"seed {seed}: real {protocol.k} per class + {len(few_images)} synthetic")
        rows["real-k+synthetic"].append(fit_and_test(torch.cat([x_train[idx], to_input(few_images)]),
                                                     torch.cat([y_train[idx], torch.from_numpy(few_labels)]),
                                                     seed))

    cas = [s / r for s, r in zip(rows["synthetic"], rows["real"])]
    gain = [100.0 * (a - b) for a, b in zip(rows["real-k+synthetic"], rows["real-k"])]
    n_synth = protocol.per_class * k_classes
    images = {"real": len(x_train), "synthetic": n_synth, "real-k": protocol.k * k_classes,
              "real-k+synthetic": protocol.k * k_classes + n_synth}
    accuracy_stats = {name: _stats(values) for name, values in rows.items()}
    result = {
        "task": "augment", "dataset": "digits", "split": "test", "images": len(x_test),
        "model": gen.path.name, "model_sha256": _sha256(gen.path), "seeds": seeds,
        "setup": protocol.to_dict(), "training_images": images,
        "accuracy": accuracy_stats, "cas": _stats(cas), "gain_points": _stats(gain),
        "targets": {**TARGETS, "cas_met": statistics.fmean(cas) >= TARGETS["cas"],
                    "gain_met": statistics.fmean(gain) >= TARGETS["gain_points"]},
        "seconds": {**{k: round(v, 1) for k, v in seconds.items()},
                    "total": round(time.perf_counter() - started, 1)},
        "torch_threads": torch.get_num_threads(),
    }
    # the shape artgan.cards renders as a table: one "method" per row of training data
    result["metrics"] = {"images": {"label": "training images", "format": "d"},
                         "accuracy": {"label": "test accuracy %", "format": ".1f"},
                         "sd": {"label": "± sd", "format": ".1f"}}
    result["methods"] = {title: {"images": images[name], "accuracy": 100 * accuracy_stats[name]["mean"],
                                 "sd": 100 * accuracy_stats[name]["std"]}
                         for name, title in row_titles(result).items()}
    result["protocol"] = (f"A fixed small CNN trained on each set of images, tested on the {len(x_test)} "
                          f"held-out digits (the last 450 of scikit-learn's 1797); mean and sample standard "
                          f"deviation over seeds {', '.join(map(str, seeds))} (docs/training.md, GANs for data "
                          f"augmentation).")
    result["note"] = "\n".join(f"- {line}" for line in summary_lines(result))
    return result


def row_titles(result: dict[str, Any]) -> dict[str, str]:
    k, n = result["setup"]["k"], result["training_images"]["synthetic"]
    return {"real": f"real: all {result['training_images']['real']} training digits",
            "synthetic": f"synthetic only ({result['model']})",
            "real-k": f"real: {k} per class",
            "real-k+synthetic": f"real {k}/class + {n} synthetic from a GAN on those {k}/class"}


def summary_lines(result: dict[str, Any]) -> list[str]:
    c, g, t, k = result["cas"], result["gain_points"], result["targets"], result["setup"]["k"]
    return [f"CAS (synthetic only / real): {c['mean']:.3f} ± {c['std']:.3f} "
            f"(target >= {t['cas']}: {'met' if t['cas_met'] else 'NOT met'})",
            f"gain of real {k}/class + synthetic over real {k}/class alone: {g['mean']:+.2f} ± {g['std']:.2f} "
            f"accuracy points (target >= {t['gain_points']}: {'met' if t['gain_met'] else 'NOT met'})",
            f"{result['seconds']['total']:.0f} s ({result['torch_threads']} torch thread(s) per model; "
            f"classifiers {result['seconds']['classifiers']:.0f} s, few-shot GANs "
            f"{result['seconds']['few_shot_gans']:.0f} s)"]


def format_table(result: dict[str, Any]) -> str:
    """The results as the terminal shows them: the table of artgan.evaluation, then CAS and gain."""
    from artgan.evaluation import format_table as core_table

    return core_table(result) + "\n\n" + "\n".join(summary_lines(result))
