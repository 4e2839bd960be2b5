"""The ``artgan`` command line.

Start-up stays light: torch is imported only inside the commands that train or export, so
``artgan generate`` and ``artgan --help`` never pay for it. Domain errors become one ``Error:``
line and exit code 1; usage mistakes exit 2.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from .errors import ArtganError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def friendly_errors(fn):
    """Turn :class:`ArtganError` into a one-line ``click.ClickException``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ArtganError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.ClickException("interrupted; completed checkpoints and files are kept "
                                       "(continue with --resume)") from None

    return wrapper


def quiet_option(fn):
    return click.option("-q", "--quiet", is_flag=True, help="No progress bars or step logs.")(fn)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="artgan", prog_name="artgan")  # looked up only for --version
def cli():
    """artgan: compose GAN pipelines from plugins, train them in PyTorch and run the
    exported generators anywhere with onnxruntime.

    \b
    Quick start:
      artgan run pipelines/quickstart.yaml     train, export, generate
      artgan generate runs/quickstart/export/generator.onnx --n 64 --out grid.png
      artgan plugins                           what is installed and what it provides
    """


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("pipeline_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a pipeline value, e.g. --set train.steps=200 (repeatable).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: runs/NAME, or runs/NAME-2, ... if taken).")
@click.option("--runs", default="runs", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where new run folders are made.")
@click.option("--resume", is_flag=True,
              help="Continue the latest run of this pipeline (or --out) from its last checkpoint.")
@click.option("--dry-run", is_flag=True, help="Validate and print the resolved pipeline, run nothing.")
@quiet_option
@friendly_errors
def run(pipeline_file, overrides, out, runs, resume, dry_run, quiet):
    """Run a pipeline: its steps (train, export, generate, process) in order, into one run folder.

    \b
    Examples:
      artgan run pipelines/quickstart.yaml
      artgan run pipelines/quickstart.yaml --set train.steps=200 --out runs/short
      artgan run pipelines/quickstart.yaml --resume
    """
    from .pipeline import RunContext, dump_pipeline, latest_run_dir, load_pipeline, new_run_dir, run_pipeline
    from .plugins import get_plugin_manager, get_registry

    registry = get_registry()
    pipeline = load_pipeline(pipeline_file, overrides=list(overrides), registry=registry)
    if dry_run:
        click.echo(dump_pipeline(pipeline), nl=False)
        return
    if out is None:
        out = (latest_run_dir(runs, pipeline.name) if resume else None) or new_run_dir(runs, pipeline.name)
    elif not resume and (out / "checkpoints").exists():
        raise ArtganError(f"{out} already holds a run; add --resume to continue it, or choose another --out")
    log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    log(f"run folder: {out}")
    ctx = RunContext(run_dir=out, registry=registry, plugin_manager=get_plugin_manager(),
                     resume=resume, progress=not quiet, log=log)
    run_pipeline(pipeline, ctx)
    click.echo(str(out))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("checkpoint", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the .onnx file (a .card.json and .card.md are written beside it).")
@click.option("--opset", type=int, default=None, help="ONNX opset  [default: 20, the newest the exporter writes]")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True,
              help="fp16 halves the file and speeds up GPUs; inputs and outputs stay float32.")
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="Static int8 quantisation for CPUs, calibrated on inputs drawn as the model sees them.")
@click.option("--tolerance", type=float, default=None,
              help="Largest allowed |onnxruntime - PyTorch| on fresh random inputs  "
                   "[default: 1e-3 fp32, 5e-2 fp16, none for int8]")
@click.option("--min-psnr", type=float, default=None,
              help="Smallest allowed PSNR (dB) against PyTorch  [default: none fp32, 40 fp16, 30 int8]")
@click.option("--no-verify", is_flag=True, help="Skip the comparison with PyTorch (and keep what was exported).")
@click.option("--no-optimize", is_flag=True,
              help="Trace the layers as they are (by default upsample + 3x3 conv pairs become exactly "
                   "equivalent sub-pixel convolutions, faster on onnxruntime).")
