"""Property: every reader, fed malformed files, returns valid walks or raises a SkelreidError.

Never another exception, never non-finite coordinates in a result, never a hang (each example runs
under a 20 s alarm). Inputs: well-formed files mutated line by line (truncated or deleted lines, wrong
field counts, non-numeric tokens, NaN / inf, numbers beyond float32, very long lines, binary garbage,
other line endings), empty files and random bytes. Readers: KGBD, BIWI / IAS-Lab ``*_skel.txt``,
generic ``.csv`` and ``.npz``, the reference ``.npy`` layout (``ids`` pickles and axis arrays), KS20
and CASIA-B.
"""
from __future__ import annotations

import contextlib
import io
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skelreid.data.layouts import KGBD_FILE_JOINTS
from skelreid.data.readers.biwi_ias import read_biwi_ias
from skelreid.data.readers.casia_b import read_casia_b
from skelreid.data.readers.generic import read_generic
from skelreid.data.readers.kgbd import read_kgbd
from skelreid.data.readers.ks20 import read_ks20
from skelreid.data.readers.reference_npy import read_reference_layout, reference_files, write_reference_layout
from skelreid.data.windows import WindowSet
from skelreid.errors import SkelreidError

SETTINGS = settings(max_examples=int(__import__("os").environ.get("SKELREID_HYPOTHESIS_EXAMPLES", "50")), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
POLICIES = st.sampled_from(["error", "drop-frames", "interpolate"])

TOKENS = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e309", "-1e39", "3.5e38", "1e-320", "0x1p3",
          "1_0", "", " ", "abc", "+", "-", ".", "1e", "--1", "1,5", "1;5", "\x00", "\u00e9", "9" * 400, "1" * 5000]
#: Numbers at the edges of what float32 holds (finite in float64, some not in float32).
EDGE_NUMBERS = ["3.4028235e38", "3.5e38", "-1e39", "1e300", "-1e308", "1e-46", "-0.0", "65504", "1.7976931348623157e308"]


@contextlib.contextmanager
def alarm(seconds: int = 20):
    """Fail instead of hanging: SIGALRM interrupts an example that runs too long."""
    def timeout(signum, frame):
        raise TimeoutError(f"reader still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def scratch():
    path = Path(tempfile.mkdtemp(prefix="skelreid-hyp-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def check(read, validate) -> None:
    """``read()`` either gives what ``validate`` accepts or raises a SkelreidError."""
    with alarm():
        try:
            result = read()
        except SkelreidError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
    validate(result)


def valid_sequences(seqs, joints: int | None, dims: tuple[int, ...] = (3,)) -> None:
    assert seqs, "a reader returned no walk without an error"
    for s in seqs:
        assert s.frames.dtype == np.float32 and s.frames.ndim == 3 and s.frames.shape[2] in dims
        assert joints is None or s.frames.shape[1] == joints
        assert len(s.frames) > 0 and s.frames.shape[1] > 0 and np.isfinite(s.frames).all(), s.source


@st.composite
def mutated(draw, lines: list[str], sep: str) -> bytes:
    """Well-formed ``lines`` after a few random edits, or an empty file, or random bytes."""
    kind = draw(st.sampled_from(["edit"] * 6 + ["empty", "bytes"]))
    if kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"\r\n\r\n", b"   "]))
    if kind == "bytes":
        return draw(st.binary(max_size=3000))
    lines = list(lines)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["token", "token", "truncate", "delete", "extra_field", "drop_field",
                                   "garbage", "long", "blank", "duplicate", "cut_file"]))
        fields = lines[i].split(sep)
        if op == "token":
            k = draw(st.integers(0, len(fields) - 1))
            fields[k] = draw(st.one_of(st.sampled_from(TOKENS), st.sampled_from(EDGE_NUMBERS), st.text(max_size=12)))
            lines[i] = sep.join(fields)
        elif op == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, max(len(lines[i]) - 1, 0)))]
        elif op == "delete":
            del lines[i]
        elif op == "extra_field":
            lines[i] += sep + draw(st.sampled_from(TOKENS[:12]))
        elif op == "drop_field":
            lines[i] = sep.join(fields[:-1])
        elif op == "garbage":
            lines[i] = draw(st.binary(min_size=1, max_size=40)).decode("latin-1")
        elif op == "long":
            lines[i] = lines[i] + sep + "7" * draw(st.integers(1000, 20000))
        elif op == "blank":
            lines.insert(i, draw(st.sampled_from(["", " ", "\t"])))
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "cut_file":
            lines = lines[:i]
    ending = draw(st.sampled_from(["\n", "\r\n", "\r", "\n\n"]))
    text = ending.join(lines) + draw(st.sampled_from(["", ending]))
    return text.encode(draw(st.sampled_from(["utf-8", "latin-1", "utf-16"])), errors="replace")


