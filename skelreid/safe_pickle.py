"""Reading pickled ``{person: [row, ...]}`` dicts without running their code.

The reference preprocessing stores its person index (``ids_<D>_<f>.npy``) as a
Python dict saved with ``np.save``: an ``.npy`` header followed by a pickle of a
0-d object array. ``np.load(..., allow_pickle=True)`` would run whatever the
pickle asks for, so a downloaded file could execute arbitrary code.

This module reads such files safely:

* the ``.npy`` header is parsed with :mod:`numpy.lib.format` (no unpickling);
* the pickle is first scanned opcode by opcode (:func:`pickletools.genops`,
  which executes nothing): opcodes that call code through other channels
  (persistent ids, the extension registry, ``INST``/``OBJ``/``NEWOBJ``,
  out-of-band buffers) and out-of-range memo indices are refused;
* it is then unpickled by an unpickler whose ``find_class`` only knows the few
  names such a file uses (numpy's ``_reconstruct``, ``scalar``, ``ndarray`` and
  ``dtype``, and ``_codecs.encode`` in protocol-2 pickles) and resolves them
  to small checked stand-ins, never to numpy's own functions: these rebuild
  only plain integer, string and object values, so no file data reaches
  numpy's unpickling code;
* the result is checked: a dict with integer or string keys whose values are
  lists (or 1-D integer arrays) of non-negative integers. Numpy scalars become
  Python ints and strs.
"""
from __future__ import annotations

import io
import pickle
import pickletools
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.lib.format as npy_format

from .errors import DataError

__all__ = ["restricted_loads", "load_pickled_npy"]

_STRUCTURE_HINT = "only dicts of integer lists are accepted"

# --------------------------------------------------------------------------
# Stand-ins for the numpy callables a pickled object array refers to. The
# unpickler never calls numpy's own ``_reconstruct``, ``dtype`` or
# ``ndarray.__setstate__`` on file data (crafted states can crash numpy): these
# small classes check the arguments and rebuild only plain integer, string
# and object values. They have no ``__dict__``, and ``__setstate__`` refuses
# anything but the one expected state, so the ``BUILD`` opcode cannot alter them.

_SIMPLE_DTYPE = re.compile(r"^([Oiub])(\d+)$|^U(\d*)$")
_BYTE_ORDERS = ("<", ">", "|", "=")


class _Refused(pickle.UnpicklingError):
    """Raised by the stand-ins; reported as a refused structure."""


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):  # Python 2 byte strings, decoded as latin-1
        return data.encode("latin-1")
    raise _Refused(f"expected bytes, got {type(data).__name__}")


class _Frozen:
    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise _Refused(f"{type(self).__name__} takes no state")


class _NdarrayToken(_Frozen):
    """What ``numpy.ndarray`` resolves to: only a marker for ``_reconstruct``."""

    __slots__ = ()


_NDARRAY = _NdarrayToken()


class _DtypeStub:
    """``numpy.dtype(spec, align, copy)`` followed by ``BUILD(state)``."""

    __slots__ = ("spec", "kind", "itemsize", "order", "_ready")

    def __init__(self, spec: Any, align: Any = False, copy: Any = False):
        spec = spec.decode("latin-1") if isinstance(spec, bytes) else spec
        if not isinstance(spec, str):
            raise _Refused("dtype spec is not a string")
        m = _SIMPLE_DTYPE.match(spec)
        if m is None:
            raise _Refused(f"dtype {spec!r} is not a plain integer, string or object type")
        self.spec = spec
        self.kind = m.group(1) or "U"
        self.itemsize = int(m.group(2)) if m.group(2) else 0
        self.order = "|"
        self._ready = False

    def __setstate__(self, state: Any) -> None:
        if self._ready or not isinstance(state, tuple) or len(state) not in (8, 9):
            raise _Refused("unexpected dtype state")
        version, order, subarray, names, fields, elsize = state[:6]
        if version not in (3, 4) or order not in _BYTE_ORDERS or (subarray, names, fields) != (None, None, None):
            raise _Refused("only plain dtypes are accepted")
        if len(state) == 9 and state[8] is not None:
            raise _Refused("dtype metadata is not accepted")
        if self.kind == "U":
            if not isinstance(elsize, int) or elsize <= 0 or elsize % 4 or elsize > 1 << 16:
                raise _Refused("bad string dtype size")
            self.itemsize = elsize
        self.order = order
        self._ready = True

    def numpy(self) -> np.dtype:
        if self.kind == "O":
            return np.dtype(object)
        if self.kind == "U":
            return np.dtype(f"{self.order}U{self.itemsize // 4}")
        if self.itemsize not in (1, 2, 4, 8) or (self.kind == "b" and self.itemsize != 1):
            raise _Refused(f"unsupported dtype {self.spec!r}")
        return np.dtype(f"{self.order}{self.kind}{self.itemsize}")


