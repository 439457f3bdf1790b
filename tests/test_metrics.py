"""Legacy classification protocol: known answers for Rank-k, CMC, both nAUCs, confusion."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import auc, roc_curve

from skelreid.evaluation.metrics import (
    average_window_logits,
    classification_report,
    cmc_curve,
    cmc_nauc,
    confusion,
    micro_nauc,
    rank_k_accuracy,
    true_class_rank,
)

# 3 sequences x 4 classes. True-class ranks, by hand:
#   row 0: label 1 scores 0.9, nothing higher            -> rank 1
#   row 1: label 2 scores 0.6, only 0.8 is higher        -> rank 2
#   row 2: label 2 scores 0.1, 0.3, 0.2, 0.4 are higher  -> rank 4
SCORES = np.array(
    [
        [0.1, 0.9, 0.3, 0.5],
        [0.8, 0.2, 0.6, 0.4],
        [0.3, 0.2, 0.1, 0.4],
    ]
)
LABELS = np.array([1, 2, 2])


def test_true_class_rank_by_hand():
    assert true_class_rank(SCORES, LABELS).tolist() == [1, 2, 4]


def test_rank_k_by_hand():
    acc = rank_k_accuracy(SCORES, LABELS)
    assert list(acc) == [1, 2, 3, 4]
    assert acc[1] == pytest.approx(1 / 3)
    assert acc[2] == pytest.approx(2 / 3)
    assert acc[3] == pytest.approx(2 / 3)
    assert acc[4] == pytest.approx(1.0)
    assert rank_k_accuracy(SCORES, LABELS, ks=[2, 10]) == pytest.approx({2: 2 / 3, 10: 1.0})
    assert all(isinstance(v, float) for v in acc.values())


def test_rank_k_matches_reference_argpartition_without_ties():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(50, 9))
    labels = rng.integers(0, 9, size=50)
    acc = rank_k_accuracy(scores, labels)
    for k in range(1, 10):
        ref = np.mean([labels[i] in np.argpartition(scores[i], -k)[-k:] for i in range(50)])
        assert acc[k] == pytest.approx(ref)


def test_rank_ties_are_optimistic_and_deterministic():
    scores = np.array([[0.5, 0.5, 0.1], [0.5, 0.5, 0.1], [0.2, 0.2, 0.2]])
    # A tied class never pushes the true class down, whatever its index.
    assert true_class_rank(scores, [0, 1, 2]).tolist() == [1, 1, 1]
    assert rank_k_accuracy(scores, [0, 1, 2], ks=[1]) == {1: 1.0}


def test_rank_k_rejects_bad_input():
    with pytest.raises(ValueError):
        rank_k_accuracy(SCORES, [1, 2, 4])  # label out of range
    with pytest.raises(ValueError):
        rank_k_accuracy(SCORES, [1, 2])  # wrong length
    with pytest.raises(ValueError):
        rank_k_accuracy(np.array([[np.nan, 1.0]]), [0])
    with pytest.raises(ValueError):
        rank_k_accuracy(SCORES, LABELS, ks=[0])


def test_cmc_curve_and_cmc_nauc_by_hand():
    cmc = cmc_curve(SCORES, LABELS)
    np.testing.assert_allclose(cmc, [1 / 3, 2 / 3, 2 / 3, 1.0])
    # mean of the curve: (1/3 + 2/3 + 2/3 + 1) / 4 = 2/3
    assert cmc_nauc(cmc) == pytest.approx(2 / 3)
    assert cmc_nauc([1.0, 1.0]) == 1.0
    with pytest.raises(ValueError):
        cmc_nauc([])


def _reference_nauc(scores, labels, c):
    onehot = np.eye(c)[labels]
    fpr, tpr, _ = roc_curve(onehot.ravel(), np.asarray(scores).ravel())
    return auc(fpr, tpr)


@pytest.mark.parametrize("c", [2, 3, 7, 20])
def test_micro_nauc_equals_reference_formula(c):
    rng = np.random.default_rng(c)
    n = 60
    labels = rng.integers(0, c, size=n)
    scores = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[labels]
    assert micro_nauc(scores, labels, c) == pytest.approx(_reference_nauc(scores, labels, c), abs=1e-12)


def test_micro_nauc_with_an_absent_class_equals_reference_formula():
    rng = np.random.default_rng(0)
    labels = rng.choice([0, 1, 3], size=40)  # class 2 and 4 never occur
    scores = rng.normal(size=(40, 5))
    assert micro_nauc(scores, labels, 5) == pytest.approx(_reference_nauc(scores, labels, 5), abs=1e-12)


def test_micro_nauc_two_classes_by_hand():
    scores = np.array([[0.9, 0.1], [0.4, 0.6]])
    # raveled one-hot [1,0,1,0] vs scores [0.9,0.1,0.4,0.6]: positives {0.9, 0.4},
    # negatives {0.1, 0.6}; 3 of the 4 positive/negative pairs are ordered -> 0.75.
    assert micro_nauc(scores, [0, 0], 2) == pytest.approx(0.75)
    # labels [0, 1]: positives {0.9, 0.6} beat negatives {0.1, 0.4} -> 1.0
    assert micro_nauc(scores, [0, 1], 2) == pytest.approx(1.0)


def test_micro_nauc_is_not_the_cmc_area():
    assert micro_nauc(SCORES, LABELS, 4) == pytest.approx(_reference_nauc(SCORES, LABELS, 4))
    assert micro_nauc(SCORES, LABELS, 4) != pytest.approx(cmc_nauc(cmc_curve(SCORES, LABELS)))


def test_average_window_logits_by_hand():
    rows = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    np.testing.assert_allclose(average_window_logits(rows, 2), [[2.0, 3.0], [6.0, 7.0]])
    np.testing.assert_allclose(average_window_logits(rows.reshape(2, 2, 2), 2), [[2.0, 3.0], [6.0, 7.0]])
    np.testing.assert_allclose(average_window_logits(rows, 4), [[4.0, 5.0]])
    np.testing.assert_allclose(average_window_logits(rows, 1), rows)


def test_average_window_logits_averages_raw_logits_not_softmax():
    rows = np.array([[0.0, 5.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    mean = average_window_logits(rows, 4)
    np.testing.assert_allclose(mean, [[0.75, 1.25]])
    assert mean.argmax() == 1
    soft = np.exp(rows) / np.exp(rows).sum(axis=1, keepdims=True)
    assert soft.mean(axis=0).argmax() == 0  # averaging probabilities would decide otherwise


def test_average_window_logits_rejects_partial_windows():
    with pytest.raises(ValueError):
        average_window_logits(np.zeros((5, 3)), 2)
    with pytest.raises(ValueError):
        average_window_logits(np.zeros((2, 3, 4)), 2)
    with pytest.raises(ValueError):
        average_window_logits(np.zeros((4, 3)), 0)


def test_confusion_is_full_c_by_c():
    m = confusion([0, 0, 2, 2], [0, 2, 2, 2], 4)  # classes 1 and 3 never appear
    assert m.shape == (4, 4)
    assert m.tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]]
    assert confusion([], [], 3).tolist() == [[0] * 3] * 3
    with pytest.raises(ValueError):
        confusion([0, 5], [0, 1], 4)


def test_classification_report():
    rep = classification_report(SCORES, LABELS, 4)
    assert rep["rank1"] == pytest.approx(1 / 3)
    assert "rank5" not in rep and "rank10" not in rep  # only 4 classes
    assert rep["cmc"] == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1.0])
    assert rep["nauc_roc"] == pytest.approx(_reference_nauc(SCORES, LABELS, 4))
    assert rep["nauc_cmc"] == pytest.approx(2 / 3)
    assert rep["num_sequences"] == 3
    # argmax predictions: 1, 0, 3
    assert rep["confusion"] == [[0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]]
    for key in ("rank1", "nauc_roc", "nauc_cmc"):
        assert type(rep[key]) is float and 0.0 <= rep[key] <= 1.0
    json.dumps(rep)  # plain Python values only


def test_classification_report_164_classes():
    rng = np.random.default_rng(1)
    c, n = 164, 500
    labels = rng.integers(0, c, size=n)
    scores = rng.normal(size=(n, c)) + 2.0 * np.eye(c)[labels]
    rep = classification_report(scores, labels, c)
    assert len(rep["cmc"]) == c and rep["cmc"][-1] == 1.0
    assert rep["rank1"] <= rep["rank5"] <= rep["rank10"] <= 1.0
    assert np.array(rep["confusion"]).shape == (c, c)
    assert np.array(rep["confusion"]).sum() == n
    assert rep["rank1"] == pytest.approx(np.trace(np.array(rep["confusion"])) / n)
    with pytest.raises(ValueError):
        classification_report(scores, labels, 100)
