"""Atomic file writes: a crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator


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


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    out = []
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
