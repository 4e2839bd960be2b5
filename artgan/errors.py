"""Errors a user can act on. The CLI turns each into one line and a non-zero exit."""

from __future__ import annotations

import contextlib
import difflib
import functools
from typing import Iterator


class ArtganError(Exception):
    """A failure the user can fix; its message names the thing and the fix."""


class ConfigError(ArtganError):
    """A pipeline or parameter mistake, located by file, key and line where known."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None):
        self.file, self.key, self.line, self.detail = file, key, line, message
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message)


class UnknownNameError(ArtganError):
    """A name that no plugin registered; lists the known ones and the closest match."""

    def __init__(self, kind: str, name: str, known: list[str], *, hint: str = ""):
        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(name, self.known, n=1)
        msg = f"unknown {kind} {name!r}"
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        msg += f"; known {kind}s: {', '.join(self.known) or 'none'}"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what state the files are in (the CLI prints this message instead of its general
    one). A KeyboardInterrupt still, so whoever stops on Ctrl-C stops on it."""


def describe_os_error(exc: OSError) -> str:
    """One line for a failed read or write: the file, what happened and what to do."""
    import errno

    where = exc.filename or ""
    if exc.filename2:
        where += f" -> {exc.filename2}"
    what = exc.strerror or str(exc) or type(exc).__name__
    fix = {
        errno.ENOSPC: "the disk is full: free some space or write somewhere else",
        errno.EDQUOT: "your disk quota is used up: free some space or write somewhere else",
        errno.EACCES: "no permission: choose a folder you can write to, or change its permissions",
        errno.EPERM: "not permitted: choose a folder you can write to, or change its permissions",
        errno.EROFS: "the file system is read-only: write somewhere else",
        errno.EMFILE: "too many open files: raise the limit (ulimit -n) or process fewer files at once",
        errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
        errno.EEXIST: "a file is in the way where a folder is needed: choose another path",
        errno.ENOTDIR: "part of the path is a file, not a folder: choose another path",
        errno.EISDIR: "that is a folder: give a file name",
    }.get(exc.errno or 0, "")
    return f"{where + ': ' if where else ''}{what}" + (f"; {fix}" if fix else "") + " (files written before are kept)"


@contextlib.contextmanager
def cli_error_boundary() -> Iterator[None]:
    """Inside a CLI command: an :class:`ArtganError` becomes one ``Error: ...`` line and exit code
    1, never a traceback; so do a failed read or write (the disk full, a read-only folder: the file
    and the fix named), running out of memory, and, as a last resort, any other exception (set
    ``ARTGAN_DEBUG=1`` to see its traceback). Ctrl-C says what was kept."""
    import os

    import click  # here, not at the top: the runtime imports this module and needs no click

    try:
        yield
    except ArtganError as exc:
        raise click.ClickException(str(exc).replace("\n", " ")) from None
    except Interrupted as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        # only a command that can continue (artgan run) suggests --resume; export or process cannot
        ctx = click.get_current_context(silent=True)
        resumable = ctx is not None and any(p.name == "resume" for p in ctx.command.params)
        raise click.ClickException("interrupted; completed checkpoints and files are kept (continue with "
                                   "--resume)" if resumable else "interrupted; files written before are kept "
                                   "(run the command again to redo the rest)") from None
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except MemoryError:
        raise click.ClickException("out of memory; use smaller images, batches (--batch-size) or tiles "
                                   "(tile=), or a machine with more memory (files written before are "
                                   "kept)") from None
    except BrokenPipeError:  # `artgan plugins | head`: the reader left; nothing to say to it
        import sys
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        if os.environ.get("ARTGAN_DEBUG"):
            raise
        raise click.ClickException(describe_os_error(exc)) from None
    except Exception as exc:
        if os.environ.get("ARTGAN_DEBUG"):
            raise
        detail = " ".join(str(exc).split())[:300]
        raise click.ClickException(f"unexpected {type(exc).__name__}: {detail} (a bug: please report it "
                                   f"with the traceback from ARTGAN_DEBUG=1)") from None


def cli_errors(fn):
    """Decorator for click commands (the core's and plugins'): runs them inside
    :func:`cli_error_boundary`. (The ``artgan`` group has the same boundary around every
    command, so a plugin's command that forgets this still prints one line.)"""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with cli_error_boundary():
            return fn(*args, **kwargs)

    return wrapper
