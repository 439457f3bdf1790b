"""Probe/gallery retrieval protocol: Euclidean ranking, CMC (Rank-k) and mAP.

This is the protocol of the skeleton re-ID papers after CAGE (and of CAGE's own
CASIA-B condition matching): every probe sequence ranks the gallery by
Euclidean distance between features; Rank-k is the fraction of probes whose
first correct match is among the k nearest gallery items, and mAP is the mean
over probes of the average precision of the full ranking (the mean of the
precision at each correct match, as in torchreid's ``eval_market1501``).

Rules, all explicit:

* **Same-walk exclusion.** When walk ids are given, gallery items from the
  probe's own walk are removed from that probe's ranking before anything is
  counted. skelreid never "skips the first neighbour": that trick assumes
  exactly one self-copy sits in the gallery, which duplicates and neighbouring
  windows of the same walk break.
* **Probes without a correct match** among the remaining gallery items are
  skipped (not counted as zero) and reported in ``num_skipped``.
* **Ties in distance** are broken by gallery index (stable sort): the gallery
  item that comes first in the gallery wins.
"""
from __future__ import annotations

import numpy as np

from ..errors import SkelreidError

__all__ = [
    "pairwise_euclidean",
    "evaluate_retrieval",
    "sequence_features",
    "evaluate_features",
]


def pairwise_euclidean(a, b) -> np.ndarray:
    """Euclidean distances ``[P, G]`` between rows of ``a [P, D]`` and ``b [G, D]``.

    Computed in float64 as ``sqrt(max(||a||^2 + ||b||^2 - 2 a.b, 0))``; the
    clamp removes the small negative values rounding can produce. Identical
    rows give 0 up to rounding (about 1e-8 relative to the norms).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected [P, D] and [G, D] features, got {a.shape} and {b.shape}")
    sq = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0))


def evaluate_retrieval(
    dist,
    probe_ids,
    gallery_ids,
    probe_walks=None,
    gallery_walks=None,
    max_rank: int | None = None,
) -> dict:
    """CMC and mAP of a probe-by-gallery distance matrix ``dist [P, G]``.

    ``probe_ids [P]`` / ``gallery_ids [G]`` are identity labels; ``probe_walks``
    and ``gallery_walks`` (both or neither) are walk ids used for the same-walk
    exclusion; they must name walks globally (e.g. walk names, or indices into
    one shared walk list), because equal ids in the two sets mean "same walk". ``max_rank`` sets the length of the returned ``cmc`` list
    (default and upper bound: G).

    Returns a dict of plain Python values: ``rank1``, ``rank5``, ``rank10``
    (top-k hit rates over the evaluated probes; k larger than the gallery counts
    every evaluated probe as a hit), ``mAP``, ``cmc`` (list, ``cmc[k-1]`` =
    Rank-k), ``num_queries`` (probes evaluated) and ``num_skipped`` (probes with
    no correct match left). Fractions are in [0, 1]. Raises
    :class:`SkelreidError` when no probe has a correct match at all.
    """
    dist = np.asarray(dist, dtype=np.float64)
    if dist.ndim != 2:
        raise ValueError(f"dist must be 2-D [P, G], got shape {dist.shape}")
    p, g = dist.shape
    probe_ids = np.asarray(probe_ids)
    gallery_ids = np.asarray(gallery_ids)
    if probe_ids.shape != (p,) or gallery_ids.shape != (g,):
        raise ValueError(
            f"ids must have shapes ({p},) and ({g},), got {probe_ids.shape} and {gallery_ids.shape}"
        )
    if (probe_walks is None) != (gallery_walks is None):
        raise ValueError("give both probe_walks and gallery_walks, or neither")
    if probe_walks is not None:
        probe_walks = np.asarray(probe_walks)
        gallery_walks = np.asarray(gallery_walks)
        if probe_walks.shape != (p,) or gallery_walks.shape != (g,):
            raise ValueError(
                f"walks must have shapes ({p},) and ({g},), "
                f"got {probe_walks.shape} and {gallery_walks.shape}"
            )
    if np.isnan(dist).any():
        raise ValueError("dist contains NaN values")
    if g == 0:
        raise ValueError("the gallery is empty")
    max_rank = g if max_rank is None else min(int(max_rank), g)
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")

    first_hit = []  # 1-based rank of the first correct match, per evaluated probe
    aps = []
    for i in range(p):
        keep = np.ones(g, dtype=bool) if probe_walks is None else gallery_walks != probe_walks[i]
        cand = np.flatnonzero(keep)
        order = cand[np.argsort(dist[i, cand], kind="stable")]
        matches = gallery_ids[order] == probe_ids[i]
        if not matches.any():
            continue
        hit_ranks = np.flatnonzero(matches) + 1  # 1-based ranks of the correct matches
        first_hit.append(hit_ranks[0])
        precision_at_hits = np.arange(1, len(hit_ranks) + 1) / hit_ranks
        aps.append(precision_at_hits.mean())

    num_queries = len(first_hit)
    if num_queries == 0:
        raise SkelreidError(
            f"none of the {p} probes has a correct match in the gallery: "
            "check that probe and gallery share identities"
        )
    first_hit = np.asarray(first_hit)
    cmc = np.cumsum(np.bincount(first_hit - 1, minlength=g))[:max_rank] / num_queries
    return {
        "rank1": float(np.mean(first_hit <= 1)),
        "rank5": float(np.mean(first_hit <= 5)),
        "rank10": float(np.mean(first_hit <= 10)),
        "mAP": float(np.mean(aps)),
        "cmc": [float(v) for v in cmc],
        "num_queries": int(num_queries),
        "num_skipped": int(p - num_queries),
    }


def sequence_features(window_features, walk_index, how: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Turn window features ``[N, D]`` into per-walk features.

    ``how="mean"``: the mean of the window features of each walk; returns
    ``(features [W, D], walk_ids)`` with ``walk_ids`` the distinct values of
    ``walk_index`` in ascending order (row w of ``features`` belongs to
    ``walk_ids[w]``). Floating inputs keep their dtype (the sum is taken in
    float64). ``how="none"``: per-window evaluation; returns the inputs as
    arrays, unchanged.
    """
    x = np.asarray(window_features)
    walks = np.asarray(walk_index)
    if x.ndim != 2:
        raise ValueError(f"window_features must be 2-D [N, D], got shape {x.shape}")
    if walks.shape != (x.shape[0],):
        raise ValueError(f"walk_index must have shape ({x.shape[0]},), got {walks.shape}")
    if how == "none":
        return x, walks
    if how != "mean":
        raise ValueError(f"how must be 'mean' or 'none', got {how!r}")
    walk_ids, inverse = np.unique(walks, return_inverse=True)
    sums = np.zeros((len(walk_ids), x.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse.reshape(-1), x.astype(np.float64))
    counts = np.bincount(inverse.reshape(-1), minlength=len(walk_ids))
    means = sums / counts[:, None]
    out_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    return means.astype(out_dtype, copy=False), walk_ids


def evaluate_features(
    probe_features,
    probe_ids,
    gallery_features,
    gallery_ids,
    probe_walks=None,
    gallery_walks=None,
    max_rank: int | None = None,
) -> dict:
    """:func:`pairwise_euclidean` followed by :func:`evaluate_retrieval`."""
    dist = pairwise_euclidean(probe_features, gallery_features)
    return evaluate_retrieval(dist, probe_ids, gallery_ids, probe_walks, gallery_walks, max_rank)
