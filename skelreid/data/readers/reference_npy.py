"""The reference code's preprocessed ``.npy`` layout: reading and writing.

People who downloaded the authors' preprocessed data have a ``Datasets/``
folder laid out as follows (``<D>`` dataset, ``<f>`` window length, ``<a>`` one
of ``x``, ``y``, ``z``)::

    Datasets/<D>/<f>/[view_<v>/]<D>_train_npy_data/source_<a>_<D>_<f>.npy
    Datasets/<D>/<f>/[view_<v>/]<D>_train_npy_data/target_<a>_<D>_<f>.npy
    Datasets/<D>/<f>/[view_<v>/]<D>_train_npy_data/ids_<D>_<f>.npy
    Datasets/<D>/<f>/[view_<v>/]<D>_test_npy_data/t_source_<a>_<D>_<f>.npy
    Datasets/<D>/<f>/[view_<v>/]<D>_test_npy_data/t_target_<a>_<D>_<f>.npy
    Datasets/<D>/<f>/[view_<v>/]<D>_test_npy_data/ids_<D>_<f>.npy

Variants:

* ``IAS`` has two test sets whose files say ``IAS-A`` / ``IAS-B`` instead of
  ``IAS`` (``t_source_x_IAS-A_6.npy``, ``ids_IAS-A_6.npy``, ...).
* ``KS20`` may have a ``view_<v>/`` folder (v in 0..4).
* ``CASIA_B`` (cross-view evaluation) always has ``view_<v>/`` (v in 0..10).
* ``CASIA_B_match`` (condition matching) lives in ``Datasets/CASIA_B_match/<f>/``
  with files named ``CASIA_B``; its test sets are the condition folders
  ``CASIA_B_test_npy_data/{nm,cl,bg}/``. The reference also expects un-labelled
  ``t_source``/``t_target`` files directly in ``CASIA_B_test_npy_data/`` (used
  only for min-max statistics).
* The AGE variant has no ``<D>/<f>/`` level and a fixed length of 6:
  ``Datasets/<D>_train_npy_data/source_<a>_<D>_6.npy`` and so on.

Each ``source`` file holds one coordinate axis in C order, ``[N*f, J]`` or
``[N, f, J]``; the three axis files are row-aligned. ``target`` files hold the
time-reversed sources (the reconstruction target); skelreid recomputes the
reversal, so the reader only needs them when asked to check them. The ``ids``
file is a pickled ``{person: [row, ...]}`` dict, read with
:func:`skelreid.safe_pickle.load_pickled_npy` (no code runs). A person's class
index is the rank of its key in ``sorted(keys)``.

The layout has no walk boundaries: each person gets one pseudo-walk per split,
``"<person>/<split>"``, whose positions count that person's rows in file order.
Rows keep file order, which the contrastive positives rely on. The BIWI-only
truncation of encoder training data to its first two thirds is a training
concern and is not applied here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ...errors import ConfigError, DataError
from ...io import atomic_write
from ...safe_pickle import load_pickled_npy
from ..windows import WindowSet

__all__ = [
    "DATASETS",
    "AXES",
    "ReferenceDataset",
    "SplitFiles",
    "datasets_dir",
    "reference_files",
    "reference_split_names",
    "read_reference_layout",
    "write_reference_layout",
]

#: Dataset names the reference layout knows.
DATASETS: tuple[str, ...] = ("BIWI", "IAS", "KGBD", "KS20", "KinectReID", "CASIA_B", "CASIA_B_match")
AXES: tuple[str, ...] = ("x", "y", "z")
VARIANTS: tuple[str, ...] = ("cage", "age")
CME_CONDITIONS: tuple[str, ...] = ("nm", "cl", "bg")
AGE_LENGTH = 6

#: Views per dataset (``None`` = no view folder allowed).
_VIEWS: dict[str, range | None] = {"KS20": range(5), "CASIA_B": range(11)}

#: Joint layout of the authors' files, by number of joints. The authors' later
#: graph code connects joints in Kinect SDK v1 / v2 order and the 14-joint
#: CASIA-B order, which matches these layouts.
_DEFAULT_LAYOUTS: dict[tuple[str, int], str] = {
    **{(d, 20): "kinect_v1" for d in ("BIWI", "IAS", "KGBD", "KinectReID")},
    ("KS20", 25): "kinect_v2",
    ("CASIA_B", 14): "casia_b_14",
    ("CASIA_B_match", 14): "casia_b_14",
}


@dataclass(frozen=True)
class SplitFiles:
    """The files of one split: per-axis ``source`` and ``target``, and ``ids``."""

    source: dict[str, Path]
    target: dict[str, Path]
    ids: Path | None


@dataclass
class ReferenceDataset:
    """One dataset read from the reference layout.

    ``splits`` maps split names (``"train"``, ``"test"``; IAS: ``"train"``,
    ``"IAS-A"``, ``"IAS-B"``; CASIA_B_match: ``"train"``, ``"nm"``, ``"cl"``,
    ``"bg"``) to windows ``[N, f, J, 3]``. All splits share one ``persons``
    list. ``unlabelled`` holds windows that come without ids (the
    CASIA_B_match top-level test files), and ``unassigned`` counts, per split,
    rows that no person lists (the reference never uses them; they are dropped).
    """

    name: str
    length: int
    splits: dict[str, WindowSet]
    root: Path
    view: int | None = None
    variant: str = "cage"
    unlabelled: dict[str, np.ndarray] = field(default_factory=dict)
    unassigned: dict[str, int] = field(default_factory=dict)

    @property
    def persons(self) -> list[str]:
        first = next(iter(self.splits.values()), None)
        return list(first.persons) if first is not None else []


# --------------------------------------------------------------------------- paths


def _check_args(dataset: str, length: int, view: int | None, variant: str) -> None:
    if dataset not in DATASETS:
        raise ConfigError(f"unknown reference dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    if variant not in VARIANTS:
        raise ConfigError(f"unknown reference layout variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise ConfigError(f"window length must be a positive integer, got {length!r}")
    if variant == "age":
        if length != AGE_LENGTH:
            raise ConfigError(f"the AGE layout has a fixed window length of {AGE_LENGTH}, got {length}")
        if dataset in ("CASIA_B", "CASIA_B_match"):
            raise ConfigError(f"the AGE layout has no {dataset} data; use variant 'cage'")
        if view is not None:
            raise ConfigError("the AGE layout has no view folders")
        return
    views = _VIEWS.get(dataset)
    if view is None:
        if dataset == "CASIA_B":
            raise ConfigError("CASIA_B (cross-view evaluation) needs a view, 0..10")
        return
    if views is None:
        raise ConfigError(f"{dataset} has no view folders; views exist for KS20 (0..4) and CASIA_B (0..10)")
    if isinstance(view, bool) or not isinstance(view, (int, np.integer)) or int(view) not in views:
        raise ConfigError(f"{dataset} view must be in {views.start}..{views.stop - 1}, got {view!r}")


def datasets_dir(root: str | Path) -> Path:
    """``root`` itself if it is named ``Datasets``, else ``root/Datasets``."""
    root = Path(root)
    return root if root.name == "Datasets" else root / "Datasets"


def reference_split_names(dataset: str) -> tuple[str, ...]:
    """The split names of ``dataset`` in the reference layout, train first."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown reference dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    if dataset == "IAS":
        return ("train", "IAS-A", "IAS-B")
    if dataset == "CASIA_B_match":
        return ("train", *CME_CONDITIONS)
    return ("train", "test")


