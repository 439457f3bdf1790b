"""Gallery files: the enrolled walks of known persons, for ``skelreid identify``.

A gallery is one ``.npz`` file (written atomically, read with ``allow_pickle=False``) of:

* ``embeddings`` ``[G, F]`` float32: the walk features of the enrolled walks (the feature the
  probe/gallery protocol uses, see :mod:`skelreid.inference`);
* ``labels``, ``walks``, ``sources`` ``[G]`` unicode: identity, walk id and source file of each row;
* ``meta``: a 0-d unicode array holding a JSON object: ``format``, the model ``fingerprint``
  (:func:`skelreid.inference.model_fingerprint`), the model's run folder and feature, and the
  ``calibration`` (threshold, FAR, genuine-accept rate, pair counts) once calibrated;
* ``checksum``: a 0-d unicode array, the SHA-256 over every other array (name, dtype, shape,
  bytes) and the ``meta`` text. A file whose checksum does not match is refused.

The same walk (same walk id and same source file) is enrolled once: :meth:`Gallery.extend` skips
the walks already there. The rest of this module is small pure functions: identity ranking
(:func:`rank_identities`) and threshold calibration (:func:`calibrate_threshold`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError

FORMAT = "skelreid-gallery/1"
#: The row arrays of a gallery file, in checksum order.
ARRAYS = ("embeddings", "labels", "walks", "sources")
UNKNOWN = "unknown"


def _strings(values, n: int | None = None, what: str = "values") -> np.ndarray:
    out = np.array([str(v) for v in values], dtype=str)
    if out.ndim != 1:
        raise ValueError(f"{what} must be a 1-D list of strings")
    if n is not None and len(out) != n:
        raise ValueError(f"{what}: expected {n} values, got {len(out)}")
    return out


def checksum(arrays: dict[str, np.ndarray], meta_text: str) -> str:
    """SHA-256 over the row arrays (name, dtype, shape, bytes) and the metadata text."""
    h = hashlib.sha256(FORMAT.encode("utf-8"))
    for name in ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\n{name}|{a.dtype.str}|{list(a.shape)}\n".encode("utf-8"))
        h.update(a.tobytes())
    h.update(b"\nmeta\n" + meta_text.encode("utf-8"))
    return h.hexdigest()


@dataclass
class Gallery:
    """Enrolled walks: ``embeddings [G, F]`` with ``labels``, ``walks`` and ``sources`` per row.

    ``fingerprint`` names the model that made the embeddings; ``model`` describes it (run folder,
    feature); ``calibration`` is ``None`` or what :func:`calibrate_threshold` returned.
    """

    embeddings: np.ndarray
    labels: np.ndarray
    walks: np.ndarray
    sources: np.ndarray
    fingerprint: str
    model: dict = field(default_factory=dict)
    calibration: dict | None = None

    def __post_init__(self) -> None:
        emb = np.ascontiguousarray(self.embeddings, dtype=np.float32)
        if emb.ndim != 2:
            raise ValueError(f"gallery embeddings must be [G, F], got shape {emb.shape}")
        self.embeddings = emb
        n = len(emb)
        self.labels = _strings(self.labels, n, "labels")
        self.walks = _strings(self.walks, n, "walks")
        self.sources = _strings(self.sources, n, "sources")

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def identities(self) -> list[str]:
        """The distinct labels, in gallery order."""
        return list(dict.fromkeys(self.labels.tolist()))

    @property
    def threshold(self) -> float | None:
        """The calibrated distance threshold, or ``None``."""
        return None if not self.calibration else float(self.calibration["threshold"])

    def describe(self) -> str:
        return f"{len(self)} walk(s) of {len(self.identities)} person(s)"

    # ------------------------------------------------------------------ file format
    def _meta_text(self) -> str:
        meta = {"format": FORMAT, "fingerprint": self.fingerprint, "model": self.model,
                "calibration": self.calibration, "walks": len(self), "dim": int(self.embeddings.shape[1])}
        return json.dumps(meta, sort_keys=True)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the file (the checksum included)."""
        rows = {"embeddings": self.embeddings, "labels": self.labels, "walks": self.walks, "sources": self.sources}
        text = self._meta_text()
        return {**rows, "meta": np.array(text, dtype=str), "checksum": np.array(checksum(rows, text), dtype=str)}

    def save(self, path: str | Path) -> Path:
        """Write the gallery to ``path`` atomically (a temporary file renamed into place)."""
        from .io import atomic_write

        path = Path(path)
        with atomic_write(path, "wb") as fh:
            np.savez(fh, **self.arrays())
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Gallery":
        """Read and verify a gallery file; anything wrong is a one-line :class:`DataError` naming it."""
        from .io import load_npz

        path = Path(path)
        arrays = load_npz(path)  # allow_pickle=False: object arrays are refused
        missing = [k for k in (*ARRAYS, "meta", "checksum") if k not in arrays]
        if missing:
            raise DataError(path, f"not a skelreid gallery file (no {', '.join(missing)} array)")
        meta_text, stored = _scalar_text(path, arrays, "meta"), _scalar_text(path, arrays, "checksum")
        for name in ARRAYS[1:]:
            if arrays[name].dtype.kind != "U" or arrays[name].ndim != 1:
                raise DataError(path, f"array {name!r} must be a 1-D unicode array, got {arrays[name].dtype} "
                                      f"with shape {arrays[name].shape}")
        emb = arrays["embeddings"]
        if emb.dtype != np.float32 or emb.ndim != 2:
            raise DataError(path, f"array 'embeddings' must be [G, F] float32, got {emb.dtype} with shape {emb.shape}")
        if checksum(arrays, meta_text) != stored:
            raise DataError(path, "checksum mismatch: the gallery file was changed or damaged; enrol the walks again")
        try:
            meta = json.loads(meta_text)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"invalid gallery metadata: {exc.msg}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or "fingerprint" not in meta:
            raise DataError(path, f"not a {FORMAT} gallery file")
        if any(len(arrays[k]) != len(emb) for k in ARRAYS):
            raise DataError(path, "the gallery's arrays have different lengths")
        return cls(emb, arrays["labels"], arrays["walks"], arrays["sources"], str(meta["fingerprint"]),
                   dict(meta.get("model") or {}), meta.get("calibration"))

    # ------------------------------------------------------------------ operations
    def extend(self, embeddings, labels, walks, sources) -> tuple["Gallery", int, int]:
        """This gallery plus the given walks, except those already in it (same walk id and source).

        Returns ``(gallery, added, skipped)``; a walk given twice is added once.
        """
        new = Gallery(embeddings, labels, walks, sources, self.fingerprint)
        if len(new) and len(self) and new.embeddings.shape[1] != self.embeddings.shape[1]:
            raise ConfigError(f"the new embeddings have {new.embeddings.shape[1]} values, the gallery's "
                              f"{self.embeddings.shape[1]}")
        keep = new_walks(self.walks, self.sources, new.walks, new.sources)
        added = int(keep.sum())
        if not added:
            return self, 0, len(new)
        merged = replace(self, embeddings=np.concatenate([self.embeddings, new.embeddings[keep]])
                         if len(self) else new.embeddings[keep],
                         labels=np.concatenate([self.labels, new.labels[keep]]),
                         walks=np.concatenate([self.walks, new.walks[keep]]),
                         sources=np.concatenate([self.sources, new.sources[keep]]))
        return merged, added, len(new) - added

    def calibrated(self, calibration: dict | None) -> "Gallery":
        """This gallery with ``calibration`` (from :func:`calibrate_threshold`) stored."""
        return replace(self, calibration=None if calibration is None else dict(calibration))

    def check_model(self, fingerprint: str, path: str | Path, run: str | Path) -> None:
        """Refuse a gallery made with another model."""
        if self.fingerprint != fingerprint:
            raise ConfigError(f"{Path(path).name} was enrolled with another model (fingerprint "
                              f"{self.fingerprint[:12]}... vs {fingerprint[:12]}... of {run}); "
                              "enrol again with this model")


