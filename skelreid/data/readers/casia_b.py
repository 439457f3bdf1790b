"""Reader for 3D skeletons estimated from CASIA-B gait videos.

CASIA-B has 124 subjects (``001``..``124``) walking under three conditions,
normal (``nm-01``..``nm-06``), with a bag (``bg-01``, ``bg-02``) and in a coat
(``cl-01``, ``cl-02``), each filmed by 11 synchronised cameras at
``000``, ``018``, ..., ``180`` degrees. The reference group estimated 2D poses
with OpenPose and lifted them to 3D with 3DHumanPose, giving 14 joints per
frame (layout ``casia_b_14``, joint 0 = head, joint 1 = neck).

Raw layout
----------
The authors never published their CASIA-B skeleton files or the code that
reads them (only the pre-processed ``.npy`` windows, on request), so this
layout is ours. It follows the CASIA-B release naming (videos
``001-nm-01-090.avi``, silhouette folders ``001/nm-01/090/``, which OpenGait's
CASIA-B-Pose keeps too): one text file per sequence, named after the video::

    <root>/001/nm-01/000/001-nm-01-000.txt
    <root>/001/nm-01/018/001-nm-01-018.txt
    ...
    <root>/001/cl-02/180/001-cl-02-180.txt
    <root>/002/...
    ...
    <root>/124/...

* The file name ``<subject>-<cond>-<seq>-<angle>.txt`` identifies the sequence:
  subject = 3 digits, cond = ``nm`` | ``bg`` | ``cl``, seq = 2 digits,
  angle = 3 digits, a multiple of 18 in 0..180. The folders above it are
  optional (a flat ``<root>/001-nm-01-090.txt`` or ``<root>/001/001-nm-01-090.txt``
  works too); where the ``<subject>/<cond>-<seq>/<angle>/`` folders are
  present they must agree with the name. Below ``root`` every ``.txt`` file
  must be named this way; other files (and non-matching ``.txt`` files directly
  in ``root``, such as a README) are ignored. Missing sequences are fine
  (the real set lacks a few).
* File content: one frame per line, 42 numbers = 14 joints x (x, y, z), joint
  major (``x0 y0 z0 x1 y1 z1 ...``), in the :data:`~skelreid.data.layouts.CASIA_B_14`
  order (Head, Neck, RShoulder, RElbow, RWrist, LShoulder, LElbow, LWrist,
  RHip, RKnee, RAnkle, LHip, LKnee, LAnkle). Numbers are separated by commas
  or by whitespace (one choice per file: a file containing a comma is read as
  comma separated). Coordinates are as the 3D estimate gives them (any unit,
  any origin): nothing is normalised here; the joint-0-relative normalisation
  of the reference is a windowing option.

Sequences
---------
One :class:`~skelreid.data.records.Sequence` per file: ``person="001"``,
``walk="nm-01_090"`` (unique within the person), ``view`` the view index
``angle / 18`` as a string (``"0"``..``"10"``), ``condition`` ``"nm"`` |
``"bg"`` | ``"cl"``, ``meta={"sequence": "nm-01", "angle": 90}``, layout
``casia_b_14``. Sequences are sorted by subject, condition (nm, bg, cl),
sequence number, then angle.

Every problem is a :class:`~skelreid.errors.DataError` naming the file and,
within a file, the 1-based line. A NaN or inf coordinate is one too by
default; with ``nan_policy="drop-frames"`` or ``"interpolate"`` the file's
frames go through :mod:`skelreid.data.nan_policy` instead (``meta`` then also
counts ``nan_frames_dropped`` or ``nan_values_interpolated``). A finite value
beyond the float32 range is always refused.
"""
from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...io import input_folder, read_input_bytes
from ..layouts import CASIA_B_14
from ..nan_policy import HINT as NAN_HINT
from ..nan_policy import F32_MAX, apply_nan_policy, check_policy
from ..records import Sequence, natural_key

__all__ = ["read_casia_b", "parse_casia_b_file", "CASIA_B_CONDITIONS", "CASIA_B_SEQUENCES", "CASIA_B_ANGLES"]

