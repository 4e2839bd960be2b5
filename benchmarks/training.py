"""Throughput of artgan's trainer against a bare PyTorch loop, and of the data pipeline alone.

The bare loop is written here by hand: the same DCGAN networks (the plugin's model classes), the
same batch size, Adam settings and non-saturating loss, with the whole dataset pre-loaded as one
tensor and batches taken by indexing it: the least a training loop can do. Our trainer runs the
`dcgan` recipe on the `stacked-digits` dataset through its DataLoader, with its logging, sample
diversity checks and non-finite guards (timed as the difference of two end-to-end runs, so set-up
and the final checkpoint are left out but all per-iteration and periodic work is counted). Runs are interleaved (alternating which goes first) and repeated; medians are reported.

    python benchmarks/training.py                       # CPU: this table alone, a few minutes
    python benchmarks/training.py --threads 1 --iterations 100
    python benchmarks/training.py --device cuda --iterations 400

Targets: trainer >= 0.95x the bare loop; data pipeline >= 5x what training consumes.

The second table: training speed by precision and layout, bf16 autocast against fp32 and
channels_last against NCHW, for each reference architecture at its reference size. Each reference
pipeline's train stage is built exactly as ``artgan run`` builds it (dataset, recipe, batch size,
image size); full training iterations (forward, backward, optimiser step) run on copies of the recipe in
the four combinations, interleaved and repeated; the median images/s counts. Each recipe first
trains ``--settle`` iterations itself, untimed, so that what a run does only in its first iterations is not
counted as the training speed (the style recipe measures the photos' own distances to the painting
over its first 16 batches: about a quarter of its iteration time then). The last column is what
``precision: auto`` picks from the same timings (artgan.precision).

    python benchmarks/training.py --table precision --data ../shared/data
    python benchmarks/training.py --table precision --only inpaint
    python benchmarks/training.py --table all           # both tables: well over 10 minutes on 2 cores

Targets: bf16 >= 1.5x fp32 in training images/s for the inpainting and style networks at their
training sizes; auto never slower than fp32 for any architecture.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: (label, pipeline, overrides): each architecture at its reference size
REFERENCE = [
    ("dcgan (quickstart)", "pipelines/quickstart.yaml", []),
    ("dcgan+SN (stacked digits)", "pipelines/stacked-digits.yaml", ["train.dataset.count=2000"]),
    ("inpainting network", "pipelines/inpaint.yaml", ["train.num_workers=0"]),
    ("style generator", "pipelines/style-starry-night.yaml", ["train.num_workers=0"]),
    ("superres x2", "pipelines/superres-x2-psnr.yaml", ["train.num_workers=0"]),
]
COMBOS = [(False, False), (False, True), (True, False), (True, True)]  # (bf16, channels_last)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=100, help="timed iterations per run (after warm-up)")
    ap.add_argument("--warmup", type=int, default=50, help="a multiple of 50 (the trainer logs every 50)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--width", type=int, default=32, help="DCGAN g_width = d_width")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    # the precision table trains five reference networks at their sizes (over 10 minutes on 2 CPU
    # cores): asked for by name, so a bare run finishes in a few minutes
    ap.add_argument("--table", choices=("all", "trainer", "precision"), default="trainer",
                    help="trainer (default, a few minutes), precision (the reference networks, long) or all")
    ap.add_argument("--precision-iterations", type=int, default=4, help="timed iterations per combination and repeat")
    ap.add_argument("--settle", type=int, default=16,
                    help="precision table: untimed training iterations of each recipe before its copies are timed")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"),
                    help="the reference data folder (BSDS400, BSD68, style/) for the precision table")
    ap.add_argument("--only", default="", help="precision table: architectures whose label contains this")
    args = ap.parse_args()
    if args.warmup % 50 or args.iterations % 50:
        ap.error("--warmup and --iterations must be multiples of 50 (the trainer's log interval)")
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)

    from artgan.plugins import get_registry
    from artgan.train import pick_device

    registry = get_registry()
    device = pick_device(args.device)
    if args.table in ("all", "trainer"):
        trainer_table(registry, device, args)
    if args.table in ("all", "precision"):
        precision_table(registry, device, args)


def trainer_table(registry, device, args) -> None:
    import torch
    dataset = registry.create("dataset", "stacked-digits", image_size=args.image_size, count=20000)
    arch = dict(latent_dim=100, g_width=args.width, d_width=args.width)

    bare, ours, data = [], [], []
    for r in range(args.repeats):
        if r % 2 == 0:  # alternate which runs first, so a drift in the machine's load cancels out
            bare.append(bare_loop(dataset, arch, args, device, seed=r))
            ours.append(our_trainer(registry, dataset, arch, args, device, seed=r))
        else:
            ours.append(our_trainer(registry, dataset, arch, args, device, seed=r))
            bare.append(bare_loop(dataset, arch, args, device, seed=r))
        data.append(data_pipeline(dataset, args, device))
        print(f"repeat {r + 1}: bare {bare[-1]:.0f}, trainer {ours[-1]:.0f}, data {data[-1]:.0f} images/s",
              file=sys.stderr)
    # ratios of the runs made side by side (a noisy machine slows both), then their median
    trainer_ratio = statistics.median(o / b for o, b in zip(ours, bare))
    data_ratio = statistics.median(d / o for d, o in zip(data, ours))
    b, o, d = statistics.median(bare), statistics.median(ours), statistics.median(data)
    print(f"\nDCGAN {args.image_size}px, widths {args.width}, batch {args.batch_size}, {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.repeats} interleaved "
          f"repeats of {args.iterations} timed iterations; medians (ratios: median of the paired ratios)")
    print(f"{'what':<28} {'images/s':>10} {'ratio':>8}  target")
    print(f"{'bare PyTorch loop':<28} {b:>10.0f} {1.0:>8.2f}")
    best_ratio = max(ours) / max(bare)  # best of N, as timeit does: least disturbed by other load
    print(f"{'artgan trainer':<28} {o:>10.0f} {trainer_ratio:>8.2f}  >= 0.95 x bare   "
          f"{'ok' if trainer_ratio >= 0.95 else 'MISSED'} (best of {args.repeats}: {best_ratio:.2f})")
    print(f"{'data pipeline alone':<28} {d:>10.0f} {data_ratio:>8.2f}  >= 5 x trainer   "
          f"{'ok' if data_ratio >= 5 else 'MISSED'}")
    print("paired trainer/bare ratios: " + ", ".join(f"{o / b:.2f}" for o, b in zip(ours, bare)))


def bare_loop(dataset, arch, args, device, seed: int) -> float:
    """The least a DCGAN loop can do: pre-loaded data, index, forward, backward, optimiser step."""
    import torch
    import torch.nn.functional as F
    from artgan_gan.dcgan import DCGANDiscriminator, DCGANGenerator, _init_weights

    torch.manual_seed(seed)
    info = dataset.info
    G = DCGANGenerator(arch["latent_dim"], info.image_size, info.channels, arch["g_width"]).to(device)
    D = DCGANDiscriminator(info.image_size, info.channels, arch["d_width"]).to(device)
    G.apply(_init_weights), D.apply(_init_weights)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))]).to(device)
    bs = args.batch_size

    def iteration() -> None:
        real = images[torch.randint(0, len(images), (bs,), device=device)]
        with torch.no_grad():
            fake = G(torch.randn(bs, arch["latent_dim"], device=device))
        d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.softplus(-D(G(torch.randn(bs, arch["latent_dim"], device=device)))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    for _ in range(args.warmup):
        iteration()
    _sync(device)
    t = time.perf_counter()
    for _ in range(args.iterations):
        iteration()
    _sync(device)
    return args.iterations * bs / (time.perf_counter() - t)


def our_trainer(registry, dataset, arch, args, device, seed: int) -> float:
    """artgan's train() with its defaults (log every 50 iterations with a sample-diversity check,
    non-finite guards), timed between two of its own log callbacks: from the end of the warm-up
    to the end of the last iteration, so all per-iteration and periodic work is counted and set-up and the
    final checkpoint are not."""
    import torch

    from artgan.train import TrainOptions, train

    torch.manual_seed(seed)
    recipe = registry.create("architecture", "dcgan", info=dataset.info, loss=None, **arch)
    stamps: dict[int, float] = {}

    def on_metrics(iteration: int, metrics: dict) -> None:
        _sync(device)
        stamps[iteration] = time.perf_counter()

    with tempfile.TemporaryDirectory() as folder:
        opts = TrainOptions(iterations=args.warmup + args.iterations, batch_size=args.batch_size, seed=seed,
                            device=str(device), log_every=50, checkpoint_every=10**9, sample_count=16)
        train(recipe, dataset, folder, opts, recipe_config={}, progress=False, on_metrics=on_metrics)
    return args.iterations * args.batch_size / (stamps[args.warmup + args.iterations] - stamps[args.warmup])


def data_pipeline(dataset, args, device) -> float:
    """The trainer's batches (seeded sampler, DataLoader, collation, transfer) with no model."""
    from artgan.data import batches

    it = batches(dataset, args.batch_size, seed=0, pin_memory=device.type == "cuda")
    for _ in range(5):
        next(it)
    n = max(args.iterations, 100)
    t = time.perf_counter()
    for _ in range(n):
        b = {k: v.to(device, non_blocking=True) for k, v in next(it).items()}
    _sync(device)
    return n * args.batch_size / (time.perf_counter() - t)


