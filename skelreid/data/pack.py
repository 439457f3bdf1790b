"""A compact, self-contained copy of a parsed dataset: ``skelreid pack`` writes it, every command reads it.

Why: the machine a GPU check runs on has no ``../shared`` and takes at most 64 MiB of files; KGBD's
archive is 98 MB and its parsed float32 frames 118 MB. A pack of KGBD is about 23 MB.

Format (``*.skpack``): an xz (LZMA) stream holding one ``.npz`` (read with ``allow_pickle=False``:
nothing in it can execute code) with

* ``header``: JSON (0-d unicode array): ``format`` (``skelreid-pack/1``), ``dataset``, ``quantum`` (the
  coordinate step, in the data's own unit), ``dtype`` of the deltas, counts, the SHA-256 of the
  arrays below, and the ``reader`` that parsed the original files;
* ``first`` ``[W, J, D]`` int32: every walk's first frame, in quanta;
* ``delta`` ``[F, J, D]`` int16 (int32 when a step does not fit): frame-to-frame differences in quanta
  (0 for each walk's first frame), which is what makes the data compress (KGBD: 1 mm quanta, deltas of
  a few millimetres per frame at 30 Hz);
* ``offsets`` ``[W + 1]`` int64 and string arrays ``person``, ``walk``, ``view``, ``condition``,
  ``layout``, ``source`` (the original file, relative to the packed root).

Coordinates are rounded to the quantum (KGBD: 1 mm, below the Kinect v1's depth noise of several
millimetres at 2-4 m); what that changes on a real run is measured in ``docs/performance.md``. Reading
restores ``first + cumsum(delta) * quantum`` exactly (integer arithmetic, then one float multiply).
"""
from __future__ import annotations

import hashlib
import io
import json
import lzma
from pathlib import Path

import numpy as np

from ..errors import DataError
from .records import Sequence

FORMAT = "skelreid-pack/1"
SUFFIX = ".skpack"
MAX_BYTES = 4 << 30   # refuse to inflate more than 4 GiB (a damaged or hostile file)


def is_pack(path: str | Path | None) -> bool:
    return path is not None and str(path).endswith(SUFFIX) and Path(path).is_file()


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def pack_arrays(sequences: list[Sequence], quantum: float, root: str | Path | None = None) -> dict:
    """The arrays of a pack (see the module documentation); ``root`` makes ``source`` relative."""
    if not sequences:
        raise DataError(root or "dataset", "nothing to pack: no walks")
    if not quantum > 0:
        raise DataError(root or "dataset", f"the quantum must be positive, got {quantum}")
    bad = next((s for s in sequences if not np.isfinite(s.frames).all()), None)
    if bad is not None:
        raise DataError(bad.source or bad.walk_id, "non-finite coordinates cannot be packed: pack with "
                        "--nan-policy drop-frames or interpolate")
    shapes = {s.frames.shape[1:] for s in sequences}
    if len(shapes) > 1:
        raise DataError(root or "dataset", f"walks have different joint layouts: {sorted(shapes)}")
    q = [np.round(s.frames.astype(np.float64) / quantum) for s in sequences]
    biggest = max(float(np.abs(a).max()) if len(a) else 0.0 for a in q)
    if biggest >= 2 ** 31:
        raise DataError(root or "dataset", f"coordinates reach {biggest * quantum:g}: too large for quanta of "
                        f"{quantum:g} (use a larger --quantum)")
    first = np.stack([a[0] if len(a) else np.zeros(a.shape[1:]) for a in q]).astype(np.int32)
    steps = [np.diff(a, axis=0, prepend=a[:1]) if len(a) else a for a in q]
    delta = np.concatenate(steps).astype(np.int64)
    dtype = np.int16 if (len(delta) == 0 or np.abs(delta).max() < 2 ** 15) else np.int32
    offsets = np.zeros(len(sequences) + 1, np.int64)
    offsets[1:] = np.cumsum([len(a) for a in q])
    base = Path(root).resolve() if root is not None else None

    def rel(src: str) -> str:
        if base is None or not src:
            return src
        try:
            return Path(src).resolve().relative_to(base).as_posix()
        except (ValueError, OSError):
            return src

    return {
        "first": first, "delta": delta.astype(dtype), "offsets": offsets,
        "person": np.array([s.person for s in sequences], dtype=str),
        "walk": np.array([s.walk for s in sequences], dtype=str),
        "view": np.array(["" if s.view is None else str(s.view) for s in sequences], dtype=str),
        "condition": np.array(["" if s.condition is None else str(s.condition) for s in sequences], dtype=str),
        "layout": np.array([s.layout for s in sequences], dtype=str),
        "source": np.array([rel(s.source) for s in sequences], dtype=str),
    }


