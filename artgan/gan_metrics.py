"""GAN metrics that need no downloaded network.

The feature network is a small digit classifier that artgan trains itself, in seconds, on
scikit-learn's bundled digits (deterministic: one thread, fixed seed) and caches by a hash of its
training recipe. With it:

- **mode coverage** (VEEGAN, Srivastava et al., 2017; PacGAN, Lin et al., 2018): each generated
  image is classified (each colour channel separately for ``stacked-digits``: 1000 modes; the
  grey image for ``digits``: 10); we report how many modes the samples cover and the KL divergence
  of their mode histogram from the uniform distribution, KL(generated || uniform);
- **Frechet distance** between real and generated feature distributions (the FID formula in
  this classifier's 128-d feature space, concatenated per channel for stacked digits);
- **precision and recall** (Kynkaenniemi et al., 2019): k-nearest-neighbour manifolds, k=3.

Every result carries its provenance (sample counts, the feature network and the SHA-256 of its
weights, a hash of the reference statistics), so figures are comparable only when those match.
Where the user supplies Inception weights as a local TorchScript file (NVlabs'
``inception-2015-12-05.pt``, as used by StyleGAN2-ADA/3), FID is reported too.

Images enter as numpy float32 NHWC in [0, 1], the runtime's contract.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ArtganError
from .files import atomic_path

CLASSIFIER_SIZE = 16  # the classifier sees 16x16 grey digits (the originals are 8x8)
CLASSIFIER_RECIPE = {"version": 1, "arch": "conv16-32-64/fc128", "epochs": 8, "batch": 64,
                     "lr": 2e-3, "seed": 0, "test_split": 300, "render_sizes": [16, 32]}
MODE_DATASETS = {"stacked-digits": "per-channel", "digits": "grey", "mnist": "grey"}
#: datasets whose feature network is trained on their own labelled images (cached by a hash of
#: them); the others use the classifier trained on scikit-learn's digits, which MNIST's thin,
#: centred strokes do not resemble (it labels 15% of MNIST correctly)
OWN_CLASSIFIER_DATASETS = {"mnist": 1000}  # name -> held-out images for its reported accuracy


# -- the digits as images ---------------------------------------------------------------------------

def digit_images(size: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 digits as uint8 (N, size, size), upscaled bicubic, and their labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = (digits.images * (255.0 / 16.0)).astype(np.uint8)
    big = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC)) for im in small])
    return big, digits.target.astype(np.int64)


def to_classifier_input(grey: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) in [-1, 1] -> (N, 1, 16, 16): area-averaged down (or bilinear up)."""
    if grey.shape[-1] == CLASSIFIER_SIZE:
        return grey
    if grey.shape[-1] > CLASSIFIER_SIZE:
        return F.interpolate(grey, size=CLASSIFIER_SIZE, mode="area")
    return F.interpolate(grey, size=CLASSIFIER_SIZE, mode="bilinear", align_corners=False)


# -- the feature network ----------------------------------------------------------------------------