@friendly_errors
def export(checkpoint, out, opset, precision, quantize, tolerance, min_psnr, no_verify, no_optimize):
    """Export a checkpoint's generator to ONNX and verify it against PyTorch.

    The model is exported in eval mode with a dynamic batch (and dynamic height and width for
    image-to-image models), carries its metadata (exports/README.md), and is refused, with the
    layer named, if it draws random numbers inside or mixes the samples of a batch.

    \b
    Examples:
      artgan export runs/quickstart/checkpoints/last.pt --out digits.onnx
      artgan export runs/quickstart/checkpoints/last.pt --out digits-fp16.onnx --precision fp16
      artgan export runs/quickstart/checkpoints/last.pt --out digits-int8.onnx --quantize int8
    """
    from .checkpoints import load_recipe
    from .export import DEFAULT_OPSET, export_onnx
    from .plugins import get_registry

    recipe, state = load_recipe(checkpoint, get_registry())
    card = export_onnx(recipe.export_spec(), out, opset=opset or DEFAULT_OPSET, precision=precision,
                       quantize=quantize, verify=not no_verify, tolerance=tolerance, min_psnr=min_psnr,
                       optimize=not no_optimize,
                       extra_metadata={"run": checkpoint.parent.parent.name, "train_steps": int(state["step"]),
                                       "architecture": state["recipe"]["architecture"]})
    v = card["verification"]
    if v.get("verified"):
        psnr = "identical" if v["psnr_db"] is None else f"PSNR {v['psnr_db']:.1f} dB"
        click.echo(f"{card['metadata']['precision']}: max |onnxruntime - pytorch| = {v['max_abs_diff']:.3g} "
                   f"({psnr}) on fresh random inputs", err=True)
    else:
        click.echo("not verified (--no-verify)", err=True)
    if card["int8_layers"] and not card["int8_layers"][0]:
        click.echo("warning: no layer could be quantised (onnxruntime's CPU kernels have no int8 transposed "
                   "convolution), so the int8 file is no faster; generators built from upsampling + "
                   "convolution (dcgan upsample: nearest) quantise", err=True)
    click.echo(str(out))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-n", "--n", "count", default=64, show_default=True, help="How many images.")
@click.option("--seed", default=0, show_default=True, help="Seed of the latents: same seed, same images.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="A grid image (.png/.jpg), an animated .gif (with --interpolate), or a folder for one "
                   "PNG per image  [default: grid.png, or walk.gif with --interpolate]")
@click.option("--truncation", type=float, default=None,
              help="Redraw latent values beyond +-T: lower is cleaner, less varied (e.g. 0.7).")
@click.option("--interpolate", "seeds", default=None, metavar="SEED,SEED,...",
              help="Walk through latent space from seed to seed (spherical interpolation) instead of "
                   "drawing --n images; writes frames.")
@click.option("--frames", default=24, show_default=True, help="Frames from one seed to the next (--interpolate).")
@click.option("--fps", default=12.0, show_default=True, help="Frames per second of the GIF (--interpolate).")
@click.option("--batch-size", default=64, show_default=True)
@quiet_option
@friendly_errors
def generate(model, count, seed, out, truncation, seeds, frames, fps, batch_size, quiet):
    """Generate images from an exported generator with onnxruntime (no PyTorch needed).

    \b
    Examples:
      artgan generate runs/quickstart/export/generator.onnx --n 64 --seed 0 --out grid.png
      artgan generate generator.onnx --n 16 --truncation 0.7 --out clean/
      artgan generate generator.onnx --interpolate 1,2,3 --frames 30 --out walk.gif
    """
    from .images import make_grid, save_gif, save_image
    from .runtime import Generator

    gen = Generator(model)
    if seeds:
        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise click.BadParameter(f"expected whole numbers separated by commas, got {seeds!r}",
                                     param_hint="--interpolate") from None
        out = out or Path("walk.gif")
        images = gen.interpolate(seed_list, frames, truncation=truncation, batch_size=batch_size,
                                 progress=not quiet)
        if out.suffix.lower() == ".gif":
            save_gif(out, images, fps=fps)
        elif out.suffix:
            raise click.BadParameter("with --interpolate, --out is a .gif or a folder for the frames",
                                     param_hint="--out")
        else:
            for i, img in enumerate(images):
                save_image(out / f"frame_{i:04d}.png", img)
        what = f"{len(images)} frames through seeds {seeds}"
    else:
        out = out or Path("grid.png")
        images = gen.generate(count, seed, batch_size=batch_size, truncation=truncation, progress=not quiet)
        if out.suffix:
            save_image(out, make_grid(images))
        else:
            for i, img in enumerate(images):
                save_image(out / f"{seed:04d}_{i:04d}.png", img)
        what = f"{count} images"
    if not quiet:
        click.echo(f"{what} on {gen.describe()}", err=True)
    click.echo(str(out))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