def write_pack(sequences: list[Sequence], path: str | Path, dataset: str, quantum: float = 1e-3,
               root: str | Path | None = None, reader: str = "", preset: int = 6) -> dict:
    """Write ``sequences`` to ``path`` (atomically); returns the header."""
    from ..io import write_bytes

    arrays = pack_arrays(sequences, quantum, root)
    header = {"format": FORMAT, "dataset": dataset, "quantum": float(quantum),
              "dtype": arrays["delta"].dtype.name, "walks": len(sequences), "frames": int(arrays["offsets"][-1]),
              "joints": int(arrays["first"].shape[1]), "dims": int(arrays["first"].shape[2]),
              "reader": reader, "sha256": _digest(arrays)}
    buf = io.BytesIO()
    np.savez(buf, header=np.array(json.dumps(header, sort_keys=True)), **arrays)
    write_bytes(Path(path), lzma.compress(buf.getvalue(), preset=preset))
    return header


def read_pack(path: str | Path, dataset: str | None = None) -> tuple[dict, list[Sequence]]:
    """The header and walks of a pack; every problem is a one-line :class:`DataError` naming the file.
    ``dataset`` (when given) must be the pack's dataset."""
    path = Path(path)
    try:
        raw = lzma.LZMADecompressor().decompress(path.read_bytes(), max_length=MAX_BYTES)
    except (OSError, lzma.LZMAError, EOFError) as exc:
        raise DataError(path, f"not a readable skelreid pack (xz): {exc}") from None
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        header = json.loads(str(arrays.pop("header")))
    except Exception as exc:  # zip, npz or JSON problems of a damaged file
        raise DataError(path, f"not a readable skelreid pack: {type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DataError(path, f"not a skelreid pack (format {header.get('format') if isinstance(header, dict) else '?'}"
                        f", expected {FORMAT})")
    if _digest(arrays) != header.get("sha256"):
        raise DataError(path, "checksum mismatch: the pack is damaged or was changed")
    if dataset is not None and str(header.get("dataset", "")).lower() != str(dataset).lower():
        raise DataError(path, f"this pack holds {header.get('dataset')}, not {dataset}: use --dataset "
                        f"{header.get('dataset')}")
    quantum = float(header["quantum"])
    first, delta, offsets = arrays["first"].astype(np.int64), arrays["delta"].astype(np.int64), arrays["offsets"]
    root = path.parent
    seqs = []
    for i in range(len(offsets) - 1):
        a, b = int(offsets[i]), int(offsets[i + 1])
        q = np.cumsum(delta[a:b], axis=0) + first[i] if b > a else delta[a:b]
        src = str(arrays["source"][i])
        seqs.append(Sequence(
            person=str(arrays["person"][i]), walk=str(arrays["walk"][i]),
            frames=(q * quantum).astype(np.float32), layout=str(arrays["layout"][i]),
            view=str(arrays["view"][i]) or None, condition=str(arrays["condition"][i]) or None,
            source=f"{path}:{src}" if src else str(path), meta={"packed": True},
        ))
    return header, seqs
