"""The restricted unpickler for reference ``ids`` files."""
from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skelreid.errors import DataError
from skelreid.safe_pickle import load_pickled_npy, restricted_loads


def _npy_bytes(obj) -> bytes:
    buf = io.BytesIO()
    np.save(buf, obj, allow_pickle=True)
    return buf.getvalue()


def _header_and_payload(obj) -> tuple[bytes, bytes]:
    data = _npy_bytes(obj)
    buf = io.BytesIO(data)
    np.lib.format.read_magic(buf)
    np.lib.format.read_array_header_1_0(buf)
    cut = buf.tell()
    return data[:cut], data[cut:]


# --------------------------------------------------------------------------- accepted files


@pytest.mark.parametrize(
    "ids, expected",
    [
        ({1: [0, 1, 2], 2: [3, 4], 3: []}, {1: [0, 1, 2], 2: [3, 4], 3: []}),
        ({"a": [0], "b": [1, 2]}, {"a": [0], "b": [1, 2]}),
        ({np.int64(7): [np.int64(0), np.int64(5)], np.int64(2): [1]}, {7: [0, 5], 2: [1]}),
        ({np.str_("p1"): np.array([3, 1], dtype=np.int64)}, {"p1": [3, 1]}),
        ({0: (4, 5)}, {0: [4, 5]}),
        ({}, {}),
    ],
)
def test_np_saved_dict_round_trips(tmp_path, ids, expected):
    path = tmp_path / "ids.npy"
    np.save(path, ids, allow_pickle=True)
    got = load_pickled_npy(path)
    assert got == expected
    assert all(type(k) in (int, str) for k in got)
    assert all(type(v) is list and all(type(i) is int for i in v) for v in got.values())


def test_large_dict_round_trips(tmp_path):
    ids = {k: list(range(k * 300, k * 300 + 300)) for k in range(120)}
    path = tmp_path / "ids.npy"
    np.save(path, ids, allow_pickle=True)
    assert load_pickled_npy(path) == ids


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("module", ["numpy.core.multiarray", "numpy._core.multiarray"])
def test_pickles_from_numpy_1_and_2_are_accepted(protocol, module):
    arr = np.empty((), dtype=object)
    arr[()] = {3: [np.int64(0), 1], 5: [2]}
    data = pickle.dumps(arr, protocol=protocol)
    if data[2:3] == b"\x95":  # drop the (optional) FRAME opcode: its length changes below
        data = data[:2] + data[11:]
    # Rewrite the module path to what the other numpy major version writes.
    for old in (b"numpy._core.multiarray", b"numpy.core.multiarray"):
        if old in data and old.decode() != module:
            if protocol < 4:  # GLOBAL opcode: newline-terminated text
                data = data.replace(old + b"\n", module.encode() + b"\n")
            else:  # SHORT_BINUNICODE: one length byte before the text
                data = data.replace(bytes([len(old)]) + old, bytes([len(module)]) + module.encode())
    assert module.encode() in data
    assert restricted_loads(data) == {3: [0, 1], 5: [2]}


def test_plain_pickled_dict_is_accepted():
    assert restricted_loads(pickle.dumps({1: [2, 3]}, protocol=2)) == {1: [2, 3]}


# --------------------------------------------------------------------------- malicious files


class _Evil:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _attacks(marker):
    cmd = f"touch {marker}"
    return [
        ("system", _Evil(os.system, (cmd,))),
        ("eval", _Evil(builtins.eval, (f"open({str(marker)!r}, 'w').write('x')",))),
        ("exec", _Evil(builtins.exec, (f"open({str(marker)!r}, 'w').write('x')",))),
        ("Popen", _Evil(subprocess.Popen, (["touch", str(marker)],))),
        ("__import__", _Evil(builtins.__import__, ("os",))),
        ("load", _Evil(np.load, (str(marker),))),
    ]


@pytest.mark.parametrize("index", range(6))
def test_malicious_npy_is_refused_and_does_not_run(tmp_path, index):
    marker = tmp_path / "pwned"
    name, evil = _attacks(marker)[index]
    path = tmp_path / "ids.npy"
    with open(path, "wb") as fh:
        np.save(fh, {1: [0], 2: evil}, allow_pickle=True)
    with pytest.raises(DataError, match="which could run code") as err:
        load_pickled_npy(path)
    assert name in str(err.value)
    assert str(path) in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("index", range(6))
