"""Legacy classification protocol: Rank-k / CMC, "nAUC" and the confusion matrix.

In the AGE / CAGE evaluation the recognition network (a classifier over the
training identities) scores every test sequence; there is no probe/gallery
matching. All functions here are pure: numpy arrays in, numpy arrays or plain
Python numbers out.

Two areas are both called "nAUC" in the literature; skelreid reports both under
distinct names:

* :func:`micro_nauc` (``nauc_roc``) -- what the AGE / CAGE code computes: the
  micro-averaged one-vs-rest ROC AUC of the class scores, i.e.
  ``roc_curve(onehot.ravel(), scores.ravel())`` followed by ``auc``. This is the
  faithful number to compare with the papers.
* :func:`cmc_nauc` (``nauc_cmc``) -- the normalised area under the CMC curve,
  the textbook meaning of "nAUC". Reported in addition, never instead.

Tie rule for Rank-k / CMC. The rank of the true class of a sequence is
``1 + (number of classes whose score is strictly greater than the true class's
score)``; the sequence counts as a top-K hit when that rank is <= K. Classes
tied with the true class therefore never push it down (the optimistic rule).
The rule is deterministic and does not depend on class order. With real-valued
logits exact ties practically never happen; the only visible effect is that
``rank1`` can exceed the argmax accuracy (the confusion-matrix diagonal, whose
argmax picks the lowest class index among ties) when scores tie exactly.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

__all__ = [
    "average_window_logits",
    "true_class_rank",
    "rank_k_accuracy",
    "cmc_curve",
    "micro_nauc",
    "cmc_nauc",
    "confusion",
    "classification_report",
]


def _check_scores(scores, labels, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D [N, C], got shape {scores.shape}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"labels must have shape ({scores.shape[0]},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if labels.size and not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("labels must be integer class indices")
    labels = labels.astype(np.int64)
    c = scores.shape[1] if num_classes is None else int(num_classes)
    if num_classes is not None and scores.shape[1] != c:
        raise ValueError(f"scores have {scores.shape[1]} columns, expected num_classes={c}")
    if labels.size and (labels.min() < 0 or labels.max() >= c):
        raise ValueError(f"labels must lie in [0, {c}), got range [{labels.min()}, {labels.max()}]")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values")
    return scores, labels


def average_window_logits(logits, length: int) -> np.ndarray:
    """Average the raw logits of the ``length`` rows of each window ("ap" rule).

    ``logits`` is ``[N*f, C]`` with the f context-vector rows of each window
    contiguous (window 0 is rows ``0..f-1``, window 1 rows ``f..2f-1``, ...), or
    already ``[N, f, C]``. Returns ``[N, C]`` float64: the mean of the raw logits
    (not of softmax probabilities) over each window's rows, as in the reference
    "average prediction" evaluation.
    """
    length = int(length)
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim == 2:
        rows, c = x.shape
        if rows % length:
            raise ValueError(
                f"{rows} logit rows are not a whole number of windows of length {length}"
            )
        x = x.reshape(rows // length, length, c)
    elif x.ndim == 3:
        if x.shape[1] != length:
            raise ValueError(f"logits have {x.shape[1]} rows per window, expected {length}")
    else:
        raise ValueError(f"logits must be [N*f, C] or [N, f, C], got shape {x.shape}")
    return x.mean(axis=1)


def true_class_rank(scores, labels) -> np.ndarray:
    """1-based rank of each sequence's true class: 1 + #classes scoring strictly higher."""
    scores, labels = _check_scores(scores, labels)
    own = scores[np.arange(len(labels)), labels]
    return (scores > own[:, None]).sum(axis=1).astype(np.int64) + 1


def rank_k_accuracy(scores, labels, ks: Iterable[int] | None = None) -> dict[int, float]:
    """Top-K accuracy ``{K: fraction of sequences whose true class has rank <= K}``.

    ``ks`` defaults to ``1..C``. See the module docstring for the tie rule.
    """
    scores, labels = _check_scores(scores, labels)
    c = scores.shape[1]
    ks = list(range(1, c + 1)) if ks is None else [int(k) for k in ks]
    if any(k < 1 for k in ks):
        raise ValueError(f"every K must be >= 1, got {ks}")
    if len(labels) == 0:
        raise ValueError("no sequences to score")
    ranks = true_class_rank(scores, labels)
    return {k: float(np.mean(ranks <= k)) for k in ks}


