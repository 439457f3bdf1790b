"""Small generated datasets in the real on-disk layouts of the benchmarks.

BIWI, IAS-Lab, KS20 and the CASIA-B skeletons cannot be redistributed, so the
readers are tested (and the pipeline can be tried) on fixtures written here in
the same files and folders as the real releases, with the procedural walkers
of :mod:`skelreid.data.synthetic` (every person has their own body and gait,
so re-identification on a fixture is meaningful).

:func:`write_fixture` writes raw data, which the readers read back:

* ``BIWI`` -- ``root/Training/<id>/``, ``root/Testing/Walking/<id>/`` and
  ``root/Testing/Still/<id>/``, one ``*_skel.txt`` per frame in the format of
  the real frame file (14 comma-separated numbers per line, ``%.4f``; 20
  skeleton lines, then 20 all-zero empty slot lines as in the real file). A few
  frames per sequence (``untracked``, default 2) have one joint with tracking
  state 0, which :func:`~skelreid.data.readers.biwi_ias.read_biwi_ias` drops;
  some extremity joints are "inferred" (state 1), which are kept. Person ids are
  ``000``, ``001``, ... ``Still`` sequences are people standing (cadence and
  stride near zero) facing the sensor. Returns ``root``.
* ``IAS`` -- ``root/Training/<id>/``, ``root/TestingA/<id>/``,
  ``root/TestingB/<id>/``, the same frame format without the empty slot lines
  (the reference's IAS loop stops at the first line with tracking state 0, so
  real IAS files cannot have them). Returns ``root``.
* ``KS20`` -- the layout of :mod:`skelreid.data.readers.ks20`:
  ``root/<view>/<setting>_body<N>_<timestamp>_skel.txt``, one file per frame,
  25 lines ``<joint>,x,y,z`` (Kinect v2 order), 5 view folders (``views``,
  default all), settings ``gc1``.. (``sequences_per_view``, default 3), persons
  numbered like the real release (body 1-4, 7-9, 11-17, 19-24, then 25, 26,
  ...). Timestamps are Kinect v2 ticks (100 ns, 333 333 per frame). Returns
  ``root``.
* ``CASIA_B`` -- the layout of :mod:`skelreid.data.readers.casia_b`:
  ``root/<subject>/<cond>-<seq>/<angle>/<subject>-<cond>-<seq>-<angle>.txt``,
  one line of 42 numbers per frame. ``views`` (default ``range(11)``) and
  ``conditions`` (default the 10 of the release) choose the sequences. As in
  CASIA-B, the 11 views of one sequence are one walk seen by 11 cameras: each
  view crops its own part of the walk (``frames`` long), seen from its angle,
  at its own position in the camera frame (so raw coordinates differ between
  views and joint-0-relative normalisation matters), with its own estimation
  noise. ``bg`` sequences swing the arms less, ``cl`` sequences widen the
  shoulders and hips a little. Returns ``root``.
* ``KGBD`` -- the release layout of :mod:`skelreid.data.readers.kgbd`:
  ``root/Data/PersonNNN/K.txt`` (``walks``, default 5), ``JointName;x;y;z``
  lines with CRLF endings, 20 lines per frame in the KGBD file order, walkers on
  the KGBD semicircle. Returns ``root/Data``.

``persons``, ``seed`` and ``frames`` (the per-sequence frame count range,
inclusive) apply to all; the other options are keyword arguments of the
dataset. Everything is deterministic for a seed. All arguments are checked,
and the target entries must not exist yet, before the first file is written.

:func:`write_reference_fixture` writes the authors' pre-processed ``.npy``
layout (:mod:`skelreid.data.readers.reference_npy`) for ``BIWI``, ``IAS``,
``KGBD``, ``KS20``, ``CASIA_B`` and ``CASIA_B_match``, from the same generated
walks cut into windows.
"""
from __future__ import annotations

import dataclasses
import io
import math
import re
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .layouts import CASIA_B_14, KGBD_TO_KINECT_V1, KINECT_V1, KINECT_V2, KGBD_FILE_JOINTS
from .records import Sequence
from .synthetic import PersonParams, sample_person, walk_frames

