"""The reference code's preprocessed ``.npy`` layout: writing and reading back."""
from __future__ import annotations

import numpy as np
import pytest

from skelreid.data.readers.reference_npy import (
    DATASETS,
    ReferenceDataset,
    read_reference_layout,
    reference_files,
    reference_split_names,
    write_reference_layout,
)
from skelreid.data.windows import WindowSet
from skelreid.errors import ConfigError, DataError


def make_windows(persons, counts, f=6, joints=20, seed=0, layout="generic"):
    """Windows with ``counts[i]`` rows of person ``i``, persons interleaved in file order."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(c, i) for i, c in enumerate(counts)]).astype(np.int64)
    rng.shuffle(labels)
    n = len(labels)
    data = rng.normal(size=(n, f, joints, 3)).astype(np.float32)
    walks = [f"{p}/w" for p in persons]
    position = np.zeros(n, dtype=np.int64)
    seen: dict[int, int] = {}
    for i, lab in enumerate(labels.tolist()):
        position[i] = seen.get(lab, 0)
        seen[lab] = position[i] + 1
    return WindowSet(data, labels, labels.copy(), position, list(persons), walks, layout)


def person_names(ws: WindowSet) -> list[str]:
    return [ws.persons[i] for i in ws.label.tolist()]


def assert_same_windows(got: WindowSet, expected: WindowSet, split: str):
    np.testing.assert_array_equal(got.data, expected.data)
    assert got.data.dtype == np.float32
    assert person_names(got) == person_names(expected)
    # label = rank of the person's key in sorted order
    assert all(got.persons[lab] == name for lab, name in zip(got.label.tolist(), person_names(expected)))
    # one pseudo-walk per person and split, positions count that person's rows in file order
    assert all(got.walks[w] == f"{got.persons[lab]}/{split}" for w, lab in zip(got.walk.tolist(), got.label.tolist()))
    counters: dict[int, int] = {}
    for lab, pos in zip(got.label.tolist(), got.position.tolist()):
        assert pos == counters.get(lab, 0)
        counters[lab] = pos + 1


def round_trip(tmp_path, dataset, splits, f, view=None, variant="cage", stacked=True, joints=None):
    write_reference_layout(tmp_path, dataset, f, splits, view=view, variant=variant, stacked_frames=stacked)
    ds = read_reference_layout(tmp_path, dataset, f, view=view, variant=variant, joints=joints)
    assert isinstance(ds, ReferenceDataset)
    assert ds.name == dataset and ds.length == f
    assert list(ds.splits) == list(reference_split_names(dataset))
    for name, ws in splits.items():
        assert_same_windows(ds.splits[name], ws, name)
        assert ds.unassigned[name] == 0
    persons = {tuple(ws.persons) for ws in ds.splits.values()}
    assert len(persons) == 1
    return ds


PERSONS = ["1", "2", "3", "10"]


@pytest.mark.parametrize("stacked", [True, False])
def test_kgbd_round_trip(tmp_path, stacked):
    splits = {
        "train": make_windows(PERSONS, [5, 3, 4, 2], seed=1),
        "test": make_windows(PERSONS, [2, 1, 2, 1], seed=2),
    }
    ds = round_trip(tmp_path, "KGBD", splits, 6, stacked=stacked)
    # numeric person names become int keys, sorted numerically
    assert ds.splits["train"].persons == ["1", "2", "3", "10"]
    assert ds.splits["train"].layout == "kinect_v1"
    base = tmp_path / "Datasets" / "KGBD" / "6"
    src = np.load(base / "KGBD_train_npy_data" / "source_x_KGBD_6.npy")
    assert src.shape == ((14 * 6, 20) if stacked else (14, 6, 20))
    assert (base / "KGBD_test_npy_data" / "t_source_z_KGBD_6.npy").is_file()
    assert (base / "KGBD_test_npy_data" / "ids_KGBD_6.npy").is_file()


def test_target_is_time_reversed_source(tmp_path):
    splits = {"train": make_windows(PERSONS, [3, 3, 3, 3], f=4), "test": make_windows(PERSONS, [1, 1, 1, 1], f=4)}
    write_reference_layout(tmp_path, "BIWI", 4, splits)
    d = tmp_path / "Datasets" / "BIWI" / "4"
    for axis_i, a in enumerate("xyz"):
        src = np.load(d / "BIWI_train_npy_data" / f"source_{a}_BIWI_4.npy").reshape(-1, 4, 20)
        tgt = np.load(d / "BIWI_train_npy_data" / f"target_{a}_BIWI_4.npy").reshape(-1, 4, 20)
        np.testing.assert_array_equal(tgt, src[:, ::-1])
        np.testing.assert_array_equal(src, splits["train"].data[..., axis_i])
        t_src = np.load(d / "BIWI_test_npy_data" / f"t_source_{a}_BIWI_4.npy").reshape(-1, 4, 20)
        t_tgt = np.load(d / "BIWI_test_npy_data" / f"t_target_{a}_BIWI_4.npy").reshape(-1, 4, 20)
        np.testing.assert_array_equal(t_tgt, t_src[:, ::-1])
    read_reference_layout(tmp_path, "BIWI", 4, check_targets=True)


def test_check_targets_detects_a_wrong_target(tmp_path):
    splits = {"train": make_windows(PERSONS, [2, 2, 2, 2], f=4), "test": make_windows(PERSONS, [1, 1, 1, 1], f=4)}
    write_reference_layout(tmp_path, "BIWI", 4, splits)
    bad = tmp_path / "Datasets" / "BIWI" / "4" / "BIWI_train_npy_data" / "target_y_BIWI_4.npy"
    np.save(bad, np.load(bad) + 1)
    read_reference_layout(tmp_path, "BIWI", 4)  # targets are not read by default
    with pytest.raises(DataError, match="time-reversed") as err:
        read_reference_layout(tmp_path, "BIWI", 4, check_targets=True)
    assert str(bad) in str(err.value)


def test_ias_round_trip_with_two_test_sets(tmp_path):
    splits = {
        "train": make_windows(PERSONS, [4, 4, 4, 4], seed=3),
        "IAS-A": make_windows(PERSONS, [2, 1, 1, 2], seed=4),
        "IAS-B": make_windows(PERSONS, [1, 2, 2, 1], seed=5),
    }
    round_trip(tmp_path, "IAS", splits, 6)
    test_dir = tmp_path / "Datasets" / "IAS" / "6" / "IAS_test_npy_data"
    for part in ("IAS-A", "IAS-B"):
        for a in "xyz":
            assert (test_dir / f"t_source_{a}_{part}_6.npy").is_file()
            assert (test_dir / f"t_target_{a}_{part}_6.npy").is_file()
        assert (test_dir / f"ids_{part}_6.npy").is_file()
    assert not list(test_dir.glob("*_IAS_6.npy"))


def test_ks20_with_view_folder(tmp_path):
    splits = {
        "train": make_windows(PERSONS, [3, 3, 3, 3], joints=25, seed=6),
        "test": make_windows(PERSONS, [1, 1, 1, 1], joints=25, seed=7),
    }
    ds = round_trip(tmp_path, "KS20", splits, 6, view=3, stacked=False)
    assert ds.view == 3
    assert ds.splits["train"].layout == "kinect_v2"
    assert (tmp_path / "Datasets/KS20/6/view_3/KS20_train_npy_data/source_x_KS20_6.npy").is_file()
    with pytest.raises(DataError, match="view_1"):
        read_reference_layout(tmp_path, "KS20", 6, view=1)
    with pytest.raises(ConfigError, match="0..4"):
        read_reference_layout(tmp_path, "KS20", 6, view=5)


def test_casia_b_cross_view_folder(tmp_path):
    persons = [f"{i:03d}" for i in (1, 2, 75)]  # not canonical integers: string keys
    splits = {
        "train": make_windows(persons, [3, 2, 3], f=20, joints=14, seed=8),
        "test": make_windows(persons, [1, 2, 1], f=20, joints=14, seed=9),
    }
    ds = round_trip(tmp_path, "CASIA_B", splits, 20, view=10)
    assert ds.splits["test"].persons == persons
    assert ds.splits["train"].layout == "casia_b_14"
    assert (tmp_path / "Datasets/CASIA_B/20/view_10/CASIA_B_test_npy_data/t_source_y_CASIA_B_20.npy").is_file()
    with pytest.raises(ConfigError, match="needs a view"):
        read_reference_layout(tmp_path, "CASIA_B", 20)


def test_casia_b_match_condition_folders(tmp_path):
    persons = ["1", "2", "3"]
    splits = {
        "train": make_windows(persons, [3, 3, 3], f=10, joints=14, seed=10),
        "nm": make_windows(persons, [2, 2, 2], f=10, joints=14, seed=11),
        "cl": make_windows(persons, [1, 1, 1], f=10, joints=14, seed=12),
        "bg": make_windows(persons, [1, 2, 1], f=10, joints=14, seed=13),
    }
    ds = round_trip(tmp_path, "CASIA_B_match", splits, 10)
    base = tmp_path / "Datasets" / "CASIA_B_match" / "10"
    assert (base / "CASIA_B_train_npy_data" / "ids_CASIA_B_10.npy").is_file()
    for cond in ("nm", "cl", "bg"):
        assert (base / "CASIA_B_test_npy_data" / cond / "t_source_x_CASIA_B_10.npy").is_file()
        assert (base / "CASIA_B_test_npy_data" / cond / "ids_CASIA_B_10.npy").is_file()
    # the un-labelled top-level test files the reference also loads
    assert (base / "CASIA_B_test_npy_data" / "t_target_z_CASIA_B_10.npy").is_file()
    np.testing.assert_array_equal(
        ds.unlabelled["test"], np.concatenate([splits[c].data for c in ("nm", "cl", "bg")])
    )
    only = read_reference_layout(tmp_path, "CASIA_B_match", 10, splits=["train", "cl"])
    assert list(only.splits) == ["train", "cl"]


def test_age_layout(tmp_path):
    splits = {"train": make_windows(PERSONS, [2, 2, 2, 2], seed=14), "test": make_windows(PERSONS, [1, 1, 1, 1])}
    round_trip(tmp_path, "BIWI", splits, 6, variant="age")
    assert (tmp_path / "Datasets" / "BIWI_train_npy_data" / "source_x_BIWI_6.npy").is_file()
    assert (tmp_path / "Datasets" / "BIWI_test_npy_data" / "ids_BIWI_6.npy").is_file()
    # root may also be the Datasets folder itself
    ds = read_reference_layout(tmp_path / "Datasets", "BIWI", 6, variant="age")
    assert len(ds.splits["train"]) == 8
    with pytest.raises(ConfigError, match="fixed window length of 6"):
        read_reference_layout(tmp_path, "BIWI", 8, variant="age")


def test_ias_age_layout(tmp_path):
    splits = {
        "train": make_windows(PERSONS, [2, 2, 2, 2]),
        "IAS-A": make_windows(PERSONS, [1, 1, 1, 1]),
        "IAS-B": make_windows(PERSONS, [1, 1, 1, 1]),
    }
    round_trip(tmp_path, "IAS", splits, 6, variant="age")
    assert (tmp_path / "Datasets" / "IAS_test_npy_data" / "t_source_x_IAS-B_6.npy").is_file()


# --------------------------------------------------------------------------- hand-made files


def _write_split(folder, prefix, token, f, data, ids):
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate("xyz"):
        np.save(folder / f"{prefix}source_{a}_{token}_{f}.npy", data[..., i].reshape(-1, data.shape[2]))
        np.save(folder / f"{prefix}target_{a}_{token}_{f}.npy", data[:, ::-1, :, i].reshape(-1, data.shape[2]))
    np.save(folder / f"ids_{token}_{f}.npy", ids, allow_pickle=True)


def _kgbd(tmp_path, train_ids, test_ids, n_train=6, n_test=3, f=4, dtype=np.float64):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(n_train, f, 20, 3)).astype(dtype)
    test = rng.normal(size=(n_test, f, 20, 3)).astype(dtype)
    base = tmp_path / "Datasets" / "KGBD" / str(f)
    _write_split(base / "KGBD_train_npy_data", "", "KGBD", f, train, train_ids)
    _write_split(base / "KGBD_test_npy_data", "t_", "KGBD", f, test, test_ids)
    return base, train, test


def test_labels_are_ranks_of_sorted_keys_and_empty_keys_are_skipped(tmp_path):
    train_ids = {30: [0, 3], 4: [1, 4], 100: [], 7: [2, 5]}
    test_ids = {30: [2], 4: [], 100: [0], 7: [1]}
    _base, train, test = _kgbd(tmp_path, train_ids, test_ids, dtype=np.float64)
    ds = read_reference_layout(tmp_path, "KGBD", 4)
    tr, te = ds.splits["train"], ds.splits["test"]
    assert tr.persons == ["4", "7", "30", "100"]  # key 100 has no train rows but keeps its rank
    assert tr.label.tolist() == [2, 0, 1, 2, 0, 1]  # file order kept
    assert tr.walks == ["4/train", "7/train", "30/train"]
    assert tr.position.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(tr.data, train.astype(np.float32))
    assert tr.data.dtype == np.float32
    assert te.label.tolist() == [3, 1, 2]
    assert te.walks == ["7/test", "30/test", "100/test"]


def test_unlisted_rows_are_dropped_and_counted(tmp_path):
    _base, train, _ = _kgbd(tmp_path, {1: [0, 2], 2: [4]}, {1: [0], 2: [2]})
    ds = read_reference_layout(tmp_path, "KGBD", 4)
    assert ds.unassigned == {"train": 3, "test": 1}
    np.testing.assert_allclose(ds.splits["train"].data, train[[0, 2, 4]].astype(np.float32))


def test_missing_ids_file_names_the_path(tmp_path):
    base, _, _ = _kgbd(tmp_path, {1: [0]}, {1: [0]})
    missing = base / "KGBD_test_npy_data" / "ids_KGBD_4.npy"
    missing.unlink()
    with pytest.raises(DataError, match="file not found") as err:
        read_reference_layout(tmp_path, "KGBD", 4)
    assert str(missing) in str(err.value)


def test_missing_source_file_names_the_path(tmp_path):
    with pytest.raises(DataError) as err:
        read_reference_layout(tmp_path, "BIWI", 6)
    assert str(tmp_path / "Datasets/BIWI/6/BIWI_train_npy_data/source_x_BIWI_6.npy") in str(err.value)


def test_mismatched_axis_shapes_name_the_file(tmp_path):
    base, _, _ = _kgbd(tmp_path, {1: [0]}, {1: [0]})
    bad = base / "KGBD_train_npy_data" / "source_y_KGBD_4.npy"
    np.save(bad, np.zeros((5 * 4, 20)))
    with pytest.raises(DataError, match="differs from") as err:
        read_reference_layout(tmp_path, "KGBD", 4)
    assert str(err.value).startswith(str(bad))


def test_rows_not_divisible_by_length(tmp_path):
    base, _, _ = _kgbd(tmp_path, {1: [0]}, {1: [0]})
    for a in "xyz":
        np.save(base / "KGBD_train_npy_data" / f"source_{a}_KGBD_4.npy", np.zeros((10, 20)))
    with pytest.raises(DataError, match="windows of 4 frames"):
        read_reference_layout(tmp_path, "KGBD", 4)


def test_three_d_storage_with_wrong_length(tmp_path):
    base, _, _ = _kgbd(tmp_path, {1: [0]}, {1: [0]})
    for a in "xyz":
        np.save(base / "KGBD_train_npy_data" / f"source_{a}_KGBD_4.npy", np.zeros((3, 5, 20)))
    with pytest.raises(DataError, match="expected length 4"):
        read_reference_layout(tmp_path, "KGBD", 4)


def test_joint_count_can_be_given(tmp_path):
    base, train, _ = _kgbd(tmp_path, {1: [0, 1, 2, 3, 4, 5]}, {1: [0, 1, 2]})
    # store [N, f*J]: only readable when J is given
    for i, a in enumerate("xyz"):
        np.save(base / "KGBD_train_npy_data" / f"source_{a}_KGBD_4.npy", train[..., i].reshape(6, 80))
        np.save(base / "KGBD_test_npy_data" / f"t_source_{a}_KGBD_4.npy", np.zeros((3, 80)))
    with pytest.raises(DataError):
        read_reference_layout(tmp_path, "KGBD", 4)
    ds = read_reference_layout(tmp_path, "KGBD", 4, joints=20)
    np.testing.assert_allclose(ds.splits["train"].data, train.astype(np.float32))


def test_out_of_range_row_index(tmp_path):
    base, _, _ = _kgbd(tmp_path, {1: [0, 6]}, {1: [0]})
    with pytest.raises(DataError, match="row 6") as err:
        read_reference_layout(tmp_path, "KGBD", 4)
    assert str(base / "KGBD_train_npy_data" / "ids_KGBD_4.npy") in str(err.value)


def test_row_listed_for_two_persons(tmp_path):
    _kgbd(tmp_path, {1: [0, 1], 2: [1]}, {1: [0], 2: [1]})
    with pytest.raises(DataError, match="row 1 is listed for person 1 and person 2"):
        read_reference_layout(tmp_path, "KGBD", 4)


def test_train_and_test_keys_must_match(tmp_path):
    base, _, _ = _kgbd(tmp_path, {1: [0], 2: [1]}, {1: [0], 3: [1]})
    with pytest.raises(DataError, match="person ids differ") as err:
        read_reference_layout(tmp_path, "KGBD", 4)
    msg = str(err.value)
    assert str(base / "KGBD_train_npy_data" / "ids_KGBD_4.npy") in msg
    assert str(base / "KGBD_test_npy_data" / "ids_KGBD_4.npy") in msg


def test_malicious_ids_file_is_refused(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'pwned'}",)

    _kgbd(tmp_path, {1: [0]}, {1: Evil()})
    with pytest.raises(DataError, match="which could run code"):
        read_reference_layout(tmp_path, "KGBD", 4)
    assert not (tmp_path / "pwned").exists()


def test_object_source_array_is_refused(tmp_path):
    base, _, _ = _kgbd(tmp_path, {1: [0]}, {1: [0]})
    np.save(base / "KGBD_train_npy_data" / "source_x_KGBD_4.npy", np.array([{}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="source_x_KGBD_4.npy"):
        read_reference_layout(tmp_path, "KGBD", 4)


# --------------------------------------------------------------------------- arguments


def test_unknown_dataset_lists_valid_names(tmp_path):
    with pytest.raises(ConfigError) as err:
        read_reference_layout(tmp_path, "NTU", 6)
    for name in DATASETS:
        assert name in str(err.value)


def test_view_only_where_the_layout_has_views(tmp_path):
    with pytest.raises(ConfigError, match="no view folders"):
        reference_files(tmp_path, "BIWI", 6, view=0)
    with pytest.raises(ConfigError, match="0..10"):
        reference_files(tmp_path, "CASIA_B", 20, view=11)


def test_writer_needs_the_dataset_splits(tmp_path):
    with pytest.raises(ConfigError, match="IAS-A"):
        write_reference_layout(tmp_path, "IAS", 6, {"train": make_windows(PERSONS, [1, 1, 1, 1])})


def test_writer_needs_matching_length(tmp_path):
    splits = {"train": make_windows(PERSONS, [1, 1, 1, 1], f=4), "test": make_windows(PERSONS, [1, 1, 1, 1], f=4)}
    with pytest.raises(ConfigError, match=r"\[6, J, 3\]"):
        write_reference_layout(tmp_path, "KGBD", 6, splits)


def test_writer_merges_person_lists_across_splits(tmp_path):
    splits = {
        "train": make_windows(["1", "2", "3"], [2, 2, 2]),
        "test": make_windows(["2", "4"], [1, 1]),  # person 4 only in test, 1 and 3 only in train
    }
    write_reference_layout(tmp_path, "KGBD", 6, splits)
    ds = read_reference_layout(tmp_path, "KGBD", 6)
    assert ds.persons == ["1", "2", "3", "4"]
    assert person_names(ds.splits["test"]) == person_names(splits["test"])
    assert person_names(ds.splits["train"]) == person_names(splits["train"])
    ids = np.load(tmp_path / "Datasets/KGBD/6/KGBD_test_npy_data/ids_KGBD_6.npy", allow_pickle=True).item()
    assert sorted(ids) == [1, 2, 3, 4] and ids[1] == [] and ids[3] == []
