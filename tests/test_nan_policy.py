"""``--nan-policy``: the pure functions, and each reader routing non-finite values through them."""
from __future__ import annotations

import numpy as np
import pytest

from skelreid.data.nan_policy import HINT as NAN_HINT
from skelreid.data.nan_policy import NeverFinite, apply_nan_policy, drop_frames, interpolate
from skelreid.data.readers.biwi_ias import read_biwi_ias
from skelreid.data.readers.casia_b import read_casia_b
from skelreid.data.readers.generic import read_generic
from skelreid.data.readers.kgbd import read_kgbd
from skelreid.data.readers.ks20 import read_ks20
from skelreid.errors import DataError


def _walk(t: int = 6, j: int = 2) -> np.ndarray:
    base = np.arange(t, dtype=np.float32)[:, None, None]
    return np.broadcast_to(base, (t, j, 3)).copy() + np.arange(j, dtype=np.float32)[None, :, None]


def test_drop_frames_keeps_only_fully_finite_frames_in_order():
    x = _walk()
    x[1, 0, 2] = np.nan
    x[4, 1, 0] = np.inf
    out = drop_frames(x)
    assert out.shape == (4, 2, 3) and np.array_equal(out[:, 0, 0], [0, 2, 3, 5])


def test_interpolate_is_linear_per_joint_and_axis_with_nearest_edges():
    x = _walk()
    x[2:4, 0, 1] = np.nan          # inside: linear between frames 1 and 4
    x[0, 1, 0] = -np.inf           # leading edge: the first finite value (frame 1)
    x[5, 1, 2] = np.nan            # trailing edge: the last finite value (frame 4)
    out = interpolate(x)
    assert np.array_equal(out[:, 0, 1], [0, 1, 2, 3, 4, 5])
    assert out[0, 1, 0] == x[1, 1, 0] and out[5, 1, 2] == x[4, 1, 2]
    finite = np.isfinite(x)
    assert np.array_equal(out[finite], x[finite])  # finite values untouched
    assert np.isfinite(out).all()


def test_interpolate_refuses_a_joint_that_is_never_finite():
    x = _walk()
    x[:, 1, 2] = np.nan
    with pytest.raises(NeverFinite):
        interpolate(x)
    with pytest.raises(DataError, match="joint 1 z is never finite in this walk"):
        apply_nan_policy(x, "interpolate", "walk.npz")


def test_policy_errors_name_the_source():
    x = _walk()
    x[3, 1, 0] = np.nan
    with pytest.raises(DataError, match=r"^w.csv:17: non-finite coordinate nan for B x; use --nan-policy"):
        apply_nan_policy(x, "error", "w.csv", ["A", "B"], line_of=lambda t, j: 17)
    empty, info = apply_nan_policy(np.full((3, 2, 3), np.nan, np.float32), "drop-frames", "w.csv")
    assert empty.shape == (0, 2, 3) and "nothing is left after --nan-policy drop-frames" in info["empty_reason"]
    same, info = apply_nan_policy(_walk(), "interpolate", "w.csv")
    assert info == {} and np.array_equal(same, _walk())


def _kgbd_walk(path, frames: int, bad_line: int | None = None, token: str = "nan") -> None:
    from skelreid.data.layouts import KGBD_FILE_JOINTS

    lines = []
    for t in range(frames):
        for j, name in enumerate(KGBD_FILE_JOINTS):
            lines.append(f"{name};{0.01 * t:.4f};{0.1 * j:.4f};{2.0 + 0.001 * t:.4f}")
    if bad_line is not None:
        name, x, y, z = lines[bad_line - 1].split(";")
        lines[bad_line - 1] = f"{name};{x};{token};{z}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\r\n".join(lines) + "\r\n")


def test_kgbd_policies(tmp_path):
    root = tmp_path / "Data"
    _kgbd_walk(root / "Person001" / "1.txt", 5, bad_line=45, token="nan")  # frame 2, Elbow-Right y
    _kgbd_walk(root / "Person001" / "2.txt", 5)
    with pytest.raises(DataError) as err:
        read_kgbd(root, workers=1)
    assert f"{root / 'Person001' / '1.txt'}:45:" in str(err.value) and "--nan-policy" in str(err.value)
    dropped = read_kgbd(root, workers=1, nan_policy="drop-frames")
    assert dropped[0].num_frames == 4 and dropped[0].meta == {"nan_frames_dropped": 1}
    filled = read_kgbd(root, workers=1, nan_policy="interpolate")
    v1 = 9  # ElbowRight in Kinect v1 order (file joint 4: y = 0.4 in every frame)
    assert filled[0].num_frames == 5 and filled[0].frames[2, v1, 1] == pytest.approx(0.4)
    assert np.isfinite(filled[0].frames).all() and filled[0].meta == {"nan_values_interpolated": 1}
    # the parse cache keeps the raw values; the policy applies on every read
    cache = tmp_path / "cache"
    read_kgbd(root, cache_dir=cache, workers=1, nan_policy="interpolate")
    with pytest.raises(DataError, match=r"1.txt:45: non-finite coordinate nan for Elbow-Right y"):
        read_kgbd(root, cache_dir=cache, workers=1)
    assert read_kgbd(root, cache_dir=cache, workers=1, nan_policy="drop-frames")[0].num_frames == 4