# --------------------------------------------------------------------------- KGBD


def _kgbd_lines(frames: int = 3) -> list[str]:
    return [f"{name};{0.01 * t + 0.001 * j:.5f};{0.1 * j:.5f};{2.5 - 0.01 * t:.5f}"
            for t in range(frames) for j, name in enumerate(KGBD_FILE_JOINTS)]


@SETTINGS
@given(data=mutated(_kgbd_lines(), ";"), policy=POLICIES)
def test_kgbd(data, policy):
    with scratch() as root:
        (root / "Person001").mkdir()
        (root / "Person001" / "1.txt").write_bytes(data)
        (root / "Person001" / "2.txt").write_text("\r\n".join(_kgbd_lines(2)) + "\r\n")
        check(lambda: read_kgbd(root, workers=1, nan_policy=policy), lambda s: valid_sequences(s, 20))


# --------------------------------------------------------------------------- BIWI / IAS-Lab


def _skel_lines() -> list[str]:
    return [f"0,{0.1 * j:.3f},{0.05 * j:.3f},{2 + 0.01 * j:.3f},{100 + j},{200 + j},2,1,0,{j},0,0,0,1"
            for j in range(20)] + ["1,0,0,0,0,0,0,0,0,0,0,0,0,0"]


@SETTINGS
@given(data=mutated(_skel_lines(), ","), policy=POLICIES)
def test_biwi_ias(data, policy):
    with scratch() as root:
        person = root / "Training" / "001"
        person.mkdir(parents=True)
        (person / "000_000001_skel.txt").write_text("\n".join(_skel_lines()) + "\n")
        (person / "000_000002_skel.txt").write_bytes(data)
        check(lambda: read_biwi_ias(root, nan_policy=policy), lambda s: valid_sequences(s, 20))


# --------------------------------------------------------------------------- generic .csv / .npz


def _csv_lines() -> list[str]:
    return ["person,walk,frame,joint,x,y,z"] + [
        f"p1,w1,{f},{j},{0.1 * f:.3f},{0.2 * j:.3f},{1.5:.3f}" for f in range(3) for j in range(4)]


@SETTINGS
@given(data=mutated(_csv_lines(), ","), policy=POLICIES)
def test_generic_csv(data, policy):
    with scratch() as root:
        (root / "walks.csv").write_bytes(data)
        check(lambda: read_generic(root, nan_policy=policy), lambda s: valid_sequences(s, None, (2, 3)))


_ARRAYS = st.one_of(
    st.builds(lambda shape, fill: np.full(shape, fill),
              st.sampled_from([(3, 4, 3), (3, 4, 2), (0, 4, 3), (3, 0, 3), (4, 3), (2, 2, 2, 3), ()]),
              st.sampled_from([0.5, 1, np.nan, np.inf, 1e300, -1e39, True])),
    st.sampled_from([np.array("p1"), np.array(["a", "b"]), np.array(b"bytes"), np.array(""), np.array(3),
                     np.zeros((3, 4, 3), dtype=np.complex64), np.zeros((3, 4, 3), dtype="datetime64[s]")]),
    st.builds(lambda: np.array({"a": 1}, dtype=object)),
)


