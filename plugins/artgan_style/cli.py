"""``artgan style train PAINTING --name NAME``: ``artgan build style`` (:mod:`.build`) under the
name a painter looks for, with the painting as an argument and ``--photos DIR`` for
``--set train.dataset.photos=DIR``. Same build, same files, same card (whose command is the
``artgan build style`` line that makes the model again).
"""

from __future__ import annotations

from pathlib import Path

import click

from .build import DEFAULT_MINUTES, PHOTOS_KEY

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group("style", context_settings=CONTEXT)
def style():
    """Style transfer: train a style model for your own painting.

    \b
    Example:
      artgan style train my-painting.jpg --name mine
      artgan process photo.jpg --step style:model=mine --out styled.png
    """


@style.command("train", context_settings=CONTEXT)
@click.argument("painting", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Model name: use it as --step style:model=NAME.")
@click.option("--minutes", default=DEFAULT_MINUTES, show_default=True, type=click.FloatRange(0, 24 * 60, min_open=True),
              help="Time budget of the whole command: training, export, checks and install (at least 2).")
@click.option("--photos", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of ordinary photos to learn from (default: $ARTGAN_STYLE_PHOTOS, the project's "
                   "BSDS400, or scikit-image's sample photos).")
@click.option("--to", "to", type=click.Path(file_okay=False, path_type=Path),
              help="Model folder to install into, as STYLE/NAME.onnx under it (default: the user model folder "
                   "on the search path, e.g. ~/.local/share/artgan/models).")
@click.option("--runs", default=Path("runs"), show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the run folder goes.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or step logs.")
@click.option("--force", is_flag=True, help="Replace an installed model of this --name.")
def style_train(painting, name, minutes, photos, to, runs, quiet, force):
    """Train a photo -> painting style model from one painting, on the CPU, within --minutes:
    the same as artgan build style --data PAINTING --name NAME.

    A progress bar runs, a preview image (photos | styled) lands in RUN/samples/ every few
    minutes, and Ctrl-C stops early with a usable model exported from the last checkpoint.

    \b
    Example:
      artgan style train my-painting.jpg --name mine --minutes 15
      artgan process photo.jpg --step style:model=mine
    """
    from artgan.build import build_task
    from artgan.errors import ArtganError
    from artgan.plugins import get_plugin_manager, get_registry

    from . import style_task

    log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    try:
        report = build_task(style_task(), data=painting, name=name, registry=get_registry(),
                            plugin_manager=get_plugin_manager(), seconds=minutes * 60,
                            overrides=[f"{PHOTOS_KEY}={photos}"] if photos is not None else [], runs=runs, to=to,
                            force=force, progress=not quiet, log=log)
    except ArtganError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(report.installed))
