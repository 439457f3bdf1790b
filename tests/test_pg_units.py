"""Issue 19: the probe/gallery units (per subsequence, the literature's protocol; per walk)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from skelreid.evaluation.units import (average_precisions, euclidean_distances, rank_k, score_unit,
                                       sklearn_average_precisions, subsequences, walk_means)

# One-dimensional features, so every distance is |p - g| and can be read off by hand.
GALLERY = np.array([[0.0], [1.0], [3.0], [6.0]])
GALLERY_IDS = np.array(["A", "B", "A", "C"])
PROBES = np.array([[0.4], [2.2], [5.0], [5.5]])
PROBE_IDS = np.array(["A", "B", "D", "C"])   # D has no match in the gallery


def test_distances_are_the_hand_computed_ones():
    d = euclidean_distances(PROBES, GALLERY)
    assert d[0] == pytest.approx([0.4, 0.6, 2.6, 5.6])
    assert d[1] == pytest.approx([2.2, 1.2, 0.8, 3.8])


def test_per_subsequence_rank1_and_map_equal_hand_values_and_sklearn():
    r = score_unit(PROBES, PROBE_IDS, GALLERY, GALLERY_IDS)
    # p0: order A(0.4) B A -> hit at 1, AP (1/1 + 2/3)/2; p1: A B(1.2) ... -> first hit at 2, AP 1/2;
    # p2 (D): no match -> a miss, no AP; p3: C first -> hit, AP 1.
    assert r["rank1"] == pytest.approx(2 / 4)
    assert r["rank5"] == pytest.approx(3 / 4) and r["rank10"] == pytest.approx(3 / 4)
    hand = [(1 + 2 / 3) / 2, 1 / 2, 1.0]
    assert r["mAP"] == pytest.approx(np.mean(hand))
    d = euclidean_distances(PROBES, GALLERY)
    by_sklearn = [average_precision_score(GALLERY_IDS == PROBE_IDS[i], -d[i]) for i in (0, 1, 3)]
    assert by_sklearn == pytest.approx(hand)
    assert r["mAP"] == pytest.approx(np.mean(by_sklearn))
    assert score_unit(PROBES, PROBE_IDS, GALLERY, GALLERY_IDS, ap="sklearn")["mAP"] == pytest.approx(r["mAP"])
    assert r["cmc"] == pytest.approx([0.5, 0.75, 0.75, 0.75])
    assert (r["num_probes"], r["num_gallery"], r["num_without_match"], r["num_ap_queries"]) == (4, 4, 1, 3)


def test_a_probe_without_a_match_is_a_miss_not_skipped():
    with_d = rank_k(euclidean_distances(PROBES, GALLERY), PROBE_IDS, GALLERY_IDS, ks=(1, 4))
    without_d = rank_k(euclidean_distances(PROBES[[0, 1, 3]], GALLERY), PROBE_IDS[[0, 1, 3]], GALLERY_IDS, ks=(1, 4))
    assert with_d == {1: 0.5, 4: 0.75}          # 4 probes counted, D is a miss even at rank 4
    assert without_d[1] == pytest.approx(2 / 3) and without_d[4] == 1.0


def test_fast_ap_equals_sklearn_with_ties_and_exclusions():
    rng = np.random.default_rng(0)
    q = rng.integers(0, 4, size=(30, 2)).astype(float)      # small integers: many tied distances
    g = rng.integers(0, 4, size=(50, 2)).astype(float)
    qy, gy = rng.integers(0, 5, 30), rng.integers(0, 5, 50)
    d = euclidean_distances(q, g)
    excluded = rng.random((30, 50)) < 0.2
    for ex in (None, excluded):
        fast = average_precisions(d, qy, gy, ex)
        ref = sklearn_average_precisions(d, qy, gy, ex)
        assert np.array_equal(np.isnan(fast), np.isnan(ref))
        assert fast[~np.isnan(fast)] == pytest.approx(ref[~np.isnan(ref)], abs=1e-12)


def test_chunked_scoring_equals_one_chunk_and_groups_exclude():
    rng = np.random.default_rng(1)
    q, g = rng.normal(size=(37, 5)), rng.normal(size=(41, 5))
    qy, gy = rng.integers(0, 6, 37), rng.integers(0, 6, 41)
    a = score_unit(q, qy, g, gy, chunk=4)
    b = score_unit(q, qy, g, gy, chunk=1000)
    assert a == b
    # a probe whose only correct match is in its own group (walk) is a miss once that group is excluded
    r = score_unit(np.array([[0.0], [5.0]]), np.array([1, 2]), np.array([[0.0], [5.0]]), np.array([1, 2]),
                   probe_groups=np.array([7, 9]), gallery_groups=np.array([7, 8]))
    assert (r["rank1"], r["rank5"], r["num_without_match"], r["num_ap_queries"]) == (0.5, 0.5, 1, 1)


def test_subsequences_drop_ten_frames_each_end_and_the_remainder():
    walk = np.arange(45)[:, None]                      # 45 frames -> 25 kept -> 4 windows of 6, 1 dropped
    w = subsequences(walk, length=6, clip=10)
    assert w.shape == (4, 6, 1)
    assert w[0, :, 0].tolist() == list(range(10, 16)) and w[-1, -1, 0] == 33
    assert subsequences(np.arange(25)[:, None], 6, 10).shape == (0, 6, 1)


def test_walk_means():
    x = np.array([[0.0, 2.0], [2.0, 4.0], [10.0, 10.0]])
    means, ids = walk_means(x, np.array([5, 5, 3]))
    assert ids.tolist() == [3, 5] and means.tolist() == [[10.0, 10.0], [1.0, 3.0]]


def test_score_unit_fast_path_equals_sklearn_and_sorted_ranks_with_ties():
    rng = np.random.default_rng(2)
    q = rng.integers(0, 3, size=(40, 2)).astype(float)
    g = rng.integers(0, 3, size=(60, 2)).astype(float)
    qy, gy = rng.integers(0, 4, 40), rng.integers(0, 4, 60)
    qg, gg = rng.integers(0, 5, 40), rng.integers(0, 5, 60)
    for groups in ((None, None), (qg, gg)):
        fast = score_unit(q, qy, g, gy, *groups, chunk=7)
        slow = score_unit(q, qy, g, gy, *groups, ap="sklearn")
        assert fast["mAP"] == pytest.approx(slow["mAP"], abs=1e-12)
        d = euclidean_distances(q, g)
        ex = None if groups[0] is None else groups[1][None, :] == groups[0][:, None]
        rk = rank_k(d, qy, gy, ks=(1, 5, 10), excluded=ex)
        assert (fast["rank1"], fast["rank5"], fast["rank10"]) == (rk[1], rk[5], rk[10])


def test_the_sequence_unit_scores_ap_by_default_and_the_cme_preset_keeps_sc():
    # ap measured higher than sc per subsequence on 3 KGBD splits (docs/results/kgbd.md); CME is the paper's sc
    from skelreid.config import build_config
    from skelreid.evaluation.units import unit_features

    assert unit_features(build_config("KGBD").retrieval) == ["sc", "ap"]      # walk unit sc, sequence unit ap
    assert unit_features(build_config("CASIA_B_CME").retrieval) == ["sc"]