def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def precision_table(registry, device, args) -> None:
    import torch
    from artgan.data import batches
    from artgan.pipeline import build_training, load_pipeline
    from artgan.precision import choose_precision, cpu_has_native_bf16

    rows = []
    for label, path, overrides in REFERENCE:
        if args.only and args.only not in label:
            continue
        text = (ROOT / path).read_text().replace("../shared/data", args.data)
        pipeline = load_pipeline(text=text, overrides=overrides, registry=registry)
        spec = next(s for kind, s in pipeline.stages if kind == "train")
        dataset, recipe, _, options = build_training(spec, pipeline.seed, registry)
        batch = next(batches(dataset, options.batch_size, options.seed))
        train_iterations(recipe, batch, device, False, False, args.settle)  # past the first iterations' one-off work
        rates: dict[tuple[bool, bool], list[float]] = {c: [] for c in COMBOS}
        for r in range(args.repeats):
            order = COMBOS if r % 2 == 0 else COMBOS[::-1]  # a drift in the machine's load cancels out
            for combo in order:
                rates[combo].append(images_per_s(recipe, batch, device, *combo, args.precision_iterations))
        median = {c: statistics.median(v) for c, v in rates.items()}
        choice = choose_precision(device, "auto", None, lambda bf16, cl: 1.0 / median[bf16, cl])
        rows.append((label, options.batch_size, dataset.info.image_size, median, choice))
        print(f"{label}: " + ", ".join(f"{k}: {v:.1f}" for k, v in _named(median).items()) + " images/s",
              file=sys.stderr)

    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_has_native_bf16()}; "
          f"median of {args.repeats} interleaved repeats of {args.precision_iterations} training iterations; images/s")
    head = (f"{'architecture':<27} {'batch':>5} {'px':>4} {'fp32 NCHW':>10} {'fp32 CL':>8} {'bf16 NCHW':>10} "
            f"{'bf16 CL':>8} {'bf16/fp32':>9} {'CL/NCHW':>8} {'auto/fp32':>9}  auto picks")
    print(head)
    for label, bs, px, m, choice in rows:
        best_fp32 = max(m[False, False], m[False, True])
        best_bf16 = max(m[True, False], m[True, True])
        best_nchw = max(m[False, False], m[True, False])
        best_cl = max(m[False, True], m[True, True])
        auto = m[choice.bf16, choice.channels_last]
        pick = f"{'bf16' if choice.bf16 else 'fp32'} {'channels_last' if choice.channels_last else 'NCHW'}"
        print(f"{label:<27} {bs:>5} {px:>4} {m[False, False]:>10.1f} {m[False, True]:>8.1f} {m[True, False]:>10.1f} "
              f"{m[True, True]:>8.1f} {best_bf16 / best_fp32:>8.2f}x {best_cl / best_nchw:>7.2f}x "
              f"{auto / m[False, False]:>8.2f}x  {pick}")
    print("bf16/fp32: best layout of each; CL/NCHW: best precision of each; auto/fp32: against fp32 NCHW "
          "(the CPU default before precision: auto)")


