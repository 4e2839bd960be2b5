"""The ``artgan`` command line.

Start-up stays light: torch is imported only inside the commands that train or export, so
``artgan generate`` and ``artgan --help`` never pay for it. Domain errors become one ``Error:``
line and exit code 1; usage mistakes exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .errors import ArtganError, Interrupted, cli_error_boundary, cli_errors

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class ErrorBoundaryGroup(click.Group):
    """Every command below it, plugins' included, runs inside the error boundary: one line, never
    a traceback, even from a plugin command without ``@cli_errors``."""

    def invoke(self, ctx):
        with cli_error_boundary():
            return super().invoke(ctx)


class PluginCommandsGroup(ErrorBoundaryGroup):
    """The root group: artgan's own commands are defined in this module; plugins' commands
    (``artgan_register_commands``) and ``evaluate TASK`` (``artgan_register_evaluations``) are
    added the first time a name that is not artgan's own is asked for, or the list of commands
    is (``--help``). So ``artgan --version``, ``artgan generate`` and the other core commands
    start without loading any plugin, and a broken plugin cannot stop them (click's documented
    lazy-group pattern: ``get_command``/``list_commands``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._core: dict[str, dict[str, click.Command]] | None = None  # artgan's own, per group
        self._commands_from = None  # the registry the plugin commands came from

    def get_command(self, ctx, cmd_name):
        own = self.commands if self._core is None else self._core[""]  # before any plugin: all are own
        if cmd_name not in own:
            self.load_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx):
        self.load_plugin_commands()
        return super().list_commands(ctx)

    def load_plugin_commands(self) -> None:
        """Add the plugins' commands, once per loaded registry (tests reset it: the commands
        follow). A plugin cannot replace one of artgan's own commands."""
        from .plugins import get_plugin_manager, get_registry, register_commands

        registry = get_registry()
        if registry is self._commands_from:
            return
        self._restore_core_commands()
        try:  # one plugin at a time: a plugin that raises here is reported, the CLI carries on
            register_commands(get_plugin_manager(), registry, self)
            from .evaluation import add_evaluation_commands
            add_evaluation_commands(self.commands["evaluate"], registry)
        except ArtganError as exc:  # strict mode: a broken plugin is fatal
            raise click.ClickException(str(exc)) from None
        self._commands_from = registry
        self._keep_core_commands()

    def _groups(self) -> dict[str, click.Group]:
        return {"": self, **{name: cmd for name, cmd in self.commands.items() if isinstance(cmd, click.Group)}}

    def _restore_core_commands(self) -> None:
        if self._core is None:
            self._core = {name: dict(group.commands) for name, group in self._groups().items()}
        for name, commands in self._core.items():
            group = self if not name else self._core[""][name]
            group.commands.clear()
            group.commands.update(commands)

    def _keep_core_commands(self) -> None:
        import warnings

        from .plugins import PluginWarning

        for name, commands in self._core.items():
            group = self if not name else self._core[""][name]
            for cmd_name, cmd in commands.items():
                if group.commands.get(cmd_name) is not cmd:
                    group.commands[cmd_name] = cmd
                    where = f"{name} {cmd_name}".strip()
                    warnings.warn(f"a plugin's command `artgan {where}` is ignored: artgan has its own",
                                  PluginWarning, stacklevel=2)


class PluginSubcommandsGroup(click.Group):
    """One of artgan's groups that plugins add subcommands to (``evaluate``): a name it does not
    know, or its list, loads the plugins' commands first."""

    def get_command(self, ctx, cmd_name):
        if cmd_name not in self.commands:
            ctx.find_root().command.load_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx):
        ctx.find_root().command.load_plugin_commands()
        return super().list_commands(ctx)


friendly_errors = cli_errors  # ArtganError -> one "Error:" line, exit 1


def quiet_option(fn):
    return click.option("-q", "--quiet", is_flag=True, help="No progress bars or step logs.")(fn)


