"""``artgan process --engine ray``: the same steps over Ray Data (imported only for this engine).

The driver lists the files (so they must be at the same path on every node: a shared file
system), skips the outputs already written, and hands the rest to Ray Data as rows of file
names. ``map_batches`` with a callable class gives each worker one copy of the chain, built once
(its onnxruntime sessions loaded once); each worker reads, processes and writes its files with
:func:`artgan.process.process_one`, the function the local engine runs, so the outputs are the
same bytes. Rows of names, not ``ray.data.read_images``: that reader would bypass artgan's
pixel cap, EXIF orientation and 16-bit scaling (different pixels from the local engine), and one
corrupt file would fail the whole dataset instead of being listed in ``failures.jsonl``.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArtganError, describe_os_error

#: Files per batch handed to a worker, at most: each file is a whole image's work, and smaller
#: batches spread a short run over the workers; Ray's cost per batch (a few ms) decides the rest
BATCH_FILES = 64
#: Batches per worker at least, so that the workers finish together
BATCHES_PER_WORKER = 8


class ChainWorker:
    """One Ray actor: builds the chain once, then processes batches of files."""

    def __init__(self, rebuild, state: tuple[str, Any], out: str, threads: int):
        # onnxruntime's threads: the CPUs Ray gave this worker, not every CPU of the node; set before
        # the chain is built, which is why the chain travels as (rebuild, state), not as built Steps
        os.environ.setdefault("ARTGAN_THREADS", str(threads))
        self.steps = rebuild(state)
        self.out = Path(out)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .process import process_one

        errors, fatal = [], []
        for src, rel in zip(batch["src"], batch["rel"]):
            error, stop = "", False
            try:
                process_one(self.steps.run, Path(src), self.out / str(rel))
            except ArtganError as exc:
                error = str(exc)
            except OSError as exc:  # the disk full, a read-only folder: every file will fail the same way
                error, stop = describe_os_error(exc), True
            except MemoryError:
                error, stop = (f"{src}: out of memory on a Ray worker; use smaller images or tiles (tile=), or "
                               f"give each worker more memory"), True
            errors.append(error)
            fatal.append(stop)
        return {"src": batch["src"], "rel": batch["rel"], "error": np.array(errors, dtype=object),
                "fatal": np.array(fatal)}


def process_on_ray(steps, todo: list[tuple[Path, Path]], out: Path, *, rebuild, address: str | None = None,
                   progress: bool = False) -> tuple[int, dict[str, Any]]:
    """Process ``todo`` (input file, output name) into ``out`` on Ray; returns the number of
    images made and what the run ran on (for ``process.json``). ``rebuild(steps.describe_state())``
    builds the chain again in each worker (passed in by :mod:`artgan.api`, a layer above)."""
    from .process import FailureLog, progress_bar, progress_writer

    state = steps.describe_state()  # fails now, not in a worker, for chains that cannot travel
    try:
        import ray
        import ray.data
    except ImportError:
        raise ArtganError("--engine ray needs Ray: pip install 'artgan[ray]' (or pip install 'ray[data]')") from None
    started_here = not ray.is_initialized()
    if started_here:
        _quiet_ray_logs()
        try:
            # address None: RAY_ADDRESS if set, else a Ray running on this machine, else a new local one
            ray.init(address=address, include_dashboard=False if not (address or os.environ.get("RAY_ADDRESS"))
                     else None, logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or os.environ.get("RAY_ADDRESS") or "a local Ray"
            raise ArtganError(f"cannot start or reach Ray at {where} ({' '.join(str(exc).split())[:200]}); "
                              f"check --address / RAY_ADDRESS (`ray status` on the head node)") from None
    _quiet_ray_logs()  # again: starting Ray set its own levels
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # ours is the one progress bar
        context.enable_operator_progress_bars = False
        context.enable_auto_log_stats = False
        cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        workers = max(1, min(cpus, len(todo)))
        batch = max(1, min(BATCH_FILES, len(todo) // (workers * BATCHES_PER_WORKER)))
        info = {"address": ray.get_runtime_context().gcs_address, "nodes": nodes, "cpus": cpus, "workers": workers,
                "cpus_per_worker": 1, "batch_files": batch,
                "ray": ray.__version__}
        if not todo:
            return 0, info
        rows = [{"src": str(src), "rel": rel.as_posix()} for src, rel in todo]
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), -(-len(rows) // batch))))
        with warnings.catch_warnings():  # ray_remote_args_fn is marked deprecated, with no named successor yet
            warnings.simplefilter("ignore")
            results = ds.map_batches(ChainWorker, fn_constructor_args=(rebuild, state, str(out), 1), batch_size=batch,
                                     batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
                                     # no restarts (a worker that dies fails the run, which resumes from the
                                     # files written): Ray's core logs a warning for each restartable actor
                                     ray_remote_args_fn=_no_restarts)
        bar = progress_bar(len(todo), progress)
        failures = FailureLog(out, len(todo), warn=progress_writer(bar))
        try:
            for done in _results(ray, results, out):
                for src, rel, error, fatal in zip(done["src"], done["rel"], done["error"], done["fatal"]):
                    if fatal:
                        raise ArtganError(str(error))
                    if error:
                        failures.record(Path(src), Path(rel), str(error))
                    else:
                        failures.done()
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        failures.finish()
        return failures.made, info
    finally:
        if started_here:
            ray.shutdown()


def _results(ray, results, out: Path):
    """The workers' result rows as they come; a worker or node that dies is one line."""
    try:
        yield from results.iter_batches(batch_size=None, batch_format="numpy")
    except ray.exceptions.RayError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise ArtganError(f"Ray failed ({type(exc).__name__}: {detail}); the images written to {out} are kept: "
                          f"run the same command again to do the rest") from None


def _quiet_ray_logs() -> None:
    """Ray's INFO lines (start-up, each dataset's plan and stats) would bury the progress bar."""
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _no_restarts() -> dict[str, Any]:
    return {"max_restarts": 0}