class _DtypeFactory(_Frozen):
    __slots__ = ()

    def __call__(self, spec: Any, align: Any = False, copy: Any = False) -> _DtypeStub:
        return _DtypeStub(spec, align, copy)


class _ArrayStub:
    """``_reconstruct(ndarray, (0,), b"b")`` followed by ``BUILD(state)``.

    Object arrays keep their items as a list; integer arrays become a real
    (1-D or n-D) numpy array built with :func:`numpy.frombuffer`.
    """

    __slots__ = ("shape", "dtype", "items", "array")

    def __init__(self) -> None:
        self.shape: tuple[int, ...] | None = None
        self.dtype: _DtypeStub | None = None
        self.items: list | None = None
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if self.shape is not None or not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Refused("unexpected array state")
        if len(state) == 5:
            if state[0] != 1:
                raise _Refused("unexpected array state version")
            state = state[1:]
        shape, dtype, fortran, raw = state
        if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape) or len(shape) > 32:
            raise _Refused("bad array shape")
        if not isinstance(dtype, _DtypeStub) or not dtype._ready:
            raise _Refused("bad array dtype")
        count = 1
        for n in shape:
            count *= n
        if dtype.kind == "O":
            if not isinstance(raw, list) or len(raw) != count:
                raise _Refused("object array items do not match its shape")
            self.items = list(raw)
        else:
            np_dtype = dtype.numpy()
            raw = _as_bytes(raw)
            if len(raw) != count * np_dtype.itemsize:
                raise _Refused("array data does not match its shape")
            flat = np.frombuffer(raw, dtype=np_dtype).copy()
            self.array = flat.reshape(shape, order="F" if fortran else "C")
        self.shape, self.dtype = shape, dtype


class _ReconstructFactory(_Frozen):
    __slots__ = ()

    def __call__(self, cls: Any, shape: Any = None, typecode: Any = None) -> _ArrayStub:
        if cls is not _NDARRAY:
            raise _Refused("_reconstruct only rebuilds plain arrays")
        return _ArrayStub()


class _ScalarFactory(_Frozen):
    """``scalar(dtype, data)``: integers and strings become Python values."""

    __slots__ = ()

    def __call__(self, dtype: Any, data: Any = None) -> Any:
        if not isinstance(dtype, _DtypeStub) or not dtype._ready:
            raise _Refused("bad scalar dtype")
        if dtype.kind == "O":
            return data
        np_dtype = dtype.numpy()
        raw = _as_bytes(data)
        if len(raw) != np_dtype.itemsize:
            raise _Refused("scalar data does not match its dtype")
        value = np.frombuffer(raw, dtype=np_dtype)[0]
        if dtype.kind == "b":
            return bool(value)
        return str(value) if dtype.kind == "U" else int(value)


class _Latin1Encode(_Frozen):
    """Stand-in for ``_codecs.encode``: protocol-2 pickles written by Python 3
    spell byte strings as ``_codecs.encode(text, "latin1")``. Only that use is
    served; no codec is looked up."""

    __slots__ = ()

    def __call__(self, text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
        if (not isinstance(text, str) or not isinstance(encoding, str)
                or encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1")):
            raise _Refused("only latin-1 byte strings can be decoded")
        return text.encode("latin-1")


_MULTIARRAY_MODULES = (
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core._multiarray_umath",
    "numpy._core._multiarray_umath",
)

_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DtypeFactory(),
    ("_codecs", "encode"): _Latin1Encode(),
}
for _mod in _MULTIARRAY_MODULES:
    _ALLOWED[(_mod, "_reconstruct")] = _ReconstructFactory()
    _ALLOWED[(_mod, "scalar")] = _ScalarFactory()
del _mod

# Opcodes that reach code without going through ``find_class`` or that a dict of
# integer lists never needs.
_FORBIDDEN_OPCODES = frozenset({
    "PERSID", "BINPERSID",             # persistent_load hook
    "EXT1", "EXT2", "EXT4",            # copyreg extension registry
    "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX",
    "BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER",
})
_MEMO_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, source: str):
        # latin1 lets pickles written by Python 2 numpy decode their byte strings.
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                self._source, f"refused to load: the file asks for {module}.{name}, which could run code"
            ) from None

    def persistent_load(self, pid: Any) -> Any:  # pragma: no cover - refused by the opcode scan
        raise DataError(self._source, "refused to load: the file uses persistent ids, which could run code")