__all__ = [
    "FIXTURE_DATASETS",
    "REFERENCE_FIXTURE_DATASETS",
    "write_fixture",
    "write_reference_fixture",
    "kinect_v1_to_v2",
    "kinect_v1_to_casia14",
]

FIXTURE_DATASETS: tuple[str, ...] = ("BIWI", "IAS", "KS20", "CASIA_B", "KGBD")
REFERENCE_FIXTURE_DATASETS: tuple[str, ...] = ("BIWI", "IAS", "KGBD", "KS20", "CASIA_B", "CASIA_B_match")

_TAG = {"BIWI": 1, "IAS": 2, "KS20": 3, "CASIA_B": 4, "KGBD": 5}
_J = {name: i for i, name in enumerate(KINECT_V1.joints)}
_FPS = 30.0

# ---------------------------------------------------------------------------- joint mappings


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def kinect_v1_to_v2(frames: np.ndarray) -> np.ndarray:
    """Kinect v1 (20 joints) -> Kinect v2 (25 joints, SDK order), ``[T, 20, 3] -> [T, 25, 3]``.

    The 16 limb joints and the head are copied; SpineBase = HipCenter,
    SpineShoulder = ShoulderCenter, SpineMid and Neck are interpolated along the
    spine, hand tips extend the wrist-hand segment and thumbs sit beside it.
    """
    v1 = np.asarray(frames, dtype=np.float64)
    out = np.empty(v1.shape[:-2] + (KINECT_V2.num_joints, 3))
    names2 = KINECT_V2.joints
    for j, name in enumerate(names2[:20]):
        if name in _J:
            out[..., j, :] = v1[..., _J[name], :]
    hip, sc, head = v1[..., _J["HipCenter"], :], v1[..., _J["ShoulderCenter"], :], v1[..., _J["Head"], :]
    out[..., names2.index("SpineBase"), :] = hip
    out[..., names2.index("SpineMid"), :] = hip + 0.55 * (sc - hip)
    out[..., names2.index("Neck"), :] = sc + 0.4 * (head - sc)
    out[..., names2.index("SpineShoulder"), :] = sc
    across = v1[..., _J["ShoulderLeft"], :] - v1[..., _J["ShoulderRight"], :]
    for side in ("Left", "Right"):
        wrist, hand = v1[..., _J["Wrist" + side], :], v1[..., _J["Hand" + side], :]
        seg = hand - wrist
        out[..., names2.index("HandTip" + side), :] = hand + 0.8 * seg
        perp = _unit(np.cross(seg, across))
        out[..., names2.index("Thumb" + side), :] = wrist + 0.7 * seg + 0.035 * perp
    return out.astype(np.float32)


_V1_FOR_CASIA = {
    "Head": "Head", "Neck": "ShoulderCenter",
    "RShoulder": "ShoulderRight", "RElbow": "ElbowRight", "RWrist": "WristRight",
    "LShoulder": "ShoulderLeft", "LElbow": "ElbowLeft", "LWrist": "WristLeft",
    "RHip": "HipRight", "RKnee": "KneeRight", "RAnkle": "AnkleRight",
    "LHip": "HipLeft", "LKnee": "KneeLeft", "LAnkle": "AnkleLeft",
}
_CASIA_FROM_V1 = np.array([_J[_V1_FOR_CASIA[n]] for n in CASIA_B_14.joints], dtype=np.intp)


def kinect_v1_to_casia14(frames: np.ndarray) -> np.ndarray:
    """Kinect v1 -> the 14-joint CASIA-B layout (joint 0 = head, 1 = neck = ShoulderCenter)."""
    return np.ascontiguousarray(np.asarray(frames, dtype=np.float32)[..., _CASIA_FROM_V1, :])


# ---------------------------------------------------------------------------- generation


_NKEYS = 8


def _rng(seed: int, dataset: str, *keys: int) -> np.random.Generator:
    """A generator for ``(seed, dataset, keys)``; keys are padded to a fixed length
    (``SeedSequence`` does not tell ``[a, b]`` from ``[a, b, 0]``)."""
    ks = [int(k) for k in keys]
    assert len(ks) <= _NKEYS
    ks += [0] * (_NKEYS - len(ks))
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0xF1C7, _TAG[dataset], *ks]))