def _base_dir(root: str | Path, dataset: str, length: int, view: int | None, variant: str) -> Path:
    base = datasets_dir(root)
    if variant == "age":
        return base
    base = base / dataset / str(int(length))
    if view is not None:
        base = base / f"view_{int(view)}"
    return base


def _file_token(dataset: str) -> str:
    return "CASIA_B" if dataset == "CASIA_B_match" else dataset


def reference_files(
    root: str | Path, dataset: str, length: int, view: int | None = None, variant: str = "cage",
) -> dict[str, SplitFiles]:
    """The exact file paths of every split (plus ``"test"`` for CASIA_B_match's
    un-labelled top-level test files, whose ``ids`` is ``None``)."""
    _check_args(dataset, length, view, variant)
    base = _base_dir(root, dataset, length, view, variant)
    token = _file_token(dataset)
    f = int(length)
    train_dir = base / f"{token}_train_npy_data"
    test_dir = base / f"{token}_test_npy_data"

    def split(folder: Path, prefix: str, name: str, with_ids: bool = True) -> SplitFiles:
        return SplitFiles(
            source={a: folder / f"{prefix}source_{a}_{name}_{f}.npy" for a in AXES},
            target={a: folder / f"{prefix}target_{a}_{name}_{f}.npy" for a in AXES},
            ids=folder / f"ids_{name}_{f}.npy" if with_ids else None,
        )

    files = {"train": split(train_dir, "", token)}
    if dataset == "IAS":
        for part in ("IAS-A", "IAS-B"):
            files[part] = split(test_dir, "t_", part)
    elif dataset == "CASIA_B_match":
        for cond in CME_CONDITIONS:
            files[cond] = split(test_dir / cond, "t_", token)
        files["test"] = split(test_dir, "t_", token, with_ids=False)
    else:
        files["test"] = split(test_dir, "t_", token)
    return files


