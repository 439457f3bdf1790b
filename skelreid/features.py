"""Gait encodings (CAGEs / AGEs) from context vectors (spec §2.8).

``contexts`` is ``[N, M, A, f, H]``: N windows, M encoder sets (1, or 3 for
``rev_rec_plus``), A axes, f decoding steps, H units.

- ``ap``: each window gives f rows; row t is ``[c_t^x(models...); c_t^y(...); c_t^z(...)]``
  (axis-major, then model: ``[x_rev, x_pred, x_sort, y_rev, ...]``).
- ``sc``: each window gives one row ``[vec(C^x models...); vec(C^y ...); ...]``.
"""
from __future__ import annotations

import numpy as np


def ap_rows(contexts: np.ndarray) -> np.ndarray:
    n, m, a, f, h = contexts.shape
    return np.ascontiguousarray(contexts.transpose(0, 3, 2, 1, 4)).reshape(n * f, a * m * h)


def sc_rows(contexts: np.ndarray) -> np.ndarray:
    n, m, a, f, h = contexts.shape
    return np.ascontiguousarray(contexts.transpose(0, 2, 1, 3, 4)).reshape(n, a * m * f * h)


def rows(contexts: np.ndarray, manner: str) -> np.ndarray:
    return ap_rows(contexts) if manner == "ap" else sc_rows(contexts)


def rows_per_window(manner: str, length: int) -> int:
    return length if manner == "ap" else 1


def window_vectors(contexts: np.ndarray, feature: str) -> np.ndarray:
    """One vector per window for retrieval: ``sc`` (flattened) or ``ap`` (mean over steps)."""
    if feature == "sc":
        return sc_rows(contexts)
    n, m, a, f, h = contexts.shape
    return contexts.mean(axis=3).transpose(0, 2, 1, 3).reshape(n, a * m * h)


def reference_batch_order(labels: np.ndarray, pad: bool, batch: int = 128) -> np.ndarray:
    """The windows the reference's fixed-batch feature extraction ends up with (spec §7.B).

    Per person (in label order, windows in order): fewer than ``batch`` windows are
    padded with copies of the person's first window up to ``batch`` when ``pad``
    (training features; the reference removes the copies from test features), and
    more than ``batch`` are cut to a multiple of ``batch`` (the last partial batch
    is never run). Returns window indices.
    """
    labels = np.asarray(labels)
    out = []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        if len(idx) < batch:
            if pad:
                idx = np.concatenate([idx, np.repeat(idx[:1], batch - len(idx))])
        else:
            idx = idx[: len(idx) // batch * batch]
        out.append(idx)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
