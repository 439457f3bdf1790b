"""Report figures: each function writes one valid PNG atomically and leaves nothing behind."""
from __future__ import annotations

import numpy as np
import pytest

from skelreid.reports.plots import (
    pca_2d,
    plot_attention,
    plot_cmc,
    plot_confusion,
    plot_embedding,
    plot_loss_curves,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path, folder):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1024
    assert sorted(p.name for p in folder.iterdir()) == [path.name]  # no temporary file left


def _objective(f):
    t = np.arange(f)[:, None]
    s = np.arange(f)[None, :]
    return np.exp(-((s - (f - 1 - t)) ** 2) / (2 * (f / 2) ** 2))


def test_plot_cmc(tmp_path):
    rng = np.random.default_rng(0)
    curves = {
        "test-selected": np.sort(rng.uniform(0.3, 1.0, size=164)),
        "val-selected": np.sort(rng.uniform(0.2, 1.0, size=164)),
        "short": [0.5, 0.75, 1.0],
    }
    out = plot_cmc(curves, tmp_path / "cmc.png", title="KGBD")
    _check_png(out, tmp_path)


def test_plot_cmc_rejects_percentages(tmp_path):
    with pytest.raises(ValueError):
        plot_cmc({"a": [50.0, 100.0]}, tmp_path / "cmc.png")
    assert list(tmp_path.iterdir()) == []


def test_plot_confusion_164_classes(tmp_path):
    rng = np.random.default_rng(0)
    c = 164
    m = rng.integers(0, 3, size=(c, c)) + np.diag(rng.integers(5, 20, size=c))
    out = plot_confusion(m, tmp_path / "confusion.png", title="164 classes")
    _check_png(out, tmp_path)


def test_plot_confusion_small_with_names(tmp_path):
    m = np.array([[3, 1, 0], [0, 2, 0], [1, 0, 4]])
    out = plot_confusion(m, tmp_path / "sub" / "confusion.png", class_names=["a", "b", "c"])
    _check_png(out, tmp_path / "sub")
    with pytest.raises(ValueError):
        plot_confusion(m, tmp_path / "x.png", class_names=["a"])


@pytest.mark.parametrize("f", [6, 20])
def test_plot_attention(tmp_path, f):
    rng = np.random.default_rng(f)
    att = {}
    for axis in "xyz":
        a = rng.uniform(size=(f, f))
        att[axis] = a / a.sum(axis=1, keepdims=True)
    out = plot_attention(att, _objective(f), tmp_path / "attention.png", title=f"f = {f}")
    _check_png(out, tmp_path)


def test_plot_attention_single_matrix(tmp_path):
    out = plot_attention(np.full((4, 4), 0.25), _objective(4), tmp_path / "a.png")
    _check_png(out, tmp_path)


@pytest.mark.parametrize("persons", [5, 164])
def test_plot_embedding(tmp_path, persons):
    rng = np.random.default_rng(persons)
    labels = rng.integers(0, persons, size=4000)
    features = rng.normal(size=(persons, 32))[labels] + 0.3 * rng.normal(size=(4000, 32))
    out = plot_embedding(features, labels, tmp_path / "embedding.png", max_points=1500)
    _check_png(out, tmp_path)


def test_plot_embedding_tsne(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 15)
    features = rng.normal(size=(4, 8))[labels] + 0.1 * rng.normal(size=(60, 8))
    out = plot_embedding(features, labels, tmp_path / "tsne.png", method="tsne")
    _check_png(out, tmp_path)


def test_pca_2d_is_deterministic_and_correct():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2)) * np.array([5.0, 1.0]) @ np.array([[0.6, 0.8], [-0.8, 0.6]])
    x = np.column_stack([x, np.zeros(100)])
    proj = pca_2d(x)
    assert proj.shape == (100, 2)
    np.testing.assert_allclose(proj, pca_2d(x.copy()))
    # the first component carries the large variance, and all of it is kept
    assert proj[:, 0].var() > 10 * proj[:, 1].var()
    np.testing.assert_allclose((proj ** 2).sum(), ((x - x.mean(0)) ** 2).sum())
    assert pca_2d(np.ones((3, 1))).shape == (3, 2)


def test_plot_loss_curves(tmp_path):
    table = {
        "reconstruction": list(np.geomspace(100.0, 5.0, 40)),
        "attention": list(np.geomspace(3.0, 0.1, 40)),
        "contrastive": list(np.linspace(4.0, 2.0, 40)),
    }
    out = plot_loss_curves(table, tmp_path / "loss.png", title="losses")
    _check_png(out, tmp_path)


def test_plot_loss_curves_non_positive_and_nan(tmp_path):
    out = plot_loss_curves({"a": [1.0, -0.5, float("nan"), 0.2]}, tmp_path / "loss.png")
    _check_png(out, tmp_path)


def test_overwrites_atomically(tmp_path):
    path = tmp_path / "cmc.png"
    path.write_bytes(b"old")
    plot_cmc({"a": [0.5, 1.0]}, path)
    _check_png(path, tmp_path)