def _scalar_text(path: Path, arrays: dict, key: str) -> str:
    a = arrays[key]
    if a.ndim != 0 or a.dtype.kind != "U":
        raise DataError(path, f"array {key!r} must be a 0-d unicode string, got {a.dtype} with shape {a.shape}")
    return str(a.item())


def new_walks(have_walks, have_sources, walks, sources) -> np.ndarray:
    """Mask of the walks not yet in ``(have_walks, have_sources)`` (first copy of a repeated one)."""
    seen = set(zip(np.asarray(have_walks).tolist(), np.asarray(have_sources).tolist()))
    keep = np.zeros(len(walks), dtype=bool)
    for i, key in enumerate(zip(np.asarray(walks).tolist(), np.asarray(sources).tolist())):
        if key not in seen:
            seen.add(key)
            keep[i] = True
    return keep


def rank_identities(dist: np.ndarray, labels: np.ndarray, top_k: int | None = 5,
                    keep: np.ndarray | None = None) -> list[tuple[str, float]]:
    """The identities of a gallery ranked by their nearest walk's distance ``dist [G]``.

    Each identity's distance is that of its nearest gallery walk; ties go to the identity whose
    nearest walk comes first in the gallery (the stable order of the probe/gallery evaluation).
    ``keep`` (bool ``[G]``) leaves gallery walks out (e.g. the probe's own walk).
    """
    dist = np.asarray(dist, dtype=np.float64)
    labels = np.asarray(labels)
    cand = np.arange(len(dist)) if keep is None else np.flatnonzero(keep)
    if not len(cand):
        return []
    names, codes = np.unique(labels[cand], return_inverse=True)
    codes = codes.reshape(-1)
    d = dist[cand]
    best = np.full(len(names), np.inf)
    np.minimum.at(best, codes, d)
    first = np.full(len(names), len(dist), dtype=np.int64)
    at_best = d == best[codes]
    np.minimum.at(first, codes[at_best], cand[at_best])
    order = np.lexsort((first, best))
    if top_k is not None:
        order = order[: max(int(top_k), 0)]
    return [(str(names[i]), float(best[i])) for i in order]


