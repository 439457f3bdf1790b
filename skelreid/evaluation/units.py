"""Probe/gallery scoring units: per subsequence (the literature's protocol) and per walk.

Every skeleton re-ID paper since SimMC (IJCAI 2022) scores probe/gallery
retrieval **per subsequence**, as the authors' code does (SPC-MGR
``Preprocess.py``, identical in SimMC, Hi-MPC and MoCos; TranSG/MoCos
``evaluation()`` / ``mean_ap()``; SUCCESSORS_SPEC.md §1.1 and §5):

* each walk loses ``clip`` = 10 frames at each end and is cut into
  non-overlapping windows of f frames (f = 6), the remainder dropped
  (:func:`subsequences`);
* every probe window is ranked against every gallery window by Euclidean
  distance (:func:`euclidean_distances`, :func:`ranking`);
* Rank-k counts **every** probe window: a probe without any correct match in
  the gallery is a miss (:func:`rank_k`);
* AP per query is scikit-learn's ``average_precision_score(matches, -dist)``
  over the whole gallery, and the mean skips queries without a positive, as
  TranSG's ``mean_ap`` does (:func:`average_precisions`).

The **per walk** unit scores the mean of a walk's window features instead
(:func:`walk_means`), with the same rules. It answers "which enrolled person is
this walk?", a useful practical question, but it is not the published task;
its figures are higher because averaging ~100 windows removes most of the
per-window noise.

All functions are pure (numpy in, numpy / plain Python out). Ties in distance
are broken by gallery index (stable sort) for Rank-k; AP treats tied scores as
one threshold, as scikit-learn does.
"""
from __future__ import annotations

import numpy as np

from ..errors import SkelreidError

__all__ = [
    "UNITS",
    "SEQUENCE_FEATURE",
    "UNIT_LABELS",
    "subsequences",
    "euclidean_distances",
    "ranking",
    "rank_k",
    "sklearn_average_precisions",
    "average_precisions",
    "walk_means",
    "score_unit",
    "unit_features",
    "pair_units",
]

#: The two probe/gallery units, in report order.
UNITS: tuple[str, ...] = ("sequence", "walk")
#: Window feature of the per-subsequence unit unless configured: ``ap`` (the mean of a window's context
#: vectors over its f steps) scored higher than ``sc`` on KGBD over 3 seeded splits (docs/results/kgbd.md).
SEQUENCE_FEATURE = "ap"
UNIT_LABELS = {
    "sequence": "per subsequence (the literature's protocol)",
    "walk": "per walk (mean of windows)",
}


def subsequences(frames, length: int = 6, clip: int = 10) -> np.ndarray:
    """The f-frame subsequences of one walk ``[T, ...]``: ``clip`` frames dropped at each end, then
    consecutive non-overlapping windows of ``length`` frames, the remainder dropped (``[n, length, ...]``).
    A walk shorter than ``2 * clip + length`` frames gives no subsequence (``n = 0``)."""
    x = np.asarray(frames)
    if length < 1 or clip < 0:
        raise ValueError(f"length must be >= 1 and clip >= 0, got {length} and {clip}")
    kept = x[clip: len(x) - clip] if clip else x
    if len(kept) <= 0:
        return x[:0].reshape(0, length, *x.shape[1:])
    n = len(kept) // length
    return kept[: n * length].reshape(n, length, *x.shape[1:])


def euclidean_distances(a, b) -> np.ndarray:
    """``[P, G]`` Euclidean distances, ``sqrt(max(|a|^2 + |b|^2 - 2ab, 1e-12))`` in float64, the
    authors' formula (``clamp(1e-12).sqrt()``)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected [P, D] and [G, D] features, got {a.shape} and {b.shape}")
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 1e-12))


def ranking(dist) -> np.ndarray:
    """Gallery indices of each probe row, nearest first (stable: ties keep gallery order)."""
    return np.argsort(np.asarray(dist, dtype=np.float64), axis=1, kind="stable")


def _matches(dist, probe_ids, gallery_ids, excluded=None):
    dist = np.asarray(dist, dtype=np.float64)
    if excluded is not None:
        dist = np.where(excluded, np.inf, dist)
    order = ranking(dist)
    matches = np.asarray(gallery_ids)[order] == np.asarray(probe_ids)[:, None]
    if excluded is not None:
        matches &= ~np.take_along_axis(np.asarray(excluded, bool), order, axis=1)
    return dist, order, matches


def rank_k(dist, probe_ids, gallery_ids, ks=(1, 5, 10), excluded=None) -> dict[int, float]:
    """Rank-k hit rates over **all** probes (a probe without a correct match is a miss).

    ``excluded [P, G]`` (optional, bool) removes gallery items from a probe's ranking."""
    _, _, matches = _matches(dist, probe_ids, gallery_ids, excluded)
    return {int(k): float(matches[:, : int(k)].any(axis=1).mean()) for k in ks}


