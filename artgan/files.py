"""Atomic file writes: a crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator


#: A temporary file untouched this long belongs to no live writer (checkpoints of large models are
#: written in well under a minute).
STALE_AFTER_S = 3600.0
#: Characters of a file's name its temporary keeps (".NAME." + 8 random + ".tmp" fits in 255)
TEMP_NAME_KEEP = 200


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the temporary's name starts with at most TEMP_NAME_KEEP characters of the file's: a valid
    # 242-255 character name must not fail because its temporary's name is too long
    stem = path.name[:TEMP_NAME_KEEP]
    remove_stale_temporaries(path.parent, pattern=f".{glob.escape(stem)}.*.tmp")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # a read-only or full folder: name the file asked for
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 less the umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        if exc.errno is None or exc.filename not in (None, tmp, str(tmp_path)):
            raise  # about some other file: its own name says where
        # name the file the user asked for, not our temporary one (or none, as Pillow's writers do)
        raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[list[Path]]:
    """:func:`atomic_path` for files that belong together (a model and its card): yields a
    temporary path beside each; on success all are fsynced, then renamed in the order given with
    Ctrl-C held off until the last rename, so a Ctrl-C never splits them (it is raised after them as
    :class:`artgan.errors.Interrupted`, saying they are written). Put the file whose presence
    means "done" (the model) last: a hard kill between renames leaves it old."""
    with contextlib.ExitStack() as stack:
        temps = [stack.enter_context(_temporary_beside(Path(p))) for p in paths]
        yield temps
        for tmp in temps:
            _fsync_with_ordinary_mode(tmp)
        rename_together(list(zip(temps, [Path(p) for p in paths])))


def rename_together(renames: list[tuple[Path, Path]]) -> None:
    """``os.replace`` each (source, destination) in order, with Ctrl-C held off until the last one
    is done (then raised as :class:`artgan.errors.Interrupted`, saying the files are in place)."""
    import signal
    import threading

    from .errors import Interrupted

    caught: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(1)) if main else None
    try:
        for source, destination in renames:
            os.replace(source, destination)
    finally:
        if main:
            signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    if caught:
        raise Interrupted(f"interrupted after writing {', '.join(str(d) for _, d in renames)}: they are "
                          f"complete and belong together")


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path``, removed unless it was renamed onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, pattern=f".{glob.escape(path.name)}.*.tmp")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # a read-only or full folder: name the file asked for
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _fsync_with_ordinary_mode(path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def claim_new_dir(root: str | Path, name: str) -> Path:
    """Create ``root/name``, or ``root/name-2``, ``-3``... if taken, with one ``mkdir`` each
    (atomic: two processes asking at once never get the same folder). Returns the folder made."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    candidate, n = root / name, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = root / f"{name}-{n}"


RUN_LOCK = ".artgan-run.lock"
#: The file that makes a folder an artgan run folder: written when a run first takes the folder,
#: so a later run only ever writes over what a run made (never a user's own pipeline.yaml or
#: metrics.jsonl in a folder given as ``--out``).
RUN_MARKER = ".artgan-run"
#: What a run writes at the top of its folder, besides its stages' ``out:`` paths.
RUN_OWN_NAMES = ("pipeline.yaml", "report.html", "report.png", "metrics.jsonl", "evaluations.jsonl",
                 "evaluation.json", "checkpoints", "samples", "tensorboard", RUN_MARKER, RUN_LOCK)


@contextlib.contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder`` for one ``artgan run`` at a time: ``folder/.artgan-run.lock`` is created with
    O_EXCL (atomic: of two runs started at once on the same ``--out``, one gets it), holds the
    owner's pid, and is removed when the run ends. A lock whose process is gone (a SIGKILLed run)
    is taken over, so ``--resume`` after a kill just works."""
    from .errors import ArtganError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if os.environ.get("RANK", "0") != "0":  # under torchrun the first process holds it for all
        yield folder
        return
    lock = folder / RUN_LOCK
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(lock)
            if owner is None:  # created this instant and not yet written: give its writer a moment
                time.sleep(0.2)
                owner = _lock_owner(lock)
            if owner is not None and _alive(owner):
                raise ArtganError(f"{folder}: another artgan run (pid {owner}) is using this folder; wait for it "
                                  f"or choose another --out") from None
            lock.unlink(missing_ok=True)  # its process is gone: take it over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    else:
        raise ArtganError(f"{folder}: could not take {RUN_LOCK}; another run is starting in this folder")
    try:
        yield folder
    finally:
        lock.unlink(missing_ok=True)


def _lock_owner(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip() or "x")
    except (OSError, ValueError):
        return None  # being written this instant, or garbage


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | Path, max_age_s: float = STALE_AFTER_S,
                             pattern: str = ".*.tmp") -> list[Path]:
    """Delete ``.NAME.*.tmp`` files (and folders) that a killed writer left in ``folder``, once
    older than ``max_age_s`` (a younger one may belong to a writer still at work). Every atomic
    write does this for its own NAME, so leftovers never pile up. Returns what was removed."""
    import shutil
    import time

    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    now = time.time()
    for p in folder.glob(pattern):
        try:
            if now - p.lstat().st_mtime < max_age_s:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:  # gone already, or not ours to remove: leave it
            continue
    return removed


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line; a torn last line (crash mid-write) is skipped by :func:`read_jsonl`."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()


def read_jsonl(path: str | Path, *, bad: list[tuple[int, str]] | None = None,
               keep: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file (those ``keep`` accepts, when given), in order. Any
    other line (a torn last line after a crash, text or a list another program appended) is
    skipped, and appended to ``bad`` as (line number, text) when a list is given."""
    out = []
    p = Path(path)
    if not p.exists():
        return out
    for number, line in enumerate(p.read_bytes().decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and (keep is None or keep(record)):
            out.append(record)
        elif bad is not None:
            bad.append((number, line))
    return out
