"""From a split to its metrics: the legacy protocol (a recognition network per selection rule,
per-view breakdowns) and the probe/gallery protocol (retrieval for every probe/gallery pair).

``p`` is always a :class:`skelreid.pipeline.Prepared` (the split and its windows); this floor sits
below the pipeline, so it is not imported here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..data.records import natural_key
from ..encoders import PAPER_LIKE, contexts, selection_rules, split_eval_set
from ..errors import ConfigError
from ..features import window_vectors
from ..training.checkpoint import load_checkpoint
from ..training.recognition import EvalSet, RecognitionNet, window_logits
from .metrics import classification_report
from .retrieval import evaluate_retrieval, pairwise_euclidean, sequence_features
from .units import pair_units, unit_features


def load_rn(run_dir: Path, rule: str, device: torch.device) -> tuple[RecognitionNet, dict]:
    prefix = run_dir / "rn" / rule
    if not prefix.with_suffix(".json").exists():
        raise ConfigError(f"{run_dir}: no recognition network selected by '{rule}'; run the rn stage first")
    tensors, meta = load_checkpoint(prefix)
    net = RecognitionNet(meta["in_features"], meta["num_classes"], meta["hidden"])
    net.load_state_dict(tensors)
    return net.to(device).eval(), meta


def evaluate_legacy(cfg: RunConfig, p, models: dict, run_dir: Path, device: torch.device) -> dict:
    """Score every legacy test split with the RN of every selection rule.

    With ``rn.select=test`` and several test splits (IAS-A / IAS-B), each split is
    scored with the epoch chosen on that split, as the reference code does.
    """
    rules = selection_rules(cfg, len(p.splits.get("val", [])) > 0)
    out: dict = {"selection": rules[0], "tests": {}, "primary_test": p.tests[0]}
    nets = {}
    for name in p.tests:
        test = split_eval_set(cfg, p, models, name, device)
        entry: dict = {"by_selection": {}, "scores": {}}
        for rule in rules:
            key = _rn_name(run_dir, rule, name)
            if key not in nets:
                nets[key] = load_rn(run_dir, key, device)
            net, meta = nets[key]
            rule_test = split_eval_set(cfg, p, models, name, device, rule=rule) if rule == PAPER_LIKE else test
            scores = window_logits(net, rule_test, device)
            rep = classification_report(scores, rule_test.y, len(p.windows.persons))
            rep["epoch"] = meta["epoch"]
            rep["test_windows"] = int(len(rule_test.y))
            entry["by_selection"][rule] = rep
            entry["scores"][rule] = scores
        views = _per_view(p, test, entry["scores"][rules[0]]) if rules[0] != PAPER_LIKE else {}
        if views:
            entry["per_view"] = views
        out["tests"][name] = entry
        if name == p.tests[0]:
            out["by_selection"], out["scores"] = entry["by_selection"], entry["scores"]
            out["test_features"] = test.x.reshape(len(test.y), test.rows_per_window, -1).mean(axis=1)
            out["test_labels"] = test.y
    return out


def _rn_name(run_dir: Path, rule: str, test_name: str) -> str:
    """The saved RN of a rule; test selection may have one RN per test split."""
    per_split = f"{rule}-{test_name}"
    if rule in ("test", PAPER_LIKE) and (run_dir / "rn" / f"{per_split}.json").exists():
        return per_split
    return rule


def _per_view(p, test: EvalSet, scores: np.ndarray) -> dict:
    """Rank-1 of the scored test windows of each view, when the test split has several views.

    ``scores[i]`` belongs to window ``i`` of ``test``, whose walk id and position name it: the view
    is looked up by walk, never by row position, and a window scored more than once
    (``reference_quirks`` pads a person's windows with copies of its first) counts once. Windows the
    reference cut are not in ``test`` and not in the breakdown.
    """
    if not p.walk_view or test.walk is None or test.position is None:
        return {}
    if len(scores) != len(test.y) or len(test.walk) != len(test.y):
        raise ValueError(f"per-view breakdown: {len(scores)} score rows for {len(test.y)} windows")
    first: dict = {}
    for i, key in enumerate(zip(test.walk.tolist(), np.asarray(test.position).tolist())):
        first.setdefault(key, i)
    rows = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    view_of = np.array([p.walk_view.get(w, "") for w, _ in first], dtype=object)
    views = [v for v in dict.fromkeys(view_of.tolist()) if v]
    if len(views) < 2:
        return {}
    hit = scores[rows].argmax(1) == np.asarray(test.y)[rows]
    return {v: {"rank1": float(hit[view_of == v].mean()), "windows": int((view_of == v).sum())}
            for v in sorted(views, key=natural_key)}


def evaluate_probe_gallery(cfg: RunConfig, p, models: dict, device: torch.device) -> dict:
    """Retrieval for every probe/gallery pair (same-walk matches excluded by walk id)."""
    feats: dict = {}
    vecs: dict = {}

    def vectors(name: str, feature: str):  # one encoder pass per split, every window feature needed
        if name not in vecs:
            c = contexts(cfg, models, p.splits[name], device, training=False)
            vecs[name] = {f: window_vectors(c, f) for f in unit_features(cfg.retrieval)}
        return vecs[name][feature]

    def features(name: str):
        if name not in feats:
            ws = p.splits[name]
            vec = vectors(name, cfg.retrieval.feature)
            if cfg.retrieval.pooling == "mean":
                pooled, walk_idx = sequence_features(vec, ws.walk, how="mean")
                walk_idx = np.asarray(walk_idx)
                feats[name] = (pooled, ws.walk_person[walk_idx], walk_idx)
            elif cfg.data.source in ("reference_npy", "successors_npy"):
                # The authors' files have no walk boundaries (one pseudo-walk per person and split):
                # exclude only the probe window itself, as the reference's 2nd-nearest rule intends.
                feats[name] = (vec, ws.label, ws.walk * len(p.windows) + ws.position)
            else:
                feats[name] = (vec, ws.label, ws.walk)
        return feats[name]

    out: dict = {"pairs": {}}
    for pair in p.pairs:
        (g, gy, gw), (q, qy, qw) = features(pair["gallery"]), features(pair["probe"])
        rep = evaluate_retrieval(pairwise_euclidean(q, g), qy, gy, probe_walks=qw, gallery_walks=gw)
        rep["features"] = {"window": cfg.retrieval.feature, "pooling": cfg.retrieval.pooling}
        rep["probe"], rep["gallery"] = pair["probe"], pair["gallery"]
        rep["units"] = pair_units(cfg.retrieval, lambda n, f: vectors(n, f), p.splits[pair["probe"]],
                                  p.splits[pair["gallery"]], pair["probe"], pair["gallery"],
                                  per_window_groups=cfg.data.source != "raw")
        out["pairs"][pair["name"]] = rep
        if "retrieval" not in out:
            out.update(retrieval=rep, primary_pair=pair["name"], test_features=q, test_labels=qy)
    return out
