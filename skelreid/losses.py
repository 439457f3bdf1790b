"""Self-supervised encoder losses of AGE / CAGE (spec §2.3, 2.4, 2.6, 2.7).

Every function takes tensors whose dim 0 is the axis (``A`` independent models)
and returns a per-axis tensor ``[A]``. Callers sum over axes before calling
``backward``; since axis ``a``'s loss only depends on axis ``a``'s parameters,
each axis still receives exactly its own gradient.

Scales follow the reference (spec §7.I): reconstruction, LA and L2 are
*sums* (× 0.5), the contrastive loss is a *mean* over its 2N anchors, and all
weights are 1 except the L2 weight 0.02.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple

import torch
from torch import Tensor

L2_WEIGHT = 0.02


def _per_axis_sum(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1).sum(dim=1)


def reconstruction_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``0.5 · Σ_{b,t,j} (ŷ − y)²`` per axis. ``pred``/``target`` ``[A, B, f, J]`` -> ``[A]``.

    A sum over batch, frames and joints, not a mean (spec §2.3).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {list(pred.shape)} and target {list(target.shape)} differ")
    return 0.5 * _per_axis_sum((pred - target).square())


def la_objective(length: int, reverse: bool = True, *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> Tensor:
    """Locality-aware attention target ``O`` ``[f, f]`` (row = decoder step t, column = encoder position s).

    ``O[t, s] = exp(−(s − p_t)² / (2·(f/2)²))`` with ``p_t = f−1−t`` when
    ``reverse`` (the reversed-reconstruction default) else ``p_t = t``.
    """
    f = int(length)
    if f < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    t = torch.arange(f, dtype=torch.float64).unsqueeze(1)
    s = torch.arange(f, dtype=torch.float64).unsqueeze(0)
    centre = (f - 1 - t) if reverse else t
    sigma = f / 2.0
    obj = torch.exp(-(s - centre).square() / (2.0 * sigma * sigma))
    return obj.to(dtype=dtype, device=device)


def la_loss(attention: Tensor, objective: Tensor) -> Tensor:
    """``0.5 · Σ_{b,t,s} (α · (1 − O))²`` per axis. ``attention`` ``[A, B, f, f]``, ``objective`` ``[f, f]`` -> ``[A]``."""
    if attention.shape[-2:] != objective.shape:
        raise ValueError(f"attention {list(attention.shape)} does not match objective {list(objective.shape)}")
    return 0.5 * _per_axis_sum((attention * (1.0 - objective.to(attention))).square())


def cage_contrastive_loss(v: Tensor, temperature: float) -> Tensor:
    """CAGE locality-aware NT-Xent on batch neighbours (spec §2.6). ``v`` ``[A, B, D]`` -> ``[A]``.

    With ``N = B − 1``: ``z = [v_1..v_{B−1} ; v_0..v_{B−2}]`` (2N rows),
    ``sim = cos(z_i, z_j) / t``; the positive of row ``i < N`` is ``i + N`` and of
    row ``i ≥ N`` is ``i − N``;
    ``loss_i = −sim[i, pos(i)] + log Σ_{j≠i} exp(sim[i, j])``; the mean over the 2N rows.
    The denominator keeps every other row, including the exact duplicates that
    the shifted-copy construction creates.
    """
    if v.dim() != 3:
        raise ValueError(f"expected projections [A, B, D], got {list(v.shape)}")
    B = v.shape[1]
    if B < 2:
        raise ValueError(f"the contrastive loss needs a batch of at least 2, got {B}")
    N = B - 1
    z = torch.cat((v[:, 1:], v[:, :-1]), dim=1)                              # [A, 2N, D]
    norms = torch.linalg.vector_norm(z, dim=-1)                              # [A, 2N]
    denom = (norms.unsqueeze(-1) * norms.unsqueeze(-2)).clamp_min(torch.finfo(z.dtype).tiny)
    sim = torch.bmm(z, z.transpose(1, 2)) / denom / temperature              # [A, 2N, 2N]
    rows = torch.arange(2 * N, device=v.device)
    pos = (rows + N) % (2 * N)
    positives = sim[:, rows, pos]                                            # [A, 2N]
    eye = torch.eye(2 * N, dtype=torch.bool, device=v.device)
    lse = torch.logsumexp(sim.masked_fill(eye, float("-inf")), dim=-1)      # over j != i
    return (lse - positives).mean(dim=-1)


def l2_penalty(params: Iterable[Tensor], weight: float = L2_WEIGHT) -> Tensor:
    """``weight · Σ_p ½‖p‖²`` per axis over every given parameter (biases and head included, spec §2.7).

    Each parameter's dim 0 is the axis. Returns ``[A]``.
    """
    total = None
    for p in params:
        term = 0.5 * _per_axis_sum(p.square())
        if total is not None and term.shape != total.shape:
            raise ValueError(f"parameter with {p.shape[0]} axes among parameters with {total.shape[0]}")
        total = term if total is None else total + term
    if total is None:
        raise ValueError("l2_penalty needs at least one parameter")
    return weight * total


class LossTerms(NamedTuple):
    """Per-axis loss terms ``[A]``; ``attention``/``contrastive`` are zeros when disabled."""

    reconstruction: Tensor
    attention: Tensor
    contrastive: Tensor
    l2: Tensor
    total: Tensor


def encoder_objective(out, target: Tensor, params: Iterable[Tensor], *,
                      la_target: Tensor | None = None, temperature: float | None = None,
                      l2_weight: float = L2_WEIGHT) -> LossTerms:
    """Total per-axis encoder cost (spec §2.7): ``rec + [LA] + [contrastive] + L2``.

    ``out`` is a forward result with ``.output``, ``.attention`` and ``.projection``;
    ``la_target`` (from :func:`la_objective`) enables the LA term; ``temperature``
    enables the contrastive term (the output must carry a projection).
    """
    rec = reconstruction_loss(out.output, target)
    zeros = torch.zeros_like(rec)
    att = la_loss(out.attention, la_target) if la_target is not None else zeros
    if temperature is not None:
        if out.projection is None:
            raise ValueError("a contrastive temperature was given but the model has no projection head")
        con = cage_contrastive_loss(out.projection, temperature)
    else:
        con = zeros
    l2 = l2_penalty(params, l2_weight)
    return LossTerms(rec, att, con, l2, rec + att + con + l2)