@st.composite
def npz_files(draw) -> bytes:
    names = draw(st.lists(st.sampled_from(["frames", "person", "walk", "view", "condition", "layout", "extra"]),
                          min_size=0, max_size=4, unique=True))
    arrays = {n: draw(_ARRAYS) for n in names}
    if "layout" in arrays and draw(st.booleans()):
        arrays["layout"] = np.array(draw(st.sampled_from(["kinect_v1", "coco_17", "generic_4x3", "nope"])))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = bytearray(buf.getvalue())
    for _ in range(draw(st.integers(0, 3))):  # flip bytes or cut the archive
        if draw(st.booleans()) and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        else:
            data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@SETTINGS
@given(data=st.one_of(npz_files(), st.binary(max_size=2000)), policy=POLICIES)
def test_generic_npz(data, policy):
    with scratch() as root:
        (root / "p1").mkdir()
        (root / "p1" / "w1.npz").write_bytes(data)
        check(lambda: read_generic(root, nan_policy=policy), lambda s: valid_sequences(s, None, (2, 3)))


# --------------------------------------------------------------------------- reference .npy layout


def _write_reference(root: Path) -> dict:
    rng = np.random.default_rng(0)

    def split(n: int) -> WindowSet:
        label = np.arange(n) % 2
        return WindowSet(rng.normal(size=(n, 6, 20, 3)).astype(np.float32), label, label, np.arange(n) // 2,
                         ["1", "2"], ["1/a", "2/a"])

    write_reference_layout(root, "KGBD", 6, {"train": split(4), "test": split(2)})
    return reference_files(root, "KGBD", 6)


@SETTINGS
@given(which=st.sampled_from(["ids", "source_x", "source_z"]), mode=st.sampled_from(["flip", "cut", "bytes", "npy"]),
       edits=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)), min_size=1, max_size=6),
       raw=st.binary(max_size=600), arr=_ARRAYS)
def test_reference_npy(which, mode, edits, raw, arr):
    with scratch() as root:
        files = _write_reference(root)
        path = files["train"].ids if which == "ids" else files["train"].source[which[-1]]
        data = bytearray(path.read_bytes())
        if mode == "flip":
            for pos, value in edits:
                data[pos % len(data)] = value
        elif mode == "cut":
            data = data[: edits[0][0] % len(data)]
        elif mode == "bytes":
            data = bytearray(raw)
        else:
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=True)
            data = bytearray(buf.getvalue())
        path.write_bytes(bytes(data))

        def valid(ds):
            assert ds.persons and all(np.isfinite(ws.data).all() and ws.data.shape[1:] == (6, 20, 3)
                                      for ws in ds.splits.values())

        check(lambda: read_reference_layout(root, "KGBD", 6), valid)


# --------------------------------------------------------------------------- KS20 (Kinect v2, 25 joints)


def _ks20_lines() -> list[str]:
    return [f"{j},{0.1 * j:.3f},{0.05 * j:.3f},{2 + 0.01 * j:.3f},2" for j in range(25)]


@SETTINGS
@given(data=mutated(_ks20_lines(), ","))
def test_ks20(data):
    with scratch() as root:
        view = root / "frontal"
        view.mkdir()
        (view / "gc1_body1_100_skel.txt").write_text("\n".join(_ks20_lines()) + "\n")
        (view / "gc1_body1_200_skel.txt").write_bytes(data)
        check(lambda: read_ks20(root), lambda s: valid_sequences(s, 25))


# --------------------------------------------------------------------------- CASIA-B (14 joints)


def _casia_lines(frames: int = 3) -> list[str]:
    return [" ".join(f"{0.01 * t + 0.1 * k:.4f}" for k in range(42)) for t in range(frames)]


@SETTINGS
@given(data=mutated(_casia_lines(), " "))
def test_casia_b(data):
    with scratch() as root:
        folder = root / "001" / "nm-01" / "090"
        folder.mkdir(parents=True)
        (folder / "001-nm-01-090.txt").write_bytes(data)
        check(lambda: read_casia_b(root), lambda s: valid_sequences(s, 14))


@pytest.mark.parametrize("lines, sep", [(_kgbd_lines(), ";"), (_skel_lines(), ","), (_ks20_lines(), ",")])
def test_unmutated_inputs_are_valid(lines, sep):
    """The seeds of the mutations are themselves well formed (so mutations probe real edges)."""
    assert all(len(ln.split(sep)) >= 4 for ln in lines)
