"""The successors' preprocessed ``.npy`` layout (SPC-MGR / SimMC / Hi-MPC / TranSG / MoCos).

The authors' later repositories write their data with SPC-MGR's ``Preprocess.py``
(MoCos ships the same file as ``Data-process.py``; SUCCESSORS_SPEC.md §1.1). Under
the folder that holds ``Datasets/`` (``<D>`` dataset, ``<f>`` window length, ``<a>``
one of ``x``, ``y``, ``z``)::

    Datasets/<D>/<f>/[view_<v>/]train_npy_data/source_<a>_<D>_<f>.npy
    Datasets/<D>/<f>/[view_<v>/]train_npy_data/ids_<D>_<f>.npy
    Datasets/<D>/<f>/[view_<v>/]train_npy_data/frame_id_<D>_<f>.npy
    Datasets/<D>/<f>/[view_<v>/]test_npy_data/<split>/t_source_<a>_<D>_<f>.npy
    Datasets/<D>/<f>/[view_<v>/]test_npy_data/<split>/ids_<D>_<f>.npy
    Datasets/<D>/<f>/[view_<v>/]test_npy_data/<split>/frame_id_<D>_<f>.npy

``<split>`` is ``probe`` / ``gallery`` (KGBD, KS20), ``A`` / ``B`` (IAS) or
``Walking`` / ``Still`` (BIWI). Each ``source`` file holds one axis, frames
stacked ``[N*f, J]``: walks lost 10 frames at each end and were cut into
non-overlapping f-frame windows, the remainder dropped. ``ids`` is a pickled
``{person: [window, ...]}`` dict, read with the restricted unpickler
(:func:`skelreid.safe_pickle.load_pickled_npy`; no code runs); ``frame_id`` is
one person label per window (a plain integer array, read without pickle) and
must agree with ``ids``.

Holding these files means evaluating on **exactly the authors' split**: their
KGBD/KS20 splits were drawn unseeded and cannot be redrawn.

Coordinates are returned as stored. KGBD files keep the KGBD file joint order
(the successors remap it at load time, PS:197-199), so KGBD windows are remapped
to the Kinect v1 order here, as skelreid's own KGBD reader does.

The layout has no walk boundaries: each person gets one pseudo-walk per split,
``"<person>/<split>"`` (on KGBD the gallery pseudo-walk joins a person's two
gallery walks), so the per-walk probe/gallery unit is per person and split on
these files; the per-subsequence unit, the published one, is unaffected.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataError
from ..layouts import KGBD_TO_KINECT_V1
from ..windows import WindowSet
from .reference_npy import AXES, SplitFiles, _DEFAULT_LAYOUTS, _load_ids, _load_xyz, _windows, datasets_dir

__all__ = ["TEST_SPLITS", "successors_files", "read_successors_layout", "write_successors_layout"]

#: Test split folders per dataset (SPC-MGR Preprocess.py ``get_npy_data(..., type=...)``).
TEST_SPLITS: dict[str, tuple[str, ...]] = {
    "KGBD": ("gallery", "probe"), "KS20": ("gallery", "probe"), "IAS": ("A", "B"), "BIWI": ("Walking", "Still"),
}


def _base(root: str | Path, dataset: str, length: int, view: int | None) -> Path:
    if dataset not in TEST_SPLITS:
        raise ConfigError(f"the successors' layout has no dataset {dataset!r}; valid: {', '.join(TEST_SPLITS)}")
    base = datasets_dir(root) / dataset / str(int(length))
    return base / f"view_{int(view)}" if view is not None else base


def successors_files(root: str | Path, dataset: str, length: int, view: int | None = None) -> dict[str, dict]:
    """Per split (``train`` and the test splits): ``{"files": SplitFiles, "frame_id": Path}``."""
    base = _base(root, dataset, length, view)
    tag = f"{dataset}_{int(length)}"
    out = {}
    for split in ("train",) + TEST_SPLITS[dataset]:
        folder = base / "train_npy_data" if split == "train" else base / "test_npy_data" / split
        prefix = "" if split == "train" else "t_"
        out[split] = {"files": SplitFiles(source={a: folder / f"{prefix}source_{a}_{tag}.npy" for a in AXES},
                                          target={}, ids=folder / f"ids_{tag}.npy"),
                      "frame_id": folder / f"frame_id_{tag}.npy"}
    return out


def _frame_ids(path: Path, n: int) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except Exception as exc:
        raise DataError(path, f"cannot read the labels: {exc}") from None
    arr = np.asarray(arr).reshape(-1)
    if arr.dtype.kind not in "iuU":
        raise DataError(path, f"expected one integer (or string) person label per window, found dtype {arr.dtype}")
    if len(arr) != n:
        raise DataError(path, f"{len(arr)} labels for {n} windows")
    return arr


def read_successors_layout(root: str | Path, dataset: str, length: int = 6, view: int | None = None,
                           remap_kgbd: bool = True) -> dict[str, WindowSet]:
    """The splits of the successors' layout as window sets ``{split: WindowSet}`` (``train`` first),
    all sharing one persons list (sorted person ids of every split; class index = rank).

    Every ``frame_id`` label must equal the person whose ``ids`` entry lists that window; missing,
    unreadable or disagreeing files raise :class:`DataError` naming the file."""
    files = successors_files(root, dataset, length, view)
    loaded = {}
    for split, entry in files.items():
        sf = entry["files"]
        data = _load_xyz(sf, int(length), None)
        ids = _load_ids(sf.ids)
        frame_id = _frame_ids(entry["frame_id"], len(data))
        for person, rows in ids.items():
            bad = [r for r in rows if 0 <= r < len(data) and str(frame_id[r]) != str(person)]
            if bad:
                raise DataError(entry["frame_id"], f"window {bad[0]} is labelled {frame_id[bad[0]]!r}, but "
                                f"{sf.ids.name} lists it for person {person!r}")
        loaded[split] = (data, ids)
    kinds = {type(k) for _, ids in loaded.values() for k in ids}
    if len(kinds) > 1:
        raise DataError(files["train"]["files"].ids, "person ids are integers in one file and strings in another")
    keys = sorted({k for _, ids in loaded.values() for k in ids})
    out = {}
    for split, (data, ids) in loaded.items():
        if dataset == "KGBD" and remap_kgbd and data.shape[2] == len(KGBD_TO_KINECT_V1):
            data = np.ascontiguousarray(data[:, :, list(KGBD_TO_KINECT_V1)])
        j = data.shape[2]
        layout = _DEFAULT_LAYOUTS.get((dataset, j), f"generic_{j}x3")
        full = {k: list(ids.get(k, [])) for k in keys}
        sf = files[split]["files"]
        out[split], _ = _windows(split, data, full, keys, sf.ids, sf.source["x"], layout)
    return out


def write_successors_layout(root: str | Path, dataset: str, splits: dict[str, tuple[np.ndarray, list]],
                            length: int = 6, view: int | None = None) -> list[Path]:
    """Write ``{split: (windows [N, f, J, 3] in file joint order, person label per window)}`` as
    ``Preprocess.py`` does (frames stacked per axis, ``ids`` pickled, ``frame_id`` plain). For tests
    and fixtures."""
    files = successors_files(root, dataset, length, view)
    written = []
    for split, (windows, labels) in splits.items():
        if split not in files:
            raise ConfigError(f"{dataset} has no split {split!r}; valid: {', '.join(files)}")
        windows = np.asarray(windows, dtype=np.float64)
        n, f, j, _ = windows.shape
        sf = files[split]["files"]
        sf.ids.parent.mkdir(parents=True, exist_ok=True)
        for i, a in enumerate(AXES):
            np.save(sf.source[a], windows[..., i].reshape(n * f, j))
            written.append(sf.source[a])
        ids: dict = {}
        for row, person in enumerate(labels):
            ids.setdefault(person, []).append(row)
        obj = np.empty((), dtype=object)
        obj[()] = ids
        np.save(sf.ids, obj, allow_pickle=True)
        np.save(files[split]["frame_id"], np.asarray(list(labels)))
        written += [sf.ids, files[split]["frame_id"]]
    return written