class DigitClassifier(nn.Module):
    """16x16 grey digit -> 10 logits; :meth:`features` is the 128-d penultimate layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 8x8
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4x4
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 2x2
            nn.Flatten(), nn.Linear(256, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def weights_hash(module: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_dir() -> Path:
    """``ARTGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/artgan``, else ``~/.cache/artgan``."""
    if os.environ.get("ARTGAN_CACHE_DIR"):
        return Path(os.environ["ARTGAN_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "artgan"


@contextlib.contextmanager
def _one_thread_seeded(seed: int):
    # one thread: the same float summation order, so the same weights, run after run
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


def train_digit_classifier(recipe: dict[str, Any] = CLASSIFIER_RECIPE,
                           data: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[DigitClassifier, dict[str, Any]]:
    """Train the classifier on the CPU (seconds) and report its held-out accuracy: on scikit-learn's
    digits at each of the recipe's render sizes, or on ``data`` (grey images (N, 1, H, W) in
    [-1, 1], labels) when given."""
    sets = []
    if data is not None:
        sets.append((to_classifier_input(data[0].float()), data[1].long()))
    for size in recipe["render_sizes"] if data is None else ():
        images, labels = digit_images(size)
        x = torch.from_numpy(images).float().div(127.5).sub(1).unsqueeze(1)
        sets.append((to_classifier_input(x), torch.from_numpy(labels)))
    n = len(sets[0][1])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(recipe["seed"]))
    test_idx, train_idx = perm[:recipe["test_split"]], perm[recipe["test_split"]:]
    x_train = torch.cat([x[train_idx] for x, _ in sets])
    y_train = torch.cat([y[train_idx] for _, y in sets])
    with _one_thread_seeded(recipe["seed"]):
        model = DigitClassifier()
        opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe["epochs"])
        for _ in range(recipe["epochs"]):
            order = torch.randperm(len(x_train))
            for lo in range(0, len(order), recipe["batch"]):
                idx = order[lo:lo + recipe["batch"]]
                x = _jitter(x_train[idx])
                loss = F.cross_entropy(model(x), y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            acc = [float((model(x[test_idx]).argmax(1) == y[test_idx]).float().mean()) for x, y in sets]
    return model, {"test_accuracy": min(acc), "test_images": int(len(test_idx))}


def _jitter(x: torch.Tensor) -> torch.Tensor:
    """Random shifts of up to 1 pixel and contrast changes: generated digits are not centred
    or scaled quite like the originals."""
    n = x.shape[0]
    padded = F.pad(x, [1, 1, 1, 1], value=-1.0)
    dy, dx = torch.randint(0, 3, (2,))
    x = padded[:, :, dy:dy + CLASSIFIER_SIZE, dx:dx + CLASSIFIER_SIZE]
    gain = 0.8 + 0.4 * torch.rand(n, 1, 1, 1)
    return ((x + 1) * gain - 1).clamp(-1, 1)


def load_digit_classifier(dataset=None) -> tuple[DigitClassifier, dict[str, Any]]:
    """The cached classifier (trained and cached on first use) and its description: the one trained
    on scikit-learn's digits, or for a dataset in :data:`OWN_CLASSIFIER_DATASETS`, one trained on
    that dataset's own labelled images."""
    recipe, data, stem = CLASSIFIER_RECIPE, None, "digit-classifier"
    if dataset is not None and dataset.info.name in OWN_CLASSIFIER_DATASETS:
        x = torch.stack([dataset[i]["image"][:1] for i in range(len(dataset))])
        y = torch.stack([torch.as_tensor(dataset[i]["label"]) for i in range(len(dataset))])
        digest = hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()[:16]
        recipe = {**CLASSIFIER_RECIPE, "render_sizes": [], "dataset": dataset.info.name, "data_sha256": digest,
                  "test_split": OWN_CLASSIFIER_DATASETS[dataset.info.name]}
        data, stem = (x, y), f"{dataset.info.name}-classifier"
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{stem}-{key}.pt"
    if path.exists():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model = DigitClassifier()
            model.load_state_dict(saved["state"])
            info = saved["info"]
        except Exception:  # a damaged cache file is rebuilt, never trusted
            path.unlink(missing_ok=True)
            return load_digit_classifier(dataset)
    else:
        model, info = train_digit_classifier(recipe, data)
        info = {**info, "recipe": recipe, "recipe_key": key}
        with atomic_path(path) as tmp:
            torch.save({"state": model.state_dict(), "info": info}, tmp)
    model.eval().requires_grad_(False)
    name = f"artgan {recipe.get('dataset', 'digit')} classifier v{CLASSIFIER_RECIPE['version']}"
    return model, {**info, "name": name,
                   "weights_sha256": weights_hash(model), "cache": str(path)}


# -- features ---------------------------------------------------------------------------------------

@torch.no_grad()
def digit_features(images: np.ndarray, classifier: DigitClassifier, layout: str,
                   batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """float NHWC [0, 1] -> (features (N, 128*k), predicted digits (N, k)); k = channels for
    ``per-channel`` layout, 1 for ``grey``."""
    feats, preds = [], []
    for lo in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[lo:lo + batch])).float().permute(0, 3, 1, 2) * 2 - 1
        planes = [x[:, c:c + 1] for c in range(x.shape[1])] if layout == "per-channel" else [x.mean(1, keepdim=True)]
        f = [classifier.features(to_classifier_input(p)) for p in planes]
        feats.append(torch.cat(f, dim=1).numpy())
        preds.append(torch.stack([classifier.head(fi).argmax(1) for fi in f], dim=1).numpy())
    return np.concatenate(feats).astype(np.float64), np.concatenate(preds)


