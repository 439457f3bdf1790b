"""A cheap accuracy monitor while the encoders train: walk-level nearest-neighbour Rank-1.

Every ``monitor_every`` encoder epochs the encoder being trained embeds a fixed
sample of the walks it learns from, and each *validation* walk is matched to
its nearest *training* walk (Euclidean distance between walk features, the mean
of the windows' features, as in the probe/gallery protocol). Labels are used
only to score the match. Without a validation split (the probe/gallery
protocol), every training walk is matched against the other training walks
(leave-one-walk-out). Test, probe and gallery walks are never read: the monitor
is built from the encoders' own training set.

Cost: at most ``monitor_windows`` evenly spaced windows of each walk are
embedded (default 32: a walk feature averaged over fewer windows was measured to
be too noisy to follow training on KGBD, see ``docs/results/kgbd_convergence.md``,
which also gives the measured cost: 13 % of a KGBD epoch on 2 CPU cores, embedding
being a forward pass only, over a third of the training windows). The monitor draws no
random numbers and changes no weights, so training with it gives the same
weights as without.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.windows import WindowSet
from ..errors import SkelreidError
from ..evaluation.retrieval import evaluate_features, sequence_features


def sample_windows(ws: WindowSet, per_walk: int) -> np.ndarray:
    """Indices of at most ``per_walk`` evenly spaced windows of every walk, in window order."""
    keep = []
    for w in np.unique(ws.walk):
        idx = np.flatnonzero(ws.walk == w)
        if len(idx) > per_walk:
            idx = idx[np.linspace(0, len(idx) - 1, per_walk).round().astype(np.int64)]
        keep.append(idx)
    return np.concatenate(keep) if keep else np.zeros(0, np.int64)


@dataclass
class WalkMonitor:
    """Nearest-neighbour Rank-1 of ``probe`` walks against ``gallery`` walks, from one encoder."""

    windows: np.ndarray          # [N, f, J, D] sampled windows of every monitored walk
    walk: np.ndarray             # [N] walk index of each window
    person: np.ndarray           # [N] person label of each window (scoring only)
    is_probe: np.ndarray         # [N] True for windows of probe (validation) walks
    leave_one_out: bool          # no validation walks: training walks against each other
    feature: str = "sc"
    per_walk: int = 32

    @classmethod
    def build(cls, train: WindowSet, val: WindowSet | None, per_walk: int = 32, feature: str = "sc"
              ) -> "WalkMonitor | None":
        """``None`` when there is nothing to score (fewer than two walks of some person to match)."""
        parts = [(train, False)] + ([(val, True)] if val is not None and len(val) else [])
        xs, walks, persons, probe = [], [], [], []
        for ws, is_val in parts:
            idx = sample_windows(ws, per_walk)
            xs.append(ws.data[idx])
            walks.append(ws.walk[idx])
            persons.append(ws.label[idx])
            probe.append(np.full(len(idx), is_val))
        mon = cls(np.concatenate(xs), np.concatenate(walks), np.concatenate(persons), np.concatenate(probe),
                  leave_one_out=len(parts) == 1, feature=feature, per_walk=per_walk)
        walk_person = dict(zip(mon.walk.tolist(), mon.person.tolist()))
        counts = np.bincount(list(walk_person.values())) if walk_person else np.zeros(0)
        return mon if len(walk_person) >= 2 and (counts >= 2).any() else None

    @property
    def rule(self) -> str:
        return ("training walks, leave-one-walk-out" if self.leave_one_out
                else "validation walks against training walks")

    @torch.no_grad()
    def rank1(self, model, device: torch.device) -> float:
        from ..features import window_vectors
        from .encoder import embed_windows

        ctx = embed_windows(model, self.windows, device)[:, None]          # [N, 1, A, f, H]
        vec = window_vectors(ctx, self.feature)
        feats, walk_ids = sequence_features(vec, self.walk, how="mean")
        first = {w: i for i, w in reversed(list(enumerate(self.walk.tolist())))}
        person = np.array([self.person[first[w]] for w in walk_ids.tolist()])
        probe = np.array([bool(self.is_probe[first[w]]) for w in walk_ids.tolist()])
        gallery = ~probe
        if self.leave_one_out:
            probe = gallery
        try:
            rep = evaluate_features(feats[probe], person[probe], feats[gallery], person[gallery],
                                    probe_walks=walk_ids[probe], gallery_walks=walk_ids[gallery], max_rank=1)
        except SkelreidError:  # no probe has a match (tiny data): nothing to report this time
            return float("nan")
        return rep["rank1"]
