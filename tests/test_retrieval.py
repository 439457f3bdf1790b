"""Probe/gallery protocol: known answers, same-walk exclusion, skipping, torchmetrics cross-check."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score
from torchmetrics.retrieval import RetrievalHitRate, RetrievalMAP

from skelreid.errors import SkelreidError
from skelreid.evaluation.retrieval import (
    evaluate_features,
    evaluate_retrieval,
    pairwise_euclidean,
    sequence_features,
)


def test_known_answer_two_probes_four_gallery_items():
    gallery_ids = np.array([0, 1, 0, 1])
    probe_ids = np.array([0, 1])
    dist = np.array(
        [
            # probe 0 (id 0): order g1(1) g3(1) g2(0) g0(0): hits at ranks 3, 4
            [0.4, 0.1, 0.3, 0.2],
            # probe 1 (id 1): order g2(0) g1(1) g0(0) g3(1): hits at ranks 2, 4
            [0.5, 0.2, 0.1, 0.9],
        ]
    )
    res = evaluate_retrieval(dist, probe_ids, gallery_ids)
    ap0 = (1 / 3 + 2 / 4) / 2  # 5/12
    ap1 = (1 / 2 + 2 / 4) / 2  # 1/2
    assert res["mAP"] == pytest.approx((ap0 + ap1) / 2)  # 11/24
    assert res["mAP"] == pytest.approx(11 / 24)
    assert res["cmc"] == pytest.approx([0.0, 0.5, 1.0, 1.0])
    assert res["rank1"] == 0.0
    assert res["rank5"] == 1.0 and res["rank10"] == 1.0  # gallery smaller than k
    assert res["num_queries"] == 2 and res["num_skipped"] == 0
    assert evaluate_retrieval(dist, probe_ids, gallery_ids, max_rank=2)["cmc"] == pytest.approx([0.0, 0.5])
    assert len(evaluate_retrieval(dist, probe_ids, gallery_ids, max_rank=50)["cmc"]) == 4
    json.dumps(res)


def test_perfect_ranking():
    dist = np.array([[0.1, 0.2, 0.9], [0.8, 0.7, 0.1]])
    res = evaluate_retrieval(dist, [5, 6], [5, 5, 6])
    assert res["rank1"] == 1.0 and res["mAP"] == 1.0


def test_same_walk_item_never_counts():
    # The gallery copy of the probe's own walk sits at distance 0 with the right id.
    dist = np.array([[0.0, 0.5, 0.2]])
    probe_ids, gallery_ids = np.array([1]), np.array([1, 1, 2])
    excluded = evaluate_retrieval(dist, probe_ids, gallery_ids, probe_walks=["w7"], gallery_walks=["w7", "w8", "w9"])
    # remaining order: g2 (id 2), g1 (id 1) -> first hit at rank 2, AP = 1/2
    assert excluded["rank1"] == 0.0
    assert excluded["cmc"] == pytest.approx([0.0, 1.0, 1.0])  # length G; stays at 1 past the kept items
    assert excluded["mAP"] == pytest.approx(0.5)
    included = evaluate_retrieval(dist, probe_ids, gallery_ids)
    assert included["rank1"] == 1.0 and included["mAP"] == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_exclusion_removes_every_window_of_the_walk_not_just_the_nearest():
    # Two windows of the probe's walk in the gallery: "skip the first neighbour" would fail.
    dist = np.array([[0.0, 0.01, 0.3, 0.2]])
    res = evaluate_retrieval(dist, [0], [0, 0, 0, 1], probe_walks=[3], gallery_walks=[3, 3, 4, 5])
    assert res["rank1"] == 0.0 and res["mAP"] == pytest.approx(0.5)


def test_probe_without_match_is_skipped():
    dist = np.array([[0.1, 0.2], [0.3, 0.1], [0.2, 0.2]])
    # probe 1 (id 9) has no match; probe 2's only match is its own walk.
    res = evaluate_retrieval(dist, [0, 9, 1], [0, 1], probe_walks=[10, 11, 12], gallery_walks=[20, 12])
    assert res["num_queries"] == 1 and res["num_skipped"] == 2
    assert res["rank1"] == 1.0 and res["mAP"] == 1.0


def test_no_probe_with_a_match_is_an_error():
    with pytest.raises(SkelreidError):
        evaluate_retrieval(np.ones((2, 2)), [0, 1], [2, 3])


def test_ties_follow_gallery_order():
    dist = np.array([[0.2, 0.2, 0.2]])
    assert evaluate_retrieval(dist, [1], [0, 1, 1])["rank1"] == 0.0  # g0 comes first
    assert evaluate_retrieval(dist, [1], [1, 0, 1])["rank1"] == 1.0
    assert evaluate_retrieval(dist, [1], [0, 1, 1])["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_input_checks():
    with pytest.raises(ValueError):
        evaluate_retrieval(np.ones((2, 3)), [0, 1], [0, 1])
    with pytest.raises(ValueError):
        evaluate_retrieval(np.ones((1, 2)), [0], [0, 1], probe_walks=[0])
    with pytest.raises(ValueError):
        evaluate_retrieval(np.array([[np.nan, 1.0]]), [0], [0, 1])


def _torchmetrics_reference(dist, probe_ids, gallery_ids, probe_walks, gallery_walks):
    # Scores must decrease with distance. They must also be positive: torchmetrics 1.9's
    # retrieval AP treats items scored <= 0 as irrelevant (``where(preds > 0, target, 0)``),
    # so plain ``-distance`` would give mAP 0. ``1 / (1 + distance)`` keeps the order.
    preds, target, indexes = [], [], []
    for i in range(len(probe_ids)):
        keep = gallery_walks != probe_walks[i]
        preds.append(1.0 / (1.0 + dist[i, keep]))
        target.append(gallery_ids[keep] == probe_ids[i])
        indexes.append(np.full(keep.sum(), i))
    preds = torch.from_numpy(np.concatenate(preds))
    target = torch.from_numpy(np.concatenate(target))
    indexes = torch.from_numpy(np.concatenate(indexes))
    out = {"mAP": RetrievalMAP(empty_target_action="skip")(preds, target, indexes=indexes).item()}
    for k in (1, 5, 10):
        metric = RetrievalHitRate(top_k=k, empty_target_action="skip")
        out[f"rank{k}"] = metric(preds, target, indexes=indexes).item()
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_torchmetrics(seed):
    rng = np.random.default_rng(seed)
    n_ids, p, g, d = 8, 25, 60, 16
    centers = rng.normal(size=(n_ids + 2, d))
    probe_ids = rng.integers(0, n_ids + 2, size=p)  # ids 8, 9 may be absent from the gallery
    gallery_ids = rng.integers(0, n_ids, size=g)
    probe_x = centers[probe_ids] + 2.0 * rng.normal(size=(p, d))
    gallery_x = centers[gallery_ids] + 2.0 * rng.normal(size=(g, d))
    probe_walks = np.arange(p)
    gallery_walks = np.arange(100, 100 + g)
    gallery_walks[:10] = probe_walks[:10]  # some gallery items share the probe's walk
    gallery_ids[:10] = probe_ids[:10] % n_ids
    dist = pairwise_euclidean(probe_x, gallery_x)
    dist[np.arange(10), np.arange(10)] = 0.0  # own-walk copies are the nearest items

    ours = evaluate_retrieval(dist, probe_ids, gallery_ids, probe_walks, gallery_walks)
    ref = _torchmetrics_reference(dist, probe_ids, gallery_ids, probe_walks, gallery_walks)
    for key in ("mAP", "rank1", "rank5", "rank10"):
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), key
    assert ours["cmc"][0] == ours["rank1"] and ours["cmc"][9] == ours["rank10"]

    # The per-probe AP is also sklearn's average_precision_score (the later papers' code).
    aps = []
    for i in range(p):
        keep = gallery_walks != probe_walks[i]
        y = gallery_ids[keep] == probe_ids[i]
        if y.any():
            aps.append(average_precision_score(y, -dist[i, keep]))
    assert ours["num_queries"] == len(aps) and ours["num_skipped"] == p - len(aps)
    assert ours["mAP"] == pytest.approx(np.mean(aps), abs=1e-12)


def test_pairwise_euclidean():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 5)).astype(np.float32)
    b = rng.normal(size=(9, 5)).astype(np.float32)
    d = pairwise_euclidean(a, b)
    assert d.dtype == np.float64 and d.shape == (7, 9)
    direct = np.sqrt(((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(d, direct, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(d, torch.cdist(torch.from_numpy(a).double(), torch.from_numpy(b).double()).numpy(), atol=1e-9)
    assert np.all(pairwise_euclidean(a, a).diagonal() < 1e-6)  # clamped, never NaN
    np.testing.assert_allclose(pairwise_euclidean([[0.0, 0.0]], [[3.0, 4.0]]), [[5.0]])
    with pytest.raises(ValueError):
        pairwise_euclidean(a, b[:, :4])


def test_evaluate_features():
    x = np.array([[0.0, 0.0], [10.0, 0.0]])
    res = evaluate_features(x + 0.1, [0, 1], x, [0, 1])
    assert res["rank1"] == 1.0 and res["mAP"] == 1.0


def test_sequence_features_mean():
    feats = np.array([[1.0, 1.0], [3.0, 5.0], [10.0, 0.0], [0.0, 2.0], [2.0, 4.0]], dtype=np.float32)
    walks = np.array([4, 4, 9, 2, 2])
    out, ids = sequence_features(feats, walks)
    assert ids.tolist() == [2, 4, 9]
    np.testing.assert_allclose(out, [[1.0, 3.0], [2.0, 3.0], [10.0, 0.0]])
    assert out.dtype == np.float32
    out_int, _ = sequence_features(feats.astype(np.int64), walks)
    assert out_int.dtype == np.float64


def test_sequence_features_none_and_errors():
    feats = np.arange(6.0).reshape(3, 2)
    walks = np.array([0, 0, 1])
    out, ids = sequence_features(feats, walks, how="none")
    np.testing.assert_array_equal(out, feats)
    np.testing.assert_array_equal(ids, walks)
    with pytest.raises(ValueError):
        sequence_features(feats, walks, how="max")
    with pytest.raises(ValueError):
        sequence_features(feats, walks[:2])