def _person(seed: int, dataset: str, k: int) -> PersonParams:
    return sample_person(_rng(seed, dataset, 1, k))


def _standing(p: PersonParams) -> PersonParams:
    """The same body, standing: no stride, nearly no cadence, tiny sway."""
    return dataclasses.replace(p, cadence=0.05, stride_length=0.02, arm_swing=1.0, knee_flexion=3.0,
                               lateral_sway=0.003, bounce=0.0, pelvis_rotation=0.5)


def _facing(frames_v1: np.ndarray) -> np.ndarray:
    """Mean facing direction ``(x, z)`` of a Kinect v1 walk (forward = left x up)."""
    left = (frames_v1[:, _J["HipLeft"]] - frames_v1[:, _J["HipRight"]]
            + frames_v1[:, _J["ShoulderLeft"]] - frames_v1[:, _J["ShoulderRight"]]).mean(axis=0)
    f = np.array([-left[2], left[0]], dtype=np.float64)
    n = float(np.hypot(*f))
    return f / n if n > 1e-9 else np.array([0.0, -1.0])


def _place(frames_v1: np.ndarray, angle_deg: float, target_xz: tuple[float, float],
           y_shift: float = 0.0) -> np.ndarray:
    """Turn a walk about the vertical so the walker faces ``angle_deg`` and move it.

    Angle 0: towards the sensor (facing -z); 90: across the view towards +x;
    180: away from the sensor. The mean HipCenter position goes to ``target_xz``.
    """
    a = math.radians(angle_deg)
    d = np.array([math.sin(a), -math.cos(a)])
    f = _facing(frames_v1)
    phi = math.atan2(d[1], d[0]) - math.atan2(f[1], f[0])
    c, s = math.cos(phi), math.sin(phi)
    out = np.array(frames_v1, dtype=np.float64)
    centre = out[:, _J["HipCenter"]][:, [0, 2]].mean(axis=0)
    x = out[..., 0] - centre[0]
    z = out[..., 2] - centre[1]
    out[..., 0] = c * x - s * z + target_xz[0]
    out[..., 2] = s * x + c * z + target_xz[1]
    out[..., 1] += y_shift
    return out.astype(np.float32)


def _frame_count(rng: np.random.Generator, frames: tuple[int, int]) -> int:
    return int(rng.integers(frames[0], frames[1] + 1))


_BIWI_SPLITS = ("Training", "Testing/Walking", "Testing/Still")
_IAS_SPLITS = ("Training", "TestingA", "TestingB")


def _biwi_ias_walks(dataset: str, persons: int, seed: int, frames: tuple[int, int]):
    """``[(split, k, frames_v1)]``: one sequence per person and split."""
    splits = _BIWI_SPLITS if dataset == "BIWI" else _IAS_SPLITS
    out = []
    for k in range(1, persons + 1):
        p = _person(seed, dataset, k)
        for s, split in enumerate(splits, start=1):
            rng = _rng(seed, dataset, 2, k, s)
            T = _frame_count(rng, frames)
            still = split.endswith("Still")
            params = _standing(p) if still else p
            arr = walk_frames(params, T, rng, fps=_FPS, noise=0.01, path="straight")
            angle = float(rng.normal(0.0, 15.0)) if still else float(rng.uniform(-40.0, 40.0))
            depth = float(rng.uniform(2.5, 3.2)) if still else float(rng.uniform(3.6, 4.2))
            out.append((split, k, _place(arr, angle, (float(rng.normal(0.0, 0.2)), depth))))
    return out


#: Walking direction (degrees, see :func:`_place`) of each KS20 view folder, in view order.
_KS20_ANGLES = (0.0, 45.0, 90.0, -45.0, -90.0)


