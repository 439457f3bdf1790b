"""The generic skeleton format: how to bring your own data.

Put one file per sequence (walk), either ``.npz`` or ``.csv``, anywhere under a
folder; :func:`read_generic` reads every such file below it (recursively, in
sorted order). Every sequence of a dataset must have the same number of joints,
the same dimensions and the same layout name: declare ``layout`` in every
``.npz`` file or in none (``.csv`` files always get the generic layout).

``.npz`` files (written with ``numpy.savez``; read with ``allow_pickle=False``)
-------------------------------------------------------------------------------

- ``frames`` (required): a float (or integer) array ``[T, J, D]``: T frames,
  J joints, D = 3 (x, y, z) or 2 (x, y) coordinates; all values finite.
- ``person`` (optional string): the identity label. Default: the name of the
  folder that holds the file.
- ``walk`` (optional string): names the sequence within the person. Default: the
  file name without ``.npz``.
- ``view``, ``condition`` (optional strings): camera view and walking condition.
- ``layout`` (optional string): a registered joint layout name
  (``kinect_v1``, ``kinect_v2``, ``casia_b_14``, ``coco_17``,
  ``mediapipe_33``); J and D must
  match it. Without it the layout is ``generic_<J>x<D>`` (unnamed joints).

Strings are stored as 0-d string arrays, e.g.
``np.savez("p01/walk1.npz", frames=frames, person="p01", view="front")``.

``.csv`` files
--------------

A header row, then one row per joint per frame::

    person,walk,frame,joint,x,y,z
    p01,walk1,0,0,0.12,0.95,2.41
    p01,walk1,0,1,0.10,0.71,2.43
    ...

- Required columns: ``person``, ``walk``, ``frame`` (integer), ``joint``
  (integer, 0..J-1), ``x``, ``y``; ``z`` is optional (leave the column out for 2D
  data). Optional columns ``view`` and ``condition`` must be constant within a
  walk. Columns may come in any order; other columns are refused.
- One file may hold several walks (rows are grouped by ``person`` and
  ``walk``); rows may come in any order.
- Within a walk the frame numbers must be contiguous (no gaps, no repeats) and
  every frame must have every joint 0..J-1 exactly once.

Every problem is reported as a :class:`~skelreid.errors.DataError` naming the
file and, for ``.csv`` rows, the line.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..layouts import LAYOUTS, generic_layout
from ..nan_policy import HINT as NAN_HINT
from ..nan_policy import F32_MAX, apply_nan_policy, check_policy
from ..records import Sequence, natural_key

__all__ = ["read_generic", "read_generic_npz", "read_generic_csv"]

_REQUIRED = ("person", "walk", "frame", "joint", "x", "y")
_OPTIONAL = ("z", "view", "condition")
_STRING_KEYS = ("person", "walk", "view", "condition", "layout")


def _layout_name(path: Path, name: str | None, joints: int, dims: int) -> str:
    if name is None:
        return generic_layout(joints, dims).name
    if name not in LAYOUTS:
        if name == generic_layout(joints, dims).name:
            return name
        raise DataError(path, f"unknown layout {name!r}; registered layouts: {', '.join(LAYOUTS.names())}")
    layout = LAYOUTS.get(name)
    if layout.num_joints != joints or layout.dims != dims:
        raise DataError(
            path,
            f"layout {layout.name!r} has {layout.num_joints} joints in {layout.dims}D, "
            f"but frames have {joints} joints in {dims}D",
        )
    return layout.name


def _npz_string(path: Path, key: str, value: np.ndarray) -> str:
    if value.ndim != 0 or value.dtype.kind not in "US":
        raise DataError(path, f"array {key!r} must be a string scalar, got {value.dtype} with shape {value.shape}")
    item = value.item()
    text = item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)
    if not text.strip():
        raise DataError(path, f"array {key!r} is an empty string")
    return text.strip()


def read_generic_npz(path: str | Path, nan_policy: str = "error") -> Sequence:
    """Read one ``.npz`` sequence file (see the module documentation).

    ``nan_policy`` decides what non-finite values in ``frames`` do (see
    :mod:`skelreid.data.nan_policy`).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except Exception as exc:  # zipfile and numpy raise many types for damaged archives
        raise DataError(path, f"not a readable .npz file (no pickled objects allowed): {exc}") from None
    if "frames" not in arrays:
        raise DataError(path, f"no 'frames' array (found: {', '.join(sorted(arrays)) or 'nothing'})")
    frames = arrays["frames"]
    if frames.dtype.kind not in "fiu":
        raise DataError(path, f"'frames' must be a float array, got dtype {frames.dtype}")
    if frames.ndim != 3 or frames.shape[2] not in (2, 3) or frames.shape[0] < 1 or frames.shape[1] < 1:
        raise DataError(path, f"'frames' must have shape [T, J, 2|3] with T, J >= 1, got {list(frames.shape)}")
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, refused below
        frames = frames.astype(np.float32)
    nan_info: dict = {}
    if not np.isfinite(frames).all():
        if nan_policy == "error":
            bad = np.argwhere(~np.isfinite(frames))[0]
            raise DataError(path, f"non-finite value (or one beyond the float32 range) in 'frames' at frame "
                            f"{bad[0]}, joint {bad[1]}; {NAN_HINT}")
        frames, nan_info = apply_nan_policy(frames, nan_policy, path)
    strings = {k: _npz_string(path, k, arrays[k]) for k in _STRING_KEYS if k in arrays}
    layout = _layout_name(path, strings.get("layout"), frames.shape[1], frames.shape[2])
    return Sequence(
        person=strings.get("person", path.resolve().parent.name),
        walk=strings.get("walk", path.stem),
        frames=frames,
        layout=layout,
        view=strings.get("view"),
        condition=strings.get("condition"),
        source=str(path),
        meta=nan_info,
    )


