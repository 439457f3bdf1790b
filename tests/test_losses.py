"""Encoder losses: exact formulas of spec §2.3, 2.4, 2.6, 2.7."""
from __future__ import annotations

import math

import pytest
import torch

from skelreid.losses import (
    cage_contrastive_loss,
    encoder_objective,
    l2_penalty,
    la_loss,
    la_objective,
    reconstruction_loss,
)

SPEC_O6 = [
    [0.249, 0.411, 0.607, 0.801, 0.946, 1.000],
    [0.411, 0.607, 0.801, 0.946, 1.000, 0.946],
    [0.607, 0.801, 0.946, 1.000, 0.946, 0.801],
    [0.801, 0.946, 1.000, 0.946, 0.801, 0.607],
    [0.946, 1.000, 0.946, 0.801, 0.607, 0.411],
    [1.000, 0.946, 0.801, 0.607, 0.411, 0.249],
]


def test_la_objective_f6_matches_spec_matrix():
    O = la_objective(6)
    assert O.shape == (6, 6)
    assert torch.allclose(O.double(), torch.tensor(SPEC_O6, dtype=torch.float64), atol=5e-4)
    rounded = la_objective(6, dtype=torch.float64).round(decimals=3)
    assert torch.allclose(rounded, torch.tensor(SPEC_O6, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("f", [4, 6, 10])
def test_la_objective_centres(f):
    rev = la_objective(f, dtype=torch.float64)
    fwd = la_objective(f, reverse=False, dtype=torch.float64)
    for t in range(f):
        assert rev[t, f - 1 - t] == 1.0 and fwd[t, t] == 1.0
        for s in range(f):
            expect = math.exp(-((s - (f - 1 - t)) ** 2) / (2 * (f / 2) ** 2))
            assert rev[t, s].item() == pytest.approx(expect, rel=1e-12)
    assert torch.equal(rev, fwd.flip(0))


def test_la_loss_equals_direct_formula():
    g = torch.Generator().manual_seed(0)
    A, B, f = 3, 5, 6
    att = torch.softmax(torch.randn(A, B, f, f, generator=g, dtype=torch.float64), dim=-1)
    O = la_objective(f, dtype=torch.float64)
    got = la_loss(att, O)
    assert got.shape == (A,)
    for a in range(A):
        direct = 0.0
        for b in range(B):
            for t in range(f):
                for s in range(f):
                    direct += (att[a, b, t, s].item() * (1 - O[t, s].item())) ** 2
        assert got[a].item() == pytest.approx(0.5 * direct, rel=1e-12)


def test_la_loss_zero_for_one_hot_anti_diagonal_and_positive_otherwise():
    f, B = 6, 4
    O = la_objective(f)
    anti = torch.eye(f).flip(1).expand(2, B, f, f)
    assert torch.equal(la_loss(anti, O), torch.zeros(2))
    diag = torch.eye(f).expand(2, B, f, f)          # attends to the un-mirrored position
    assert (la_loss(diag, O) > 0).all()


def test_reconstruction_is_half_sum_of_squares_per_axis():
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(3, 4, 6, 20, generator=g, dtype=torch.float64)
    tgt = torch.randn(3, 4, 6, 20, generator=g, dtype=torch.float64)
    got = reconstruction_loss(pred, tgt)
    assert got.shape == (3,)
    for a in range(3):
        assert got[a].item() == pytest.approx(0.5 * ((pred[a] - tgt[a]) ** 2).sum().item(), rel=1e-12)
    # A sum, not a mean: doubling the batch (same rows twice) doubles the loss.
    doubled = reconstruction_loss(torch.cat((pred, pred), 1), torch.cat((tgt, tgt), 1))
    assert torch.allclose(doubled, 2 * got, rtol=1e-12)
    # Axis 1 only depends on axis 1.
    pred2 = pred.clone()
    pred2[1] += 1
    changed = reconstruction_loss(pred2, tgt)
    assert changed[0] == got[0] and changed[2] == got[2] and changed[1] != got[1]


def _spec_contrastive_loop(v: torch.Tensor, t: float) -> float:
    """Row-by-row port of the spec §2.6 formula for one axis (v: [B, D])."""
    z = torch.cat((v[1:], v[:-1]))
    n = v.shape[0] - 1
    norms = z.norm(dim=1)
    sim = (z @ z.T) / (t * norms[:, None] * norms[None, :])
    e = torch.exp(sim)
    loss = 0.0
    for i in range(n):
        loss -= math.log(e[i, i + n].item() / (e[i, :].sum().item() - e[i, i].item()))
        loss -= math.log(e[i + n, i].item() / (e[i + n, :].sum().item() - e[i + n, i + n].item()))
    return loss / (2 * n)


@pytest.mark.parametrize("t", [0.1, 0.5, 0.15])
def test_contrastive_equals_spec_loop(t):
    g = torch.Generator().manual_seed(2)
    v = torch.randn(3, 9, 7, generator=g, dtype=torch.float64)
    got = cage_contrastive_loss(v, t)
    assert got.shape == (3,)
    for a in range(3):
        assert got[a].item() == pytest.approx(_spec_contrastive_loop(v[a], t), rel=1e-10)


def test_contrastive_counts_duplicate_rows_in_denominator():
    # Anchor z_0 = v_1 has an exact copy z_{N+1} = v_1 in its denominator, which caps how small
    # the loss can get: identical consecutive vectors cannot reach zero loss.
    v = torch.ones(1, 4, 3, dtype=torch.float64)
    n = 3
    # all 2N rows equal: sim = 1/t everywhere; loss_i = -1/t + log((2N-1) e^{1/t}) = log(2N-1)
    assert cage_contrastive_loss(v, 0.1).item() == pytest.approx(math.log(2 * n - 1), rel=1e-12)


def test_contrastive_gradients_stay_per_axis():
    g = torch.Generator().manual_seed(3)
    v = torch.randn(3, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    cage_contrastive_loss(v, 0.1)[1].backward()
    assert torch.equal(v.grad[0], torch.zeros_like(v.grad[0]))
    assert torch.equal(v.grad[2], torch.zeros_like(v.grad[2]))
    assert v.grad[1].abs().sum() > 0


def test_contrastive_relation_to_pytorch_metric_learning():
    """What pytorch-metric-learning computes, and how it relates to the spec construction.

    ``SelfSupervisedLoss(NTXentLoss(t), symmetric=True)(embeddings=v[1:], ref_emb=v[:-1])``
    concatenates ``z = [v[1:]; v[:-1]]`` (exactly our 2N rows, same order) with labels
    ``[0..N-1, 0..N-1]``. For every anchor row i it uses the one row j ≠ i with the same
    label (i ± N, our positive) as positive and *every* row with a different label as
    negative; the diagonal is excluded. Positive ∪ negatives is therefore exactly
    {j ≠ i}, i.e. our denominator — the duplicate copies of the anchor and of the positive
    (shifted-copy artefacts) carry different labels and so count as negatives in both.
    The loss is ``-log(e^{pos}/(e^{pos} + Σ_neg e^{neg}))`` averaged over all 2N positive
    pairs (MeanReducer). Differences are numerical only: PML normalises the vectors first
    (cosine via F.normalize), subtracts a row max, and adds ``finfo.tiny`` inside the log.
    So the values agree to float64 round-off; we assert that.

    The non-symmetric variant (``symmetric=False``) differs: anchors are only v[1:], the
    candidates only v[:-1] (N terms, no anchor-to-anchor similarities, no duplicates of the
    anchor), so it is a different loss; we assert that it is not equal.
    """
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    g = torch.Generator().manual_seed(4)
    for t in (0.1, 0.5):
        v = torch.randn(2, 12, 8, generator=g, dtype=torch.float64)
        ours = cage_contrastive_loss(v, t)
        sym = pml_losses.SelfSupervisedLoss(pml_losses.NTXentLoss(temperature=t), symmetric=True)
        asym = pml_losses.SelfSupervisedLoss(pml_losses.NTXentLoss(temperature=t), symmetric=False)
        for a in range(2):
            ref = sym(v[a, 1:], v[a, :-1])
            assert ours[a].item() == pytest.approx(ref.item(), rel=1e-12, abs=1e-12)
            other = asym(v[a, 1:], v[a, :-1])
            assert abs(ours[a].item() - other.item()) > 1e-3


def test_contrastive_needs_two_rows():
    with pytest.raises(ValueError):
        cage_contrastive_loss(torch.randn(3, 1, 4), 0.1)


def test_l2_penalty_per_axis_on_known_params():
    w = torch.tensor([[[1.0, 2.0]], [[3.0, 0.0]]])      # [A=2, 1, 2]
    b = torch.tensor([[1.0], [-2.0]])                   # [A=2, 1] (a bias is penalised too)
    got = l2_penalty([w, b], weight=0.02)
    # axis 0: 0.5*(1+4) + 0.5*1 = 3.0 ; axis 1: 0.5*9 + 0.5*4 = 6.5
    assert torch.allclose(got, torch.tensor([0.02 * 3.0, 0.02 * 6.5]))
    assert torch.allclose(l2_penalty([w, b], weight=1.0), torch.tensor([3.0, 6.5]))
    with pytest.raises(ValueError):
        l2_penalty([w, torch.ones(3, 2)])


def test_encoder_objective_sums_terms():
    from types import SimpleNamespace

    g = torch.Generator().manual_seed(5)
    A, B, f, J = 3, 6, 4, 5
    out = SimpleNamespace(
        output=torch.randn(A, B, f, J, generator=g),
        attention=torch.softmax(torch.randn(A, B, f, f, generator=g), -1),
        projection=torch.randn(A, B, 8, generator=g),
    )
    tgt = torch.randn(A, B, f, J, generator=g)
    params = [torch.randn(A, 3, 2, generator=g), torch.randn(A, 7, generator=g)]
    O = la_objective(f)
    terms = encoder_objective(out, tgt, params, la_target=O, temperature=0.1)
    assert torch.allclose(terms.reconstruction, reconstruction_loss(out.output, tgt))
    assert torch.allclose(terms.attention, la_loss(out.attention, O))
    assert torch.allclose(terms.contrastive, cage_contrastive_loss(out.projection, 0.1))
    assert torch.allclose(terms.l2, l2_penalty(params))
    assert torch.allclose(terms.total, terms.reconstruction + terms.attention + terms.contrastive + terms.l2)
    bare = encoder_objective(out, tgt, params)       # AGE-BA: no LA, no contrastive
    assert torch.equal(bare.attention, torch.zeros(A)) and torch.equal(bare.contrastive, torch.zeros(A))


def test_la_attention_target_is_anti_diagonal_for_every_pretext_task(monkeypatch):
    """The reference's behaviour (spec §2.4, docs/model.md): with --attention LA, prediction and sorting
    train towards the same reversed target as rev_rec, although their targets are not reversed."""
    import numpy as np

    from skelreid.config import build_config
    from skelreid.data.synthetic import generate_dataset
    from skelreid.data.windows import make_windows
    from skelreid.pretext import TASKS
    from skelreid.training import encoder as enc

    anti = la_objective(6, reverse=True)
    assert torch.equal(enc.attention_target("LA", 6), anti)
    assert not torch.equal(anti, la_objective(6, reverse=False))
    assert torch.argmax(anti, dim=1).tolist() == [5, 4, 3, 2, 1, 0]
    assert enc.attention_target("BA", 6) is None

    seen = []
    real = enc.L.encoder_objective

    def spy(out, y, params, la_target=None, **kw):
        seen.append(None if la_target is None else la_target.detach().cpu().clone())
        return real(out, y, params, la_target=la_target, **kw)

    monkeypatch.setattr(enc.L, "encoder_objective", spy)
    ws = make_windows(generate_dataset(num_persons=2, walks_per_person=2, frames=(40, 44), seed=1),
                      length=6, clip=2, normalise="root")
    cfg = build_config("synthetic", [{"encoder": {"epochs": 1, "hidden": 4, "proj_dim": 4, "batch_size": 8},
                                      "progress": False}])
    for task in ("rev_rec", "prediction", "sorting"):
        for attention in ("LA", "BA"):
            seen.clear()
            x, y = TASKS.get(task).make(ws, 0)
            enc.train_encoder(np.ascontiguousarray(x), np.ascontiguousarray(y), enc.EncoderSpec(task, attention),
                              cfg, torch.device("cpu"))
            assert seen, (task, attention)
            for target in seen:
                assert (target is None) if attention == "BA" else torch.equal(target, anti), (task, attention)
