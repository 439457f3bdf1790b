"""The evaluation protocols' glue (skelreid/evaluation/protocols.py): the per-view breakdown of the
legacy protocol matches score rows to windows by walk id and window position, never by row position."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from skelreid.config import build_config
from skelreid.data.windows import WindowSet
from skelreid.encoders import eval_set
from skelreid.evaluation.protocols import _per_view
from skelreid.features import reference_batch_order
from skelreid.models.seq2seq import GaitSeq2Seq

# (person label, walk id, view, windows): person 1's walks come first, so the reference's batches
# (person by person, in label order) reorder the windows without changing how many there are.
WALKS = [(1, "p1/a", "a", 3), (1, "p1/b", "b", 2), (0, "p0/a", "a", 2), (0, "p0/b", "b", 1)]


def _windows() -> WindowSet:
    label, walk, position = [], [], []
    for w, (lab, _, _, n) in enumerate(WALKS):
        label += [lab] * n
        walk += [w] * n
        position += list(range(n))
    data = np.random.default_rng(0).normal(size=(len(label), 6, 20, 3)).astype(np.float32)
    return WindowSet(data, np.array(label), np.array(walk), np.array(position), ["p0", "p1"],
                     [w for _, w, _, _ in WALKS], "kinect_v1")


def _scores(walk_of_row: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A recogniser right on every view-a window and wrong on every view-b one."""
    view = {w: v for _, w, v, _ in WALKS}
    guess = np.where([view[w] == "a" for w in walk_of_row], labels, 1 - labels)
    return np.eye(2, dtype=np.float32)[guess]


@pytest.mark.parametrize("model", ["rev_rec", "rev_rec_plus"])
def test_per_view_matches_rows_by_walk_and_window_with_reference_quirks(model):
    """rev_rec: the test windows are reordered (equal length); rev_rec_plus: also padded with copies."""
    ws = _windows()
    cfg = build_config("synthetic", [{"reference_quirks": True, "encoder": {"model": model, "hidden": 4},
                                      "progress": False}])
    torch.manual_seed(0)
    models = {"rev_rec_LA": GaitSeq2Seq(num_joints=20, length=6, hidden=4, layers=1, proj_dim=4).eval()}
    test = eval_set(cfg, models, ws, torch.device("cpu"), training=False)
    order = reference_batch_order(ws.label, pad=model == "rev_rec_plus")
    assert (len(order) == len(ws)) == (model == "rev_rec") and not np.array_equal(order, np.arange(len(order)))
    walk_of_row = np.asarray(ws.walks)[ws.walk[order]]
    assert test.walk.tolist() == walk_of_row.tolist()
    assert test.position.tolist() == ws.position[order].tolist()
    p = SimpleNamespace(walk_view={w: v for _, w, v, _ in WALKS})
    views = _per_view(p, test, _scores(walk_of_row, test.y))
    assert views == {"a": {"rank1": 1.0, "windows": 5}, "b": {"rank1": 0.0, "windows": 3}}


def test_per_view_refuses_scores_of_other_windows():
    ws = _windows()
    cfg = build_config("synthetic", [{"encoder": {"hidden": 4}, "progress": False}])
    models = {"rev_rec_LA": GaitSeq2Seq(num_joints=20, length=6, hidden=4, layers=1, proj_dim=4).eval()}
    test = eval_set(cfg, models, ws, torch.device("cpu"), training=False)
    p = SimpleNamespace(walk_view={w: v for _, w, v, _ in WALKS})
    with pytest.raises(ValueError, match="8 windows"):
        _per_view(p, test, np.zeros((len(test.y) - 1, 2), np.float32))