class _Walk:
    __slots__ = ("person", "walk", "view", "condition", "rows", "first_line")

    def __init__(self, person: str, walk: str, view, condition, line: int):
        self.person, self.walk, self.view, self.condition = person, walk, view, condition
        self.rows: dict[tuple[int, int], tuple[tuple[float, ...], int]] = {}
        self.first_line = line


def read_generic_csv(path: str | Path, nan_policy: str = "error") -> list[Sequence]:
    """Read one ``.csv`` file of one or more walks (see the module documentation).

    ``nan_policy`` decides what non-finite coordinates do (see
    :mod:`skelreid.data.nan_policy`); with ``error`` the line is named.
    """
    path = Path(path)
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror or exc}") from None
    walks: dict[tuple[str, str], _Walk] = {}
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            while header is not None and not any(c.strip() for c in header):
                header = next(reader, None)
            if header is None:
                raise DataError(path, "empty file: expected a header 'person,walk,frame,joint,x,y,z'")
            header_line = reader.line_num
            cols = [c.strip().lower() for c in header]
            unknown = [c for c in cols if c not in _REQUIRED + _OPTIONAL]
            missing = [c for c in _REQUIRED if c not in cols]
            if unknown or missing or len(set(cols)) != len(cols):
                problem = (f"unknown column(s) {', '.join(map(repr, unknown))}" if unknown
                           else f"missing column(s) {', '.join(map(repr, missing))}" if missing
                           else "repeated column name")
                raise DataError(
                    path,
                    f"bad header: {problem}; expected person,walk,frame,joint,x,y[,z][,view][,condition]",
                    line=header_line,
                )
            idx = {c: i for i, c in enumerate(cols)}
            coord_cols = [idx["x"], idx["y"]] + ([idx["z"]] if "z" in idx else [])
            for row in reader:
                line = reader.line_num
                if not any(c.strip() for c in row):
                    continue
                if len(row) != len(cols):
                    raise DataError(path, f"expected {len(cols)} columns, found {len(row)}", line=line)
                person, walk = row[idx["person"]].strip(), row[idx["walk"]].strip()
                if not person or not walk:
                    raise DataError(path, "empty person or walk", line=line)
                ints = []
                for name in ("frame", "joint"):
                    text = row[idx[name]].strip()
                    try:
                        value = int(text)
                    except ValueError:
                        raise DataError(path, f"{name} must be an integer, got {text[:40]!r}", line=line) from None
                    if value < 0:
                        raise DataError(path, f"{name} must be >= 0, got {value}", line=line)
                    ints.append(value)
                coords = []
                for c in coord_cols:
                    text = row[c].strip()
                    try:
                        v = float(text)
                    except ValueError:
                        raise DataError(path, f"non-numeric {cols[c]} value {text[:40]!r}", line=line) from None
                    if not math.isfinite(v) and nan_policy == "error":
                        raise DataError(path, f"non-finite {cols[c]} value {text!r}; {NAN_HINT}", line=line)
                    if math.isfinite(v) and abs(v) > F32_MAX:
                        raise DataError(path, f"{cols[c]} value {text[:40]!r} is too large (beyond the float32 "
                                        "range)", line=line)
                    coords.append(v)
                view = row[idx["view"]].strip() or None if "view" in idx else None
                condition = row[idx["condition"]].strip() or None if "condition" in idx else None
                w = walks.get((person, walk))
                if w is None:
                    w = walks[(person, walk)] = _Walk(person, walk, view, condition, line)
                elif (w.view, w.condition) != (view, condition):
                    raise DataError(
                        path, f"view/condition change within walk {person}/{walk} "
                        f"(line {w.first_line} has {w.view!r}/{w.condition!r})", line=line,
                    )
                key = (ints[0], ints[1])
                if key in w.rows:
                    raise DataError(
                        path, f"repeated row for {person}/{walk} frame {key[0]} joint {key[1]} "
                        f"(first on line {w.rows[key][1]})", line=line,
                    )
                w.rows[key] = (tuple(coords), line)
        except csv.Error as exc:
            raise DataError(path, f"malformed CSV: {exc}", line=reader.line_num) from None
        except UnicodeDecodeError:
            raise DataError(path, "not UTF-8 text") from None
    if not walks:
        raise DataError(path, "no data rows after the header")
    dims = len(coord_cols)
    out = []
    for w in walks.values():
        frames_idx = sorted({f for f, _ in w.rows})
        joints = max(j for _, j in w.rows) + 1
        first, last = frames_idx[0], frames_idx[-1]
        if len(frames_idx) != last - first + 1:
            present = set(frames_idx)
            gap = next(f for f in range(first, last + 1) if f not in present)
            raise DataError(path, f"walk {w.person}/{w.walk}: frame {gap} is missing (frames must be contiguous)",
                            line=w.first_line)
        if joints * len(frames_idx) != len(w.rows):
            # Some frame lacks a joint: name it before allocating (a huge joint number would not fit).
            by_frame: dict[int, set[int]] = {}
            for f, j in w.rows:
                by_frame.setdefault(f, set()).add(j)
            f = next(f for f in frames_idx if len(by_frame[f]) < joints)
            ji = next(j for j in range(joints) if j not in by_frame[f])
            line = min(ln for (ff, _), (_, ln) in w.rows.items() if ff == f)
            raise DataError(
                path, f"walk {w.person}/{w.walk}: frame {f} has no joint {ji} "
                f"(every frame needs joints 0..{joints - 1})", line=line,
            )
        arr = np.empty((len(frames_idx), joints, dims), dtype=np.float32)
        filled = np.zeros((len(frames_idx), joints), dtype=bool)
        frame_line: dict[int, int] = {}
        for (f, j), (coords, line) in w.rows.items():
            arr[f - first, j] = coords
            filled[f - first, j] = True
            frame_line[f] = min(frame_line.get(f, line), line)
        if not filled.all():
            fi, ji = np.argwhere(~filled)[0]
            f = int(fi) + first
            raise DataError(
                path, f"walk {w.person}/{w.walk}: frame {f} has no joint {int(ji)} "
                f"(every frame needs joints 0..{joints - 1})", line=frame_line.get(f, w.first_line),
            )
        arr, nan_info = apply_nan_policy(arr, nan_policy, f"{path} (walk {w.person}/{w.walk})")
        out.append(Sequence(
            person=w.person, walk=w.walk, frames=arr,
            layout=generic_layout(joints, dims).name,
            view=w.view, condition=w.condition, source=str(path),
            meta={**({"first_frame": first} if first else {}), **nan_info},
        ))
    return out


