"""Reader for the KS20 VisLab multi-view Kinect v2 skeleton dataset.

KS20 (VisLab, IST Lisbon) has 20 persons walking in front of a Kinect v2
sensor placed at 5 viewpoints, in several recording settings each. The
release ships MATLAB ``.mat`` files; like the reference group, we read the
text export of them (the authors' ``Preprocess.py`` README: "KS20 data need
first transforming .mat to .txt").

Raw layout
----------
Exactly the layout read by the authors' preprocessing
(``Kali-Hac/TranSG`` ``Preprocess.py``, ``process_dataset_KS20``): one folder
per view, one text file per frame, the recording setting, the person and the
frame's timestamp in the file name::

    <root>/frontal/gc1_body1_10081450112_skel.txt
    <root>/frontal/gc1_body1_10081783445_skel.txt
    ...
    <root>/frontal/gc3_body24_...
    <root>/left_diagonal/...
    <root>/left_lateral/...
    <root>/right_diagonal/...
    <root>/right_lateral/...

* View folders and view indices (``Sequence.view``), in the order of the
  authors' ``views`` list (which is also the sorted order of the names):
  ``"0"`` frontal, ``"1"`` left_diagonal, ``"2"`` left_lateral,
  ``"3"`` right_diagonal, ``"4"`` right_lateral (:data:`KS20_VIEWS`).
  ``root`` may also be a folder that holds a ``KS20/`` folder of views.
* File names: ``<setting>_body<N>_<timestamp>`` followed by nothing, by
  ``.txt``, or by ``_<anything>`` (the authors parse ``name.split('_')`` and
  take field 0 as the setting, ``body<N>`` as the person and ``int()`` of
  field 2 as the timestamp). Settings are ``gc1``, ``gc2``, ``gc3`` in the
  release (any letters followed by digits are accepted); persons are
  ``body1``..``body24`` (20 of them: 1-4, 7-9, 11-17, 19-24). Files whose name
  does not have this form are ignored, except ``.txt`` files (most likely a
  misnamed frame: an error) and ``.mat`` files (an error that asks for the text
  export when a view folder has nothing else).
* File content: the first 25 lines are the 25 joints in Kinect v2 SDK order
  (layout ``kinect_v2``). Fields are comma separated (whitespace separated is
  accepted too); fields 1, 2, 3 are x, y, z in metres (camera coordinates).
  Field 0 (the joint index in our fixtures) and any further fields are not
  used. Every skeleton line of a file must have the same number (>= 4) of
  fields; lines after the 25th are ignored, as the authors do.

Sequences
---------
One :class:`~skelreid.data.records.Sequence` per (view, setting, person): the
frames of that run sorted by timestamp. ``person`` is ``"body<N>"``, ``walk``
is ``"<view name>-<setting>"`` (e.g. ``"left_diagonal-gc2"``, unique within
the person), ``view`` the view index as a string, ``condition`` the setting,
``source`` the view folder and ``meta`` holds ``view_name``, ``setting``,
``body`` (int), ``first_file`` and ``frames_total`` (plus the counts of
:func:`~skelreid.data.nan_policy.apply_nan_policy` when it changed anything).

Every problem is a :class:`~skelreid.errors.DataError` naming the file and,
within a file, the 1-based line. A NaN or inf x, y or z is one too by default;
with ``nan_policy="drop-frames"`` or ``"interpolate"`` the run's frames go
through :mod:`skelreid.data.nan_policy` instead. A finite value beyond the
float32 range is always refused.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...io import input_folder, read_input_bytes
from ..layouts import KINECT_V2
from ..nan_policy import HINT as NAN_HINT
from ..nan_policy import F32_MAX, apply_nan_policy, check_policy
from ..records import Sequence, natural_key

__all__ = ["read_ks20", "parse_ks20_frame", "KS20_VIEWS", "KS20_BODIES"]

#: View folder names; the index is the view id used by ``--view`` and ``view_<v>``.
KS20_VIEWS: tuple[str, ...] = ("frontal", "left_diagonal", "left_lateral", "right_diagonal", "right_lateral")

#: The 20 body numbers of the release (the authors map them to 0..19 in this order).
KS20_BODIES: tuple[int, ...] = (1, 2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 24)

_NJ = KINECT_V2.num_joints
_NAME_RE = re.compile(r"^(?P<setting>[A-Za-z]+\d+)_body(?P<body>\d+)_(?P<ts>\d+)(?P<rest>(?:\.txt|_.*)?)$",
                      re.IGNORECASE)
_AXES = ("x", "y", "z")


def _norm_view(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _show(raw: str, limit: int = 40) -> str:
    return repr(raw if len(raw) <= limit else raw[:limit] + "...")


def parse_ks20_frame(path: str | Path, allow_nonfinite: bool = False) -> np.ndarray:
    """Parse one KS20 frame file into ``[25, 3]`` float32 joints (Kinect v2 order).

    Raises :class:`DataError` (file and line) for a malformed file. A non-finite
    x, y or z is an error too unless ``allow_nonfinite`` (the run's
    ``nan_policy`` then deals with it); a finite value beyond the float32 range
    is always an error.
    """
    path = Path(path)
    data = read_input_bytes(path)
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(path, f"empty file: expected {_NJ} joint lines")
    out = np.empty((_NJ, 3), dtype=np.float32)
    nfields = None
    for i, raw in enumerate(lines[:_NJ]):
        lineno = i + 1
        line = raw.strip()
        if not line:
            raise DataError(path, f"empty line where joint {i} of {_NJ} was expected", line=lineno)
        fields = line.split(",") if "," in line else line.split()
        if len(fields) < 4:
            raise DataError(
                path, f"truncated line: expected at least 4 fields (index, x, y, z), found {len(fields)}",
                line=lineno,
            )
        if nfields is None:
            nfields = len(fields)
        elif len(fields) != nfields:
            raise DataError(path, f"expected {nfields} fields as on line 1, found {len(fields)}", line=lineno)
        for k in range(3):
            field = fields[k + 1].strip()
            try:
                if "_" in field:  # float() takes "1_0"; a coordinate never has one
                    raise ValueError(field)
                v = float(field)
            except ValueError:
                raise DataError(
                    path, f"non-numeric value {_show(field)} for joint {i} {_AXES[k]}", line=lineno
                ) from None
            if not math.isfinite(v):
                if allow_nonfinite:
                    out[i, k] = v
                    continue
                raise DataError(path, f"non-finite value {_show(field)} for joint {i} {_AXES[k]}; {NAN_HINT}",
                                line=lineno)
            if abs(v) > F32_MAX:  # would become inf as float32
                raise DataError(path, f"value {_show(field)} for joint {i} {_AXES[k]} is too large (beyond the "
                                "float32 range)", line=lineno)
            out[i, k] = v
    if len(lines) < _NJ:
        raise DataError(
            path, f"expected {_NJ} joint lines (Kinect v2), found {len(lines)}: the file ends early",
            line=len(lines),
        )
    return out


def _view_folders(root: Path) -> list[tuple[int, Path]]:
    def scan(folder: Path) -> list[tuple[int, Path]]:
        try:
            entries = [p for p in folder.iterdir() if p.is_dir()]
        except OSError as exc:
            raise DataError(folder, f"cannot list folder: {exc.strerror or exc}") from None
        found: dict[int, Path] = {}
        for p in entries:
            name = _norm_view(p.name)
            if name in KS20_VIEWS:
                v = KS20_VIEWS.index(name)
                if v in found:
                    raise DataError(p, f"two folders for view {KS20_VIEWS[v]}: {found[v].name} and {p.name}")
                found[v] = p
        return sorted(found.items())

    views = scan(root)
    if not views:
        for p in (root / "KS20", root / "ks20"):
            if p.is_dir():
                views = scan(p)
                if views:
                    break
    return views


def _frame_files(view_dir: Path) -> dict[tuple[str, int], list[tuple[int, Path]]]:
    groups: dict[tuple[str, int], list[tuple[int, Path]]] = {}
    mats = []
    try:
        entries = sorted(view_dir.iterdir(), key=lambda p: natural_key(p.name))
    except OSError as exc:
        raise DataError(view_dir, f"cannot list folder: {exc.strerror or exc}") from None
    for f in entries:
        if not f.is_file() or f.name.startswith("."):
            continue
        m = _NAME_RE.match(f.name)
        if m is None or m.group("rest").lower().endswith(".mat"):
            if f.suffix.lower() == ".txt":
                raise DataError(
                    f, "unexpected file name: KS20 frame files are named <setting>_body<N>_<timestamp>[_...].txt, "
                       "e.g. gc1_body1_10081450112_skel.txt",
                )
            if f.suffix.lower() == ".mat":
                mats.append(f)
            continue
        key = (m.group("setting").lower(), int(m.group("body")))
        groups.setdefault(key, []).append((int(m.group("ts")), f))
    if not groups:
        if mats:
            raise DataError(
                view_dir, f"holds {len(mats)} .mat file(s) but no text frame files: export the KS20 .mat "
                          "files to per-frame text files (<setting>_body<N>_<timestamp>.txt) first",
            )
        raise DataError(view_dir, "no KS20 frame files (<setting>_body<N>_<timestamp>[_...].txt) in this view folder")
    for key, files in groups.items():
        files.sort(key=lambda tf: (tf[0], natural_key(tf[1].name)))
        for (t0, f0), (t1, f1) in zip(files, files[1:]):
            if t0 == t1:
                raise DataError(f1, f"same timestamp {t1} as {f0.name}: two frames of one recording cannot share it")
    return groups


def read_ks20(root: str | Path, progress: bool = False, nan_policy: str = "error") -> list[Sequence]:
    """Read every KS20 view folder under ``root`` (see the module docstring).

    Returns one sequence per (view, setting, person), sorted by person, view,
    then setting (natural order). ``nan_policy`` decides what non-finite
    coordinates do (see :mod:`skelreid.data.nan_policy`); ``meta`` then also
    counts ``nan_frames_dropped`` or ``nan_values_interpolated``.
    """
    check_policy(nan_policy)
    root = input_folder(root)
    views = _view_folders(root)
    if not views:
        raise DataError(
            root, "does not look like KS20: no view folders (" + ", ".join(KS20_VIEWS) + ") found",
        )
    runs: list[tuple[int, Path, str, int, list[tuple[int, Path]]]] = []
    for v, vdir in views:
        for (setting, body), files in _frame_files(vdir).items():
            runs.append((v, vdir, setting, body, files))
    runs.sort(key=lambda r: (r[3], r[0], natural_key(r[2])))

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(len(r[4]) for r in runs), unit="frame", desc="KS20", leave=False)
    out: list[Sequence] = []
    try:
        for v, vdir, setting, body, files in runs:
            frames = np.empty((len(files), _NJ, 3), dtype=np.float32)
            for i, (_ts, f) in enumerate(files):
                frames[i] = parse_ks20_frame(f, allow_nonfinite=nan_policy != "error")
                if bar is not None:
                    bar.update(1)
            vname = KS20_VIEWS[v]
            frames, nan_info = apply_nan_policy(frames, nan_policy, vdir / f"{setting}_body{body}_*",
                                                KINECT_V2.joints)
            out.append(Sequence(
                person=f"body{body}",
                walk=f"{vname}-{setting}",
                frames=frames,
                layout=KINECT_V2.name,
                view=str(v),
                condition=setting,
                source=str(vdir),
                meta={"view_name": vname, "setting": setting, "body": body,
                      "first_file": files[0][1].name, "frames_total": len(files), **nan_info},
            ))
    finally:
        if bar is not None:
            bar.close()
    return out