def images_per_s(recipe, batch, device, bf16: bool, channels_last: bool, iterations: int) -> float:
    """Full training iterations on a copy of ``recipe`` (the original is not trained further)."""
    probe = copy.deepcopy(recipe)
    train_iterations(probe, batch, device, bf16, channels_last, 1)  # warm-up: kernel selection, allocations, Adam's state
    t = time.perf_counter()
    train_iterations(probe, batch, device, bf16, channels_last, iterations)
    _sync(device)
    n = next(iter(batch.values())).shape[0]
    return iterations * n / (time.perf_counter() - t)


def train_iterations(recipe, batch, device, bf16: bool, channels_last: bool, iterations: int) -> None:
    """``iterations`` training iterations of ``recipe`` (every phase: forward, backward, optimiser step) on ``batch``."""
    import torch
    from artgan.precision import autocast
    from artgan.recipe import run_phases

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for m in recipe.modules.values():
        m.to(memory_format=fmt)
    inputs = {k: v.contiguous(memory_format=fmt) if v.dim() == 4 and v.is_floating_point() else v
              for k, v in batch.items()}
    context = autocast(device, bf16)
    phases = recipe.phases()
    for _ in range(iterations):
        run_phases(phases, inputs, autocast=context)


def _named(m):
    return {f"{'bf16' if b else 'fp32'}/{'CL' if c else 'NCHW'}": v for (b, c), v in m.items()}


if __name__ == "__main__":
    main()