#: Condition codes in reading order.
CASIA_B_CONDITIONS: tuple[str, ...] = ("nm", "bg", "cl")
#: The sequences of the release.
CASIA_B_SEQUENCES: tuple[str, ...] = (
    "nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02",
)
#: Camera angles; the view index is ``angle // 18``.
CASIA_B_ANGLES: tuple[int, ...] = tuple(range(0, 181, 18))

_NJ = CASIA_B_14.num_joints
_NCOL = 3 * _NJ
_NAME_RE = re.compile(r"^(?P<subject>\d{3})-(?P<cond>nm|bg|cl)-(?P<seq>\d{2})-(?P<angle>\d{3})\.txt$")
_SUBJECT_RE = re.compile(r"^\d{3}$")
_CONDSEQ_RE = re.compile(r"^(nm|bg|cl)-\d{2}$")
_NAME_HINT = "expected <subject>-<cond>-<seq>-<angle>.txt, e.g. 001-nm-01-090.txt"


def _show(raw: str, limit: int = 40) -> str:
    return repr(raw if len(raw) <= limit else raw[:limit] + "...")


class _Problem(Exception):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(message, line)
        self.message = message
        self.line = line


def _content_lines(text: str) -> list[str]:
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _parse_fast(text: str, lines: list[str], comma: bool) -> np.ndarray | None:
    """numpy's C parser on a well-formed file; ``None`` when anything looks off."""
    if "_" in text or any(not ln.strip() for ln in lines):
        return None
    try:
        vals = np.loadtxt(io.StringIO(text), delimiter="," if comma else None, comments=None,
                          dtype=np.float64, ndmin=2)
    except (ValueError, UnicodeError):
        return None
    if vals.shape != (len(lines), _NCOL) or not bool(np.isfinite(vals).all()) or bool((np.abs(vals) > F32_MAX).any()):
        return None
    return vals