# --------------------------------------------------------------------------- reading


def _read_raw(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder, not a .npy file") from None
    except Exception as exc:
        raise DataError(path, f"cannot read the array: {exc}") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive
        raise DataError(path, "expected a .npy array, found an archive")
    if arr.dtype.kind not in "fiu":
        raise DataError(path, f"expected float coordinates, found dtype {arr.dtype}")
    return arr


def _as_windows(path: Path, arr: np.ndarray, length: int, joints: int | None) -> np.ndarray:
    """One axis array as ``[N, f, J]``."""
    if arr.ndim == 3 and arr.shape[1] != length:
        raise DataError(path, f"stores windows of {arr.shape[1]} frames, expected length {length}")
    j = joints if joints is not None else (arr.shape[-1] if arr.ndim in (2, 3) else None)
    if j is None:
        raise DataError(path, f"cannot tell the joint count of a {arr.ndim}-D array of shape {arr.shape}; pass joints")
    if j < 1 or arr.size % (length * j):
        raise DataError(path, f"shape {arr.shape} does not split into windows of {length} frames x {j} joints")
    if arr.ndim == 2 and joints is None and arr.shape[0] % length:
        raise DataError(path, f"{arr.shape[0]} frame rows do not split into windows of {length} frames")
    return np.ascontiguousarray(arr).reshape(-1, length, j)


def _load_xyz(files: SplitFiles, length: int, joints: int | None, which: str = "source") -> np.ndarray:
    """The three axis files of a split as ``[N, f, J, 3]`` float32."""
    paths = files.source if which == "source" else files.target
    raw = {}
    for a in AXES:
        raw[a] = _read_raw(paths[a])
        if raw[a].shape != raw["x"].shape:
            raise DataError(paths[a], f"shape {raw[a].shape} differs from {paths['x']} shape {raw['x'].shape}")
    axes = [_as_windows(paths[a], raw[a], length, joints) for a in AXES]
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, refused below
        out = np.stack(axes, axis=-1).astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        n, t, j, k = (int(v) for v in np.argwhere(~np.isfinite(out))[0])
        raise DataError(paths[AXES[k]], f"non-finite coordinate (or one beyond the float32 range) in window {n}, "
                        f"frame {t}, joint {j}; the preprocessed layout must hold finite values only")
    return out


def _load_ids(path: Path) -> dict[int | str, list[int]]:
    if not path.exists():
        raise DataError(path, "file not found")
    ids = load_pickled_npy(path)
    kinds = {type(k) for k in ids}
    if len(kinds) > 1:
        raise DataError(path, "the person ids mix integer and string keys")
    return ids


def _windows(
    split: str, data: np.ndarray, ids: dict[int | str, list[int]], keys: list, ids_path: Path,
    source_path: Path, layout: str,
) -> tuple[WindowSet, int]:
    n = len(data)
    label = np.full(n, -1, dtype=np.int64)
    rank = {k: i for i, k in enumerate(keys)}
    for k in keys:
        rows = ids[k]
        if not rows:
            continue  # the reference skips persons without rows
        idx = np.asarray(rows, dtype=np.int64)
        bad = idx[idx >= n]
        if bad.size:
            raise DataError(ids_path, f"person {k!r} lists row {int(bad[0])}, but {source_path} has only {n} windows")
        clash = idx[label[idx] != -1]
        if clash.size:
            other = keys[int(label[clash[0]])]
            raise DataError(ids_path, f"row {int(clash[0])} is listed for person {other!r} and person {k!r}")
        if len(np.unique(idx)) != len(idx):
            dup = int(idx[np.argmax(np.bincount(idx))])
            raise DataError(ids_path, f"person {k!r} lists row {dup} twice")
        label[idx] = rank[k]
    keep = label >= 0
    unassigned = int(n - keep.sum())
    data, label = data[keep], label[keep]
    # One pseudo-walk per person, in person order; positions count rows in file order.
    present = sorted(set(label.tolist()))
    walk_index = {p: w for w, p in enumerate(present)}
    walks = [f"{keys[p]}/{split}" for p in present]
    walk = np.array([walk_index[p] for p in label.tolist()], dtype=np.int64)
    position = np.zeros(len(label), dtype=np.int64)
    counters: dict[int, int] = {}
    for i, p in enumerate(label.tolist()):
        position[i] = counters.get(p, 0)
        counters[p] = position[i] + 1
    ws = WindowSet(data, label, walk, position, [str(k) for k in keys], walks, layout)
    return ws, unassigned


def read_reference_layout(
    root: str | Path,
    dataset: str,
    length: int,
    view: int | None = None,
    variant: str = "cage",
    *,
    splits: Iterable[str] | None = None,
    joints: int | None = None,
    layout: str | None = None,
    check_targets: bool = False,
) -> ReferenceDataset:
    """Read the reference layout under ``root`` (the folder holding ``Datasets/``,
    or ``Datasets/`` itself).

    ``splits`` restricts reading to some of :func:`reference_split_names`.
    ``joints`` fixes J (by default the last axis of the stored array).
    ``layout`` names the joint layout (default: ``kinect_v1`` / ``kinect_v2`` /
    ``casia_b_14`` when J matches the dataset, else ``generic_<J>x3``).
    ``check_targets`` also reads the target files and requires them to be the
    time-reversed sources. Missing or inconsistent files raise
    :class:`DataError` naming the file.
    """
    files = reference_files(root, dataset, length, view, variant)
    names = reference_split_names(dataset)
    wanted = list(names) if splits is None else list(splits)
    unknown = [s for s in wanted if s not in names]
    if unknown:
        raise ConfigError(f"{dataset} has no split {unknown[0]!r}; valid: {', '.join(names)}")
    if not wanted:
        raise ConfigError("no split to read")
    f = int(length)

    loaded: dict[str, tuple[np.ndarray, dict]] = {}
    for s in wanted:
        data = _load_xyz(files[s], f, joints)
        if check_targets:
            _check_target(files[s], data, f)
        ids = _load_ids(files[s].ids)
        loaded[s] = (data, ids)

    first = wanted[0]
    ref_keys = set(loaded[first][1])
    for s in wanted[1:]:
        keys = set(loaded[s][1])
        if keys != ref_keys:
            only_a = sorted(map(str, ref_keys - keys))[:5]
            only_b = sorted(map(str, keys - ref_keys))[:5]
            raise DataError(
                files[s].ids,
                f"person ids differ from {files[first].ids} (only there: {only_a}; only here: {only_b}); "
                "train and test ids must name the same persons",
            )
    kinds = {type(k) for s in wanted for k in loaded[s][1]}
    if len(kinds) > 1:
        raise DataError(files[wanted[-1]].ids, f"person ids are integers in one file and strings in {files[first].ids}")
    keys = sorted(ref_keys)

    j_set = {loaded[s][0].shape[2] for s in wanted}
    if len(j_set) > 1:
        raise DataError(files[wanted[-1]].source["x"], f"splits have different joint counts: {sorted(j_set)}")
    j = j_set.pop()
    layout_name = layout or _DEFAULT_LAYOUTS.get((dataset, j), f"generic_{j}x3")

    out: dict[str, WindowSet] = {}
    unassigned: dict[str, int] = {}
    for s in wanted:
        data, ids = loaded[s]
        out[s], unassigned[s] = _windows(s, data, ids, keys, files[s].ids, files[s].source["x"], layout_name)

    unlabelled: dict[str, np.ndarray] = {}
    extra = files.get("test") if dataset == "CASIA_B_match" else None
    if extra is not None and all(p.is_file() for p in extra.source.values()):
        unlabelled["test"] = _load_xyz(extra, f, j)

    return ReferenceDataset(
        name=dataset, length=f, splits=out, root=datasets_dir(root), view=None if view is None else int(view),
        variant=variant, unlabelled=unlabelled, unassigned=unassigned,
    )


def _check_target(files: SplitFiles, source: np.ndarray, length: int) -> None:
    target = _load_xyz(files, length, source.shape[2], which="target")
    for i, a in enumerate(AXES):
        if target.shape != source.shape or not np.allclose(target[..., i], source[:, ::-1, :, i]):
            raise DataError(files.target[a], f"is not the time-reversed {files.source[a].name}")


# --------------------------------------------------------------------------- writing


def _person_keys(persons: Sequence[str]) -> dict[str, int | str]:
    """Integer keys when every person name is a canonical decimal integer."""
    def canonical_int(p: str) -> bool:
        try:
            return str(int(p)) == p
        except ValueError:
            return False

    numeric = all(canonical_int(p) for p in persons)
    return {p: (int(p) if numeric else p) for p in persons}


def _save_npy(path: Path, arr: np.ndarray, allow_pickle: bool = False) -> None:
    with atomic_write(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=allow_pickle)


def write_reference_layout(
    root: str | Path,
    dataset: str,
    length: int,
    splits: dict[str, WindowSet],
    view: int | None = None,
    variant: str = "cage",
    stacked_frames: bool = True,
) -> list[Path]:
    """Write ``splits`` in the reference layout under ``root`` (see
    :func:`read_reference_layout`) and return the written paths.

    ``splits`` must name exactly :func:`reference_split_names` of ``dataset``.
    Per split and axis, ``source`` is ``[N*f, J]`` (``stacked_frames``) or
    ``[N, f, J]`` and ``target`` is its time reversal. The ids dict lists, for
    every person of any split, its rows in file order (an empty list where the
    split has none); keys are ints when all person names are decimal integers.
    For CASIA_B_match the un-labelled top-level test files hold the nm, cl and
    bg windows one after the other. Every file is written atomically.
    """
    files = reference_files(root, dataset, length, view, variant)
    names = reference_split_names(dataset)
    if set(splits) != set(names):
        raise ConfigError(
            f"{dataset} in the reference layout needs exactly the splits {', '.join(names)}; "
            f"got {', '.join(sorted(splits)) or 'none'}"
        )
    f = int(length)
    joints = set()
    for s in names:
        ws = splits[s]
        if ws.data.ndim != 4 or ws.data.shape[1] != f or ws.data.shape[3] != 3:
            raise ConfigError(
                f"split {s!r} has windows of shape {tuple(ws.data.shape[1:])}; the reference layout needs "
                f"[{f}, J, 3]"
            )
        joints.add(ws.data.shape[2])
    if len(joints) > 1:
        raise ConfigError(f"splits have different joint counts: {sorted(joints)}")

    persons: list[str] = []
    for s in names:
        for p in splits[s].persons:
            if p not in persons:
                persons.append(p)
    keymap = _person_keys(persons)
    ordered = sorted(keymap.values())  # all int or all str

    written: list[Path] = []

    def write_axes(sf: SplitFiles, data: np.ndarray) -> None:
        n, _, j, _ = data.shape
        for i, a in enumerate(AXES):
            src = np.ascontiguousarray(data[..., i])
            tgt = np.ascontiguousarray(src[:, ::-1, :])
            if stacked_frames:
                src, tgt = src.reshape(n * f, j), tgt.reshape(n * f, j)
            _save_npy(sf.source[a], src)
            _save_npy(sf.target[a], tgt)
            written.extend([sf.source[a], sf.target[a]])

    for s in names:
        ws = splits[s]
        write_axes(files[s], np.asarray(ws.data))
        rows: dict[int | str, list[int]] = {k: [] for k in ordered}
        for i, lab in enumerate(ws.label.tolist()):
            rows[keymap[ws.persons[lab]]].append(i)
        ids = np.empty((), dtype=object)
        ids[()] = rows
        _save_npy(files[s].ids, ids, allow_pickle=True)
        written.append(files[s].ids)

    if dataset == "CASIA_B_match":
        combined = np.concatenate([np.asarray(splits[c].data) for c in CME_CONDITIONS])
        write_axes(files["test"], combined)
    return written
