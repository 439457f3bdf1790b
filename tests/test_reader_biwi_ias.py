"""BIWI / IAS-Lab raw skeleton reader, on fixtures built from a real frame file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skelreid.data.readers.biwi_ias import parse_skel_frame, read_biwi_ias
from skelreid.errors import DataError

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "formats" / "biwi_ias_frame_skel.txt"


def sample_rows() -> list[list[str]]:
    if not SAMPLE.exists():
        pytest.fail(f"sample frame missing: {SAMPLE}")
    return [ln.split(",") for ln in SAMPLE.read_text().splitlines() if ln.strip()]


def sample_xyz_v1() -> np.ndarray:
    """The sample's skeleton positions ordered by column 9 (plain Python)."""
    out = np.zeros((20, 3), dtype=np.float32)
    for row in sample_rows()[:20]:
        out[int(float(row[9]))] = [float(v) for v in row[1:4]]
    return out


def frame_text(k: int, *, untracked: int | None = None, permute: bool = False) -> str:
    """Frame ``k``: the sample with coordinates shifted by ``0.01 * k``."""
    rows = [list(r) for r in sample_rows()]
    for r in rows[:20]:
        for c in (1, 2, 3):
            r[c] = f"{float(r[c]) + 0.01 * k:.4f}"
    if untracked is not None:
        rows[untracked][6] = "0.0000"
    if permute:
        skel = rows[:20]
        rng = np.random.default_rng(k)
        rows[:20] = [skel[i] for i in rng.permutation(20)]
    return "\n".join(",".join(r) for r in rows) + "\n"


