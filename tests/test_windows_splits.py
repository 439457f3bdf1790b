"""Windows, splits and pretext targets: behaviour the training depends on."""
from __future__ import annotations

import json

import numpy as np
import pytest

from skelreid.data.records import Sequence, walks_by_person
from skelreid.data.splits import (check_persons_covered, legacy_split, load_manifest, make_manifest,
                                  manifest_bytes, probe_gallery_split, save_manifest)
from skelreid.data.windows import cut_windows, make_windows, root_relative
from skelreid.errors import ConfigError, DataError
from skelreid.pretext import TASKS, members, shuffle_frames


def _seq(person: str, walk: str, frames: int, joints: int = 4, offset: float = 0.0) -> Sequence:
    data = np.arange(frames * joints * 3, dtype=np.float32).reshape(frames, joints, 3) + offset
    return Sequence(person, walk, data, "generic", source=f"{person}/{walk}.txt")


def _dataset() -> list[Sequence]:
    return [_seq("P2", "1", 40, offset=1000), _seq("P1", "2", 33), _seq("P1", "1", 50, offset=500),
            _seq("P10", "1", 26, offset=3000)]


def test_windows_clip_cut_and_keep_walk_order():
    ws = make_windows(_dataset(), length=6, clip=2)
    # persons in natural order, walks in natural order within a person
    assert ws.persons == ["P1", "P2", "P10"]
    assert ws.walks == ["P1/1", "P1/2", "P2/1", "P10/1"]
    # (50-4)//6 = 7, (33-4)//6 = 4, (40-4)//6 = 6, (26-4)//6 = 3
    assert np.bincount(ws.walk).tolist() == [7, 4, 6, 3]
    assert ws.position[:7].tolist() == list(range(7))
    # first window of P1/1 starts at frame 2 (clip) and holds 6 consecutive frames
    src = _seq("P1", "1", 50, offset=500).frames
    np.testing.assert_array_equal(ws.data[0], src[2:8])
    np.testing.assert_array_equal(ws.data[1], src[8:14])
    assert ws.label[ws.walk == 3].tolist() == [2, 2, 2]


def test_cut_windows_drops_remainder_and_rejects_short_length():
    w = cut_windows(np.zeros((13, 2, 3)), 6)
    assert w.shape == (2, 6, 2, 3)
    with pytest.raises(ConfigError):
        cut_windows(np.zeros((13, 2, 3)), 1)


def test_root_relative_zeroes_the_root_joint():
    x = np.random.default_rng(0).normal(size=(5, 4, 3))
    r = root_relative(x, 0)
    assert np.allclose(r[:, 0], 0)
    np.testing.assert_allclose(r[:, 2] - r[:, 1], x[:, 2] - x[:, 1])


def test_walk_shorter_than_one_window_names_the_walk():
    seqs = _dataset() + [_seq("P3", "1", 12)]
    with pytest.raises(DataError, match=r"P3/1\.txt.*fewer than one window"):
        make_windows(seqs, length=6, clip=4)


def test_length_longer_than_every_walk():
    with pytest.raises(ConfigError, match="leaves no window"):
        make_windows(_dataset(), length=60, clip=0)


def test_subset_keeps_labels_and_next_in_walk_never_crosses_walks():
    ws = make_windows(_dataset(), length=6, clip=2)
    sub = ws.subset(["P2/1", "P1/2"])
    assert sorted(set(sub.label.tolist())) == [0, 1]
    nxt = ws.next_in_walk()
    assert (ws.walk[nxt] == ws.walk).all()
    last = np.r_[ws.walk[1:] != ws.walk[:-1], True]
    assert (nxt[last] == np.arange(len(ws))[last]).all()
    assert (nxt[~last] == np.arange(len(ws))[~last] + 1).all()
    with pytest.raises(ConfigError):
        ws.subset(["nobody/1"])


def test_pretext_targets():
    ws = make_windows(_dataset(), length=6, clip=2)
    x, y = TASKS.get("rev_rec").make(ws, 0)
    np.testing.assert_array_equal(y, ws.data[:, ::-1])
    x, y = TASKS.get("prediction").make(ws, 0)
    # never pairs windows of different walks
    nxt = ws.next_in_walk()
    np.testing.assert_array_equal(y, ws.data[nxt])
    x, y = TASKS.get("sorting").make(ws, 3)
    np.testing.assert_array_equal(y, ws.data)
    # every input window is a permutation of its target's frames, and most are not the identity
    xs = np.sort(x.reshape(len(x), 6, -1), axis=1)
    ys = np.sort(y.reshape(len(y), 6, -1), axis=1)
    np.testing.assert_array_equal(xs, ys)
    assert (x != y).any(axis=(1, 2, 3)).mean() > 0.9
    np.testing.assert_array_equal(shuffle_frames(ws.data, 3), x)  # drawn once from the seed
    assert members("rev_rec_plus", "LA") == [("rev_rec", "LA"), ("prediction", "BA"), ("sorting", "BA")]
    with pytest.raises(ConfigError, match="valid names: prediction, rev_rec, sorting"):
        TASKS.get("jigsaw")


def _walks(counts: dict[str, int]) -> dict[str, list[str]]:
    return {p: [f"{p}/{i}" for i in range(1, n + 1)] for p, n in counts.items()}


def test_legacy_split_counts_and_determinism():
    walks = _walks({"A": 5, "B": 6, "C": 4, "D": 3})
    s = legacy_split(walks, seed=1)
    by = lambda name, p: [w for w in s[name] if w.startswith(p + "/")]  # noqa: E731
    for p, n in [("A", 5), ("B", 6), ("C", 4), ("D", 3)]:
        assert len(by("test", p)) == 1 and len(by("val", p)) == 1 and len(by("train", p)) == n - 2
    all_ids = s["train"] + s["val"] + s["test"]
    assert len(all_ids) == len(set(all_ids)) == 18
    assert legacy_split(walks, seed=1) == s
    assert any(legacy_split(walks, seed=k) != s for k in range(2, 6))
    # no validation walks requested: the rest trains
    s0 = legacy_split(walks, seed=1, val_walks=0)
    assert s0["val"] == [] and s0["test"] == s["test"]