@click.group(cls=PluginCommandsGroup, context_settings=CONTEXT_SETTINGS)
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
              help="Override a pipeline value, e.g. --set train.iterations=200 (repeatable).")
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
    """Run a pipeline: its stages (train, export, generate, process) in order, into one run folder.

    \b
    Examples:
      artgan run pipelines/quickstart.yaml
      artgan run pipelines/quickstart.yaml --set train.iterations=200 --out runs/short
      artgan run pipelines/quickstart.yaml --resume
    """
    from .pipeline import RunContext, dump_pipeline, latest_run_dir, load_pipeline, run_pipeline
    from .plugins import get_plugin_manager, get_registry

    from .pipeline import check_factories
    from .files import claim_new_dir, run_lock

    registry = get_registry()
    pipeline = load_pipeline(pipeline_file, overrides=list(overrides), registry=registry)
    # a dry run builds every plugin factory the pipeline names (value errors, file:line, plugin);
    # a real run checks their parameters' types here and builds them as it goes
    check_factories(pipeline, registry, list(overrides), build_them=dry_run)
    if dry_run:
        click.echo(dump_pipeline(pipeline), nl=False)
        return
    explicit_out = out is not None
    if out is None:
        out = (latest_run_dir(runs, pipeline.name) if resume else None) or claim_new_dir(runs, pipeline.name)
    # one run per folder at a time: two runs given the same --out at once never share it
    with run_lock(out):
        if explicit_out and not resume and (out / "checkpoints").exists():
            raise ArtganError(f"{out} already holds a run; add --resume to continue it, or choose another --out")
        log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
        log(f"run folder: {out}")
        ctx = RunContext(run_dir=out, registry=registry, plugin_manager=get_plugin_manager(),
                         resume=resume, progress=not quiet, log=log)
        try:
            run_pipeline(pipeline, ctx)
        except Interrupted as exc:  # in a stage that says what state its files are in
            raise Interrupted(f"{exc}; completed checkpoints are kept (continue with --resume)") from None
    click.echo(str(out))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("checkpoint", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the .onnx file (a .card.json and .card.md are written beside it).")
@click.option("--opset", type=click.IntRange(min=7), default=None, help="ONNX opset  [default: 20, the newest the exporter writes]")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True,
              help="fp16 halves the file and speeds up GPUs; inputs and outputs stay float32.")
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="Static int8 quantisation for CPUs, calibrated on inputs drawn as the model sees them.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=None,
              help="Largest allowed |onnxruntime - PyTorch| on fresh random inputs  "
                   "[default: 1e-3 fp32, 5e-2 fp16, none for int8]")
@click.option("--min-psnr", type=float, default=None,
              help="Smallest allowed PSNR (dB) against PyTorch  [default: none fp32, 40 fp16, 30 int8]")
@click.option("--no-verify", is_flag=True, help="Skip the comparison with PyTorch (and keep what was exported).")
@click.option("--no-optimize", is_flag=True,
              help="Trace the layers as they are (by default upsample + 3x3 conv pairs become exactly "
                   "equivalent sub-pixel convolutions, faster on onnxruntime).")
@click.option("--target", type=click.Choice(["onnxruntime", "web"]), default="onnxruntime", show_default=True,
              help="web: a model onnxruntime-web runs (no ConvTranspose, its opsets and ops; `artgan web`).")