def write_person(folder: Path, n: int, *, untracked: tuple[int, ...] = (), permute: bool = False,
                 start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        idx = start + k
        name = f"{idx:03d}_{idx:06d}-d_{8349192 + 33 * idx}_skel.txt"
        (folder / name).write_text(
            frame_text(idx, untracked=4 if k in untracked else None, permute=permute)
        )


def test_sample_frame_parses_in_col9_order():
    frame = parse_skel_frame(SAMPLE)
    np.testing.assert_array_equal(frame, sample_xyz_v1())
    rows = sample_rows()
    # the sample lists joints 0..19 in order: joint 0 is the first line
    np.testing.assert_array_equal(frame[0], np.float32([float(v) for v in rows[0][1:4]]))
    np.testing.assert_array_equal(frame[0], np.float32([-0.0637, 0.2063, 3.1383]))
    np.testing.assert_array_equal(frame[3], np.float32([-0.0626, 0.8377, 3.0918]))  # Head


def test_permuted_lines_are_reordered(tmp_path):
    write_person(tmp_path / "Training" / "007", 3, permute=True)
    (seq,) = read_biwi_ias(tmp_path)
    for k in range(3):
        np.testing.assert_allclose(seq.frames[k], sample_xyz_v1() + np.float32(0.01 * k), atol=1e-6)


def test_biwi_tree(tmp_path):
    root = tmp_path / "BIWI"
    write_person(root / "Training" / "000", 5, untracked=(2,))
    write_person(root / "Training" / "001", 3)
    write_person(root / "Testing" / "Walking" / "000", 4)
    write_person(root / "Testing" / "Still" / "001", 2, start=100)
    seqs = read_biwi_ias(root)
    got = {(s.person, s.walk): s for s in seqs}
    assert set(got) == {("000", "Training"), ("001", "Training"),
                        ("000", "Testing-Walking"), ("001", "Testing-Still")}
    tr = got[("000", "Training")]
    assert tr.condition == "Training" and tr.layout == "kinect_v1"
    assert tr.num_frames == 4  # frame 2 had an untracked joint: dropped
    assert tr.meta == {"frames_total": 5, "frames_dropped": 1}
    base = sample_xyz_v1()
    for row, k in enumerate((0, 1, 3, 4)):
        np.testing.assert_allclose(tr.frames[row], base + np.float32(0.01 * k), atol=1e-6)
    np.testing.assert_array_equal(tr.frames[0], base)  # the sample's own numbers
    assert got[("000", "Testing-Walking")].condition == "Testing/Walking"
    assert got[("001", "Testing-Still")].walk_id == "001/Testing-Still"
    np.testing.assert_allclose(got[("001", "Testing-Still")].frames[0], base + np.float32(1.0), atol=1e-5)
    assert all(s.frames.dtype == np.float32 and s.frames.shape[1:] == (20, 3) for s in seqs)


def test_ias_tree_and_natural_frame_order(tmp_path):
    root = tmp_path / "IAS"
    write_person(root / "Training" / "2", 2)
    write_person(root / "TestingA" / "2", 2)
    write_person(root / "TestingB" / "10", 2)
    # frame files whose names sort differently as text and naturally
    folder = root / "TestingB" / "10"
    for p in folder.iterdir():
        p.unlink()
    for idx in (9, 10, 100):
        (folder / f"f{idx}_skel.txt").write_text(frame_text(idx))
    (folder / "notes.txt").write_text("not a frame")
    seqs = read_biwi_ias(root)
    assert sorted(s.walk_id for s in seqs) == ["10/TestingB", "2/TestingA", "2/Training"]
    b = next(s for s in seqs if s.walk == "TestingB")
    np.testing.assert_allclose(b.frames[:, 0, 0], sample_xyz_v1()[0, 0] + np.float32([0.09, 0.1, 1.0]), atol=1e-5)


def test_root_may_be_a_split_folder(tmp_path):
    write_person(tmp_path / "Training" / "5", 2)
    (seq,) = read_biwi_ias(tmp_path / "Training")
    assert seq.walk_id == "5/Training"


def test_progress(tmp_path, capsys):
    write_person(tmp_path / "Training" / "1", 2)
    read_biwi_ias(tmp_path, progress=True)
    assert "BIWI/IAS" in capsys.readouterr().err


# ----------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------

def corrupt(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "Training" / "003"
    write_person(folder, 3)
    target = sorted(folder.iterdir())[1]
    lines = target.read_text().splitlines()
    target.write_text("\n".join(edit(lines)) + "\n")
    return target


def error(tmp_path: Path) -> DataError:
    with pytest.raises(DataError) as info:
        read_biwi_ias(tmp_path)
    return info.value


def test_wrong_column_count(tmp_path):
    target = corrupt(tmp_path, lambda ls: ls[:6] + [ls[6] + ",1.0"] + ls[7:])
    err = error(tmp_path)
    assert err.path == str(target) and err.line == 7 and "expected 14" in str(err)


def test_non_numeric(tmp_path):
    target = corrupt(tmp_path, lambda ls: ls[:2] + [ls[2].replace("2.0000", "two", 1)] + ls[3:])
    err = error(tmp_path)
    assert f"{target.name}:3:" in str(err) and "non-numeric" in str(err)


def test_non_finite(tmp_path):
    target = corrupt(tmp_path, lambda ls: ls[:9] + ["nan" + ls[9][ls[9].index(","):]] + ls[10:])
    err = error(tmp_path)
    assert f"{target.name}:10:" in str(err) and "non-finite" in str(err)


def test_too_few_skeleton_lines(tmp_path):
    target = corrupt(tmp_path, lambda ls: ls[:15])
    err = error(tmp_path)
    assert err.path == str(target) and "at least 20 skeleton lines" in str(err)


def test_empty_frame_file(tmp_path):
    target = corrupt(tmp_path, lambda ls: [])
    err = error(tmp_path)
    assert err.path == str(target) and "found 0" in str(err)


def test_duplicate_joint_index(tmp_path):
    def dup(ls):
        row = ls[5].split(",")
        row[9] = "4.0000"
        return ls[:5] + [",".join(row)] + ls[6:]

    target = corrupt(tmp_path, dup)
    err = error(tmp_path)
    assert f"{target.name}:6:" in str(err) and "duplicate joint index 4" in str(err)


@pytest.mark.parametrize("value", ["20.0000", "-1.0000", "3.5000"])
def test_joint_index_out_of_range(tmp_path, value):
    def bad(ls):
        row = ls[7].split(",")
        row[9] = value
        return ls[:7] + [",".join(row)] + ls[8:]

    target = corrupt(tmp_path, bad)
    err = error(tmp_path)
    assert f"{target.name}:8:" in str(err) and "out of range" in str(err)


def test_all_frames_dropped_gives_an_empty_walk(tmp_path):
    # An empty walk is not an error of the reader: the pipeline leaves it out and counts it
    # (tests/test_short_walks.py), or refuses it with --short-walks error.
    folder = tmp_path / "Training" / "004"
    write_person(folder, 3, untracked=(0, 1, 2))
    walk = next(s for s in read_biwi_ias(tmp_path) if s.source == str(folder))
    assert walk.num_frames == 0 and walk.frames.shape == (0, 20, 3)
    assert "no frame has all 20 joints tracked" in walk.meta["empty_reason"]


def test_missing_root(tmp_path):
    err = error(tmp_path / "absent")
    assert "absent" in str(err) and "not found" in str(err)


def test_no_frame_files(tmp_path):
    (tmp_path / "Training" / "1").mkdir(parents=True)
    err = error(tmp_path)
    assert "no *_skel.txt frame files" in str(err)
