"""Reader for the Kinect Gait Biometry Dataset (KGBD).

Raw layout (the authors' release, folder ``Data/``)::

    Data/Person001/1.txt
    Data/Person001/2.txt
    ...
    Data/Person164/5.txt

One text file per walk. Every line is one joint, ``JointName;x;y;z`` (camera
coordinates in metres, CRLF line endings in the release); 20 consecutive lines
make one Kinect v1 frame, in the file order
:data:`skelreid.data.layouts.KGBD_FILE_JOINTS` (every frame starts with
``Head``). :func:`read_kgbd` returns the frames in the Kinect SDK v1 order
(layout ``kinect_v1``), using :data:`skelreid.data.layouts.KGBD_TO_KINECT_V1`.

Parsing is fast (a vectorised check of the whole file, then numpy's C parser for
the numbers, over a process pool); a file the fast path does not accept is
parsed again line by line, which reports the first problem as a
:class:`~skelreid.errors.DataError` naming the file and the 1-based line.

With ``cache_dir`` the parsed arrays are kept in one ``.npz`` keyed by a
fingerprint (relative path, size and modification time of every input file,
plus :data:`READER_VERSION`), so a second read of unchanged files is a single
array load.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...io import load_npz, read_input_bytes, save_npz
from ..layouts import KGBD_FILE_JOINTS, KGBD_TO_KINECT_V1, KINECT_V1
from ..nan_policy import HINT as NAN_HINT
from ..nan_policy import F32_MAX, apply_nan_policy, check_policy
from ..records import Sequence, natural_key

__all__ = ["read_kgbd", "read_person_metadata", "find_kgbd_files", "parse_kgbd_file", "READER_VERSION"]

#: Bumped whenever the parsed output would change; part of the cache fingerprint.
READER_VERSION = 1

_NJ = len(KGBD_FILE_JOINTS)
_PERSON_RE = re.compile(r"^Person\d+$")
_TO_V1 = np.asarray(KGBD_TO_KINECT_V1, dtype=np.intp)
_EXP_LEN = np.array([len(n) for n in KGBD_FILE_JOINTS], dtype=np.intp)
_EXP_BYTES = np.frombuffer("".join(KGBD_FILE_JOINTS).encode("ascii"), dtype=np.uint8)
_WITHIN = np.concatenate([np.arange(n, dtype=np.intp) for n in _EXP_LEN])
_AXES = ("x", "y", "z")


class _FileProblem(Exception):
    """Raised inside a (possibly worker) parse; turned into a DataError by the caller."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message, line)
        self.message = message
        self.line = line


# ----------------------------------------------------------------------------
# Locating files
# ----------------------------------------------------------------------------

def _resolve_data_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        if root.exists():
            raise DataError(root, "not a folder: expected the KGBD Data/ folder")
        raise DataError(root, "folder not found")
    if not _person_dirs(root) and (root / "Data").is_dir():
        root = root / "Data"
    return root


def _person_dirs(root: Path) -> list[Path]:
    try:
        entries = list(root.iterdir())
    except OSError as exc:
        raise DataError(root, f"cannot list folder: {exc.strerror or exc}") from None
    return [p for p in entries if p.is_dir() and _PERSON_RE.match(p.name)]


def find_kgbd_files(root: str | Path) -> tuple[Path, list[tuple[str, str, Path]]]:
    """Locate every walk file: ``(data_root, [(person, walk, path), ...])`` in natural order.

    ``root`` is the ``Data/`` folder or the folder containing it.
    """
    data_root = _resolve_data_root(root)
    persons = sorted(_person_dirs(data_root), key=lambda p: natural_key(p.name))
    if not persons:
        raise DataError(
            data_root,
            "does not look like the KGBD Data/ folder: no PersonNNN subfolders found",
        )
    out: list[tuple[str, str, Path]] = []
    for pdir in persons:
        walks = sorted(
            (f for f in pdir.iterdir() if f.is_file() and f.suffix.lower() == ".txt"),
            key=lambda f: natural_key(f.stem),
        )
        if not walks:
            raise DataError(pdir, "empty person folder: no walk files (*.txt)")
        out.extend((pdir.name, f.stem, f) for f in walks)
    return data_root, out


# ----------------------------------------------------------------------------
# Parsing one file
# ----------------------------------------------------------------------------