def _ks20_walks(persons: int, seed: int, frames: tuple[int, int], settings: int, views):
    """``[(view, setting, k, frames_v2, first_timestamp)]``."""
    out = []
    for k in range(1, persons + 1):
        p = _person(seed, "KS20", k)
        for v in views:
            for s in range(1, settings + 1):
                rng = _rng(seed, "KS20", 2, k, v, s)
                T = _frame_count(rng, frames)
                arr = walk_frames(p, T, rng, fps=_FPS, noise=0.008, path="straight")
                angle = _KS20_ANGLES[v] + float(rng.normal(0.0, 4.0))
                placed = _place(arr, angle, (float(rng.normal(0.0, 0.15)), float(rng.uniform(3.3, 3.8))))
                ts0 = int(rng.integers(10_000_000_000, 50_000_000_000))
                out.append((v, f"gc{s}", k, kinect_v1_to_v2(placed), ts0))
    return out


def _condition_params(p: PersonParams, cond: str) -> PersonParams:
    if cond == "bg":
        return dataclasses.replace(p, arm_swing=p.arm_swing * 0.6, arm_abduction=p.arm_abduction + 4.0)
    if cond == "cl":
        return dataclasses.replace(p, shoulder_width=p.shoulder_width * 1.06, hip_width=p.hip_width * 1.08,
                                   arm_abduction=p.arm_abduction + 3.0)
    return p


def _casia_view_pose(seed: int, v: int) -> tuple[float, float, float]:
    """Where camera ``v`` sees the walk: lateral offset, depth, height shift."""
    rng = _rng(seed, "CASIA_B", 4, v)
    return float(rng.uniform(-0.8, 0.8)), float(rng.uniform(4.2, 5.5)), float(rng.uniform(-0.3, 0.3))


def _casia_walks(persons: int, seed: int, frames: tuple[int, int], conditions, views):
    """``[(k, "nm-01", angle, frames14)]``: each sequence is one walk seen by every view."""
    out = []
    lo, hi = frames
    for k in range(1, persons + 1):
        p = _person(seed, "CASIA_B", k)
        for condseq in conditions:
            cond, num = condseq.split("-")
            ci = ("nm", "bg", "cl").index(cond)
            rng = _rng(seed, "CASIA_B", 2, k, ci, int(num))
            total = hi + 20
            base = walk_frames(_condition_params(p, cond), total, rng, fps=25.0, noise=0.0, path="straight")
            for v in views:
                vr = _rng(seed, "CASIA_B", 3, k, ci, int(num), v)
                T = int(vr.integers(lo, hi + 1))
                start = int(vr.integers(0, total - T + 1))
                x, z, y = _casia_view_pose(seed, v)
                placed = _place(base[start:start + T], 18.0 * v, (x + float(vr.normal(0, 0.05)), z), y)
                placed = placed + vr.normal(0.0, 0.015, placed.shape).astype(np.float32)
                out.append((k, condseq, 18 * v, kinect_v1_to_casia14(placed)))
    return out


def _kgbd_walks(persons: int, seed: int, frames: tuple[int, int], walks: int):
    """``[(k, w, frames_v1)]`` on the KGBD semicircle."""
    out = []
    for k in range(1, persons + 1):
        p = _person(seed, "KGBD", k)
        for w in range(1, walks + 1):
            rng = _rng(seed, "KGBD", 2, k, w)
            T = _frame_count(rng, frames)
            out.append((k, w, walk_frames(p, T, rng, fps=_FPS, noise=0.01, path="semicircle")))
    return out


# ---------------------------------------------------------------------------- text formats

#: Kinect v1 parent joint of each joint (column 8 of a BIWI/IAS frame line).
_V1_PARENT = np.array([0, 0, 1, 2, 2, 4, 5, 6, 2, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18], dtype=np.float64)
_V1_EXTREMITIES = np.array([_J[n] for n in ("HandLeft", "HandRight", "WristLeft", "WristRight",
                                            "FootLeft", "FootRight", "AnkleLeft", "AnkleRight")])


def _numeric_lines(rows: np.ndarray, fmt: str, delimiter: str = " ") -> list[str]:
    buf = io.StringIO()
    np.savetxt(buf, rows, fmt=fmt, delimiter=delimiter)
    return buf.getvalue().splitlines(keepends=True)