def test_kgbd_number_beyond_float32_is_refused(tmp_path):
    root = tmp_path / "Data"
    _kgbd_walk(root / "Person001" / "1.txt", 3, bad_line=7, token="1e300")
    with pytest.raises(DataError, match=r"1.txt:7: coordinate '1e300' for Wrist-Right y is too large"):
        read_kgbd(root, workers=1)


def test_biwi_policies(tmp_path):
    folder = tmp_path / "Training" / "p1"
    folder.mkdir(parents=True)
    for k in range(4):
        rows = [f"0,{0.1 * k + j},{j},{2 + j},0,0,2,1,0,{j},0,0,0,1" for j in range(20)]
        if k == 1:
            rows[3] = rows[3].replace(f",{0.1 + 3},", ",nan,", 1)
        (folder / f"{k:03d}_skel.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"001_skel.txt:4: non-finite value in column 1; use --nan-policy"):
        read_biwi_ias(tmp_path)
    assert read_biwi_ias(tmp_path, nan_policy="drop-frames")[0].num_frames == 3
    seq = read_biwi_ias(tmp_path, nan_policy="interpolate")[0]
    assert seq.num_frames == 4 and seq.frames[1, 3, 0] == pytest.approx(3.1)


def test_generic_csv_and_npz_policies(tmp_path):
    rows = ["person,walk,frame,joint,x,y"]
    for f in range(4):
        for j in range(2):
            rows.append(f"p1,w1,{f},{j},{f}.0,{'inf' if (f, j) == (2, 1) else j}")
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"a.csv:7: non-finite y value 'inf'"):
        read_generic(tmp_path)
    assert read_generic(tmp_path, nan_policy="drop-frames")[0].num_frames == 3
    assert read_generic(tmp_path, nan_policy="interpolate")[0].frames[2, 1, 1] == 1.0
    (tmp_path / "a.csv").unlink()
    frames = np.zeros((3, 2, 3), np.float32)
    frames[1, 0, 0] = np.nan
    np.savez(tmp_path / "w.npz", frames=frames, person="p1")
    with pytest.raises(DataError, match=r"w.npz: non-finite value .* at frame 1, joint 0"):
        read_generic(tmp_path)
    assert read_generic(tmp_path, nan_policy="interpolate")[0].frames[1, 0, 0] == 0.0


def _ks20_with_nan(tmp_path, token: str = "nan"):
    """A 2-person KS20 fixture; frame 2 of body1's run gets ``token`` as joint 4 y (line 5)."""
    from skelreid.data.fixtures import write_fixture

    root = write_fixture("KS20", tmp_path / "ks20", persons=2, frames=6, views=[0], sequences_per_view=1)
    clean = read_ks20(root)
    files = sorted((root / "frontal").glob("*_body1_*"), key=lambda p: int(p.name.split("_")[2]))
    bad = files[2]
    lines = bad.read_text().splitlines()
    fields = lines[4].split(",")
    fields[2] = token
    lines[4] = ",".join(fields)
    bad.write_text("\n".join(lines) + "\n")
    return root, clean, bad


def test_ks20_policies(tmp_path):
    root, clean, bad = _ks20_with_nan(tmp_path)
    assert [s.person for s in clean] == ["body1", "body2"] and clean[0].num_frames == 6
    with pytest.raises(DataError) as err:
        read_ks20(root)
    msg = str(err.value)
    assert err.value.path == str(bad) and err.value.line == 5
    assert msg.startswith(f"{bad}:5: non-finite value 'nan' for joint 4 y") and NAN_HINT in msg
    with pytest.raises(DataError) as err:
        read_ks20(root, nan_policy="error")
    assert f"{bad}:5:" in str(err.value)

    dropped = read_ks20(root, nan_policy="drop-frames")
    assert [s.num_frames for s in dropped] == [5, 6]
    assert dropped[0].meta["nan_frames_dropped"] == 1 and "nan_frames_dropped" not in dropped[1].meta
    np.testing.assert_array_equal(dropped[0].frames, np.delete(clean[0].frames, 2, axis=0))
    np.testing.assert_array_equal(dropped[1].frames, clean[1].frames)

    filled = read_ks20(root, nan_policy="interpolate")
    assert [s.num_frames for s in filled] == [6, 6]
    assert all(np.isfinite(s.frames).all() for s in filled)
    assert filled[0].meta["nan_values_interpolated"] == 1
    want = (clean[0].frames[1, 4, 1] + clean[0].frames[3, 4, 1]) / 2
    assert filled[0].frames[2, 4, 1] == pytest.approx(want, abs=1e-6)
    keep = np.ones(filled[0].frames.shape, bool)
    keep[2, 4, 1] = False
    np.testing.assert_array_equal(filled[0].frames[keep], clean[0].frames[keep])
    np.testing.assert_array_equal(filled[1].frames, clean[1].frames)


