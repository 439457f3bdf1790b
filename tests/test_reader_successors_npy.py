"""Issue 19: the successors' released npy layout (SPC-MGR ``Preprocess.py``: train_npy_data/,
test_npy_data/{gallery,probe}/, ids_*, frame_id_*), read with the authors' exact split."""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from skelreid.cli import main
from skelreid.data.layouts import KGBD_TO_KINECT_V1
from skelreid.data.readers.successors_npy import (read_successors_layout, successors_files,
                                                  write_successors_layout)
from skelreid.errors import DataError

# person (KGBD folder number) -> windows per split, as Preprocess.py's 1 probe / 2 gallery / rest train
COUNTS = {"train": {1: 7, 2: 5, 15: 2, 4: 6}, "gallery": {1: 4, 2: 3, 15: 2, 4: 5}, "probe": {1: 2, 2: 2, 15: 1, 4: 3}}


def _fixture(root: pathlib.Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    splits = {}
    for split, counts in COUNTS.items():
        labels = [p for p, c in counts.items() for _ in range(c)]     # file order: person by person
        splits[split] = (rng.normal(size=(len(labels), 6, 20, 3)), labels)
    write_successors_layout(root, "KGBD", splits, length=6)
    return splits


def test_layout_file_names_are_preprocess_py_s(tmp_path):
    f = successors_files(tmp_path, "KGBD", 6)
    base = tmp_path / "Datasets" / "KGBD" / "6"
    assert f["train"]["files"].source["x"] == base / "train_npy_data" / "source_x_KGBD_6.npy"
    assert f["train"]["files"].ids == base / "train_npy_data" / "ids_KGBD_6.npy"
    assert f["train"]["frame_id"] == base / "train_npy_data" / "frame_id_KGBD_6.npy"
    assert f["probe"]["files"].source["z"] == base / "test_npy_data" / "probe" / "t_source_z_KGBD_6.npy"
    assert f["gallery"]["frame_id"] == base / "test_npy_data" / "gallery" / "frame_id_KGBD_6.npy"


def test_reads_split_sizes_labels_and_kgbd_joint_order(tmp_path):
    written = _fixture(tmp_path)
    x = np.load(tmp_path / "Datasets/KGBD/6/train_npy_data/source_x_KGBD_6.npy")
    assert x.shape == (20 * 6, 20)                                # frames stacked [N*f, J]
    splits = read_successors_layout(tmp_path, "KGBD", 6)
    assert list(splits) == ["train", "gallery", "probe"]
    assert {k: len(v) for k, v in splits.items()} == {"train": 20, "gallery": 14, "probe": 8}
    for name, ws in splits.items():
        assert ws.persons == ["1", "2", "4", "15"]               # sorted ids, class = rank
        names = [ws.persons[i] for i in ws.label]
        assert names == [str(p) for p in written[name][1]]
        assert ws.walks == [f"{p}/{name}" for p in ("1", "2", "4", "15")]
        np.testing.assert_allclose(ws.data, written[name][0][:, :, list(KGBD_TO_KINECT_V1)].astype(np.float32))
    assert splits["probe"].layout == "kinect_v1"


def test_frame_id_must_agree_with_ids(tmp_path):
    _fixture(tmp_path)
    path = tmp_path / "Datasets/KGBD/6/test_npy_data/probe/frame_id_KGBD_6.npy"
    labels = np.load(path)
    labels[0] = 4
    np.save(path, labels)
    with pytest.raises(DataError, match="frame_id_KGBD_6.npy"):
        read_successors_layout(tmp_path, "KGBD", 6)


def test_ids_pickle_goes_through_the_restricted_unpickler(tmp_path):
    _fixture(tmp_path)
    obj = np.empty((), dtype=object)
    obj[()] = {1: pathlib.PurePosixPath("x")}                   # a class the restricted unpickler refuses
    np.save(tmp_path / "Datasets/KGBD/6/train_npy_data/ids_KGBD_6.npy", obj, allow_pickle=True)
    with pytest.raises(DataError):
        read_successors_layout(tmp_path, "KGBD", 6)


def test_train_on_the_authors_split_scores_both_units(tmp_path):
    _fixture(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["train", "--dataset", "KGBD", "--source", "successors_npy", "--root", str(tmp_path / "data"),
                 "--protocol", "probe_gallery", "--epochs", "1", "--no-progress", "--threads", "1",
                 "--set", "encoder.hidden=16", "--set", "encoder.batch_size=8", "--out", str(out)]) == 0
    r = json.loads((out / "results.json").read_text())
    units = r["pairs"]["probe_gallery"]["units"]
    assert (units["sequence"]["num_probes"], units["sequence"]["num_gallery"]) == (8, 14)
    assert (units["walk"]["num_probes"], units["walk"]["num_gallery"]) == (4, 4)   # one pseudo-walk per person
    assert units["sequence"]["num_without_match"] == 0
    assert r["split"]["windows_per_split"] == {"train": 20, "gallery": 14, "probe": 8}
    md = (out / "results.md").read_text()
    assert "per subsequence (the literature's protocol)" in md and "per walk (mean of windows)" in md