def _skel_frame_texts(frames_v1: np.ndarray, rng: np.random.Generator, untracked: int,
                      empty_slots: int) -> tuple[list[str], list[int]]:
    """One BIWI/IAS ``*_skel.txt`` text per frame, and the untracked frame indices."""
    T = len(frames_v1)
    rows = np.zeros((T, 20 + empty_slots, 14), dtype=np.float64)
    sk = rows[:, :20]
    sk[..., 0] = float(rng.integers(1, 7))                     # body (user) slot
    sk[..., 1:4] = frames_v1
    z = np.maximum(frames_v1[..., 2], 0.3)
    sk[..., 4] = 320.0 + 571.0 * frames_v1[..., 0] / z        # pixel u
    sk[..., 5] = 240.0 - 571.0 * frames_v1[..., 1] / z        # pixel v
    state = np.full((T, 20), 2.0)
    inferred = rng.random((T, len(_V1_EXTREMITIES))) < 0.03
    state[:, _V1_EXTREMITIES] = np.where(inferred, 1.0, 2.0)
    sk[..., 6] = state
    sk[..., 8] = _V1_PARENT
    sk[..., 9] = np.arange(20, dtype=np.float64)
    q = rng.normal(size=(T, 20, 4))
    sk[..., 10:14] = q / np.linalg.norm(q, axis=-1, keepdims=True)
    bad = sorted(int(t) for t in rng.choice(T, size=untracked, replace=False)) if untracked else []
    for t in bad:
        j = int(rng.choice(_V1_EXTREMITIES))
        sk[t, j, 1:7] = 0.0                                    # not tracked: no position, state 0
    lines = _numeric_lines(rows.reshape(-1, 14), "%.4f", ",")
    n = 20 + empty_slots
    return ["".join(lines[t * n:(t + 1) * n]) for t in range(T)], bad


def _write_text(path: Path, text: str, newline: str = "") -> None:
    with open(path, "w", encoding="ascii", newline=newline) as fh:
        fh.write(text)


# ---------------------------------------------------------------------------- argument checks


def _canonical(dataset, valid: tuple[str, ...], what: str) -> str:
    by_key = {v.lower(): v for v in valid}
    key = str(dataset).strip().lower().replace("-", "_")
    if key not in by_key:
        raise ConfigError(f"unknown {what} {dataset!r}; valid: {', '.join(valid)}")
    return by_key[key]


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ConfigError(f"{name} must be {rng}, got {value}")
    return value


def _check_frames(frames) -> tuple[int, int]:
    if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
        frames = (frames, frames)
    try:
        lo, hi = frames
    except (TypeError, ValueError):
        raise ConfigError(f"frames must be a (min, max) pair of integers, got {frames!r}") from None
    lo = _check_int("frames min", lo, 1)
    hi = _check_int("frames max", hi, 1)
    if hi < lo:
        raise ConfigError(f"frames must be (min, max) with min <= max, got {frames!r}")
    return lo, hi


def _check_views(views, n: int, dataset: str) -> list[int]:
    try:
        vs = [int(v) if not isinstance(v, bool) and float(v) == int(v) else None for v in views]
    except (TypeError, ValueError):
        raise ConfigError(f"{dataset} views must be integers in 0..{n - 1}, got {views!r}") from None
    if not vs or any(v is None or not 0 <= v < n for v in vs) or len(set(vs)) != len(vs):
        raise ConfigError(f"{dataset} views must be distinct integers in 0..{n - 1}, got {list(views)!r}")
    return sorted(vs)


_CONDSEQ_RE = re.compile(r"^(nm|bg|cl)-(\d{2})$")


def _check_conditions(conditions) -> list[str]:
    if isinstance(conditions, str):
        conditions = [conditions]
    try:
        conds = [str(c).strip().lower() for c in conditions]
    except TypeError:
        raise ConfigError(f"conditions must be a list such as ['nm-01', 'bg-01'], got {conditions!r}") from None
    bad = [c for c in conds if not _CONDSEQ_RE.match(c) or int(c[3:]) < 1]
    if not conds or bad or len(set(conds)) != len(conds):
        raise ConfigError(
            "conditions must be distinct names nm-NN, bg-NN or cl-NN (e.g. nm-01, bg-02), "
            f"got {list(conditions)!r}"
        )
    return conds


_DEFAULT_CONDITIONS = ("nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02")


