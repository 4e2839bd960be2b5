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

from . import __version__
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
@click.version_option(__version__, "--version", prog_name="artgan")
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
              help="Where to write the .onnx file (a .card.json is written beside it).")
@click.option("--opset", default=17, show_default=True, help="ONNX opset.")
@click.option("--tolerance", default=1e-3, show_default=True,
              help="Largest allowed |onnxruntime - PyTorch| on fresh random inputs.")
@click.option("--no-verify", is_flag=True, help="Skip the comparison with PyTorch.")
@friendly_errors
def export(checkpoint, out, opset, tolerance, no_verify):
    """Export a checkpoint's generator to ONNX and verify it against PyTorch.

    \b
    Example:
      artgan export runs/quickstart/checkpoints/last.pt --out digits.onnx
    """
    from .checkpoints import load_recipe
    from .export import export_onnx
    from .plugins import get_registry

    recipe, state = load_recipe(checkpoint, get_registry())
    card = export_onnx(recipe.export_spec(), out, opset=opset, verify=not no_verify, tolerance=tolerance,
                       extra_metadata={"run": checkpoint.parent.parent.name, "train_steps": int(state["step"]),
                                       "architecture": state["recipe"]["architecture"]})
    v = card["verification"]
    if v.get("verified"):
        click.echo(f"max |onnxruntime - pytorch| = {v['max_abs_diff']:.3g} (PSNR {v['psnr_db']:.1f} dB)", err=True)
    click.echo(str(out))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-n", "--n", "count", default=64, show_default=True, help="How many images.")
@click.option("--seed", default=0, show_default=True, help="Seed of the latents: same seed, same images.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("grid.png"), show_default=True,
              help="A grid image (.png/.jpg), or a folder for one PNG per image.")
@click.option("--truncation", type=float, default=None,
              help="Redraw latent values beyond +-T: lower is cleaner, less varied (e.g. 0.7).")
@click.option("--batch-size", default=64, show_default=True)
@quiet_option
@friendly_errors
def generate(model, count, seed, out, truncation, batch_size, quiet):
    """Generate images from an exported generator with onnxruntime (no PyTorch needed).

    \b
    Example:
      artgan generate runs/quickstart/export/generator.onnx --n 64 --seed 0 --out grid.png
    """
    from .images import make_grid, save_image
    from .runtime import Generator

    gen = Generator(model)
    images = gen.generate(count, seed, batch_size=batch_size, truncation=truncation, progress=not quiet)
    if out.suffix:
        save_image(out, make_grid(images))
    else:
        for i, img in enumerate(images):
            save_image(out / f"{seed:04d}_{i:04d}.png", img)
    if not quiet:
        click.echo(f"{count} images on {gen.providers[0]}", err=True)
    click.echo(str(out))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("-s", "--step", "steps", multiple=True, metavar="NAME[:KEY=VALUE,...]",
              help="A post-processing step, e.g. superres:scale=2; repeat to chain them in order.")
@click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run a bundle (from `artgan bundle`) instead of --step.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: one PNG per input, keeping paths relative to input folders.")
@click.option("-n", "--n", "count", type=int, default=8, show_default=True,
              help="With a bundle that has a generator and no INPUTS: how many images to make.")
@click.option("--seed", default=0, show_default=True, help="With a generator bundle: seed of the latents.")
@quiet_option
@friendly_errors
def process(inputs, steps, bundle_dir, out, count, seed, quiet):
    """Run post-processing steps over image files or folders (recursive), with onnxruntime
    and numpy only (no PyTorch).

    \b
    Examples:
      artgan process photos/ --step superres:scale=2 --out big/
      artgan process img.png --step superres:model=x2-gan --step lanczos:scale=2 --out out/
      artgan process --bundle my-bundle --n 16 --out art/    (a bundle with a generator)
      artgan process photos/ --bundle my-bundle --out out/
    """
    from .process import collect_inputs, process_files

    if bool(steps) == bool(bundle_dir):
        raise click.UsageError("give the steps to run with --step (repeatable) or a --bundle, not both")
    log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    if bundle_dir is not None:
        from .bundle import load_bundle
        chain = load_bundle(bundle_dir)
        log(f"bundle {chain!r}")
        if not inputs:
            if chain.generator is None:
                raise click.UsageError("this bundle has no generator: give INPUTS to process")
            from .images import save_image
            from .process import to_uint8_rows
            images = chain.generator.generate(count, seed, progress=not quiet)
            for i in range(len(images)):
                save_image(out / f"{seed:04d}_{i:04d}.png", to_uint8_rows(chain(images[i:i + 1])[0]))
            log(f"{count} images -> {out}")
            click.echo(str(out))
            return
    else:
        from .plugins import get_registry
        from .steps import build_step, run_chain
        registry = get_registry()
        built = [build_step(registry, s) for s in steps]
        chain = lambda images: run_chain(built, images)  # noqa: E731
    if not inputs:
        raise click.UsageError("give at least one INPUT image file or folder")
    files = collect_inputs(inputs)
    made = process_files(chain, files, out, progress=not quiet)
    log(f"{len(made)} image(s) -> {out}")
    click.echo(str(out))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("-s", "--step", "steps", multiple=True, metavar="NAME[:KEY=VALUE,...]",
              help="A step of the chain, in order (repeatable), e.g. superres:scale=2.")
@click.option("--generator", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="An exported generator (.onnx) to run before the steps.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The bundle folder to write.")
@click.option("--name", default=None, help="The bundle's name (default: the folder's name).")
@click.option("--description", default="", help="A line saying what the bundle makes.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@friendly_errors
def bundle(steps, generator, out, name, description, force):
    """Write a chain of steps (and optionally a generator before it) as one deployable folder:
    the ONNX files plus a manifest, run with `artgan process --bundle` or, from an app,
    `artgan.bundle.load_bundle(DIR)` (no PyTorch needed).

    \b
    Examples:
      artgan bundle --step superres:scale=2 --out sr-bundle
      artgan bundle --generator runs/quickstart/export/generator.onnx \\
          --step superres:model=x2-gan --step lanczos:scale=2 --out digits-big
    """
    from .bundle import write_bundle
    from .plugins import get_registry

    manifest = write_bundle(out, list(steps), registry=get_registry(), generator=generator, name=name,
                            description=description, overwrite=force)
    chain = (["generator"] if manifest["generator"] else []) + [
        s["name"] + (f" ({s['model']})" if "model" in s else "") for s in manifest["steps"]]
    click.echo(f"bundle {manifest['name']}: {' -> '.join(chain)}", err=True)
    click.echo(str(out))


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


def main() -> None:
    _add_plugin_commands()
    cli()
