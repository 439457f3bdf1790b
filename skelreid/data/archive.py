"""Safe archive extraction: members that escape the destination are refused."""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..errors import DataError


def extract_archive(archive: str | Path, dest: str | Path) -> Path:
    """Extract a tar archive (any compression) into ``dest``.

    Absolute paths, ``..`` components, links and device files are refused: a
    member that would land outside ``dest`` stops the extraction with a
    :class:`DataError`, and nothing is left at ``dest``. Extraction happens in a
    temporary sibling folder that is renamed into place when complete.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.exists():
        raise DataError(archive, "archive not found")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        try:
            with tarfile.open(archive) as tar:
                for member in tar:
                    _check_member(archive, tmp, member)
                    tar.extract(member, tmp, filter="data")
        except tarfile.TarError as exc:
            raise DataError(archive, f"cannot read archive: {exc}") from None
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _check_member(archive: Path, root: Path, member: tarfile.TarInfo) -> None:
    name = member.name
    target = (root / name).resolve()
    if Path(name).is_absolute() or ".." in Path(name).parts or not target.is_relative_to(root.resolve()):
        raise DataError(archive, f"refused archive member {name!r}: it points outside the destination")
    if not (member.isfile() or member.isdir()):
        raise DataError(archive, f"refused archive member {name!r}: only files and folders are extracted")