def _options(dataset: str, kw: dict, lo_frames: int) -> dict:
    defaults: dict[str, dict] = {
        "BIWI": {"untracked": 2},
        "IAS": {"untracked": 2},
        "KS20": {"sequences_per_view": 3, "views": range(5)},
        "CASIA_B": {"views": range(11), "conditions": _DEFAULT_CONDITIONS},
        "KGBD": {"walks": 5},
    }
    allowed = defaults[dataset]
    unknown = sorted(set(kw) - set(allowed))
    if unknown:
        valid = ", ".join(sorted(allowed)) or "none"
        raise ConfigError(f"{dataset} fixture has no option {unknown[0]!r}; valid: {valid}")
    opts = {**allowed, **kw}
    if dataset in ("BIWI", "IAS"):
        opts["untracked"] = _check_int("untracked", opts["untracked"], 0)
        if opts["untracked"] >= lo_frames:
            raise ConfigError(
                f"untracked={opts['untracked']} frames would leave no tracked frame in a "
                f"{lo_frames}-frame sequence; use fewer untracked frames or more frames"
            )
    elif dataset == "KS20":
        opts["sequences_per_view"] = _check_int("sequences_per_view", opts["sequences_per_view"], 1, 99)
        opts["views"] = _check_views(opts["views"], 5, "KS20")
    elif dataset == "CASIA_B":
        opts["views"] = _check_views(opts["views"], 11, "CASIA_B")
        opts["conditions"] = _check_conditions(opts["conditions"])
    elif dataset == "KGBD":
        opts["walks"] = _check_int("walks", opts["walks"], 1, 999)
    return opts


# ---------------------------------------------------------------------------- raw fixtures


def _top_entries(dataset: str, root: Path, persons: int, opts: dict) -> list[Path]:
    from .readers.ks20 import KS20_VIEWS

    if dataset == "BIWI":
        return [root / "Training", root / "Testing"]
    if dataset == "IAS":
        return [root / s for s in _IAS_SPLITS]
    if dataset == "KS20":
        return [root / KS20_VIEWS[v] for v in opts["views"]]
    if dataset == "CASIA_B":
        return [root / f"{k:03d}" for k in range(1, persons + 1)]
    return [root / "Data"]


def _write_biwi_ias(dataset: str, root: Path, persons: int, seed: int, frames, opts: dict) -> Path:
    walks = _biwi_ias_walks(dataset, persons, seed, frames)
    empty_slots = 20 if dataset == "BIWI" else 0
    for split, k, arr in walks:
        rng = _rng(seed, dataset, 3, k, (_BIWI_SPLITS + _IAS_SPLITS).index(split))
        texts, _bad = _skel_frame_texts(arr, rng, opts["untracked"], empty_slots)
        folder = root / split / f"{k - 1:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        width = max(3, len(str(len(texts) - 1)))
        ts0 = int(rng.integers(1_000_000, 9_000_000))
        for t, text in enumerate(texts):
            _write_text(folder / f"{t:0{width}d}_{t:06d}-d_{ts0 + 33 * t}_skel.txt", text)
    return root


def _write_ks20(root: Path, persons: int, seed: int, frames, opts: dict) -> Path:
    from .readers.ks20 import KS20_BODIES, KS20_VIEWS

    walks = _ks20_walks(persons, seed, frames, opts["sequences_per_view"], opts["views"])
    for v, setting, k, arr, ts0 in walks:
        body = KS20_BODIES[k - 1] if k <= len(KS20_BODIES) else KS20_BODIES[-1] + (k - len(KS20_BODIES))
        folder = root / KS20_VIEWS[v]
        folder.mkdir(parents=True, exist_ok=True)
        T = len(arr)
        rows = np.empty((T, KINECT_V2.num_joints, 4))
        rows[..., 0] = np.arange(KINECT_V2.num_joints)
        rows[..., 1:] = arr
        lines = _numeric_lines(rows.reshape(-1, 4), "%d,%.6f,%.6f,%.6f")
        n = KINECT_V2.num_joints
        for t in range(T):
            _write_text(folder / f"{setting}_body{body}_{ts0 + 333_333 * t}_skel.txt",
                        "".join(lines[t * n:(t + 1) * n]))
    return root


