"""User-facing errors.

Every problem caused by the user's input (a bad file, a wrong option, a missing
path) is raised as a :class:`SkelreidError`. The command line prints its message
on one line and exits with status 2, without a traceback.
"""
from __future__ import annotations

from pathlib import Path


class SkelreidError(Exception):
    """An error whose message is meant for the user, on one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class DataError(SkelreidError):
    """A data file is missing, malformed or inconsistent.

    The message names the file and, where known, the 1-based line.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        self.path = str(path)
        self.line = line
        super().__init__(f"{where}: {message}")


class ConfigError(SkelreidError):
    """An option or preset value is invalid."""


class OutputError(SkelreidError):
    """A result file could not be written (disk full, read-only folder, no permission).

    The file keeps its previous content (every write goes to a temporary file
    that is renamed into place only when complete); the temporary file is removed.
    """

    def __init__(self, path: str | Path, exc: OSError):
        self.path = str(path)
        self.errno = exc.errno
        reason = exc.strerror or str(exc)
        if exc.errno is not None:
            import errno as _errno

            reason += f" ({_errno.errorcode.get(exc.errno, exc.errno)})"
        super().__init__(f"cannot write {path}: {reason}; the previous version of the file, if any, is unchanged")
