"""Errors a user can act on. The CLI turns each into one line and a non-zero exit."""

from __future__ import annotations

import difflib
import functools


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


def cli_errors(fn):
    """Decorator for click commands (the core's and plugins'): an :class:`ArtganError` becomes one
    ``Error: ...`` line and exit code 1, never a traceback; Ctrl-C says what was kept."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import click  # here, not at the top: the runtime imports this module and needs no click

        try:
            return fn(*args, **kwargs)
        except ArtganError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.ClickException("interrupted; completed checkpoints and files are kept "
                                       "(continue with --resume)") from None

    return wrapper