def _parse_fast(data: bytes, allow_nonfinite: bool = False) -> np.ndarray | None:
    """Vectorised parse of a well-formed file; ``None`` when anything looks off.

    Only accepts what the careful parser would accept too: exactly 3 ``;`` per
    line, the exact joint-name cycle, numbers numpy parses, all finite (unless
    ``allow_nonfinite``).
    """
    if not data:
        return None
    if not data.endswith(b"\n"):
        data += b"\n"
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    nlines = nl.size
    if nlines == 0 or nlines % _NJ:
        return None
    # Carriage returns are only allowed as part of CRLF line endings.
    ncr = int(np.count_nonzero(buf == 13))
    if ncr and (ncr != nlines or not bool((buf[nl - 1] == 13).all())):
        return None
    sc = np.flatnonzero(buf == 59)
    if sc.size != 3 * nlines:
        return None
    line_of = np.searchsorted(nl, sc).reshape(nlines, 3)
    if not bool((line_of == np.arange(nlines)[:, None]).all()):
        return None
    nframes = nlines // _NJ
    starts = np.empty(nlines, dtype=np.intp)
    starts[0] = 0
    starts[1:] = nl[:-1] + 1
    lengths = sc[0::3] - starts
    if not np.array_equal(lengths, np.tile(_EXP_LEN, nframes)):
        return None
    idx = np.repeat(starts, lengths)
    idx += np.tile(_WITHIN, nframes)
    if not np.array_equal(buf[idx], np.tile(_EXP_BYTES, nframes)):
        return None
    try:
        vals = np.loadtxt(
            io.BytesIO(data), delimiter=";", usecols=(1, 2, 3), comments=None,
            dtype=np.float64, ndmin=2,
        )
    except (ValueError, UnicodeError):
        return None
    if vals.shape != (nlines, 3):
        return None
    with np.errstate(over="ignore"):
        vals32 = vals.astype(np.float32)
    finite = np.isfinite(vals32)
    if not bool(finite.all()):
        # numbers beyond the float32 range became inf: the careful parser names them
        if not allow_nonfinite or bool((np.isfinite(vals) & ~finite).any()):
            return None
    return vals32.reshape(nframes, _NJ, 3)