def decide(ranks: list[tuple[str, float]], threshold: float | None) -> str:
    """The nearest identity, or ``"unknown"`` when there is none or it is farther than ``threshold``."""
    if not ranks:
        return UNKNOWN
    name, d = ranks[0]
    return UNKNOWN if threshold is not None and d > threshold else name


def accepted_count(far: float, pairs: int) -> int:
    """The most impostor pairs ``k`` that may be accepted with ``k / pairs <= far``."""
    k = min(max(int(np.floor(far * pairs)), 0), pairs)
    while k < pairs and (k + 1) / pairs <= far:
        k += 1
    while k > 0 and k / pairs > far:
        k -= 1
    return k


def calibrate_threshold(features, labels, far: float) -> dict:
    """The largest distance threshold whose false-accept rate on impostor pairs is at most ``far``.

    Every pair of different walks is genuine (same label) or impostor; a pair is accepted when its
    distance is ``<= threshold``. With the impostor distances sorted, ``k`` of them may be accepted,
    so the threshold is the largest float below the ``(k+1)``-th smallest (every impostor distance
    when ``far >= 1``). Returns the threshold, the requested ``far``, the false- and genuine-accept
    rates at it and the pair counts.
    """
    from .evaluation.retrieval import pairwise_euclidean

    far = float(far)
    if not 0.0 <= far <= 1.0:
        raise ConfigError(f"--far {far}: the false-accept rate must be between 0 and 1")
    x = np.asarray(features)
    labels = np.asarray([str(v) for v in labels])
    if len(x) != len(labels):
        raise ValueError(f"{len(x)} features but {len(labels)} labels")
    dist = pairwise_euclidean(x, x)
    i, j = np.triu_indices(len(x), 1)
    d = dist[i, j]
    same = labels[i] == labels[j]
    genuine, impostor = d[same], np.sort(d[~same], kind="stable")
    if not len(impostor):
        raise ConfigError("calibration needs labelled walks of at least two persons (no impostor pairs)")
    k = accepted_count(far, len(impostor))
    threshold = float(impostor[-1]) if k >= len(impostor) else float(np.nextafter(impostor[k], -np.inf))
    false_accepts = int((impostor <= threshold).sum())
    out = {"threshold": threshold, "far": far, "false_accept_rate": false_accepts / len(impostor),
           "genuine_accept_rate": float((genuine <= threshold).mean()) if len(genuine) else None,
           "genuine_pairs": int(len(genuine)), "impostor_pairs": int(len(impostor)),
           "walks": int(len(x)), "persons": int(len(set(labels.tolist())))}
    return out