def read_generic(root: str | Path, nan_policy: str = "error") -> list[Sequence]:
    """Read every ``.npz`` / ``.csv`` sequence file under ``root`` (or one such file).

    Returns the sequences in sorted file order (walks of one ``.csv`` in their
    order of first appearance). All must share one layout: joint count,
    dimensions and layout name. ``nan_policy`` decides what non-finite
    coordinates do (see :mod:`skelreid.data.nan_policy`).
    """
    check_policy(nan_policy)
    root = Path(root)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(
            (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".npz", ".csv")
             and not any(part.startswith(".") for part in p.relative_to(root).parts)),
            key=lambda p: natural_key(p.relative_to(root).as_posix()),
        )
    else:
        raise DataError(root, "file or folder not found")
    if not files:
        raise DataError(root, "no .npz or .csv sequence files found")
    out: list[Sequence] = []
    first: Sequence | None = None
    seen: dict[str, str] = {}
    for f in files:
        if f.suffix.lower() == ".npz":
            seqs = [read_generic_npz(f, nan_policy)]
        elif f.suffix.lower() == ".csv":
            seqs = read_generic_csv(f, nan_policy)
        else:
            raise DataError(f, "expected a .npz or .csv file")
        for s in seqs:
            if first is None:
                first = s
            elif s.num_joints != first.num_joints:
                raise DataError(
                    f, f"mixed layouts: {first.source} has {first.num_joints} joints, "
                    f"{s.source} has {s.num_joints}",
                )
            elif s.dims != first.dims:
                raise DataError(
                    f, f"mixed layouts: {first.source} has {first.dims}D coordinates, {s.source} has {s.dims}D",
                )
            elif s.layout != first.layout:
                raise DataError(
                    f, f"mixed layouts: {first.source} is {first.layout!r}, {s.source} is {s.layout!r}",
                )
            if s.walk_id in seen:
                raise DataError(f, f"walk {s.walk_id} appears twice (also in {seen[s.walk_id]})")
            seen[s.walk_id] = s.source
            out.append(s)
    return out