def mode_stats(digits: np.ndarray) -> dict[str, Any]:
    """Digits per image (N, k) -> modes covered of 10^k and KL(histogram || uniform)."""
    k = digits.shape[1]
    num_modes = 10 ** k
    ids = (digits * (10 ** np.arange(k - 1, -1, -1))).sum(1)
    counts = np.bincount(ids, minlength=num_modes).astype(np.float64)
    p = counts / counts.sum()
    nz = p > 0
    kl = float(np.sum(p[nz] * np.log(p[nz] * num_modes)))
    return {"modes": int(nz.sum()), "num_modes": num_modes, "kl": kl}


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) (the FID formula, Heusel et al., 2017)."""
    import warnings

    from scipy import linalg

    with warnings.catch_warnings():  # singular products are handled just below
        warnings.simplefilter("ignore")
        # no `disp=`: newer SciPy removed it, and the result is checked for finiteness below
        covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # near-singular product: nudge the diagonals (pytorch-fid)
        off = np.eye(s1.shape[0]) * 1e-6
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(0), np.cov(features, rowvar=False)


def stats_hash(mu: np.ndarray, sigma: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(mu, np.float64).tobytes()
                          + np.ascontiguousarray(sigma, np.float64).tobytes()).hexdigest()


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaenniemi et al., 2019): precision is the share of fake
    samples inside the real manifold (union of balls reaching each real point's k-th neighbour),
    recall the share of real samples inside the fake manifold."""
    r, f = torch.from_numpy(real).float(), torch.from_numpy(fake).float()

    def radii(x: torch.Tensor) -> torch.Tensor:
        out = []
        for lo in range(0, len(x), 1000):
            d = torch.cdist(x[lo:lo + 1000], x)
            out.append(d.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at distance 0
        return torch.cat(out)

    def coverage(points: torch.Tensor, manifold: torch.Tensor, rad: torch.Tensor) -> float:
        inside = []
        for lo in range(0, len(points), 1000):
            d = torch.cdist(points[lo:lo + 1000], manifold)
            inside.append((d <= rad[None]).any(dim=1))
        return float(torch.cat(inside).float().mean())

    return coverage(f, r, radii(r)), coverage(r, f, radii(f))


# -- Inception (user-supplied) ----------------------------------------------------------------------

def load_inception(path: str | Path) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    """A TorchScript Inception feature extractor from a local file, called NVlabs-style:
    ``net(uint8 NCHW RGB, return_features=True)`` -> (N, 2048). Nothing is downloaded."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ArtganError(f"{path}: Inception weights not found (a TorchScript file such as "
                          f"inception-2015-12-05.pt)")
    try:
        net = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:
        raise ArtganError(f"{path}: not a TorchScript Inception model ({str(exc).splitlines()[0]})") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    @torch.no_grad()
    def features(images: np.ndarray, batch: int = 100) -> np.ndarray:
        out = []
        for lo in range(0, len(images), batch):
            x = torch.from_numpy(np.round(np.clip(images[lo:lo + batch], 0, 1) * 255).astype(np.uint8))
            x = x.permute(0, 3, 1, 2)
            if x.shape[1] == 1:
                x = x.repeat(1, 3, 1, 1)
            out.append(net(x, return_features=True).double().numpy())
        return np.concatenate(out)

    return features, {"name": f"inception (TorchScript, {path.name})", "weights_sha256": digest}


# -- evaluation ---------------------------------------------------------------------------------------

def real_images(dataset, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` of the dataset's images (a seeded choice), float32 NHWC in [0, 1]."""
    idx = np.random.default_rng(seed).permutation(len(dataset))[:n]
    xs = torch.stack([dataset[int(i)]["image"] for i in idx])
    return ((xs.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()


class Evaluator:
    """Computes the metrics for one dataset; real-image statistics are computed once.

    ``evaluator(sample_fn)`` with ``sample_fn(n, seed)`` -> images returns
    ``{"metrics": {...}, "provenance": {...}}``.
    """

    def __init__(self, dataset, *, samples: int = 26000, real_samples: int = 26000,
                 pr_samples: int = 5000, seed: int = 0, inception: str | Path | None = None):
        info = dataset.info
        self.dataset_name = info.name
        self.layout = MODE_DATASETS.get(info.name)
        if self.layout is None and inception is None:
            raise ArtganError(f"no built-in metrics for dataset {info.name!r} (they exist for "
                              f"{', '.join(MODE_DATASETS)}); pass Inception weights for FID")
        self.samples, self.pr_samples, self.seed = samples, pr_samples, seed
        real = real_images(dataset, real_samples, seed=seed)
        self.provenance: dict[str, Any] = {
            "dataset": info.name, "image_size": info.image_size, "channels": info.channels,
            "samples": samples, "real_samples": len(real), "seed": seed}
        self.reference: dict[str, Any] = {}
        if self.layout is not None:
            self.classifier, cinfo = load_digit_classifier(dataset)
            feats, digits = digit_features(real, self.classifier, self.layout)
            self.real_feats = feats
            self.real_mu, self.real_sigma = stats(feats)
            self.reference = {f"real_{k}": v for k, v in mode_stats(digits).items() if k != "num_modes"}
            self.provenance.update({
                "feature_network": cinfo["name"], "feature_weights_sha256": cinfo["weights_sha256"],
                "classifier_test_accuracy": cinfo["test_accuracy"], "feature_layout": self.layout,
                "reference_stats_sha256": stats_hash(self.real_mu, self.real_sigma),
                "pr_k": 3, "mode_protocol": "VEEGAN/PacGAN: classify each image, count modes, "
                                            "KL(generated mode histogram || uniform)"})
        self.inception = None
        if inception is not None:
            self.inception, iinfo = load_inception(inception)
            ifeats = self.inception(real)
            self.inc_mu, self.inc_sigma = stats(ifeats)
            self.provenance.update({"inception": iinfo["name"], "inception_weights_sha256": iinfo["weights_sha256"],
                                    "inception_reference_sha256": stats_hash(self.inc_mu, self.inc_sigma)})

    def __call__(self, sample_fn: Callable[[int, int], np.ndarray]) -> dict[str, Any]:
        fake = sample_fn(self.samples, self.seed + 1)
        metrics: dict[str, Any] = {}
        if self.layout is not None:
            feats, digits = digit_features(fake, self.classifier, self.layout)
            metrics.update(mode_stats(digits))
            mu, sigma = stats(feats)
            metrics["fd"] = frechet_distance(mu, sigma, self.real_mu, self.real_sigma)
            m = min(self.pr_samples, len(feats), len(self.real_feats))
            rng = np.random.default_rng(self.seed)
            r_idx, f_idx = rng.permutation(len(self.real_feats))[:m], rng.permutation(len(feats))[:m]
            metrics["precision"], metrics["recall"] = precision_recall(self.real_feats[r_idx], feats[f_idx])
            pr_count = m
        if self.inception is not None:
            mu, sigma = stats(self.inception(fake))
            metrics["fid"] = frechet_distance(mu, sigma, self.inc_mu, self.inc_sigma)
        prov = dict(self.provenance)
        if self.layout is not None:
            prov["pr_samples"] = pr_count
        return {"metrics": metrics, "reference": dict(self.reference), "provenance": prov}


def evaluate_target(target: str | Path, *, samples: int = 26000, real_samples: int = 26000,
                    pr_samples: int = 5000, seed: int = 0, dataset_name: str | None = None,
                    inception: str | Path | None = None, device: str = "auto") -> dict[str, Any]:
    """Evaluate a run folder, a checkpoint or an exported ``.onnx`` generator (see ``artgan
    evaluate gan``). A run folder's result is also written to ``evaluation.json`` in it."""
    import inspect

    from .files import write_json
    from .plugins import get_registry

    registry = get_registry()
    target = Path(target)
    run_dir = target if target.is_dir() else None
    if target.suffix == ".onnx":
        from .runtime import Generator

        gen = Generator(target)
        meta = gen.metadata
        ds_name, ds_params = dataset_name or meta.get("dataset", ""), {}
        wanted = {"image_size": meta.get("image_size"), "channels": meta.get("channels")}
        sample_fn = lambda n, s: gen.generate(n, s, batch_size=500)
        what = {"model": str(target)}
    else:
        from .checkpoints import load_recipe
        from .train import checkpoint_path, pick_device, sample_images

        ckpt = checkpoint_path(target) if target.is_dir() else target
        dev = pick_device(device)
        recipe, state = load_recipe(ckpt, registry, device=dev)
        cfg = state["recipe"]
        ds_name, ds_params = dataset_name or cfg.get("dataset", ""), dict(cfg.get("dataset_params") or {})
        wanted = {"image_size": cfg["info"]["image_size"], "channels": cfg["info"]["channels"]}
        sample_fn = lambda n, s: sample_images(recipe, n, s, dev)
        what = {"checkpoint": str(ckpt), "train_iterations": int(state["iteration"])}
    try:
        reg = registry.get("dataset", ds_name)
    except ArtganError as exc:
        raise ArtganError(f"reference dataset: {exc}; name one with --dataset") from None
    accepted = inspect.signature(reg.factory).parameters
    params = {**{k: v for k, v in wanted.items() if k in accepted and v is not None}, **ds_params}
    dataset = registry.create("dataset", ds_name, **params)
    evaluator = Evaluator(dataset, samples=samples, real_samples=real_samples, pr_samples=pr_samples,
                          seed=seed, inception=inception)
    result = evaluator(sample_fn)
    result["provenance"].update(what)
    if run_dir is not None:
        write_json(run_dir / "evaluation.json", result)
    return result