def _parse_careful(lines: list[str], comma: bool, allow_nonfinite: bool = False) -> np.ndarray:
    vals = np.empty((len(lines), _NCOL), dtype=np.float64)
    for i, raw in enumerate(lines):
        lineno = i + 1
        line = raw.strip()
        if not line:
            raise _Problem("empty line inside the file: every line must be one frame", lineno)
        fields = line.split(",") if comma else line.split()
        if len(fields) != _NCOL:
            what = "truncated line" if len(fields) < _NCOL else "too many values"
            raise _Problem(
                f"{what}: expected {_NCOL} numbers ({_NJ} joints x 3), found {len(fields)}", lineno
            )
        for k, field in enumerate(fields):
            field = field.strip()
            joint, axis = CASIA_B_14.joints[k // 3], "xyz"[k % 3]
            try:
                if "_" in field:  # float() takes "1_0"; a coordinate never has one
                    raise ValueError(field)
                v = float(field)
            except ValueError:
                raise _Problem(f"non-numeric value {_show(field)} for {joint} {axis}", lineno) from None
            if not math.isfinite(v):
                if allow_nonfinite:
                    vals[i, k] = v
                    continue
                raise _Problem(f"non-finite value {_show(field)} for {joint} {axis}; {NAN_HINT}", lineno)
            if abs(v) > F32_MAX:  # would become inf as float32
                raise _Problem(f"value {_show(field)} for {joint} {axis} is too large (beyond the float32 range)",
                               lineno)
            vals[i, k] = v
    return vals


def parse_casia_b_file(path: str | Path, allow_nonfinite: bool = False) -> np.ndarray:
    """Parse one sequence file into ``[T, 14, 3]`` float32 frames.

    Raises :class:`DataError` (file and line) for a malformed file. A non-finite
    coordinate is an error too unless ``allow_nonfinite`` (the run's
    ``nan_policy`` then deals with it); a finite value beyond the float32 range
    is always an error.
    """
    path = Path(path)
    data = read_input_bytes(path)
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    lines = _content_lines(text)
    if not lines:
        raise DataError(path, f"empty file: expected one line of {_NCOL} numbers per frame")
    comma = "," in text
    vals = _parse_fast(text, lines, comma)
    if vals is None:
        try:
            vals = _parse_careful(lines, comma, allow_nonfinite)
        except _Problem as exc:
            raise DataError(path, exc.message, line=exc.line) from None
    return vals.astype(np.float32).reshape(len(lines), _NJ, 3)


def _check_folders(root: Path, f: Path, subject: str, condseq: str, angle: str) -> None:
    """The ``<subject>/<cond>-<seq>/<angle>/`` folders, where present, must agree with the name."""
    parts = f.relative_to(root).parts[:-1]

    def clash(what: str, exp: str, part: str) -> DataError:
        return DataError(f, f"file name says {what} {exp} but the file lies in folder {part!r}")

    at = [i for i, p in enumerate(parts) if _CONDSEQ_RE.match(p)]
    if at:
        i = at[-1]
        if parts[i] != condseq:
            raise clash("sequence", condseq, parts[i])
        if i > 0 and _SUBJECT_RE.match(parts[i - 1]) and parts[i - 1] != subject:
            raise clash("subject", subject, parts[i - 1])
        if i + 1 < len(parts) and _SUBJECT_RE.match(parts[i + 1]) and parts[i + 1] != angle:
            raise clash("view angle", angle, parts[i + 1])
    elif parts and _SUBJECT_RE.match(parts[-1]) and parts[-1] != subject:
        raise clash("subject", subject, parts[-1])


def _find_files(root: Path) -> list[tuple[tuple, Path, re.Match]]:
    found: dict[tuple, Path] = {}
    matches: dict[tuple, re.Match] = {}
    for f in sorted(root.rglob("*"), key=lambda p: natural_key(p.as_posix())):
        if not f.is_file() or f.suffix.lower() != ".txt" or f.name.startswith("."):
            continue
        m = _NAME_RE.match(f.name)
        if m is None:
            if f.parent == root:
                continue  # a README or notes next to the subject folders
            raise DataError(f, f"unexpected file name: {_NAME_HINT}")
        angle = int(m.group("angle"))
        if angle not in CASIA_B_ANGLES:
            raise DataError(f, f"view angle {angle} is not one of 000, 018, ..., 180")
        cond, seq = m.group("cond"), m.group("seq")
        _check_folders(root, f, m.group("subject"), f"{cond}-{seq}", m.group("angle"))
        key = (tuple(natural_key(m.group("subject"))), CASIA_B_CONDITIONS.index(cond), int(seq), angle)
        if key in found:
            raise DataError(f, f"sequence {f.name} found twice (also {found[key]})")
        found[key] = f
        matches[key] = m
    return [(k, found[k], matches[k]) for k in sorted(found)]


def read_casia_b(root: str | Path, progress: bool = False, nan_policy: str = "error") -> list[Sequence]:
    """Read every CASIA-B skeleton sequence file under ``root`` (see the module docstring).

    ``nan_policy`` decides what non-finite coordinates do (see
    :mod:`skelreid.data.nan_policy`).
    """
    check_policy(nan_policy)
    root = input_folder(root)
    files = _find_files(root)
    if not files:
        raise DataError(root, f"no CASIA-B skeleton files found ({_NAME_HINT})")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="file", desc="CASIA-B", leave=False)
    out: list[Sequence] = []
    try:
        for _key, f, m in files:
            frames = parse_casia_b_file(f, allow_nonfinite=nan_policy != "error")
            frames, nan_info = apply_nan_policy(frames, nan_policy, f, CASIA_B_14.joints,
                                                line_of=lambda t, _j: t + 1)
            angle = int(m.group("angle"))
            cond = m.group("cond")
            sequence = f"{cond}-{m.group('seq')}"
            out.append(Sequence(
                person=m.group("subject"),
                walk=f"{sequence}_{m.group('angle')}",
                frames=frames,
                layout=CASIA_B_14.name,
                view=str(angle // 18),
                condition=cond,
                source=str(f),
                meta={"sequence": sequence, "angle": angle, **nan_info},
            ))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out
