"""Generic .npz / .csv sequence format."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skelreid.data.readers.generic import read_generic, read_generic_csv, read_generic_npz
from skelreid.errors import DataError


def frames(t: int = 4, j: int = 20, d: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(t, j, d)).astype(np.float32)


def write_csv(path: Path, walks: dict[tuple[str, str], np.ndarray], extra: dict | None = None,
              dims: int = 3) -> list[str]:
    cols = ["person", "walk", "frame", "joint", "x", "y", "z"][: 4 + dims]
    extra = extra or {}
    header = cols + list(extra)
    lines = [",".join(header)]
    for (p, w), arr in walks.items():
        for f in range(arr.shape[0]):
            for j in range(arr.shape[1]):
                vals = [p, w, str(f), str(j)] + [repr(float(v)) for v in arr[f, j]]
                lines.append(",".join(vals + [str(v) for v in extra.values()]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return lines


def test_npz_with_and_without_names(tmp_path):
    a, b = frames(seed=1), frames(t=6, seed=2)
    (tmp_path / "alice").mkdir()
    np.savez(tmp_path / "alice" / "w1.npz", frames=a)
    np.savez(tmp_path / "zz.npz", frames=b.astype(np.float64), person="bob", walk="walk7",
             view="side", condition="bag")
    seqs = read_generic(tmp_path)
    assert [s.walk_id for s in seqs] == ["alice/w1", "bob/walk7"]
    np.testing.assert_array_equal(seqs[0].frames, a)
    np.testing.assert_array_equal(seqs[1].frames, b)
    assert seqs[0].layout == "generic_20x3" and seqs[0].view is None
    assert seqs[1].layout == "generic_20x3"
    assert (seqs[1].view, seqs[1].condition) == ("side", "bag")
    assert seqs[1].source.endswith("zz.npz")


def test_npz_registered_layout(tmp_path):
    np.savez(tmp_path / "a.npz", frames=frames(), layout="kinect_v1")
    np.savez(tmp_path / "b.npz", frames=frames(), layout="KINECT_V1")
    seqs = read_generic(tmp_path)
    assert [s.layout for s in seqs] == ["kinect_v1", "kinect_v1"]


def test_npz_2d(tmp_path):
    np.savez(tmp_path / "a.npz", frames=frames(d=2, j=17), layout="coco_17")
    (s,) = read_generic(tmp_path)
    assert s.dims == 2 and s.layout == "coco_17" and s.person == tmp_path.name and s.walk == "a"


def test_csv_several_walks_any_order(tmp_path):
    a, b = frames(t=3, j=5, seed=3), frames(t=2, j=5, seed=4)
    lines = write_csv(tmp_path / "data.csv", {("p1", "w1"): a, ("p2", "w1"): b},
                      extra={"view": "front", "condition": "nm"})
    # shuffle the data rows: grouping and ordering are the reader's job
    body = lines[1:]
    rng = np.random.default_rng(0)
    (tmp_path / "data.csv").write_text("\n".join([lines[0]] + [body[i] for i in rng.permutation(len(body))]) + "\n")
    seqs = read_generic(tmp_path)
    got = {s.walk_id: s for s in seqs}
    assert set(got) == {"p1/w1", "p2/w1"}
    np.testing.assert_array_equal(got["p1/w1"].frames, a)
    np.testing.assert_array_equal(got["p2/w1"].frames, b)
    assert got["p1/w1"].view == "front" and got["p1/w1"].condition == "nm"
    assert got["p1/w1"].layout == "generic_5x3"


def test_csv_2d_and_column_order(tmp_path):
    a = frames(t=2, j=3, d=2)
    path = tmp_path / "x.csv"
    rows = ["y,x,joint,frame,walk,person"]
    for f in range(2):
        for j in range(3):
            rows.append(f"{float(a[f, j, 1])!r},{float(a[f, j, 0])!r},{j},{f},w,p")
    path.write_text("\n".join(rows) + "\n")
    (s,) = read_generic_csv(path)
    assert s.dims == 2 and s.walk_id == "p/w"
    np.testing.assert_array_equal(s.frames, a)


def test_mixed_files_recursive_sorted(tmp_path):
    (tmp_path / "b").mkdir()
    np.savez(tmp_path / "b" / "2.npz", frames=frames(j=5))
    write_csv(tmp_path / "a" / "1.csv", {("a", "1"): frames(j=5, t=2)})
    (tmp_path / "readme.txt").write_text("ignored")
    seqs = read_generic(tmp_path)
    assert [s.walk_id for s in seqs] == ["a/1", "b/2"]


def test_hidden_files_and_folders_are_skipped(tmp_path):
    """A half-written extract (``.name.staging/``), a tool's record folder or an editor's hidden copy
    must never be read as walks."""
    np.savez(tmp_path / "a.npz", frames=frames(j=5))
    (tmp_path / ".a.npz.1234.staging").mkdir()
    np.savez(tmp_path / ".a.npz.1234.staging" / "partial.npz", frames=frames(j=5, seed=3))
    (tmp_path / "p" / ".extract").mkdir(parents=True)
    np.savez(tmp_path / "p" / ".extract" / "x.npz", frames=frames(j=5, seed=4))
    np.savez(tmp_path / "p" / ".hidden.npz", frames=frames(j=5, seed=5))
    seqs = read_generic(tmp_path)
    assert [Path(s.source).relative_to(tmp_path).as_posix() for s in seqs] == ["a.npz"]


# ----------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------

def csv_error(tmp_path: Path, edit) -> DataError:
    path = tmp_path / "bad.csv"
    lines = write_csv(path, {("p", "w"): frames(t=3, j=4)})
    path.write_text("\n".join(edit(lines)) + "\n")
    with pytest.raises(DataError) as info:
        read_generic(tmp_path)
    assert info.value.path == str(path)
    return info.value


def test_csv_wrong_column_count(tmp_path):
    err = csv_error(tmp_path, lambda ls: ls[:5] + [ls[5] + ",9"] + ls[6:])
    assert err.line == 6 and "bad.csv:6:" in str(err) and "expected 7 columns" in str(err)


def test_csv_non_numeric(tmp_path):
    err = csv_error(tmp_path, lambda ls: ls[:3] + ["p,w,0,2,abc,1,2"] + ls[4:])
    assert err.line == 4 and "non-numeric x" in str(err)


def test_csv_non_finite(tmp_path):
    err = csv_error(tmp_path, lambda ls: ls[:8] + ["p,w,1,3,1,inf,2"] + ls[9:])
    assert err.line == 9 and "non-finite y" in str(err)


def test_csv_bad_frame_number(tmp_path):
    err = csv_error(tmp_path, lambda ls: ls[:2] + ["p,w,x,1,1,2,3"] + ls[3:])
    assert err.line == 3 and "frame must be an integer" in str(err)


def test_csv_missing_joint(tmp_path):
    # line 7 is frame 1 joint 1 (header on line 1, 4 joints per frame)
    err = csv_error(tmp_path, lambda ls: ls[:6] + ls[7:])
    assert "frame 1 has no joint 1" in str(err) and err.line == 6


def test_csv_missing_frame(tmp_path):
    err = csv_error(tmp_path, lambda ls: ls[:5] + ls[9:])
    assert "frame 1 is missing" in str(err)


def test_csv_repeated_row(tmp_path):
    err = csv_error(tmp_path, lambda ls: ls + [ls[3]])
    assert err.line == 14 and "repeated row" in str(err) and "line 4" in str(err)


def test_csv_bad_header(tmp_path):
    err = csv_error(tmp_path, lambda ls: ["person,walk,frame,x,y,z"] + ls[1:])
    assert err.line == 1 and "missing column(s) 'joint'" in str(err)
    err = csv_error(tmp_path, lambda ls: [ls[0] + ",speed"] + [r + ",1" for r in ls[1:]])
    assert err.line == 1 and "unknown column(s) 'speed'" in str(err)


def test_csv_empty(tmp_path):
    err = csv_error(tmp_path, lambda ls: [])
    assert "empty file" in str(err)
    err = csv_error(tmp_path, lambda ls: ls[:1])
    assert "no data rows" in str(err)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"frames": np.zeros((4, 20))}, "shape [T, J, 2|3]"),
        ({"frames": np.zeros((4, 20, 4))}, "shape [T, J, 2|3]"),
        ({"frames": np.zeros((0, 20, 3))}, "shape [T, J, 2|3]"),
        ({"frames": np.array([[["a", "b", "c"]]])}, "must be a float array"),
        ({"frames": np.zeros((2, 3, 3), dtype=bool)}, "must be a float array"),
        ({"frames": np.full((2, 3, 3), np.nan)}, "non-finite"),
        ({"pose": np.zeros((2, 3, 3))}, "no 'frames' array"),
        ({"frames": np.zeros((2, 3, 3)), "person": np.array(["a", "b"])}, "string scalar"),
        ({"frames": np.zeros((2, 3, 3)), "layout": np.array("kinect_v1")}, "layout 'kinect_v1' has 20 joints"),
        ({"frames": np.zeros((2, 3, 3)), "layout": np.array("nope")}, "unknown layout 'nope'"),
        ({"frames": np.array([None, 1.0], dtype=object)}, "not a readable .npz"),
    ],
)
def test_npz_errors(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as info:
        read_generic(tmp_path)
    assert info.value.path == str(path)
    assert message in str(info.value)


def test_npz_not_a_zip(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable .npz"):
        read_generic_npz(tmp_path / "x.npz")


def test_mixed_joint_counts(tmp_path):
    np.savez(tmp_path / "a.npz", frames=frames(j=20))
    np.savez(tmp_path / "b.npz", frames=frames(j=25))
    with pytest.raises(DataError) as info:
        read_generic(tmp_path)
    msg = str(info.value)
    assert "mixed layouts:" in msg and "a.npz has 20 joints" in msg and "b.npz has 25" in msg


def test_mixed_dims_and_layout_names(tmp_path):
    np.savez(tmp_path / "a.npz", frames=frames(j=20))
    np.savez(tmp_path / "b.npz", frames=frames(j=20, d=2))
    with pytest.raises(DataError, match="mixed layouts"):
        read_generic(tmp_path)
    np.savez(tmp_path / "b.npz", frames=frames(j=20), layout="kinect_v1")
    with pytest.raises(DataError, match="mixed layouts.*kinect_v1"):
        read_generic(tmp_path)


def test_duplicate_walk(tmp_path):
    np.savez(tmp_path / "a.npz", frames=frames(), person="p", walk="1")
    np.savez(tmp_path / "b.npz", frames=frames(), person="p", walk="1")
    with pytest.raises(DataError, match="p/1 appears twice"):
        read_generic(tmp_path)


def test_no_files_and_missing_root(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no .npz or .csv"):
        read_generic(tmp_path)
    with pytest.raises(DataError, match="not found"):
        read_generic(tmp_path / "absent")
