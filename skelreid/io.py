"""Atomic file writing and safe reading helpers.

Nothing the project writes is ever seen half-written: every file goes to a
temporary name in the destination folder, is flushed and fsync'ed, then renamed.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Permissions of written files: what ``open(path, "w")`` would give (mkstemp alone gives 0600).
_FILE_MODE = 0o666 & ~_umask()
#: Names of the temporary files :func:`atomic_write` creates (mkstemp adds 8 characters).
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it onto ``path`` on success.

    The data is flushed and fsync'ed before the rename, and the folder is
    fsync'ed after it. On any failure the temporary file is removed and
    ``path`` keeps its previous content; an :class:`OSError` (disk full,
    read-only folder, no permission) is raised as
    :class:`~skelreid.errors.OutputError` naming ``path``.
    """
    from .errors import OutputError

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(path, exc) from exc
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(path, exc) from exc
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: str | Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files a killed process left below ``folder``.

    Only names :func:`atomic_write` creates (``.<name>.<8 chars>.tmp``) are
    touched. Call it only while no other process writes there (the run-folder
    lock of :mod:`skelreid.runstate` guarantees that for a run folder).
    """
    removed = []
    for p in Path(folder).rglob(".*.tmp"):
        if _TEMP_NAME.match(p.name) and p.is_file():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def remove_file(path: str | Path, durable: bool = True) -> None:
    """Delete ``path`` if it exists (and, when ``durable``, fsync its folder)."""
    from .errors import OutputError

    path = Path(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(path, exc) from exc
    if durable:
        fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def json_dumps(obj: Any) -> str:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json_dumps(obj))


def read_input_bytes(path: str | Path) -> bytes:
    """The bytes of an input file; a missing or unreadable file is a one-line :class:`DataError`."""
    from .errors import DataError

    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror or exc}") from None


def input_folder(path: str | Path) -> Path:
    """``path`` as a folder to read from; a missing path or a file is a one-line :class:`DataError`."""
    from .errors import DataError

    path = Path(path)
    if not path.is_dir():
        raise DataError(path, "folder not found" if not path.exists() else "not a folder")
    return path


def read_json(path: str | Path) -> Any:
    from .errors import DataError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write an uncompressed ``.npz`` atomically (no pickled objects allowed)."""
    with atomic_write(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` written by :func:`save_npz`; object arrays are refused."""
    from .errors import DataError

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except Exception as exc:  # object arrays need pickle: refused; damaged archives raise many types
        raise DataError(path, f"cannot read arrays: {exc}") from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