def cmc_curve(scores, labels) -> np.ndarray:
    """CMC curve ``[C]``: ``cmc[k-1]`` is the top-k accuracy, k = 1..C."""
    scores, labels = _check_scores(scores, labels)
    if len(labels) == 0:
        raise ValueError("no sequences to score")
    c = scores.shape[1]
    ranks = true_class_rank(scores, labels)
    counts = np.bincount(ranks - 1, minlength=c)
    return np.cumsum(counts) / len(labels)


def micro_nauc(scores, labels, num_classes: int) -> float:
    """The reference "nAUC": micro-averaged one-vs-rest ROC AUC of the scores.

    Equal to ``auc(*roc_curve(onehot.ravel(), scores.ravel())[:2])``, computed
    as ``roc_auc_score(onehot, scores, average="micro")``. Returns NaN when it
    is undefined (fewer than two classes).
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import label_binarize

    scores, labels = _check_scores(scores, labels, num_classes)
    c = int(num_classes)
    if c < 2 or len(labels) == 0:
        return float("nan")
    onehot = label_binarize(labels, classes=list(range(c)))
    if c == 2:  # label_binarize gives a single column for two classes
        onehot = np.column_stack([1 - onehot[:, 0], onehot[:, 0]])
    return float(roc_auc_score(onehot, scores, average="micro"))


def cmc_nauc(cmc) -> float:
    """Normalised area under a CMC curve: the mean of ``cmc`` over k = 1..C.

    This is *not* the reference's "nAUC" (see :func:`micro_nauc`).
    """
    cmc = np.asarray(cmc, dtype=np.float64)
    if cmc.ndim != 1 or cmc.size == 0:
        raise ValueError(f"cmc must be a non-empty 1-D curve, got shape {cmc.shape}")
    return float(cmc.mean())


def confusion(labels, predictions, num_classes: int) -> np.ndarray:
    """Full ``[C, C]`` confusion matrix (rows = true class, columns = predicted).

    Unlike the reference, which lets sklearn infer the label set (and so may
    return a smaller matrix), classes that never occur keep their row and column.
    """
    from sklearn.metrics import confusion_matrix

    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(
            f"labels and predictions must be 1-D of equal length, got {labels.shape}, {predictions.shape}"
        )
    c = int(num_classes)
    for name, arr in (("labels", labels), ("predictions", predictions)):
        if arr.size and (arr.min() < 0 or arr.max() >= c):
            raise ValueError(f"{name} must lie in [0, {c})")
    if labels.size == 0:
        return np.zeros((c, c), dtype=np.int64)
    return confusion_matrix(labels, predictions, labels=list(range(c))).astype(np.int64)


def classification_report(scores, labels, num_classes: int) -> dict:
    """All legacy-protocol numbers for sequence scores ``[N, C]`` and labels ``[N]``.

    Keys: ``rank1``, ``rank5``, ``rank10`` (each only when C >= k), ``cmc`` (list
    of C fractions), ``nauc_roc`` (reference "nAUC", micro ROC AUC), ``nauc_cmc``
    (area under the CMC), ``num_sequences``, ``num_classes`` and ``confusion``
    (nested ``[C][C]`` list of ints; predictions are the argmax, lowest index on
    ties). Metric values are plain floats in [0, 1]; reports multiply by 100.
    """
    scores, labels = _check_scores(scores, labels, num_classes)
    c = int(num_classes)
    cmc = cmc_curve(scores, labels)
    report: dict = {}
    for k in (1, 5, 10):
        if c >= k:
            report[f"rank{k}"] = float(cmc[k - 1])
    report["cmc"] = [float(v) for v in cmc]
    report["nauc_roc"] = micro_nauc(scores, labels, c)
    report["nauc_cmc"] = cmc_nauc(cmc)
    report["num_sequences"] = int(len(labels))
    report["num_classes"] = c
    predictions = np.argmax(scores, axis=1)
    report["confusion"] = confusion(labels, predictions, c).tolist()
    return report