def _scan_opcodes(data: bytes, source: str) -> None:
    """Walk the opcodes without executing them; refuse unsafe ones."""
    limit = len(data)
    try:
        for opcode, arg, _pos in pickletools.genops(io.BytesIO(data)):
            if opcode.name in _FORBIDDEN_OPCODES:
                raise DataError(
                    source, f"refused to load: the file uses the pickle opcode {opcode.name}, which could run code"
                )
            # A memo index can never exceed the number of opcodes; a huge one
            # would only make the unpickler allocate a huge memo table.
            if opcode.name in _MEMO_PUT and not (0 <= int(arg) <= limit):
                raise DataError(source, f"not a valid pickle: memo index {arg} out of range")
    except DataError:
        raise
    except Exception as exc:  # malformed or truncated opcode stream
        raise DataError(source, f"not a valid pickle: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _refuse(source: str, detail: str) -> DataError:
    return DataError(source, f"refused: {detail}; {_STRUCTURE_HINT}")


def _as_key(key: Any, source: str) -> int | str:
    # Numpy scalars arrive as Python ints / strs / bools (see _ScalarFactory).
    if type(key) in (int, str):
        return key
    raise _refuse(source, f"key {key!r} has type {type(key).__name__}")


def _as_rows(key: int | str, value: Any, source: str) -> list[int]:
    if isinstance(value, _ArrayStub):
        if value.array is None or value.array.ndim != 1 or value.array.dtype.kind not in "iu":
            what = f"{value.dtype.spec} array of shape {value.shape}" if value.dtype else "array"
            raise _refuse(source, f"person {key!r} maps to a {what}")
        items = value.array.tolist()
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise _refuse(source, f"person {key!r} maps to a {type(value).__name__}")
    rows: list[int] = []
    for item in items:
        if type(item) is not int:
            raise _refuse(source, f"person {key!r} lists {item!r} of type {type(item).__name__}")
        if item < 0:
            raise _refuse(source, f"person {key!r} lists the negative row index {item}")
        rows.append(item)
    return rows


def _validate(obj: Any, source: str) -> dict[int | str, list[int]]:
    if isinstance(obj, _ArrayStub):
        if obj.items is None or len(obj.items) != 1:
            what = f"{obj.dtype.spec} array of shape {obj.shape}" if obj.dtype else "array"
            raise _refuse(source, f"the payload is a {what}")
        obj = obj.items[0]
    if not isinstance(obj, dict):
        raise _refuse(source, f"the payload is a {type(obj).__name__}")
    out: dict[int | str, list[int]] = {}
    for key, value in obj.items():
        k = _as_key(key, source)
        if k in out:
            raise _refuse(source, f"key {k!r} appears twice")
        out[k] = _as_rows(k, value, source)
    return out


def restricted_loads(data: bytes, source: str | Path = "<bytes>") -> dict[int | str, list[int]]:
    """Unpickle ``data`` (a pickled dict, or a 0-d object array holding one).

    Returns ``{person_key: [row, ...]}`` with Python ``int``/``str`` keys and
    ``int`` rows. Raises :class:`DataError` naming ``source`` for anything else:
    forbidden globals or opcodes, a malformed pickle, or another structure.
    """
    source = str(source)
    data = bytes(data)
    _scan_opcodes(data, source)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), source).load()
    except DataError:
        raise
    except _Refused as exc:
        raise _refuse(source, str(exc)) from None
    except RecursionError:
        raise DataError(source, "not a valid pickle: nested too deeply") from None
    except MemoryError:
        raise DataError(source, "not a valid pickle: it asks for too much memory") from None
    except Exception as exc:  # truncated data, bad arguments to the allowed callables, ...
        raise DataError(source, f"not a valid pickle: {_describe(exc)}") from None
    return _validate(obj, source)


def _read_header(fh: io.BufferedReader, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = npy_format.read_magic(fh)
        if version == (1, 0):
            shape, _fortran, dtype = npy_format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _fortran, dtype = npy_format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except Exception as exc:
        raise DataError(path, f"not a valid .npy file: {_describe(exc)}") from None
    return tuple(shape), dtype


def load_pickled_npy(path: str | Path) -> dict[int | str, list[int]]:
    """Read a dict saved with ``np.save(path, {person: [rows]})``, safely.

    The ``.npy`` header must describe an object array with one element; its
    pickle payload goes through :func:`restricted_loads`.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            shape, dtype = _read_header(fh, path)
            payload = fh.read()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder, not a .npy file") from None
    if dtype != np.dtype(object):
        raise _refuse(str(path), f"the array has dtype {dtype}, not object")
    if int(np.prod(shape, dtype=np.int64)) != 1:
        raise _refuse(str(path), f"the object array has shape {shape}, not a single dict")
    return restricted_loads(payload, source=path)