@friendly_errors
def export(checkpoint, out, opset, precision, quantize, tolerance, min_psnr, no_verify, no_optimize, target):
    """Export a checkpoint's generator to ONNX and verify it against PyTorch.

    The model is exported in eval mode with a dynamic batch (and dynamic height and width for
    image-to-image models), carries its metadata (exports/README.md), and is refused, with the
    layer named, if it draws random numbers inside or mixes the samples of a batch.

    \b
    Examples:
      artgan export runs/quickstart/checkpoints/last.pt --out digits.onnx
      artgan export runs/quickstart/checkpoints/last.pt --out digits-fp16.onnx --precision fp16
      artgan export runs/quickstart/checkpoints/last.pt --out digits-int8.onnx --quantize int8
      artgan export runs/quickstart/checkpoints/last.pt --out digits-web.onnx --target web
    """
    from .checkpoints import load_recipe
    from .export import DEFAULT_OPSET, export_onnx
    from .plugins import get_registry

    recipe, state = load_recipe(checkpoint, get_registry())
    card = export_onnx(recipe.export_spec(), out, opset=opset or DEFAULT_OPSET, precision=precision,
                       quantize=quantize, verify=not no_verify, tolerance=tolerance, min_psnr=min_psnr,
                       optimize=not no_optimize, target=target,
                       extra_metadata={"run": checkpoint.parent.parent.name, "train_iterations": int(state["iteration"]),
                                       "architecture": state["recipe"]["architecture"]})
    v = card["verification"]
    if v.get("verified"):
        psnr = "identical" if v["psnr_db"] is None else f"PSNR {v['psnr_db']:.1f} dB"
        click.echo(f"{card['metadata']['precision']}: max |onnxruntime - pytorch| = {v['max_abs_diff']:.3g} "
                   f"({psnr}) on fresh random inputs", err=True)
    else:
        click.echo("not verified (--no-verify)", err=True)
    if card["int8_layers"] and card["int8_layers"][0] < card["int8_layers"][1]:
        done, weighted = card["int8_layers"]
        click.echo(f"warning: only {done} of {weighted} weighted layers could be quantised (onnxruntime's CPU "
                   "kernels have no int8 transposed convolution), so the int8 file is little or no faster; "
                   "generators built from upsampling + convolution (dcgan upsample: nearest) quantise", err=True)
    click.echo(str(out))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-n", "--n", "count", default=64, show_default=True, type=click.IntRange(min=1),
              help="How many images.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of the latents: same seed, same images.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="A grid image (.png/.jpg), an animated .gif (with --interpolate), or a folder for one "
                   "PNG per image  [default: grid.png, or walk.gif with --interpolate]")