@pytest.mark.parametrize("policy", ["error", "drop-frames", "interpolate"])
def test_ks20_number_beyond_float32_is_refused_under_every_policy(tmp_path, policy):
    root, _clean, bad = _ks20_with_nan(tmp_path, token="1e39")
    with pytest.raises(DataError, match=r"too large \(beyond the float32 range\)") as err:
        read_ks20(root, nan_policy=policy)
    assert f"{bad}:5:" in str(err.value)


def test_ks20_and_casia_b_refuse_an_unknown_policy(tmp_path):
    from skelreid.errors import ConfigError

    with pytest.raises(ConfigError, match="nan_policy"):
        read_ks20(tmp_path, nan_policy="zero")
    with pytest.raises(ConfigError, match="nan_policy"):
        read_casia_b(tmp_path, nan_policy="zero")


def _casia_with_nan(tmp_path, token: str = "nan"):
    """A 2-person CASIA-B fixture; subject 001's file gets ``token`` as Neck z on line 3 (frame 2)."""
    from skelreid.data.fixtures import write_fixture

    root = write_fixture("CASIA_B", tmp_path / "casia", persons=2, frames=6, views=[5], conditions=["nm-01"])
    clean = read_casia_b(root)
    bad = root / "001" / "nm-01" / "090" / "001-nm-01-090.txt"
    lines = bad.read_text().splitlines()
    fields = lines[2].split()
    fields[5] = token  # joint 1 (Neck), z
    lines[2] = " ".join(fields)
    bad.write_text("\n".join(lines) + "\n")
    return root, clean, bad


def test_casia_b_policies(tmp_path):
    root, clean, bad = _casia_with_nan(tmp_path)
    assert [s.person for s in clean] == ["001", "002"] and clean[0].num_frames == 6
    with pytest.raises(DataError) as err:
        read_casia_b(root)
    msg = str(err.value)
    assert err.value.path == str(bad) and err.value.line == 3
    assert msg.startswith(f"{bad}:3: non-finite value 'nan' for Neck z") and NAN_HINT in msg

    dropped = read_casia_b(root, nan_policy="drop-frames")
    assert [s.num_frames for s in dropped] == [5, 6]
    assert dropped[0].meta["nan_frames_dropped"] == 1 and "nan_frames_dropped" not in dropped[1].meta
    np.testing.assert_array_equal(dropped[0].frames, np.delete(clean[0].frames, 2, axis=0))
    np.testing.assert_array_equal(dropped[1].frames, clean[1].frames)

    filled = read_casia_b(root, nan_policy="interpolate")
    assert [s.num_frames for s in filled] == [6, 6]
    assert all(np.isfinite(s.frames).all() for s in filled)
    assert filled[0].meta["nan_values_interpolated"] == 1
    want = (clean[0].frames[1, 1, 2] + clean[0].frames[3, 1, 2]) / 2
    assert filled[0].frames[2, 1, 2] == pytest.approx(want, abs=1e-5)
    keep = np.ones(filled[0].frames.shape, bool)
    keep[2, 1, 2] = False
    np.testing.assert_array_equal(filled[0].frames[keep], clean[0].frames[keep])
    np.testing.assert_array_equal(filled[1].frames, clean[1].frames)


def test_casia_b_nan_everywhere_in_a_file(tmp_path):
    root, _clean, bad = _casia_with_nan(tmp_path)
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join(" ".join(["nan"] * 42) for _ in lines) + "\n")
    walks = {s.source: s for s in read_casia_b(root, nan_policy="drop-frames")}
    assert walks[str(bad)].num_frames == 0   # an empty walk: the pipeline leaves it out and counts it
    assert "nothing is left after --nan-policy drop-frames" in walks[str(bad)].meta["empty_reason"]
    with pytest.raises(DataError, match="Head x is never finite in this walk") as err:
        read_casia_b(root, nan_policy="interpolate")
    assert err.value.path == str(bad)


@pytest.mark.parametrize("policy", ["error", "drop-frames", "interpolate"])
def test_casia_b_number_beyond_float32_is_refused_under_every_policy(tmp_path, policy):
    root, _clean, bad = _casia_with_nan(tmp_path, token="-1e39")
    with pytest.raises(DataError, match=r"too large \(beyond the float32 range\)") as err:
        read_casia_b(root, nan_policy=policy)
    assert f"{bad}:3:" in str(err.value)


def test_ks20_and_casia_b_loaders_pass_the_configured_policy(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from skelreid.data import datasets

    seen = {}
    monkeypatch.setattr(datasets, "_root", lambda cfg, name: tmp_path / name)
    monkeypatch.setattr("skelreid.data.readers.ks20.read_ks20",
                        lambda root, progress=False, nan_policy="error": seen.setdefault("KS20", nan_policy))
    monkeypatch.setattr("skelreid.data.readers.casia_b.read_casia_b",
                        lambda root, progress=False, nan_policy="error": seen.setdefault("CASIA_B", nan_policy))
    cfg = SimpleNamespace(nan_policy="interpolate")
    datasets._load_ks20(cfg)
    datasets._load_casia_b(cfg)
    assert seen == {"KS20": "interpolate", "CASIA_B": "interpolate"}