def test_malicious_raw_pickle_is_refused(tmp_path, protocol, index):
    marker = tmp_path / "pwned"
    _name, evil = _attacks(marker)[index]
    data = pickle.dumps(evil, protocol=protocol)
    with pytest.raises(DataError, match="refused to load"):
        restricted_loads(data, source="evil.pkl")
    assert not marker.exists()


@pytest.mark.parametrize(
    "data",
    [
        b"(S'touch /tmp/x'\nios\nsystem\n.",  # INST
        b"\x80\x02cos\nsystem\nq\x00.",  # GLOBAL
        b"\x80\x02P0\n.",  # PERSID
        b"\x80\x02\x82\x01.",  # EXT1
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x04eval\x93.",  # STACK_GLOBAL
    ],
)
def test_code_reaching_opcodes_are_refused(data):
    with pytest.raises(DataError, match="refused to load"):
        restricted_loads(data)


def test_other_numpy_callables_are_refused():
    data = b"\x80\x02cnumpy\nload\nq\x00X\x03\x00\x00\x00a.bq\x01\x85q\x02Rq\x03."
    with pytest.raises(DataError, match="numpy.load, which could run code"):
        restricted_loads(data)


def test_huge_memo_index_is_refused_without_allocating():
    data = b"\x80\x02]r\xff\xff\xff\x7f."  # EMPTY_LIST, LONG_BINPUT 2**31-1
    with pytest.raises(DataError, match="memo index"):
        restricted_loads(data)


# --------------------------------------------------------------------------- wrong structure


@pytest.mark.parametrize(
    "obj",
    [
        {1: 5},
        {1: "abc"},
        {1: {2: 3}},
        {1: [1.5]},
        {1: [-1]},
        {1: [True]},
        {1: [[0]]},
        {1: None},
        {1.5: [0]},
        {True: [0]},
        {(1, 2): [0]},
        {1: np.zeros((2, 2), dtype=np.int64)},
        {1: np.zeros(3, dtype=np.float64)},
        [1, 2, 3],
        "text",
        5,
    ],
)
def test_other_structures_are_refused(tmp_path, obj):
    path = tmp_path / "ids.npy"
    arr = np.empty((), dtype=object)
    arr[()] = obj
    np.save(path, arr, allow_pickle=True)
    with pytest.raises(DataError, match="only dicts of integer lists are accepted") as err:
        load_pickled_npy(path)
    assert str(path) in str(err.value)


def test_non_object_npy_is_refused(tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, np.arange(4))
    with pytest.raises(DataError, match="dtype int64, not object"):
        load_pickled_npy(path)


def test_object_array_with_many_elements_is_refused(tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, np.array([{1: [0]}, {2: [1]}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a single dict"):
        load_pickled_npy(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_pickled_npy(tmp_path / "nope.npy")


def test_not_an_npy_file(tmp_path):
    path = tmp_path / "ids.npy"
    path.write_bytes(b"hello world, not numpy")
    with pytest.raises(DataError, match="not a valid .npy file"):
        load_pickled_npy(path)


def test_truncated_file_is_refused(tmp_path):
    data = _npy_bytes({k: list(range(k, k + 10)) for k in range(5)})
    path = tmp_path / "ids.npy"
    for cut in [3, 10, 64, 128, 129, 140, len(data) // 2, len(data) - 1]:
        path.write_bytes(data[:cut])
        with pytest.raises(DataError):
            load_pickled_npy(path)


# --------------------------------------------------------------------------- fuzzing

_HEADER, _PAYLOAD = _header_and_payload({1: [0, 1], 2: [2, 3]})


def _load_or_data_error(path, payload):
    path.write_bytes(_HEADER + payload)
    try:
        result = load_pickled_npy(path)
    except DataError:
        return None
    assert isinstance(result, dict)
    return result


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300))
def test_random_bytes_after_valid_header_give_data_error(tmp_path, payload):
    _load_or_data_error(tmp_path / "ids.npy", payload)


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.integers(0, len(_PAYLOAD) - 1), st.integers(0, 255)), min_size=1, max_size=4)
)
def test_mutated_valid_payload_gives_data_error_or_a_dict(tmp_path, edits):
    payload = bytearray(_PAYLOAD)
    for pos, value in edits:
        payload[pos] = value
    _load_or_data_error(tmp_path / "ids.npy", bytes(payload))