def sklearn_average_precisions(dist, probe_ids, gallery_ids, excluded=None) -> np.ndarray:
    """AP per probe with scikit-learn's ``average_precision_score(matches, -dist)`` over the
    (non-excluded) gallery, as TranSG's ``mean_ap``; NaN for a probe without a positive."""
    from sklearn.metrics import average_precision_score

    dist = np.asarray(dist, dtype=np.float64)
    gallery_ids = np.asarray(gallery_ids)
    out = np.full(len(dist), np.nan)
    for i, pid in enumerate(np.asarray(probe_ids)):
        keep = np.ones(dist.shape[1], bool) if excluded is None else ~np.asarray(excluded[i], bool)
        y = gallery_ids[keep] == pid
        if y.any():
            out[i] = average_precision_score(y, -dist[i, keep])
    return out


def average_precisions(dist, probe_ids, gallery_ids, excluded=None) -> np.ndarray:
    """The same values as :func:`sklearn_average_precisions`, vectorised over probes.

    scikit-learn's AP is ``sum_n (R_n - R_{n-1}) P_n`` over distinct score thresholds: every
    correct match contributes the precision at the end of its group of tied distances, divided by
    the number of correct matches. Excluded items go last with distance +inf and never match, so
    they change no precision at a correct match. NaN for a probe without a positive."""
    dist, order, matches = _matches(dist, probe_ids, gallery_ids, excluded)
    return _ap_sorted(np.take_along_axis(dist, order, axis=1), matches)


def _ap_sorted(d_sorted: np.ndarray, matches: np.ndarray) -> np.ndarray:
    """:func:`average_precisions` from distances sorted per row and the matches in that order."""
    g = d_sorted.shape[1]
    ends = np.ones_like(matches)
    ends[:, :-1] = d_sorted[:, :-1] != d_sorted[:, 1:]          # last position of each tie group
    idx = np.where(ends, np.arange(g)[None, :], g)
    group_end = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]
    tp = np.cumsum(matches, axis=1)
    precision_at_end = np.take_along_axis(tp, group_end, axis=1) / (group_end + 1.0)
    positives = matches.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (matches * precision_at_end).sum(axis=1) / positives
    return np.where(positives > 0, ap, np.nan)


