"""Generated fixtures in the real raw layouts, read back by the readers; KS20 and
CASIA-B reader errors; the reference ``.npy`` fixture for every dataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skelreid.data.fixtures import (
    FIXTURE_DATASETS,
    REFERENCE_FIXTURE_DATASETS,
    kinect_v1_to_casia14,
    kinect_v1_to_v2,
    write_fixture,
    write_reference_fixture,
)
from skelreid.data.layouts import CASIA_B_14, KINECT_V1, KINECT_V2
from skelreid.data.readers.biwi_ias import read_biwi_ias
from skelreid.data.readers.casia_b import read_casia_b
from skelreid.data.readers.kgbd import read_kgbd
from skelreid.data.readers.ks20 import KS20_VIEWS, read_ks20
from skelreid.data.readers.reference_npy import read_reference_layout, reference_files
from skelreid.errors import ConfigError, DataError
from skelreid.safe_pickle import load_pickled_npy

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "formats" / "biwi_ias_frame_skel.txt"


def _files(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in folder.rglob(pattern) if p.is_file())


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# ----------------------------------------------------------------------------- raw fixtures

@pytest.fixture(scope="module")
def biwi(tmp_path_factory):
    return write_fixture("BIWI", tmp_path_factory.mktemp("biwi"), persons=3, frames=(30, 40))


@pytest.fixture(scope="module")
def ias(tmp_path_factory):
    return write_fixture("ias", tmp_path_factory.mktemp("ias"), persons=3, frames=(30, 40), untracked=1)


@pytest.fixture(scope="module")
def ks20(tmp_path_factory):
    return write_fixture("KS20", tmp_path_factory.mktemp("ks20"), persons=3, frames=(20, 30),
                         sequences_per_view=2)


@pytest.fixture(scope="module")
def casia(tmp_path_factory):
    return write_fixture("casia_b", tmp_path_factory.mktemp("casia"), persons=3, frames=(40, 50))


def test_biwi_fixture_matches_the_real_frame_format_and_reads_back(biwi):
    seqs = read_biwi_ias(biwi)
    assert {s.person for s in seqs} == {"000", "001", "002"}
    assert sorted({s.condition for s in seqs}) == ["Testing/Still", "Testing/Walking", "Training"]
    assert len(seqs) == 9
    for s in seqs:
        assert s.layout == KINECT_V1.name and s.frames.shape[1:] == (20, 3)
        folder = Path(s.source)
        n_files = len(list(folder.glob("*_skel.txt")))
        assert 30 <= n_files <= 40
        # the two untracked frames written per sequence are dropped
        assert s.meta == {"frames_total": n_files, "frames_dropped": 2}
        assert s.num_frames == n_files - 2
        assert np.isfinite(s.frames).all()
    # the frame file has the real file's shape: 40 lines of 14 numbers, the
    # skeleton in col-9 order, then 20 all-zero empty slots
    f = _files(biwi / "Training" / "000", "*_skel.txt")[0]
    rows = np.array([[float(v) for v in ln.split(",")] for ln in f.read_text().splitlines()])
    real = np.array([[float(v) for v in ln.split(",")] for ln in SAMPLE.read_text().splitlines()])
    assert rows.shape == real.shape == (40, 14)
    np.testing.assert_array_equal(rows[:20, 9], np.arange(20))
    np.testing.assert_array_equal(rows[:20, 8], real[:20, 8])     # parent joints
    assert (rows[20:] == 0).all() and (real[20:] == 0).all()
    assert set(rows[:20, 6]) <= {1.0, 2.0}
    # still sequences stand, walking sequences walk
    by = {(s.person, s.condition): s for s in seqs}
    for p in ("000", "001", "002"):
        still = by[p, "Testing/Still"].frames[:, 0]
        walk = by[p, "Testing/Walking"].frames[:, 0]
        assert np.linalg.norm(still[-1] - still[0]) < 0.2
        assert np.linalg.norm(walk[-1] - walk[0]) > 0.6


def test_ias_fixture_reads_back_with_three_splits(ias):
    seqs = read_biwi_ias(ias)
    assert sorted({s.condition for s in seqs}) == ["TestingA", "TestingB", "Training"]
    assert len({s.person for s in seqs}) == 3 and len(seqs) == 9
    for s in seqs:
        assert s.meta["frames_dropped"] == 1 and s.num_frames == s.meta["frames_total"] - 1
    f = _files(ias / "TestingA" / "001", "*_skel.txt")[0]
    assert len(f.read_text().splitlines()) == 20       # no empty slot lines in IAS


def test_ks20_fixture_layout_and_round_trip(ks20):
    assert sorted(p.name for p in ks20.iterdir()) == sorted(KS20_VIEWS)
    names = [p.name for p in (ks20 / "frontal").iterdir()]
    assert all(n.startswith(("gc1_body", "gc2_body")) and n.endswith("_skel.txt") for n in names)
    assert {n.split("_")[1] for n in names} == {"body1", "body2", "body3"}
    first = sorted(names)[0]
    lines = (ks20 / "frontal" / first).read_text().splitlines()
    assert len(lines) == 25 and all(len(ln.split(",")) == 4 for ln in lines)

    seqs = read_ks20(ks20)
    assert len(seqs) == 3 * 5 * 2
    assert {s.person for s in seqs} == {"body1", "body2", "body3"}
    assert {s.view for s in seqs} == {"0", "1", "2", "3", "4"}
    assert {s.condition for s in seqs} == {"gc1", "gc2"}
    assert len({(s.person, s.walk) for s in seqs}) == len(seqs)
    for s in seqs:
        assert s.layout == KINECT_V2.name and s.frames.shape[1:] == (25, 3)
        files = list(Path(s.source).glob(f"{s.condition}_body{s.meta['body']}_*"))
        assert s.num_frames == len(files) and 20 <= s.num_frames <= 30
        assert s.walk == f"{KS20_VIEWS[int(s.view)]}-{s.condition}"
    # the frontal walker comes towards the sensor, the lateral one crosses the view
    s0 = next(s for s in seqs if s.view == "0")
    s2 = next(s for s in seqs if s.view == "2")
    d0, d2 = s0.frames[-1, 0] - s0.frames[0, 0], s2.frames[-1, 0] - s2.frames[0, 0]
    assert d0[2] < -0.4 and abs(d0[0]) < 0.3
    assert abs(d2[0]) > 0.4 and abs(d2[2]) < 0.3


def test_casia_b_fixture_layout_and_round_trip(casia):
    f = casia / "002" / "bg-02" / "072" / "002-bg-02-072.txt"
    assert f.is_file()
    rows = np.loadtxt(f)
    assert rows.ndim == 2 and rows.shape[1] == 42 and 40 <= len(rows) <= 50

    seqs = read_casia_b(casia)
    assert len(seqs) == 3 * 10 * 11
    assert {s.person for s in seqs} == {"001", "002", "003"}
    assert {s.view for s in seqs} == {str(v) for v in range(11)}
    assert {s.condition for s in seqs} == {"nm", "bg", "cl"}
    for s in seqs:
        assert s.layout == CASIA_B_14.name and s.frames.shape[1:] == (14, 3)
        assert 40 <= s.num_frames <= 50
        assert s.walk == f"{s.meta['sequence']}_{s.meta['angle']:03d}"
        assert int(s.view) * 18 == s.meta["angle"]
    by = {(s.person, s.walk): s for s in seqs}
    s = by["002", "bg-02_072"]
    assert s.condition == "bg" and s.view == "4" and s.meta == {"sequence": "bg-02", "angle": 72}
    # each view sees the walk from its own place: raw positions differ, joint-0-relative do not much
    a, b = by["001", "nm-01_000"].frames, by["001", "nm-01_090"].frames
    assert np.linalg.norm(a[:, 0].mean(0) - b[:, 0].mean(0)) > 0.2
    # the head is above the neck, the ankles below the hips
    head_y = np.mean([x.frames[:, 0, 1].mean() for x in seqs])
    ankle_y = np.mean([x.frames[:, 10, 1].mean() for x in seqs])
    assert head_y > ankle_y + 1.0


def test_casia_b_persons_are_distinguishable_by_body_shape(casia):
    seqs = read_casia_b(casia)
    bones = [(2, 3), (3, 4), (8, 9), (9, 10), (0, 1), (2, 5), (8, 11)]

    def shape(s):
        return np.array([np.linalg.norm(s.frames[:, a] - s.frames[:, b], axis=-1).mean() for a, b in bones])

    feats = {}
    for s in seqs:
        if s.condition == "nm":
            feats.setdefault(s.person, []).append(shape(s))
    centres = {p: np.mean(v, axis=0) for p, v in feats.items()}
    correct = sum(
        min(centres, key=lambda q: np.linalg.norm(f - centres[q])) == p
        for p, v in feats.items() for f in v
    )
    assert correct / sum(len(v) for v in feats.values()) > 0.9


def test_kgbd_fixture_reads_back(tmp_path):
    data = write_fixture("KGBD", tmp_path, persons=3, frames=(25, 35), walks=4)
    assert data == tmp_path / "Data"
    raw = (data / "Person002" / "3.txt").read_bytes()
    assert raw.startswith(b"Head;") and raw.count(b"\r\n") == raw.count(b"\n")
    seqs = read_kgbd(tmp_path, workers=1)
    assert [s.person for s in seqs[::4]] == ["Person001", "Person002", "Person003"]
    assert [s.walk for s in seqs[:4]] == ["1", "2", "3", "4"]
    for s in seqs:
        assert s.frames.shape[1:] == (20, 3) and 25 <= s.num_frames <= 35
    assert raw.count(b"\r\n") == 20 * seqs[6].num_frames


def test_fixtures_are_deterministic(tmp_path):
    a = write_fixture("CASIA_B", tmp_path / "a", persons=1, frames=(20, 25), views=[0, 5], conditions=["nm-01"])
    b = write_fixture("CASIA_B", tmp_path / "b", persons=1, frames=(20, 25), views=[0, 5], conditions=["nm-01"])
    c = write_fixture("CASIA_B", tmp_path / "c", persons=1, frames=(20, 25), views=[0, 5], conditions=["nm-01"],
                      seed=1)
    assert _tree(a) == _tree(b) == ["001", "001/nm-01", "001/nm-01/000", "001/nm-01/000/001-nm-01-000.txt",
                                    "001/nm-01/090", "001/nm-01/090/001-nm-01-090.txt"]
    rel = "001/nm-01/090/001-nm-01-090.txt"
    assert (a / rel).read_bytes() == (b / rel).read_bytes() != (c / rel).read_bytes()
    k1 = write_fixture("KS20", tmp_path / "k1", persons=1, frames=12, views=[1], sequences_per_view=1)
    k2 = write_fixture("KS20", tmp_path / "k2", persons=1, frames=12, views=[1], sequences_per_view=1)
    assert _tree(k1) == _tree(k2) and len(_tree(k1)) == 1 + 12
    for rel in _tree(k1)[1:]:
        assert (k1 / rel).read_bytes() == (k2 / rel).read_bytes()


def test_joint_mappings():
    from skelreid.data.synthetic import sample_person, walk_frames

    rng = np.random.default_rng(3)
    v1 = walk_frames(sample_person(rng), 10, rng)
    v2 = kinect_v1_to_v2(v1)
    assert v2.shape == (10, 25, 3) and np.isfinite(v2).all()
    for name in ("Head", "ShoulderLeft", "WristRight", "KneeLeft", "FootRight"):
        np.testing.assert_allclose(v2[:, KINECT_V2.index(name)], v1[:, KINECT_V1.index(name)], atol=1e-6)
    np.testing.assert_allclose(v2[:, KINECT_V2.index("SpineBase")], v1[:, KINECT_V1.index("HipCenter")], atol=1e-6)
    tip = np.linalg.norm(v2[:, KINECT_V2.index("HandTipLeft")] - v2[:, KINECT_V2.index("HandLeft")], axis=-1)
    assert (tip > 0.01).all() and (tip < 0.2).all()
    c14 = kinect_v1_to_casia14(v1)
    assert c14.shape == (10, 14, 3)
    np.testing.assert_array_equal(c14[:, 0], v1[:, KINECT_V1.index("Head")])
    np.testing.assert_array_equal(c14[:, 1], v1[:, KINECT_V1.index("ShoulderCenter")])
    np.testing.assert_array_equal(c14[:, 13], v1[:, KINECT_V1.index("AnkleLeft")])


# ----------------------------------------------------------------------------- argument checks

def test_write_fixture_rejects_bad_arguments_before_writing(tmp_path):
    with pytest.raises(ConfigError) as exc:
        write_fixture("NTU", tmp_path / "x")
    for name in FIXTURE_DATASETS:
        assert name in str(exc.value)
    bad = [
        dict(dataset="KS20", sequences_per_view=0),
        dict(dataset="KS20", views=[5]),
        dict(dataset="KS20", walks=3),
        dict(dataset="CASIA_B", conditions=["xx-01"]),
        dict(dataset="CASIA_B", views=[0, 0]),
        dict(dataset="BIWI", frames=(50, 40)),
        dict(dataset="BIWI", frames=(2, 5), untracked=2),
        dict(dataset="KGBD", persons=0),
        dict(dataset="IAS", seed=-1),
    ]
    for kw in bad:
        with pytest.raises(ConfigError):
            write_fixture(root=tmp_path / "x", **kw)
    assert not (tmp_path / "x").exists()
    # an existing fixture is never overwritten or mixed with a new one
    root = write_fixture("biwi", tmp_path / "b", persons=1, frames=12)
    before = _tree(root)
    with pytest.raises(ConfigError, match="already exists"):
        write_fixture("BIWI", root, persons=2, frames=12)
    assert _tree(root) == before
    # names are case-insensitive
    assert write_fixture("Casia-B", tmp_path / "c", persons=1, frames=10, views=[3], conditions=["cl-02"]) \
        == tmp_path / "c"
    assert _tree(tmp_path / "c")[-1] == "001/cl-02/054/001-cl-02-054.txt"


# ----------------------------------------------------------------------------- reader errors

@pytest.fixture()
def ks20_one(tmp_path):
    root = write_fixture("KS20", tmp_path / "ks20", persons=1, frames=8, views=[0], sequences_per_view=1)
    return root, sorted((root / "frontal").iterdir())


@pytest.fixture()
def casia_one(tmp_path):
    root = write_fixture("CASIA_B", tmp_path / "casia", persons=1, frames=8, views=[5], conditions=["nm-01"])
    return root, root / "001" / "nm-01" / "090" / "001-nm-01-090.txt"


def _replace_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


def _raises_at(read, root, path: Path, line: int | None, words: str) -> DataError:
    with pytest.raises(DataError) as exc:
        read(root)
    e = exc.value
    assert e.path == str(path)
    assert e.line == line
    msg = str(e)
    assert "\n" not in msg and str(path) in msg and words in msg.lower()
    if line is not None:
        assert f"{path}:{line}:" in msg
    return e


@pytest.mark.parametrize("text, words", [
    ("4,0.1,0.2", "truncated"),
    ("4,0.1,abc,2.0", "non-numeric"),
    ("4,0.1,nan,2.0", "non-finite"),
    ("4,inf,0.2,2.0", "non-finite"),
    ("4,0.1,0.2,2.0,7", "fields"),
    ("", "empty line"),
])
def test_ks20_reader_reports_file_and_line(ks20_one, text, words):
    root, files = ks20_one
    _replace_line(files[3], 5, text)
    _raises_at(read_ks20, root, files[3], 5, words)


def test_ks20_reader_other_errors(ks20_one, tmp_path):
    root, files = ks20_one
    assert len(read_ks20(root)) == 1
    # a file that ends early
    lines = files[2].read_text().splitlines()
    files[2].write_text("\n".join(lines[:24]) + "\n")
    _raises_at(read_ks20, root, files[2], 24, "25 joint lines")
    # an empty file
    files[2].write_text("")
    _raises_at(read_ks20, root, files[2], None, "empty file")
    files[2].write_text("\n".join(lines) + "\n")
    # a misnamed text file
    odd = root / "frontal" / "frame_0001.txt"
    odd.write_text(files[0].read_text())
    _raises_at(read_ks20, root, odd, None, "file name")
    odd.unlink()
    # no view folders at all, and a view folder with only .mat files
    empty = tmp_path / "empty"
    empty.mkdir()
    _raises_at(read_ks20, empty, empty, None, "no view folders")
    (empty / "left_lateral").mkdir()
    (empty / "left_lateral" / "gc1_body1.mat").write_bytes(b"MATLAB")
    _raises_at(read_ks20, empty, empty / "left_lateral", None, ".mat")
    with pytest.raises(DataError, match="folder not found"):
        read_ks20(tmp_path / "missing")


@pytest.mark.parametrize("make, words", [
    (lambda ln: " ".join(ln.split()[:41]), "truncated"),
    (lambda ln: ln + " 1.0", "too many"),
    (lambda ln: ln.replace(ln.split()[7], "x1", 1), "non-numeric"),
    (lambda ln: ln.replace(ln.split()[7], "NaN", 1), "non-finite"),
    (lambda ln: ln.replace(ln.split()[7], "-inf", 1), "non-finite"),
    (lambda ln: "", "empty line"),
])
def test_casia_b_reader_reports_file_and_line(casia_one, make, words):
    root, f = casia_one
    lines = f.read_text().splitlines()
    _replace_line(f, 4, make(lines[3]))
    _raises_at(read_casia_b, root, f, 4, words)


def test_casia_b_reader_other_errors(casia_one, tmp_path):
    root, f = casia_one
    seqs = read_casia_b(root)
    assert [(s.person, s.walk, s.view, s.condition) for s in seqs] == [("001", "nm-01_090", "5", "nm")]
    good = f.read_text()
    # comma separated files read the same
    f.write_text(good.replace(" ", ","))
    np.testing.assert_array_equal(read_casia_b(root)[0].frames, seqs[0].frames)
    f.write_text(good.replace(" ", ", "))
    np.testing.assert_array_equal(read_casia_b(root)[0].frames, seqs[0].frames)
    f.write_text("")
    _raises_at(read_casia_b, root, f, None, "empty file")
    f.write_text(good)
    # misnamed, misplaced, and impossible angles
    odd = root / "001" / "nm-01" / "090" / "001-nm-1-090.txt"
    odd.write_text(good)
    _raises_at(read_casia_b, root, odd, None, "file name")
    odd.unlink()
    moved = root / "001" / "nm-01" / "090" / "001-nm-02-090.txt"
    moved.write_text(good)
    _raises_at(read_casia_b, root, moved, None, "sequence nm-02")
    moved.unlink()
    angle = root / "001" / "nm-01" / "017"
    angle.mkdir()
    (angle / "001-nm-01-017.txt").write_text(good)
    _raises_at(read_casia_b, root, angle / "001-nm-01-017.txt", None, "angle")
    (angle / "001-nm-01-017.txt").unlink()
    # a README next to the subject folders is not data
    (root / "README.txt").write_text("CASIA-B skeletons\n")
    assert len(read_casia_b(root)) == 1
    # the flat layout works too
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "007-cl-02-180.txt").write_text(good)
    (s,) = read_casia_b(flat)
    assert (s.person, s.walk, s.view, s.condition, s.meta) == ("007", "cl-02_180", "10", "cl",
                                                                {"sequence": "cl-02", "angle": 180})
    empty = tmp_path / "empty"
    empty.mkdir()
    _raises_at(read_casia_b, empty, empty, None, "no casia-b skeleton files")


# ----------------------------------------------------------------------------- reference layout

REF_CASES = [
    ("BIWI", 6, None, "cage", ("train", "test"), 20),
    ("IAS", 4, None, "cage", ("train", "IAS-A", "IAS-B"), 20),
    ("KGBD", 8, None, "cage", ("train", "test"), 20),
    ("KS20", 6, None, "cage", ("train", "test"), 25),
    ("KS20", 10, 2, "cage", ("train", "test"), 25),
    ("CASIA_B", 20, 4, "cage", ("train", "test"), 14),
    ("CASIA_B_match", 40, None, "cage", ("train", "nm", "cl", "bg"), 14),
    ("IAS", 6, None, "age", ("train", "IAS-A", "IAS-B"), 20),
]


@pytest.mark.parametrize("dataset, length, view, variant, splits, joints", REF_CASES)
def test_reference_fixture_reads_back(tmp_path, dataset, length, view, variant, splits, joints):
    out = write_reference_fixture(dataset.lower(), tmp_path, length=length, persons=3, seed=2, view=view,
                                  variant=variant)
    assert out == tmp_path and (tmp_path / "Datasets").is_dir()
    ref = read_reference_layout(tmp_path, dataset, length, view=view, variant=variant, check_targets=True)
    assert tuple(ref.splits) == splits
    assert len(ref.persons) == 3
    for name, ws in ref.splits.items():
        assert ws.data.shape[1:] == (length, joints, 3)
        assert len(ws) > 0 and set(ws.label.tolist()) == {0, 1, 2}
        assert ref.unassigned[name] == 0
    files = reference_files(tmp_path, dataset, length, view, variant)
    key_sets = []
    for name in splits:
        ids = load_pickled_npy(files[name].ids)        # the restricted unpickler
        assert all(isinstance(k, int) for k in ids)
        rows = sorted(r for v in ids.values() for r in v)
        assert rows == list(range(len(ref.splits[name])))
        key_sets.append(set(ids))
    assert all(k == key_sets[0] for k in key_sets)
    if dataset == "CASIA_B_match":
        total = sum(len(ref.splits[c]) for c in ("nm", "cl", "bg"))
        assert ref.unlabelled["test"].shape == (total, length, joints, 3)


def test_reference_fixture_ids_follow_the_authors_numbering(tmp_path):
    write_reference_fixture("KGBD", tmp_path, length=6, persons=2)
    ids = load_pickled_npy(reference_files(tmp_path, "KGBD", 6)["train"].ids)
    assert sorted(ids) == [1, 2]
    write_reference_fixture("KS20", tmp_path, length=6, persons=2, view=0)
    ids = load_pickled_npy(reference_files(tmp_path, "KS20", 6, 0)["test"].ids)
    assert sorted(ids) == [0, 1]


def test_reference_fixture_rejects_bad_arguments_before_writing(tmp_path):
    with pytest.raises(ConfigError) as exc:
        write_reference_fixture("NTU", tmp_path, length=6)
    for name in REFERENCE_FIXTURE_DATASETS:
        assert name in str(exc.value)
    for kw in (dict(dataset="CASIA_B", length=20),                  # CVE needs a view
               dict(dataset="CASIA_B", length=20, view=11),
               dict(dataset="KS20", length=6, view=5),
               dict(dataset="BIWI", length=6, view=1),
               dict(dataset="BIWI", length=8, variant="age"),
               dict(dataset="CASIA_B_match", length=6, variant="age"),
               dict(dataset="KGBD", length=1),
               dict(dataset="KGBD", length=6, persons=0)):
        with pytest.raises(ConfigError):
            write_reference_fixture(root=tmp_path, **kw)
    assert list(tmp_path.iterdir()) == []