@click.option("--truncation", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Redraw latent values beyond +-T: lower is cleaner, less varied (e.g. 0.7).")
@click.option("--interpolate", "seeds", default=None, metavar="SEED,SEED,...",
              help="Walk through latent space from seed to seed (spherical interpolation) instead of "
                   "drawing --n images; writes frames.")
@click.option("--frames", default=24, show_default=True, type=click.IntRange(min=1),
              help="Frames from one seed to the next (--interpolate).")
@click.option("--fps", default=12.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Frames per second of the GIF (--interpolate).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
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
    from .api import Generator
    from .config import MAX_SEED
    from .images import make_grid, save_gif, save_image

    gen = Generator(model)
    if seeds:
        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise click.BadParameter(f"expected whole numbers separated by commas, got {seeds!r}",
                                     param_hint="--interpolate") from None
        bad = [s for s in seed_list if not 0 <= s <= MAX_SEED]
        if bad:
            raise ArtganError(f"--interpolate: seeds are whole numbers from 0 to 2**63 - 1, got {bad[0]}")
        if not 0.1 <= fps <= 100:  # GIF frame delays are whole centiseconds up to 655 s; nan fails this too
            raise ArtganError(f"--fps must be from 0.1 to 100 frames per second, got {fps}")
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
        images = gen(count, seed, batch_size=batch_size, truncation=truncation, progress=not quiet)
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
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("-s", "--step", "steps", multiple=True, metavar="NAME[:KEY=VALUE,...]",
              help="A post-processing step, e.g. superres:scale=2; repeat to chain them in order.")
@click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run a bundle (from `artgan bundle`) instead of --step.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: one PNG per input, keeping paths relative to input folders.")
@click.option("-n", "--n", "count", type=click.IntRange(min=1), default=8, show_default=True,
              help="With a bundle that has a generator and no INPUTS: how many images to make.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="With a generator bundle: seed of the latents.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where the images are processed: this process, or Ray Data (pip install 'artgan[ray]'): "
                   "a local Ray, or a cluster with --address / RAY_ADDRESS. The outputs are the same bytes.")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="With --engine ray: the Ray cluster to run on (default: RAY_ADDRESS, else a local Ray).")
@click.option("--overwrite", is_flag=True,
              help="Redo every image (by default an output already in --out is kept, so a stopped run "
                   "resumes where it was).")
@quiet_option
@friendly_errors
def process(inputs, steps, bundle_dir, out, count, seed, engine, address, overwrite, quiet):
    """Run post-processing steps over image files or folders (recursive), with onnxruntime
    and numpy only (no PyTorch).

    Outputs already in --out are kept (run the same command again to finish a stopped run); a
    file that cannot be read or processed is listed in OUT/failures.jsonl and the rest go on;
    OUT/process.json records the steps, the engine, the machine, counts and time.

    \b
    Examples:
      artgan process photos/ --step superres:scale=2 --out big/
      artgan process img.png --step superres:model=x2-gan --step lanczos:scale=2 --out out/
      artgan process photos/ --step superres:model=x2-gan --out big/ --engine ray
      artgan process /shared/photos --step superres:model=x2-gan --out /shared/big --engine ray --address HEAD:6379
      artgan process --bundle my-bundle --n 16 --out art/    (a bundle with a generator)
      artgan process photos/ --bundle my-bundle --out out/
    """
    from .api import Steps

    if bool(steps) == bool(bundle_dir):
        raise click.UsageError("give the steps to run with --step (repeatable) or a --bundle, not both")
    if address and engine != "ray":
        raise click.UsageError("--address is for --engine ray")
    log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    if bundle_dir is not None:
        chain = Steps.from_bundle(bundle_dir)
        log(f"bundle {chain.bundle!r}")
        if not inputs:
            if chain.generator is None:
                raise click.UsageError("this bundle has no generator: give INPUTS to process")
            from .images import save_image
            from .process import to_uint8_rows
            images = chain.generator.generate(count, seed, progress=not quiet)
            for i in range(len(images)):
                save_image(out / f"{seed:04d}_{i:04d}.png", to_uint8_rows(chain.run(images[i:i + 1])[0]))
            log(f"{count} images -> {out}")
            click.echo(str(out))
            return
    else:
        chain = Steps(*steps)
    if not inputs:
        raise click.UsageError("give at least one INPUT image file or folder")
    try:
        report = chain.process(inputs, out, engine=engine, address=address, overwrite=overwrite,
                               progress=not quiet, log=log)
    except KeyboardInterrupt:
        raise ArtganError(f"interrupted; the images written to {out} are kept: run the same command again "
                          f"to do the rest") from None
    failed = f", {report.failed} failed (listed in {out / 'failures.jsonl'})" if report.failed else ""
    kept = f", {report.skipped} already there" if report.skipped else ""
    log(f"{report.made} image(s) -> {out}{kept}{failed}")
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
@click.argument("models", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="The site folder: new, empty, or a site built before (replaced).")
@click.option("--no-webgpu", is_flag=True, help="WASM only: leaves out the 29 MB WebGPU build.")
@click.option("--ort-web", "ort_tarball", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="onnxruntime-web's tarball (`npm pack onnxruntime-web@VERSION`) instead of the registry.")
@click.option("--int8", "int8_photos", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              metavar="PHOTOS", help="Image-to-image models go in as int8 where they keep quality (>= 40 dB against fp32 "
                                     "on PHOTOS' held-out quarter), calibrated on the rest: faster on WASM.")
@click.option("--fetch-runtime", is_flag=True, help="Only fetch onnxruntime-web into the cache (CI does this first).")
@friendly_errors
def web(models, out, no_webgpu, ort_tarball, int8_photos, fetch_runtime):
    """Write a static web page that runs MODELS in the browser (onnxruntime-web: WASM, WebGPU
    where the browser has it), offline, from any static file server. Each model is checked
    against onnxruntime-web's ops first (docs/web.md).

    \b
    Examples:
      artgan web exports/superres/x2-gan.onnx exports/style/great-wave.onnx --out site
      python -m http.server -d site 8000     # then open http://localhost:8000
      artgan web exports/superres/x2-gan.onnx --out site --int8 photos/   # int8 where it keeps quality
    """
    from .web import build_site
    from .web.ortweb import runtime_files

    if fetch_runtime:
        click.echo(str(runtime_files(ort_tarball)))
        return
    if not models or out is None:
        raise click.UsageError("give MODEL.onnx... and --out SITE (or --fetch-runtime)")
    site = build_site(models, out, webgpu=not no_webgpu, ort_tarball=ort_tarball, int8_photos=int8_photos)
    for m in site["models"]:
        note = f"; WebGPU runs {', '.join(m['webgpu_fallback'])} on WASM" if m["webgpu_fallback"] else ""
        click.echo(f"{m['name']}: {m['metadata']['task']}, opset {m['opset']}, web ops ok{note}", err=True)
        if "int8" in m:
            click.echo(m["int8"], err=True)
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
@click.option("--disable", "to_disable", metavar="NAME", multiple=True,
              help="Turn a plugin off (entry-point or distribution name), remembered in the user "
                   "settings file (shown). For one shell only: ARTGAN_DISABLE_PLUGINS=NAME.")
@click.option("--enable", "to_enable", metavar="NAME", multiple=True,
              help="Turn a plugin turned off with --disable back on.")
@click.option("--check", is_flag=True,
              help="Also import every plugin's factories now (may import torch) and exit 1 if any "
                   "plugin is broken, conflicts or cannot load a factory.")
@friendly_errors
def plugins(json_, to_disable, to_enable, check):
    """List installed plugins: version, where each came from, its hooks and what it registered.

    A plugin that fails to load is shown as broken, with its error; the others keep working.

    \b
    Examples:
      artgan plugins
      artgan plugins --json
      artgan plugins --check                 for plugin authors and CI
      artgan plugins --disable superres      turn one off (artgan plugins --enable superres: back on)
    """
    from .plugins import get_registry, reset

    registry = get_registry()
    if to_disable or to_enable:
        _change_disabled(registry, to_disable, to_enable)
        reset()
        return
    cli.load_plugin_commands()  # so each plugin's commands are known and listed
    problems = registry.check_lazy_targets() if check else {}
    records = sorted(registry.plugins.values(), key=lambda r: r.name)
    if json_:
        click.echo(json.dumps([{"name": r.name, "status": r.status, "distribution": r.distribution,
                                "version": r.version, "module": r.module, "source": r.source,
                                "hooks": r.hooks, "registered": r.registered, "error": r.error,
                                "error_at": r.error_at, "disabled_by": r.disabled_by,
                                "conflicts": r.conflicts, "commands": r.commands,
                                "check": problems.get(r.name, [])}
                               for r in records], indent=2))
    else:
        for r in records:
            origin = f"{r.distribution} {r.version}".strip() or "(not from a distribution)"
            click.echo(f"{r.name}  [{r.status}]  {origin}  {r.module}")
            if r.source:
                click.echo(f"  source: {r.source}")
            if r.error:
                click.echo(f"  error: {r.error}")
                if r.error_at:
                    click.echo(f"  at: {r.error_at}")
                click.echo(f"  turn it off: artgan plugins --disable {r.name}")
            if r.disabled:
                click.echo(f"  disabled by: {r.disabled_by}")
            if r.hooks:
                click.echo(f"  hooks: {', '.join(r.hooks)}")
            for kind, names in sorted(r.registered.items()):
                click.echo(f"  {kind}{'es' if kind == 'loss' else 's'}: {', '.join(sorted(names))}")
            if r.commands:
                click.echo(f"  commands: {', '.join(r.commands)}")
            for conflict in r.conflicts:
                click.echo(f"  conflict: {conflict}")
            for problem in problems.get(r.name, []):
                click.echo(f"  check: {problem}")
    if check:
        bad = sum(bool(r.error or r.conflicts or problems.get(r.name)) for r in records)
        click.echo(f"{len(records)} plugin(s), {bad} with problems", err=True)
        if bad:
            sys.exit(1)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
@friendly_errors
def tasks(json_):
    """List the tasks the plugins declare: for each, what trains its models, the step that runs one,
    its evaluation, the classical baselines beside it, the models installed for it and how to build one.

    Exits 1 when a task names a part no plugin registers.

    \b
    Examples:
      artgan tasks
      artgan tasks --json
    """
    from .build import shown_path
    from .model_search import list_models
    from .plugins import get_registry
    from .tasks import load_tasks

    found, problems = load_tasks(get_registry())
    if json_:
        click.echo(json.dumps({"tasks": [{**t.describe(), "installed": list_models(t.models)} for t in found.values()],
                               "problems": problems}, indent=2))
    else:
        for task in found.values():
            click.echo(f"{task.name}: {task.summary}")
            click.echo(f"  trains: {', '.join(task.architectures)} on {', '.join(task.datasets)}")
            if task.step:
                click.echo(f"  runs as: --step {task.step}:model=NAME")
            if task.evaluation:
                click.echo(f"  evaluate: artgan evaluate {task.evaluation}"
                           + (f" (beside {', '.join(task.baselines)})" if task.baselines else ""))
            click.echo(f"  installed ({task.models}/): {', '.join(list_models(task.models)) or 'none'}")
            if task.pipelines:
                click.echo(f"  pipelines: {', '.join(shown_path(p) for p in task.pipelines)}")
            if task.build:
                click.echo(f"  build one: {task.build}")
            click.echo(f"  builds by: {task.builds_by()}")
        for problem in problems:
            click.echo(f"Error: {problem}", err=True)
    if problems:
        sys.exit(1)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("task_name", metavar="TASK")
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              help="A folder of images: the task's pipeline trains on it, the evaluation uses its held-out quarter; "
                   "or what the task's own builder takes (style: the painting); none for a task whose pipeline "
                   "names its data (artgan tasks says which).")
