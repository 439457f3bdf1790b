"""Reader for the raw skeleton exports of BIWI RGBD-ID and IAS-Lab RGBD-ID.

Raw format (Kinect v1, OpenNI/SDK export): one text file per frame, named
``*_skel.txt``, in one folder per person::

    BIWI/Training/<id>/000_000000-d_8349192_skel.txt
    BIWI/Testing/Walking/<id>/...
    BIWI/Testing/Still/<id>/...
    IAS/Training/<id>/...   IAS/TestingA/<id>/...   IAS/TestingB/<id>/...

Every line is one joint of one tracked body, 14 comma-separated numbers:

====  =====================================================================
col   meaning
====  =====================================================================
0     body (user) index
1-3   x, y, z in metres (camera frame)
4-5   pixel u, v
6     tracking state: 0 not tracked, 1 inferred, 2 tracked
7     quality flag
8     parent joint index
9     joint index, 0..19 in Kinect SDK v1 order
10-13 orientation quaternion
====  =====================================================================

The first 20 lines are the skeleton used; later lines (other bodies, or
all-zero empty slots) are checked for being well-formed and otherwise ignored.
A frame whose first 20 joints include one with tracking state 0 is dropped, as
the reference preprocessing does. The kept joints are ordered by column 9,
which gives the ``kinect_v1`` layout.

:func:`read_biwi_ias` returns one :class:`~skelreid.data.records.Sequence` per
(split, person): ``person`` is the person folder's name, ``condition`` the
split (the parent folder's path relative to ``root``, e.g. ``Testing/Walking``)
and ``walk`` the split with ``/`` replaced by ``-`` (``Testing-Walking``).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...io import input_folder, read_input_bytes
from ..layouts import KINECT_V1
from ..nan_policy import HINT as NAN_HINT
from ..nan_policy import F32_MAX, apply_nan_policy, check_policy
from ..records import Sequence, natural_key

__all__ = ["read_biwi_ias", "parse_skel_frame", "SKEL_SUFFIX"]

SKEL_SUFFIX = "_skel.txt"
_NCOLS = 14
_NJ = KINECT_V1.num_joints
_COL_STATE = 6
_COL_JOINT = 9


def parse_skel_frame(path: str | Path, allow_nonfinite: bool = False) -> np.ndarray | None:
    """Parse one ``*_skel.txt`` frame file.

    Returns the ``[20, 3]`` float32 joint positions in Kinect v1 order, or
    ``None`` when the frame is dropped (a joint of the skeleton is not tracked).
    Raises :class:`DataError` (file and line) for a malformed file. A
    non-finite x, y or z of the skeleton is an error too unless
    ``allow_nonfinite`` (the run's ``nan_policy`` then deals with it).
    """
    path = Path(path)
    data = read_input_bytes(path)
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    rows = np.empty((len(lines), _NCOLS), dtype=np.float64)
    for i, raw in enumerate(lines):
        lineno = i + 1
        fields = raw.strip().split(b",")
        if len(fields) != _NCOLS:
            raise DataError(path, f"expected {_NCOLS} comma-separated numbers, found {len(fields)}", line=lineno)
        for k, field in enumerate(fields):
            try:
                v = float(field)
            except ValueError:
                text = field.decode("utf-8", errors="replace")
                if len(text) > 40:
                    text = text[:40] + "..."
                raise DataError(path, f"non-numeric value {text!r} in column {k}", line=lineno) from None
            if math.isfinite(v) and abs(v) > F32_MAX and 1 <= k <= 3:
                raise DataError(path, f"value {v:g} in column {k} is too large (beyond the float32 range)",
                                line=lineno)
            if not math.isfinite(v):
                if allow_nonfinite and i < _NJ and 1 <= k <= 3:
                    rows[i, k] = v
                    continue
                hint = f"; {NAN_HINT}" if i < _NJ and 1 <= k <= 3 else ""
                raise DataError(path, f"non-finite value in column {k}{hint}", line=lineno)
            rows[i, k] = v
    if len(lines) < _NJ:
        raise DataError(
            path, f"expected at least {_NJ} skeleton lines, found {len(lines)}",
            line=len(lines) if lines else None,
        )
    skel = rows[:_NJ]
    if bool((skel[:, _COL_STATE] == 0).any()):
        return None
    out = np.empty((_NJ, 3), dtype=np.float32)
    seen = np.zeros(_NJ, dtype=bool)
    for i in range(_NJ):
        j = skel[i, _COL_JOINT]
        if j != int(j) or not 0 <= j < _NJ:
            raise DataError(path, f"joint index {j:g} out of range 0..{_NJ - 1}", line=i + 1)
        j = int(j)
        if seen[j]:
            raise DataError(path, f"duplicate joint index {j} in the skeleton", line=i + 1)
        seen[j] = True
        out[j] = skel[i, 1:4]
    return out


def _skel_folders(root: Path) -> list[tuple[Path, list[Path]]]:
    found: dict[Path, list[Path]] = {}
    for f in root.rglob(f"*{SKEL_SUFFIX}"):
        if f.is_file():
            found.setdefault(f.parent, []).append(f)
    return [
        (folder, sorted(files, key=lambda p: natural_key(p.name)))
        for folder, files in sorted(found.items(), key=lambda kv: natural_key(kv[0].as_posix()))
    ]


def _split_of(root: Path, folder: Path) -> tuple[str, str]:
    """``(person, split path)`` of a folder of frame files."""
    rel = folder.relative_to(root)
    if len(rel.parts) >= 2:
        return folder.name, rel.parent.as_posix()
    if len(rel.parts) == 1:  # root is a split folder such as Training/
        return folder.name, root.resolve().name
    # root itself is a person folder
    return root.resolve().name, root.resolve().parent.name


def read_biwi_ias(root: str | Path, progress: bool = False, nan_policy: str = "error") -> list[Sequence]:
    """Read every person folder of ``*_skel.txt`` frame files under ``root``.

    Returns one sequence per (split, person) in natural order of the folders,
    frames sorted naturally by file name, untracked frames dropped
    (``meta`` records ``frames_total`` and ``frames_dropped``). ``nan_policy``
    decides what non-finite coordinates do (see :mod:`skelreid.data.nan_policy`).
    """
    check_policy(nan_policy)
    root = input_folder(root)
    folders = _skel_folders(root)
    if not folders:
        raise DataError(root, f"no *{SKEL_SUFFIX} frame files found (expected BIWI or IAS-Lab raw skeletons)")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(len(f) for _, f in folders), unit="frame", desc="BIWI/IAS", leave=False)
    out: list[Sequence] = []
    try:
        for folder, files in folders:
            person, split = _split_of(root, folder)
            kept = []
            for f in files:
                frame = parse_skel_frame(f, allow_nonfinite=nan_policy != "error")
                if frame is not None:
                    kept.append(frame)
                if bar is not None:
                    bar.update(1)
            if kept:
                frames, nan_info = apply_nan_policy(np.stack(kept), nan_policy, folder, KINECT_V1.joints)
            else:  # an empty walk: left out (and counted) like any walk too short for a window
                frames = np.zeros((0, _NJ, 3), np.float32)
                nan_info = {"empty_reason": f"no frame has all {_NJ} joints tracked ({len(files)} frame files)"}
            out.append(Sequence(
                person=person,
                walk=split.replace("/", "-"),
                frames=frames,
                layout=KINECT_V1.name,
                condition=split,
                source=str(folder),
                meta={"frames_total": len(files), "frames_dropped": len(files) - len(kept), **nan_info},
            ))
    finally:
        if bar is not None:
            bar.close()
    return out