def _first_hit_ranks(dist: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """1-based rank of each row's nearest correct match under a stable sort (0: no correct match),
    without sorting: the items strictly nearer, plus the tied ones earlier in gallery order."""
    d_min = np.where(pos, dist, np.inf).min(axis=1)
    has = pos.any(axis=1)
    first_idx = np.argmax(pos & (dist == d_min[:, None]), axis=1)
    nearer = (dist < d_min[:, None]).sum(axis=1)
    tied_before = ((dist == d_min[:, None]) & (np.arange(dist.shape[1])[None, :] < first_idx[:, None])).sum(axis=1)
    return np.where(has, nearer + tied_before + 1, 0)


def _squared_distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """``max(|a|^2 + |b|^2 - 2ab, 1e-12)`` in float64, the dot products in ``b``'s dtype (float32 for
    encoder features, as the authors' torch code): the square of :func:`euclidean_distances`, the
    same order and the same ties."""
    a_sq = (a.astype(np.float64) ** 2).sum(1)
    dot = (a.astype(b.dtype, copy=False) @ b.T).astype(np.float64)
    return np.maximum(a_sq[:, None] + b_sq[None, :] - 2.0 * dot, 1e-12)


def _ap_chunk(dist: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """:func:`_ap_by_counts` of every row at once: rows are shifted apart (row r by r * span) so one
    global sort and one ``searchsorted`` serve all rows. NaN for a row without a correct match."""
    b, g = dist.shape
    finite = np.isfinite(dist)
    top = float(dist[finite].max()) if finite.any() else 0.0
    span = top + 1.0
    shifted = np.where(finite, dist, top + 0.5) + (np.arange(b, dtype=np.float64) * span)[:, None]
    npos = pos.sum(axis=1)
    start = np.concatenate([[0], np.cumsum(npos)[:-1]])
    end = start + npos
    p = np.sort(shifted[pos])                        # rows' ranges are disjoint: sorted within each row
    if len(p) == 0:
        return np.full(b, np.nan)
    row_of_p = np.repeat(np.arange(b), npos)
    idx = np.searchsorted(p, shifted, side="left")   # [b, g]: bucket of each item
    keep = idx < end[:, None]                        # items beyond the row's last positive count for none
    counts = np.bincount(idx[keep], minlength=len(p))
    c = np.cumsum(counts)
    before = np.where(start > 0, c[np.maximum(start - 1, 0)], 0)
    tp = np.searchsorted(p, p, side="right") - start[row_of_p]
    n_at = c[start[row_of_p] + tp - 1] - before[row_of_p]
    sums = np.bincount(row_of_p, weights=tp / n_at, minlength=b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(npos > 0, sums / npos, np.nan)


def _ap_by_counts(d: np.ndarray, pos: np.ndarray) -> float:
    """scikit-learn's AP of one row without a full sort: the mean over correct matches j of
    (#correct with distance <= d_j) / (#items with distance <= d_j); equal to the tie-aware
    threshold sum of ``average_precision_score``."""
    p = np.sort(d[pos])
    if len(p) == 0:
        return float("nan")
    tp = np.searchsorted(p, p, side="right")
    n = np.cumsum(np.bincount(np.searchsorted(p, d, side="left"), minlength=len(p) + 1)[: len(p)])
    n_at = n[tp - 1]
    return float(np.mean(tp / n_at))


def walk_means(window_features, walk_index) -> tuple[np.ndarray, np.ndarray]:
    """Per-walk features: the mean of each walk's window features; returns ``(features [W, D],
    walk_ids)`` with ``walk_ids`` ascending."""
    x = np.asarray(window_features, dtype=np.float64)
    walks = np.asarray(walk_index)
    if x.ndim != 2 or walks.shape != (len(x),):
        raise ValueError(f"expected [N, D] features and [N] walk ids, got {x.shape} and {walks.shape}")
    walk_ids, inverse = np.unique(walks, return_inverse=True)
    sums = np.zeros((len(walk_ids), x.shape[1]))
    np.add.at(sums, inverse.reshape(-1), x)
    return sums / np.bincount(inverse.reshape(-1))[:, None], walk_ids


def score_unit(probe_features, probe_ids, gallery_features, gallery_ids, probe_groups=None,
               gallery_groups=None, max_rank: int = 50, chunk: int = 256, ap: str = "fast") -> dict:
    """Rank-1/5/10, mAP and the CMC of one probe/gallery unit, the authors' rules.

    ``probe_groups`` / ``gallery_groups`` (both or neither): gallery items whose group equals the
    probe's are removed from its ranking (same-walk exclusion; a no-op for disjoint probe and gallery
    sets, as on KGBD). Probes are scored ``chunk`` rows at a time, so a 16k x 31k per-window problem
    never holds the whole distance matrix. ``ap``: ``"fast"`` (:func:`average_precisions`) or
    ``"sklearn"`` (:func:`sklearn_average_precisions`, one call per probe; the same values).

    Returns plain values: ``rank1``, ``rank5``, ``rank10`` (over all probes), ``mAP`` (mean over the
    probes with a positive), ``cmc`` (``cmc[k-1]`` = Rank-k, up to ``max_rank``), ``num_probes``,
    ``num_gallery``, ``num_without_match`` (probes counted as misses) and ``num_ap_queries``.
    """
    q = np.asarray(probe_features)
    gx = np.asarray(gallery_features)
    qy = np.asarray(probe_ids)
    gy = np.asarray(gallery_ids)
    if (probe_groups is None) != (gallery_groups is None):
        raise ValueError("give both probe_groups and gallery_groups, or neither")
    if len(qy) != len(q) or len(gy) != len(gx):
        raise ValueError("ids must have one entry per feature row")
    if len(gx) == 0 or len(q) == 0:
        raise SkelreidError("probe/gallery scoring needs a non-empty probe set and gallery")
    if ap not in ("fast", "sklearn"):
        raise ValueError(f"ap must be 'fast' or 'sklearn', got {ap!r}")
    max_rank = max(1, min(int(max_rank), len(gx)))
    first_hit, aps = [], []
    dtype = np.float32 if (q.dtype == np.float32 and gx.dtype == np.float32) else np.float64
    gx = gx.astype(dtype, copy=False)
    gsq = (gx.astype(np.float64) ** 2).sum(1)
    for s in range(0, len(q), chunk):
        sl = slice(s, s + chunk)
        dist = _squared_distances(q[sl], gx, gsq)   # ranks and AP only need the order: no sqrt
        excluded = None
        if probe_groups is not None:
            excluded = np.asarray(gallery_groups)[None, :] == np.asarray(probe_groups)[sl, None]
        if excluded is not None:
            dist = np.where(excluded, np.inf, dist)
        pos = gy[None, :] == qy[sl, None]
        if excluded is not None:
            pos &= ~excluded
        first_hit.append(_first_hit_ranks(dist, pos))
        if ap == "fast":
            aps.append(_ap_chunk(dist, pos))
        else:
            aps.append(sklearn_average_precisions(dist, qy[sl], gy, excluded))
    first = np.concatenate(first_hit)
    ap_all = np.concatenate(aps)
    with_match = first > 0
    if not with_match.any():
        raise SkelreidError(f"none of the {len(q)} probes has a correct match in the gallery: "
                            "check that probe and gallery share identities")
    cmc = [float(np.mean(with_match & (first <= k))) for k in range(1, max_rank + 1)]
    rk = {k: float(np.mean(with_match & (first <= k))) for k in (1, 5, 10)}
    return {"rank1": rk[1], "rank5": rk[5], "rank10": rk[10], "mAP": float(np.nanmean(ap_all)),
            "cmc": cmc, "num_probes": int(len(q)), "num_gallery": int(len(gx)),
            "num_without_match": int((~with_match).sum()), "num_ap_queries": int(np.isfinite(ap_all).sum())}


def unit_features(retrieval) -> list[str]:
    """The window features a probe/gallery evaluation needs: the walk-level ``retrieval.feature``
    and, when the per-subsequence unit is scored, ``retrieval.sequence_feature``."""
    unit = getattr(retrieval, "unit", "both")
    out = [retrieval.feature]
    if unit in ("both", "sequence"):
        out.append(getattr(retrieval, "sequence_feature", SEQUENCE_FEATURE))
    return list(dict.fromkeys(out))


def pair_units(retrieval, vectors_of, probe, gallery, probe_name: str, gallery_name: str,
               per_window_groups: bool = False) -> dict:
    """Both units (or the one ``retrieval.unit`` names) of one probe/gallery pair.

    ``vectors_of(split_name, feature)`` gives the split's window vectors ``[N, D]``; ``probe`` and
    ``gallery`` are the splits' window sets (``label``, ``walk``, ``position``, ``walk_person``).
    Gallery items of the probe's own walk are excluded (a no-op for disjoint splits); with
    ``per_window_groups`` (preprocessed layouts without walk boundaries) only the same window is."""
    unit = getattr(retrieval, "unit", "both")
    out = {}
    for u in (UNITS if unit == "both" else (unit,)):
        if u == "walk" and per_window_groups and probe_name == gallery_name:
            continue  # one pseudo-walk per person and split: a same-split walk unit has nothing to match
        feature = getattr(retrieval, "sequence_feature", SEQUENCE_FEATURE) if u == "sequence" else retrieval.feature
        q, g = vectors_of(probe_name, feature), vectors_of(gallery_name, feature)
        if u == "sequence":
            if per_window_groups:
                qg, gg = probe.walk * 10**7 + probe.position, gallery.walk * 10**7 + gallery.position
            else:
                qg, gg = probe.walk, gallery.walk
            rep = score_unit(q, probe.label, g, gallery.label, qg, gg)
        else:
            qm, qw = walk_means(q, probe.walk)
            gm, gw = walk_means(g, gallery.walk)
            rep = score_unit(qm, probe.walk_person[qw], gm, gallery.walk_person[gw], qw, gw)
        rep.update(unit=u, label=UNIT_LABELS[u], feature=feature, pooling="none" if u == "sequence" else "mean")
        out[u] = rep
    return out