def _write_casia_b(root: Path, persons: int, seed: int, frames, opts: dict) -> Path:
    walks = _casia_walks(persons, seed, frames, opts["conditions"], opts["views"])
    for k, condseq, angle, arr in walks:
        subject = f"{k:03d}"
        folder = root / subject / condseq / f"{angle:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        text = "".join(_numeric_lines(arr.reshape(len(arr), -1), "%.5f", " "))
        _write_text(folder / f"{subject}-{condseq}-{angle:03d}.txt", text)
    return root


_V1_TO_KGBD_FILE = np.argsort(np.asarray(KGBD_TO_KINECT_V1))


def _write_kgbd(root: Path, persons: int, seed: int, frames, opts: dict) -> Path:
    data = root / "Data"
    for k, w, arr in _kgbd_walks(persons, seed, frames, opts["walks"]):
        folder = data / f"Person{k:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        in_file = arr[:, _V1_TO_KGBD_FILE].reshape(-1, 3)
        nums = _numeric_lines(in_file, "%.6f;%.6f;%.6f")
        names = KGBD_FILE_JOINTS * len(arr)
        text = "".join(f"{n};{line.rstrip()}\r\n" for n, line in zip(names, nums))
        _write_text(folder / f"{w}.txt", text)
    return data


def write_fixture(dataset: str, root: str | Path, *, persons: int = 4, seed: int = 0,
                  frames: tuple[int, int] = (60, 90), **kw) -> Path:
    """Write a small ``dataset`` fixture in its real raw layout under ``root``.

    ``dataset`` (case-insensitive) is one of :data:`FIXTURE_DATASETS`. Options:
    ``BIWI``/``IAS`` ``untracked=2``; ``KS20`` ``sequences_per_view=3``,
    ``views=range(5)``; ``CASIA_B`` ``views=range(11)``, ``conditions=(nm-01,
    ..., cl-02)``; ``KGBD`` ``walks=5``. Returns the folder to pass as
    ``--root`` (``root``, or ``root/Data`` for KGBD). Raises
    :class:`~skelreid.errors.ConfigError`, before writing anything, for an
    invalid argument or when the fixture's top-level folders already exist.
    """
    name = _canonical(dataset, FIXTURE_DATASETS, "fixture dataset")
    persons = _check_int("persons", persons, 1, 999)
    seed = _check_int("seed", seed, 0)
    lo, hi = _check_frames(frames)
    opts = _options(name, kw, lo)
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root}: exists and is not a folder")
    clash = [p for p in _top_entries(name, root, persons, opts) if p.exists()]
    if clash:
        raise ConfigError(f"{clash[0]} already exists: write the {name} fixture into an empty folder")
    root.mkdir(parents=True, exist_ok=True)
    if name in ("BIWI", "IAS"):
        return _write_biwi_ias(name, root, persons, seed, (lo, hi), opts)
    if name == "KS20":
        return _write_ks20(root, persons, seed, (lo, hi), opts)
    if name == "CASIA_B":
        return _write_casia_b(root, persons, seed, (lo, hi), opts)
    return _write_kgbd(root, persons, seed, (lo, hi), opts)


# ---------------------------------------------------------------------------- reference layout


def _seq(person: str, walk: str, frames: np.ndarray, layout: str, **extra) -> Sequence:
    return Sequence(person=person, walk=walk, frames=frames, layout=layout, source="fixture", **extra)