@friendly_errors
def doctor(json_):
    """Which onnxruntime providers can actually start here (CUDA, cuDNN, TensorRT libraries
    found or not), what PyTorch sees, and a warning wherever GPU work would silently fall back
    to the CPU.

    \b
    Example:
      artgan doctor
    """
    from .doctor import diagnose, format_report

    report = diagnose()
    click.echo(json.dumps(report, indent=2) if json_ else format_report(report))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
@friendly_errors
def plugins(json_):
    """List installed plugins: version, where each came from, its hooks and what it registered.

    \b
    Example:
      artgan plugins --json
    """
    from .plugins import get_registry

    registry = get_registry()
    records = sorted(registry.plugins.values(), key=lambda r: r.name)
    if json_:
        click.echo(json.dumps([{"name": r.name, "status": r.status, "distribution": r.distribution,
                                "version": r.version, "module": r.module, "source": r.source,
                                "hooks": r.hooks, "registered": r.registered, "error": r.error}
                               for r in records], indent=2))
        return
    for r in records:
        origin = f"{r.distribution} {r.version}".strip() or "(not from a distribution)"
        click.echo(f"{r.name}  [{r.status}]  {origin}  {r.module}")
        if r.source:
            click.echo(f"  source: {r.source}")
        if r.error:
            click.echo(f"  error: {r.error}")
        if r.hooks:
            click.echo(f"  hooks: {', '.join(r.hooks)}")
        for kind, names in sorted(r.registered.items()):
            click.echo(f"  {kind if kind == 'loss' else kind}{'es' if kind == 'loss' else 's'}: {', '.join(sorted(names))}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@friendly_errors
def info():
    """Versions of artgan, torch, onnx and onnxruntime, the device PyTorch will use, and
    onnxruntime's providers.

    \b
    Example:
      artgan info
    """
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def v(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    from . import __version__
    click.echo(f"artgan       {__version__}")
    click.echo(f"python       {platform.python_version()} ({sys.executable})")
    for dist in ("torch", "onnx", "onnxruntime-gpu", "onnxruntime", "albumentations"):
        click.echo(f"{dist:<12} {v(dist)}")
    try:
        import torch
        if torch.cuda.is_available():
            device = f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU(s))"
        else:
            device = "cpu (no CUDA GPU visible to PyTorch)"
        click.echo(f"torch device {device}; {torch.get_num_threads()} CPU threads")
    except ImportError:
        click.echo("torch device torch not installed (runtime-only install)")
    from .runtime import available_providers
    click.echo(f"onnxruntime providers available: {', '.join(available_providers())}")


@cli.group(context_settings=CONTEXT_SETTINGS)
def evaluate():
    """Measure models against baselines; plugins add one subcommand per task.

    \b
    Example:
      artgan evaluate --help
    """


def _add_plugin_commands() -> None:
    from .plugins import get_plugin_manager
    try:
        get_plugin_manager().hook.artgan_register_commands(cli=cli)
    except ArtganError as exc:  # strict mode: a broken plugin is fatal
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


#: Core commands that use no plugin: they start without loading any (entry-point discovery and
#: plugin imports are about a tenth of `artgan generate`'s start-up), and a broken plugin cannot
#: stop them. Plugins only add commands, so these never change with plugins.
PLUGIN_FREE_COMMANDS = ("generate", "doctor")


def main() -> None:
    if sys.argv[1:2] and sys.argv[1] in PLUGIN_FREE_COMMANDS:
        cli()
        return
    _add_plugin_commands()
    cli()
