"""KGBD reader: the real dataset, the parse cache, and malformed input."""
from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skelreid.data.layouts import KGBD_FILE_JOINTS, KGBD_TO_KINECT_V1, KINECT_V1
from skelreid.data.readers import kgbd
from skelreid.data.readers.kgbd import parse_kgbd_file, read_kgbd, read_person_metadata
from skelreid.errors import DataError

REPO = Path(__file__).resolve().parents[1]
TEST_CACHE = Path(os.environ.get("SKELREID_TEST_CACHE", REPO / ".cache" / "tests"))


# ----------------------------------------------------------------------------
# helpers: small files in the KGBD format
# ----------------------------------------------------------------------------

def kgbd_lines(nframes: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(nframes):
        for name in KGBD_FILE_JOINTS:
            x, y, z = rng.normal(size=3)
            lines.append(f"{name};{x:.7g};{y:.7g};{z + 2.5:.7g}")
    return lines


def write_walk(path: Path, lines: list[str], newline: str = "\r\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


def make_tree(root: Path, walks: dict[str, int], nframes: int = 3) -> Path:
    """``walks``: {"Person001": 2, ...}; returns the Data/ folder."""
    data = root / "Data"
    seed = 0
    for person, n in walks.items():
        for k in range(1, n + 1):
            seed += 1
            write_walk(data / person / f"{k}.txt", kgbd_lines(nframes, seed))
    return data


def expected_frames(lines: list[str]) -> np.ndarray:
    vals = np.array([[float(v) for v in ln.split(";")[1:]] for ln in lines], dtype=np.float64)
    return vals.astype(np.float32).reshape(-1, 20, 3)[:, list(KGBD_TO_KINECT_V1)]


def bad_file(tmp_path: Path, lines: list[str], name: str = "3.txt") -> Path:
    data = make_tree(tmp_path, {"Person001": 2})
    write_walk(data / "Person001" / name, lines)
    return data


# ----------------------------------------------------------------------------
# the real dataset
# ----------------------------------------------------------------------------

@pytest.mark.kgbd
def test_real_counts(kgbd_sequences):
    seqs = kgbd_sequences
    assert len(seqs) == 822
    persons = Counter(s.person for s in seqs)
    assert len(persons) == 164
    assert sum(s.num_frames for s in seqs) == 491_747
    assert Counter(persons.values()) == {5: 153, 6: 7, 4: 3, 3: 1}
    assert persons["Person015"] == 3
    lengths = [s.num_frames for s in seqs]
    assert min(lengths) == 208 and max(lengths) == 1711
    assert len({s.walk_id for s in seqs}) == 822


@pytest.mark.kgbd
def test_real_records_and_order(kgbd_sequences):
    seqs = kgbd_sequences
    assert seqs[0].person == "Person001" and seqs[0].walk == "1"
    assert seqs[-1].person == "Person164"
    keys = [(int(s.person[6:]), int(s.walk)) for s in seqs]
    assert keys == sorted(keys)
    for s in seqs[:20]:
        assert s.layout == "kinect_v1"
        assert s.frames.dtype == np.float32 and s.frames.shape[1:] == (20, 3)
        assert Path(s.source).name == f"{s.walk}.txt"
        assert Path(s.source).parent.name == s.person
    assert all(np.isfinite(s.frames).all() for s in seqs)


@pytest.mark.kgbd
def test_real_first_frame_in_kinect_v1_order(kgbd_sequences, kgbd_data):
    path = kgbd_data / "Person001" / "1.txt"
    with open(path, encoding="ascii", newline="") as fh:
        first = [next(fh).rstrip("\r\n").split(";") for _ in range(20)]
    assert [f[0] for f in first] == list(KGBD_FILE_JOINTS)
    file_xyz = np.array([[float(v) for v in f[1:]] for f in first], dtype=np.float32)
    frame0 = kgbd_sequences[0].frames[0]
    assert kgbd_sequences[0].walk_id == "Person001/1"
    head = KINECT_V1.index("Head")
    assert head == 3
    np.testing.assert_array_equal(frame0[head], np.float32([-0.02845094, 0.7953885, 2.586351]))
    hip = KINECT_V1.index("HipCenter")
    assert first[11][0] == "Hip-centro"
    np.testing.assert_array_equal(frame0[hip], file_xyz[11])
    np.testing.assert_array_equal(frame0, file_xyz[list(KGBD_TO_KINECT_V1)])


@pytest.mark.kgbd
def test_real_cache_equals_fresh_parse(kgbd_sequences):
    # Person150 uses exponent notation (3.760308E-05): both parse paths agree on it.
    by_id = {s.walk_id: s for s in kgbd_sequences}
    for wid in ("Person001/1", "Person015/3", "Person150/1", "Person164/4"):
        s = by_id[wid]
        np.testing.assert_array_equal(parse_kgbd_file(s.source), s.frames)
        data = Path(s.source).read_bytes()
        fast = kgbd._parse_fast(data)
        assert fast is not None
        np.testing.assert_array_equal(fast, kgbd._parse_careful(data))


@pytest.mark.kgbd
def test_real_second_read_hits_cache(kgbd_sequences, kgbd_data, monkeypatch):
    # The fixture wrote (or loaded) this cache; a second read must not parse.
    def boom(*args, **kwargs):
        raise AssertionError("parsed although the cache is valid")

    monkeypatch.setattr(kgbd, "_parse_all", boom)
    again = read_kgbd(kgbd_data, cache_dir=TEST_CACHE / "kgbd-parsed")
    assert [s.walk_id for s in again] == [s.walk_id for s in kgbd_sequences]
    assert [s.source for s in again] == [s.source for s in kgbd_sequences]
    for a, b in zip(again[::50], kgbd_sequences[::50]):
        np.testing.assert_array_equal(a.frames, b.frames)


@pytest.mark.kgbd
def test_real_parent_folder_and_metadata(kgbd_data):
    data_root, files = kgbd.find_kgbd_files(kgbd_data.parent)
    assert data_root == kgbd_data and len(files) == 822
    meta = read_person_metadata(kgbd_data)
    assert meta == read_person_metadata(kgbd_data.parent)
    assert meta["Person001"] == {
        "Height": 1.63, "Weight (Kg)": None, "Age": None, "Gender": "F",
        "Body Mass Index": 0, "BackPack": None, "HighHeels": None,
    }
    assert meta["Person004"]["Weight (Kg)"] == 63 and meta["Person004"]["Age"] == 22
    assert all(p.startswith("Person") for p in meta)


# ----------------------------------------------------------------------------
# small trees: reading, order, cache
# ----------------------------------------------------------------------------

def test_small_tree_values_and_natural_order(tmp_path):
    data = tmp_path / "Data"
    lines = {}
    for person in ("Person2", "Person10", "Person001"):
        for walk in ("10", "2", "1"):
            lines[(person, walk)] = kgbd_lines(2, seed=len(lines))
            write_walk(data / person / f"{walk}.txt", lines[(person, walk)])
    (data / "Person001" / "notes.md").write_text("ignored")
    (data / "other").mkdir()
    seqs = read_kgbd(tmp_path, workers=1)  # the parent of Data/ is accepted
    assert [s.walk_id for s in seqs] == [
        f"{p}/{w}" for p in ("Person001", "Person2", "Person10") for w in ("1", "2", "10")
    ]
    for s in seqs:
        np.testing.assert_array_equal(s.frames, expected_frames(lines[(s.person, s.walk)]))
        assert s.layout == "kinect_v1"


def test_lf_endings_and_no_final_newline(tmp_path):
    lines = kgbd_lines(2)
    a = write_walk(tmp_path / "a.txt", lines, newline="\n")
    b = tmp_path / "b.txt"
    b.write_bytes("\r\n".join(lines).encode())
    for path in (a, b):
        np.testing.assert_array_equal(parse_kgbd_file(path), expected_frames(lines))


def test_careful_path_agrees_with_fast_path():
    data = ("\r\n".join(kgbd_lines(4)) + "\r\n").encode()
    fast = kgbd._parse_fast(data)
    assert fast is not None
    np.testing.assert_array_equal(fast, kgbd._parse_careful(data))
    # blanks around numbers are fine for both paths
    spaced = data.replace(b";", b"; ")
    np.testing.assert_array_equal(kgbd._parse_fast(spaced), fast)
    np.testing.assert_array_equal(kgbd._parse_careful(spaced), fast)
    # a blank after a joint name only the careful path accepts
    padded = data.replace(b"Head;", b"Head ;")
    assert kgbd._parse_fast(padded) is None
    np.testing.assert_array_equal(kgbd._parse_careful(padded), fast)
    # bare CR inside the file: the fast path declines
    assert kgbd._parse_fast(data.replace(b"Spine;", b"\rSpine;", 1)) is None


def test_pool_matches_serial(tmp_path):
    data = make_tree(tmp_path, {"Person001": 3, "Person002": 3}, nframes=5)
    serial = read_kgbd(data, workers=1)
    pooled = read_kgbd(data, workers=2)
    assert [s.walk_id for s in serial] == [s.walk_id for s in pooled]
    for a, b in zip(serial, pooled):
        np.testing.assert_array_equal(a.frames, b.frames)


def test_cache_hit_and_invalidation(tmp_path, monkeypatch):
    data = make_tree(tmp_path / "src", {"Person001": 2, "Person002": 1})
    cache = tmp_path / "cache"
    first = read_kgbd(data, cache_dir=cache, workers=1)
    assert len(list(cache.glob("*.npz"))) == 1
    assert not [p for p in cache.iterdir() if p.suffix == ".tmp"]

    calls = []
    real_parse_all = kgbd._parse_all

    def counting(files, *args, **kwargs):
        calls.append(len(files))
        return real_parse_all(files, *args, **kwargs)

    monkeypatch.setattr(kgbd, "_parse_all", counting)
    second = read_kgbd(data, cache_dir=cache, workers=1)
    assert calls == []
    assert [s.walk_id for s in second] == [s.walk_id for s in first]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.frames, b.frames)
        assert a.source == b.source

    # a changed file invalidates the cache
    target = data / "Person001" / "2.txt"
    new_lines = kgbd_lines(4, seed=99)
    write_walk(target, new_lines)
    st_ = target.stat()
    os.utime(target, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
    third = read_kgbd(data, cache_dir=cache, workers=1)
    assert calls == [3]
    np.testing.assert_array_equal(third[1].frames, expected_frames(new_lines))

    # an added file too
    write_walk(data / "Person002" / "2.txt", kgbd_lines(1, seed=5))
    fourth = read_kgbd(data, cache_dir=cache, workers=1)
    assert calls == [3, 4]
    assert [s.walk_id for s in fourth][-1] == "Person002/2"
    assert len(list(cache.glob("*.npz"))) == 1
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]

    # a corrupt cache is ignored and rewritten
    next(cache.glob("*.npz")).write_bytes(b"not a zip")
    fifth = read_kgbd(data, cache_dir=cache, workers=1)
    assert calls == [3, 4, 4] and len(fifth) == 4
    read_kgbd(data, cache_dir=cache, workers=1)
    assert calls == [3, 4, 4]


def test_progress_bar_on_stderr(tmp_path, capsys):
    data = make_tree(tmp_path, {"Person001": 2})
    read_kgbd(data, workers=1, progress=True)
    assert "KGBD" in capsys.readouterr().err


def test_metadata_absent_is_empty(tmp_path):
    data = make_tree(tmp_path, {"Person001": 1})
    assert read_person_metadata(data) == {}


# ----------------------------------------------------------------------------
# malformed input
# ----------------------------------------------------------------------------

def error_of(data: Path, workers: int = 1) -> DataError:
    with pytest.raises(DataError) as info:
        read_kgbd(data, workers=workers)
    return info.value


def test_truncated_line(tmp_path):
    lines = kgbd_lines(2)
    lines[24] = "Elbow-Right;0.1;0.2"
    err = error_of(bad_file(tmp_path, lines))
    assert err.line == 25 and err.path.endswith("3.txt")
    assert "3.txt:25:" in str(err) and "truncated line" in str(err)


def test_too_many_fields(tmp_path):
    lines = kgbd_lines(2)
    lines[3] += ";7"
    err = error_of(bad_file(tmp_path, lines))
    assert "3.txt:4:" in str(err) and "5" in str(err)


def test_non_numeric_value(tmp_path):
    lines = kgbd_lines(2)
    lines[30] = "Spine;0.1;abc;0.3"
    err = error_of(bad_file(tmp_path, lines))
    assert "3.txt:31:" in str(err) and "non-numeric" in str(err) and "abc" in str(err)


def test_missing_joint(tmp_path):
    lines = kgbd_lines(3)
    del lines[35]  # frame 2 loses Knee-Left: the next frame's Head shows up early
    err = error_of(bad_file(tmp_path, lines))
    assert "3.txt:" in str(err) and err.line == 36
    assert "expected joint 'Knee-Left', found 'Ankle-Right'" in str(err)
    del lines[35:39]  # now the whole tail of frame 2 is gone
    err = error_of(bad_file(tmp_path, lines))
    assert err.line == 36 and "expected joint 'Knee-Left', found 'Head'" in str(err)


def test_partial_last_frame(tmp_path):
    lines = kgbd_lines(2)[:27]
    err = error_of(bad_file(tmp_path, lines))
    assert "3.txt:27:" in str(err) and "partial frame" in str(err)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity"])
def test_non_finite(tmp_path, value):
    lines = kgbd_lines(2)
    lines[5] = f"Elbow-Left;0.1;0.2;{value}"
    err = error_of(bad_file(tmp_path, lines))
    assert "3.txt:6:" in str(err) and "non-finite coordinate" in str(err)


def test_empty_file(tmp_path):
    data = make_tree(tmp_path, {"Person001": 1})
    (data / "Person001" / "2.txt").write_bytes(b"")
    err = error_of(data)
    assert err.path.endswith("2.txt") and "empty file" in str(err)
    (data / "Person001" / "2.txt").write_bytes(b"\r\n\r\n")
    assert "empty file" in str(error_of(data))


def test_error_from_worker_process(tmp_path):
    data = make_tree(tmp_path, {"Person001": 3, "Person002": 3})
    lines = kgbd_lines(3, seed=7)
    lines[41] = "Shoulder-Center;1;2;x"
    write_walk(data / "Person002" / "2.txt", lines)
    err = error_of(data, workers=2)
    assert err.line == 42 and Path(err.path) == data / "Person002" / "2.txt"
    assert "Person002/2.txt:42: non-numeric" in str(err)


def test_empty_person_folder(tmp_path):
    data = make_tree(tmp_path, {"Person001": 1})
    (data / "Person002").mkdir()
    err = error_of(data)
    assert err.path.endswith("Person002") and "empty person folder" in str(err)


def test_missing_root(tmp_path):
    err = error_of(tmp_path / "nowhere")
    assert "nowhere" in str(err) and "folder not found" in str(err)


def test_not_kgbd_folder(tmp_path):
    (tmp_path / "something").mkdir()
    err = error_of(tmp_path)
    assert "does not look like the KGBD Data/ folder" in str(err)


def test_parse_file_missing(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        parse_kgbd_file(tmp_path / "1.txt")


# ----------------------------------------------------------------------------
# property: garbage in -> DataError out
# ----------------------------------------------------------------------------

_FAST = settings(max_examples=50, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


def _read_single(content: bytes) -> list:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Data" / "Person001" / "1.txt"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        return read_kgbd(Path(tmp) / "Data", workers=1)


@_FAST
@given(st.binary(max_size=2000))
def test_random_bytes_raise_data_error(content):
    with pytest.raises(DataError):
        _read_single(content)


_VALID = kgbd_lines(3, seed=3)


@_FAST
@given(
    position=st.integers(0, len(_VALID) - 1),
    garbage=st.one_of(
        st.binary(max_size=60),
        st.text(alphabet="Head;-0123456789.eEnaif\r\t ,", max_size=40).map(str.encode),
    ),
    replace=st.booleans(),
)
def test_garbage_line_raises_data_error(position, garbage, replace):
    lines = [ln.encode() for ln in _VALID]
    if replace:
        lines[position] = garbage
    else:
        lines.insert(position, garbage)
    content = b"\r\n".join(lines) + b"\r\n"
    try:
        seqs = _read_single(content)
    except DataError:
        return
    # Only a line the careful parser accepts as the same joint can get through.
    assert replace, "an inserted line must break the 20-line frame structure"
    name, *xyz = garbage.strip().split(b";")
    assert name.strip() == _VALID[position].split(";")[0].encode()
    row = KGBD_TO_KINECT_V1.index(position % 20)
    np.testing.assert_array_equal(seqs[0].frames[position // 20, row], np.float32([float(v) for v in xyz]))