def _reference_sequences(dataset: str, persons: int, seed: int, frames: tuple[int, int],
                         view: int | None) -> dict[str, list[Sequence]]:
    """Generated walks for every split of ``dataset`` in the reference layout.

    Person names are the authors' integer ids as strings: 1-based for BIWI,
    KGBD and CASIA-B (folder / file numbers), 0-based for IAS and KS20 (their
    preprocessing counts persons).
    """
    v1, v2, c14 = KINECT_V1.name, KINECT_V2.name, CASIA_B_14.name
    if dataset in ("BIWI", "IAS"):
        walks = _biwi_ias_walks(dataset, persons, seed, frames)
        split_of = ({"Training": "train", "Testing/Walking": "test"} if dataset == "BIWI"
                    else {"Training": "train", "TestingA": "IAS-A", "TestingB": "IAS-B"})
        offset = 1 if dataset == "BIWI" else 0
        out: dict[str, list[Sequence]] = {s: [] for s in split_of.values()}
        for split, k, arr in walks:
            if split in split_of:
                out[split_of[split]].append(_seq(str(k - 1 + offset), split.replace("/", "-"), arr, v1))
        return out
    if dataset == "KGBD":
        out = {"train": [], "test": []}
        for k, w, arr in _kgbd_walks(persons, seed, frames, 5):
            out["train" if w < 5 else "test"].append(_seq(str(k), str(w), arr, v1))
        return out
    if dataset == "KS20":
        views = [view] if view is not None else list(range(5))
        out = {"train": [], "test": []}
        for v, setting, k, arr, _ts in _ks20_walks(persons, seed, frames, 3, views):
            split = "test" if setting == "gc3" else "train"
            out[split].append(_seq(str(k - 1), f"v{v}-{setting}", arr, v2, view=str(v), condition=setting))
        return out
    if dataset == "CASIA_B":
        out = {"train": [], "test": []}
        for k, condseq, angle, arr in _casia_walks(persons, seed, frames, _DEFAULT_CONDITIONS, [view]):
            split = "train" if condseq in ("nm-01", "nm-02", "nm-03", "nm-04") else "test"
            out[split].append(_seq(str(k), f"{condseq}_{angle:03d}", arr, c14, view=str(view),
                                   condition=condseq[:2]))
        return out
    # CASIA_B_match: encoder training on nm-01..04, test sets by condition.
    out = {"train": [], "nm": [], "bg": [], "cl": []}
    for k, condseq, angle, arr in _casia_walks(persons, seed, frames, _DEFAULT_CONDITIONS, range(11)):
        split = "train" if condseq in ("nm-01", "nm-02", "nm-03", "nm-04") else condseq[:2]
        out[split].append(_seq(str(k), f"{condseq}_{angle:03d}", arr, c14, view=str(angle // 18),
                               condition=condseq[:2]))
    return out


def write_reference_fixture(dataset: str, root: str | Path, *, length: int, persons: int = 4, seed: int = 0,
                            view: int | None = None, variant: str = "cage") -> Path:
    """Write generated windows in the authors' pre-processed ``.npy`` layout.

    ``dataset`` (case-insensitive) is one of :data:`REFERENCE_FIXTURE_DATASETS`;
    ``length`` the window length f, ``view`` the KS20 (0..4, optional) or
    CASIA_B (0..10, required) view folder, ``variant`` ``"cage"`` or ``"age"``
    (f = 6, no ``<D>/<f>/`` level). Splits: BIWI train = Training, test =
    Testing/Walking; IAS train, IAS-A, IAS-B; KGBD walks 1-4 train, walk 5
    test; KS20 settings gc1, gc2 train, gc3 test; CASIA_B nm-01..04 train, the
    other 6 sequences test (at the view); CASIA_B_match nm-01..04 train and the
    nm (05, 06), bg and cl test sets, all 11 views. Walks are long enough for
    several windows after the reference's 10-frame clip at each end. Writes
    ``Datasets/...`` under ``root`` (or into ``root`` if it is named
    ``Datasets``) and returns the folder holding ``Datasets/``.
    """
    from .readers.reference_npy import datasets_dir, reference_files, write_reference_layout
    from .windows import make_windows

    name = _canonical(dataset, REFERENCE_FIXTURE_DATASETS, "reference fixture dataset")
    persons = _check_int("persons", persons, 1, 999)
    seed = _check_int("seed", seed, 0)
    length = _check_int("length", length, 2)
    variant = str(variant).lower()
    reference_files(root, name, length, view, variant)   # checks dataset, length, view and variant
    clip = 10
    lo = max(60, 2 * clip + 2 * length)
    frames = (lo, lo + max(30, length))
    splits = {s: make_windows(seqs, length, clip=clip)
              for s, seqs in _reference_sequences(name, persons, seed, frames,
                                                  None if view is None else int(view)).items()}
    write_reference_layout(root, name, length, splits, view=view, variant=variant)
    return datasets_dir(root).parent