def _show(raw: bytes, limit: int = 40) -> str:
    text = raw.decode("utf-8", errors="replace")
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def _parse_careful(data: bytes, allow_nonfinite: bool = False) -> np.ndarray:
    """Line-by-line parse; raises :class:`_FileProblem` at the first problem.

    NaN and inf coordinates are a problem unless ``allow_nonfinite`` (then the
    run's ``nan_policy`` deals with them, see :mod:`skelreid.data.nan_policy`).
    """
    lines = data.split(b"\n")
    # Trailing blank lines (a final newline, stray CRLFs) are not content.
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise _FileProblem("empty file: no joint lines")
    values = np.empty((len(lines), 3), dtype=np.float64)
    for i, raw in enumerate(lines):
        lineno = i + 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        fields = raw.split(b";")
        if len(fields) < 4:
            raise _FileProblem(
                f"truncated line: expected 'JointName;x;y;z', found {len(fields)} field(s)", lineno
            )
        if len(fields) > 4:
            raise _FileProblem(
                f"expected 4 fields 'JointName;x;y;z', found {len(fields)}", lineno
            )
        expected = KGBD_FILE_JOINTS[i % _NJ]
        name = fields[0].strip()
        if name != expected.encode("ascii"):
            raise _FileProblem(f"expected joint {expected!r}, found {_show(name)}", lineno)
        for k in range(3):
            field = fields[k + 1]
            try:
                if b"_" in field:  # float() takes "1_0"; a coordinate never has one
                    raise ValueError(field)
                v = float(field)
            except ValueError:
                raise _FileProblem(
                    f"non-numeric value {_show(field)} for {expected} {_AXES[k]}", lineno
                ) from None
            if not math.isfinite(v) and not allow_nonfinite:
                raise _FileProblem(
                    f"non-finite coordinate {_show(field.strip())} for {expected} {_AXES[k]}; {NAN_HINT}", lineno
                )
            if math.isfinite(v) and abs(v) > F32_MAX:
                raise _FileProblem(
                    f"coordinate {_show(field.strip())} for {expected} {_AXES[k]} is too large "
                    "(beyond the float32 range)", lineno
                )
            values[i, k] = v
    if len(lines) % _NJ:
        start = len(lines) - len(lines) % _NJ + 1
        raise _FileProblem(
            f"file ends in a partial frame: the last frame (from line {start}) has "
            f"{len(lines) % _NJ} of {_NJ} joints",
            len(lines),
        )
    return values.astype(np.float32).reshape(len(lines) // _NJ, _NJ, 3)


def _parse_bytes(data: bytes, allow_nonfinite: bool = False) -> np.ndarray:
    frames = _parse_fast(data, allow_nonfinite)
    if frames is None:
        frames = _parse_careful(data, allow_nonfinite)
    return np.ascontiguousarray(frames[:, _TO_V1])


def parse_kgbd_file(path: str | Path, allow_nonfinite: bool = False) -> np.ndarray:
    """Parse one KGBD walk file into ``[T, 20, 3]`` float32 frames in Kinect v1 order.

    Non-finite coordinates are refused (file and line) unless ``allow_nonfinite``.
    """
    path = Path(path)
    data = read_input_bytes(path)
    try:
        return _parse_bytes(data, allow_nonfinite)
    except _FileProblem as exc:
        raise DataError(path, exc.message, line=exc.line) from None


def _worker(path_str: str, allow_nonfinite: bool = False):
    """Pool entry point: returns frames, or ``(message, line)`` for a bad file."""
    try:
        data = Path(path_str).read_bytes()
    except OSError as exc:
        return (f"cannot read file: {exc.strerror or exc}", None)
    try:
        return _parse_bytes(data, allow_nonfinite)
    except _FileProblem as exc:
        return (exc.message, exc.line)


# ----------------------------------------------------------------------------
# Cache
# ----------------------------------------------------------------------------

def _fingerprint(data_root: Path, files: list[tuple[str, str, Path]]) -> str:
    h = hashlib.sha256()
    h.update(f"skelreid-kgbd-reader-v{READER_VERSION}\n".encode())
    for _person, _walk, path in files:
        st = path.stat()
        rel = path.relative_to(data_root).as_posix()
        h.update(json.dumps([rel, st.st_size, st.st_mtime_ns]).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def _cache_path(cache_dir: Path, data_root: Path) -> Path:
    key = hashlib.sha256(str(data_root.resolve()).encode("utf-8")).hexdigest()[:16]
    return cache_dir / f"kgbd-{key}.npz"


def _load_cache(path: Path, fingerprint: str, data_root: Path) -> list[Sequence] | None:
    if not path.is_file():
        return None
    try:
        z = load_npz(path)
        if str(z["fingerprint"]) != fingerprint or int(z["version"]) != READER_VERSION:
            return None
        frames, offsets = z["frames"], z["offsets"]
        persons, walks, rels = z["persons"], z["walks"], z["relpaths"]
    except (DataError, KeyError, ValueError, OSError):
        return None  # unreadable or foreign cache: parse again and overwrite it
    if offsets.shape != (len(persons) + 1,) or frames.ndim != 3:
        return None
    out = []
    for i in range(len(persons)):
        out.append(Sequence(
            person=str(persons[i]), walk=str(walks[i]),
            frames=frames[offsets[i]:offsets[i + 1]], layout=KINECT_V1.name,
            source=str(data_root / str(rels[i])),
        ))
    return out


def _write_cache(path: Path, fingerprint: str, data_root: Path,
                 files: list[tuple[str, str, Path]], arrays: list[np.ndarray]) -> None:
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([a.shape[0] for a in arrays])
    save_npz(
        path,
        version=np.array(READER_VERSION, dtype=np.int64),
        fingerprint=np.array(fingerprint),
        frames=np.concatenate(arrays, axis=0) if arrays else np.zeros((0, _NJ, 3), np.float32),
        offsets=offsets,
        persons=np.array([p for p, _, _ in files], dtype=str),
        walks=np.array([w for _, w, _ in files], dtype=str),
        relpaths=np.array([f.relative_to(data_root).as_posix() for _, _, f in files], dtype=str),
    )


# ----------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------

def _in_child_process() -> bool:
    """True inside a multiprocessing child: parse serially, never nest pools.

    (With the spawn/forkserver start methods a script without an
    ``if __name__ == "__main__":`` guard re-runs in every worker; this keeps
    that from starting pools recursively.)
    """
    import multiprocessing as mp

    return mp.parent_process() is not None


def _parse_all(files: list[Path], workers: int, progress: bool, allow_nonfinite: bool = False) -> list[np.ndarray]:
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="file", desc="KGBD", leave=False)
    results: list = []
    try:
        if workers <= 1 or len(files) < 4 or _in_child_process():
            for f in files:
                results.append(_worker(str(f), allow_nonfinite))
                if isinstance(results[-1], tuple):
                    break
                if bar is not None:
                    bar.update(1)
        else:
            import multiprocessing as mp

            # The platform's default start method (fork on Linux before Python
            # 3.14): workers need nothing but this module and numpy.
            ctx = mp.get_context()
            chunk = max(1, min(8, len(files) // (workers * 8)))
            # Every result is consumed and the pool is closed and joined, never terminated: leaving
            # imap early and terminating a pool whose task feeder is still busy can deadlock in
            # multiprocessing (seen under CPU load when a file is malformed). Workers return problems
            # as values, never raise, so the loop always completes.
            pool = ctx.Pool(processes=min(workers, len(files)))
            try:
                work = functools.partial(_worker, allow_nonfinite=allow_nonfinite)
                for res in pool.imap(work, [str(f) for f in files], chunksize=chunk):
                    results.append(res)
                    if bar is not None:
                        bar.update(1)
                pool.close()
            except BaseException:
                pool.terminate()   # Ctrl-C or an unexpected error: no clean shutdown is possible
                raise
            finally:
                pool.join()
            first_problem = next((i for i, r in enumerate(results) if isinstance(r, tuple)), None)
            if first_problem is not None:
                results = results[: first_problem + 1]
    finally:
        if bar is not None:
            bar.close()
    if results and isinstance(results[-1], tuple):
        message, line = results[-1]
        raise DataError(files[len(results) - 1], message, line=line)
    return results


def read_kgbd(root: str | Path, cache_dir: str | Path | None = None,
              workers: int | None = None, progress: bool = False, nan_policy: str = "error") -> list[Sequence]:
    """Read every walk of the KGBD ``Data/`` folder (or of the folder containing it).

    Returns one :class:`Sequence` per file, ``person="Person001"``, ``walk="1"``,
    frames ``[T, 20, 3]`` float32 in Kinect v1 order (layout ``kinect_v1``),
    sorted by person then walk (natural order). ``workers`` processes parse the
    files (default: all CPUs). With ``cache_dir`` the parsed arrays are cached
    and reused while no input file changes. ``progress`` shows a bar on stderr.
    ``nan_policy`` decides what non-finite coordinates do (see
    :mod:`skelreid.data.nan_policy`); the cache keeps the values as parsed.
    """
    check_policy(nan_policy)
    data_root, files = find_kgbd_files(root)
    cache_file = fingerprint = None
    if cache_dir is not None:
        fingerprint = _fingerprint(data_root, files)
        cache_file = _cache_path(Path(cache_dir), data_root)
        cached = _load_cache(cache_file, fingerprint, data_root)
        if cached is not None:
            return _apply_policy(cached, nan_policy)
    if workers is None:
        workers = os.cpu_count() or 1
    arrays = _parse_all([f for _, _, f in files], int(workers), progress, allow_nonfinite=nan_policy != "error")
    if cache_file is not None:
        try:
            _write_cache(cache_file, fingerprint, data_root, files, arrays)
        except OSError as exc:
            raise DataError(cache_file, f"cannot write the parse cache: {exc.strerror or exc}") from None
    return _apply_policy([
        Sequence(person=p, walk=w, frames=a, layout=KINECT_V1.name, source=str(f))
        for (p, w, f), a in zip(files, arrays)
    ], nan_policy)


def _line_of(t: int, j: int) -> int:
    """1-based line of frame ``t``, Kinect v1 joint ``j`` in a KGBD file."""
    return t * _NJ + int(_TO_V1[j]) + 1


def _apply_policy(seqs: list[Sequence], nan_policy: str) -> list[Sequence]:
    file_names = [KGBD_FILE_JOINTS[i] for i in _TO_V1]
    for s in seqs:
        if np.isfinite(s.frames).all():
            continue
        s.frames, info = apply_nan_policy(s.frames, nan_policy, s.source, file_names, _line_of)
        s.meta.update(info)
    return seqs


def _cell(text: str):
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_person_metadata(root: str | Path) -> dict[str, dict]:
    """Per-person data from ``GenderBMIData/person-data.csv``, or ``{}`` if absent.

    ``root`` is the KGBD ``Data/`` folder or the folder containing it. Keys are
    the ``Individual`` names (``"Person001"``); values map the other column
    names (``Height``, ``Weight (Kg)``, ``Age``, ``Gender``, ``Body Mass Index``,
    ``BackPack``, ``HighHeels``) to numbers or strings, empty cells to ``None``.
    """
    root = Path(root)
    candidates = [root / "GenderBMIData" / "person-data.csv",
                  root.parent / "GenderBMIData" / "person-data.csv"]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror or exc}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or header[0].strip() != "Individual":
        raise DataError(path, "expected a header starting with 'Individual'", line=1)
    header = [h.strip() for h in header]
    out: dict[str, dict] = {}
    for row in reader:
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataError(path, f"expected {len(header)} columns, found {len(row)}", line=reader.line_num)
        name = row[0].strip()
        out[name] = {h: _cell(c) for h, c in zip(header[1:], row[1:])}
    return out