def test_person_draw_does_not_depend_on_other_persons():
    a = legacy_split(_walks({"A": 5, "B": 5}), seed=7)
    b = legacy_split(_walks({"A": 5, "Z": 4}), seed=7)
    assert [w for w in a["test"] if w.startswith("A/")] == [w for w in b["test"] if w.startswith("A/")]


def test_probe_gallery_split_three_walk_person_gets_one_each():
    s = probe_gallery_split(_walks({"A": 5, "P015": 3, "C": 6}), seed=0)
    count = lambda name, p: sum(w.startswith(p + "/") for w in s[name])  # noqa: E731
    assert (count("gallery", "A"), count("probe", "A"), count("train", "A")) == (2, 1, 2)
    assert (count("gallery", "P015"), count("probe", "P015"), count("train", "P015")) == (1, 1, 1)
    assert (count("gallery", "C"), count("probe", "C"), count("train", "C")) == (2, 1, 3)
    with pytest.raises(ConfigError, match="at least 3"):
        probe_gallery_split(_walks({"A": 2}), seed=0)


def test_manifest_is_byte_identical_and_validated(tmp_path):
    walks = _walks({"A": 5, "B": 4})
    m1 = make_manifest("toy", walks, "legacy", seed=3, test_walks=1, val_walks=1)
    m2 = make_manifest("toy", walks, "legacy", seed=3, test_walks=1, val_walks=1)
    assert manifest_bytes(m1) == manifest_bytes(m2)
    save_manifest(tmp_path / "s.json", m1)
    assert (tmp_path / "s.json").read_bytes() == manifest_bytes(m1)
    assert load_manifest(tmp_path / "s.json", [w for v in walks.values() for w in v]) == m1
    with pytest.raises(DataError, match="does not have"):
        load_manifest(tmp_path / "s.json", ["A/1"])
    bad = json.loads(manifest_bytes(m1))
    bad["splits"]["test"].append(bad["splits"]["train"][0])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(DataError, match="more than one split"):
        load_manifest(tmp_path / "bad.json", [w for v in walks.values() for w in v])
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(DataError, match=r"junk\.json:1"):
        load_manifest(tmp_path / "junk.json")


def test_person_missing_from_training_is_refused():
    m = {"splits": {"train": ["A/1"], "val": [], "test": ["A/2", "B/1"]}}
    with pytest.raises(ConfigError, match="no training walk"):
        check_persons_covered(m, {"A/1": "A", "A/2": "A", "B/1": "B"})


def test_walks_by_person_natural_order():
    seqs = [_seq("P10", "1", 20), _seq("P2", "10", 20), _seq("P2", "9", 20)]
    assert walks_by_person(seqs) == {"P2": ["P2/9", "P2/10"], "P10": ["P10/1"]}


def _walk(person, walk, condition=None, sequence=None, frames=40):
    from skelreid.data.records import Sequence

    return Sequence(person=person, walk=walk, frames=np.zeros((frames, 20, 3), np.float32), layout="kinect_v1",
                    condition=condition, meta={"sequence": sequence} if sequence else {})


def test_assign_sets_matches_condition_sequence_and_walk_and_reports_empty_sets():
    from skelreid.data.splits import assign_sets
    from skelreid.errors import ConfigError

    seqs = [_walk("001", "nm-01_090", "nm", "nm-01"), _walk("001", "nm-05_090", "nm", "nm-05"),
            _walk("001", "cl-01_090", "cl", "cl-01"), _walk("002", "Training", "Training"),
            _walk("002", "Testing-Walking", "Testing/Walking")]
    out = assign_sets(seqs, {"train": ["nm-0[1-4]*", "Training"], "nm": ["nm-05*"], "Walking": ["Testing/Walking"]})
    assert out == {"train": ["001/nm-01_090", "002/Training"], "nm": ["001/nm-05_090"],
                   "Walking": ["002/Testing-Walking"]}            # cl-01 matches no split: not used
    with pytest.raises(ConfigError, match="no walk matches the split.*bg.*conditions"):
        assign_sets(seqs, {"train": ["Training"], "bg": ["bg-*"]})


def test_predefined_split_holds_out_validation_walks_but_never_a_persons_last_one():
    from skelreid.data.splits import predefined_split

    sets = {"train": ["a/1", "a/2", "a/3", "b/1"], "test": ["a/9", "b/9"]}
    person = {w: w.split("/")[0] for ids in sets.values() for w in ids}
    out = predefined_split(sets, person, seed=0, val_walks=1)
    assert len(out["val"]) == 1 and out["val"][0].startswith("a/")      # b has a single training walk
    assert sorted(out["train"] + out["val"]) == sets["train"] and out["test"] == sets["test"]
    assert predefined_split(sets, person, seed=0, val_walks=1) == out      # seeded
    assert "val" not in predefined_split(sets, person, seed=0, val_walks=0)


def test_manifest_of_predefined_splits_round_trips(tmp_path):
    from skelreid.data.splits import load_manifest, make_predefined_manifest, save_manifest

    m = make_predefined_manifest("IAS", {"train": ["1/Training"], "IAS-A": ["1/TestingA"]}, "legacy")
    save_manifest(tmp_path / "s.json", m)
    assert load_manifest(tmp_path / "s.json", ["1/Training", "1/TestingA"]) == m