@click.option("--name", required=True, help="The model's name: --step TASK:model=NAME finds it once installed.")
@click.option("--pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Another pipeline than the task's own (artgan tasks shows it).")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="The training's time budget (train.seconds; a task's own builder may count the whole "
                   "build in it, as style's does)  [default: the pipeline's]")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a pipeline value; repeatable.")
@click.option("--eval-data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Evaluate on all of this folder instead of --data's held-out quarter (a test set never trained on).")
@click.option("--eval-set", "eval_options", multiple=True, metavar="KEY=VALUE",
              help="An option of the task's evaluation (artgan evaluate TASK --help lists them); repeatable.")
@click.option("--runs", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True,
              help="Where the run folder goes.")
@click.option("--to", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Install under this folder (TO/TASK/NAME.onnx)  [default: your model folder on the search path]")
@click.option("--force", is_flag=True, help="Replace an installed model of that name.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@friendly_errors
def build(task_name, data, name, pipeline, minutes, overrides, eval_data, eval_options, runs, to, force, quiet):
    """Build one model for a task: train and export with the task's pipeline (or its plugin's
    builder), evaluate it beside the baselines on the data's held-out quarter (or --eval-data),
    check ONNX against PyTorch on the real inputs its step makes and time the step at 512x512,
    and install it with its card (all of that, and the command that reproduces it) where --step
    TASK:model=NAME finds it (all its files together, or nothing).

    \b
    Examples:
      artgan build superres --data photos/ --name mine --minutes 30
      artgan process photo.jpg --step superres:model=mine
      artgan build style --data my-painting.jpg --name mine --eval-data photos/
      artgan build augment --name mine    its pipeline's own data: no --data
      artgan tasks                        how each task builds, and its pipelines
    """
    from .build import build_task
    from .plugins import get_plugin_manager, get_registry
    from .tasks import load_tasks

    registry = get_registry()
    registry.get("task", task_name)  # an unknown name: the registry's one line, with the closest and the known
    tasks, problems = load_tasks(registry)
    if task_name not in tasks:  # its factory failed
        raise ArtganError("; ".join(p for p in problems if f"task {task_name!r}" in p)
                          or f"task {task_name!r} could not be loaded: artgan tasks says why")
    report = build_task(tasks[task_name], data=data, name=name, registry=registry, plugin_manager=get_plugin_manager(),
                        pipeline=pipeline, seconds=minutes * 60 if minutes else None, overrides=list(overrides),
                        eval_data=eval_data, eval_options=list(eval_options), runs=runs, to=to, force=force, progress=not quiet)
    click.echo(str(report.installed))


def _change_disabled(registry, to_disable, to_enable) -> None:
    import difflib
    import os

    from .plugins import disabled_in_config, set_disabled

    known = {r.name for r in registry.plugins.values() if r.distribution or r.module}
    known |= {r.distribution for r in registry.plugins.values() if r.distribution}
    for name in to_disable:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            raise ArtganError(f"no installed plugin {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                              + f"; plugins: {', '.join(sorted(known))}")
        path = set_disabled(name, True)
        click.echo(f"disabled plugin {name!r} (remembered in {path}; undo with artgan plugins --enable {name})")
    for name in to_enable:
        if name in {x.strip() for x in os.environ.get("ARTGAN_DISABLE_PLUGINS", "").split(",")}:
            raise ArtganError(f"plugin {name!r} is disabled by the environment variable "
                              f"ARTGAN_DISABLE_PLUGINS; remove it from there")
        if name not in disabled_in_config():
            raise ArtganError(f"plugin {name!r} is not disabled; disabled: {', '.join(disabled_in_config()) or 'none'}")
        set_disabled(name, False)
        click.echo(f"enabled plugin {name!r}")


@cli.group(cls=PluginSubcommandsGroup, context_settings=CONTEXT_SETTINGS)
def plugin():
    """Tools for plugin authors (see docs/plugins.md).

    \b
    Example:
      artgan plugin new posterize --kind step
    """


@plugin.command("new", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(["dataset", "architecture", "loss", "step", "task"]),
              help="What the plugin provides.")
@click.option("-o", "--out", "parent", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder to create the package in.")
@friendly_errors
def plugin_new(name, kind, parent):
    """Write a complete, installable plugin package: pyproject.toml with the entry point, the
    module, a README and a test that runs artgan's contract checks. --kind task writes a whole task
    plugin (model, data, steps, evaluation, the task declaration and a one-minute pipeline).

    \b
    Examples:
      artgan plugin new posterize --kind step
      cd artgan-posterize && pip install -e . && pytest && artgan plugins
      artgan plugin new sharpen --kind task
      cd artgan-sharpen && pip install -e . && pytest && artgan build sharpen --data photos/ --name mine
    """
    from .plugin_template import new_plugin
    from .plugins import get_registry

    kind_names = get_registry().entries[kind]
    plugin_name = name[len("artgan-"):] if name.startswith("artgan-") else name
    if plugin_name in kind_names:
        raise ArtganError(f"a {kind} named {plugin_name!r} already exists (plugin {kind_names[plugin_name].plugin!r}); "
                          f"choose another name")
    made = new_plugin(name, kind, parent)
    click.echo(str(made.root))
    last = f"artgan build {made.name} --data PHOTOS --name mine" if kind == "task" else "artgan plugins"
    click.echo(f"Next:\n  cd {made.root}\n  pip install -e .\n  pytest\n  {last}", err=True)


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


@cli.group(cls=PluginSubcommandsGroup, context_settings=CONTEXT_SETTINGS)
def evaluate():
    """Measure models against baselines; plugins add one subcommand per task.

    \b
    Example:
      artgan evaluate --help
    """


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file to write (default: RUN_DIR/report.html); a .png summary goes beside it.")
@friendly_errors
def report(run_dir, out):
    """Write a run's report: one self-contained HTML page (curves, sample grids over time, config,
    model cards, evaluation) and a PNG summary.

    \b
    Example:
      artgan report runs/quickstart
    """
    from .report import write_report

    click.echo(str(write_report(run_dir, out)))


def _show_plugin_warnings() -> None:
    """A broken plugin is one ``Warning:`` line on stderr, not Python's two-line warning."""
    import warnings

    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        from .plugins import PluginWarning  # imported only when there is a warning to show

        if issubclass(category, PluginWarning):
            click.echo(f"Warning: {message}", err=True)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning


def main() -> None:
    _show_plugin_warnings()
    cli()
