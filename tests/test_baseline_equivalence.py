"""The optimised axis-batched encoder equals the plain per-axis baseline (skelreid.models.baseline).

Both paths see the same weights and the same real-looking windows (synthetic
Kinect walkers, cut into f = 6 windows). They must agree on every CAGE loss term
(reconstruction, LA attention, contrastive, L2) in a forward pass, and after
three Adam steps with clipping (so their gradients agree too). The last tests
check that this comparison has teeth: a changed forget bias or a changed
attention in either path breaks the agreement.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from skelreid import losses as L
from skelreid.config import build_config, parse_set
from skelreid.data.synthetic import generate_dataset
from skelreid.data.windows import make_windows
from skelreid.models.baseline import TERMS, TF_FORGET_BIAS, BaselineAxisModel, baseline_models, baseline_train_steps
from skelreid.models.seq2seq import GaitSeq2Seq
from skelreid.pretext import TASKS
from skelreid.training.encoder import batch_order, build_model, step_losses, to_axis_major, train_encoder

HIDDEN, LENGTH, BATCH, TEMPERATURE, L2W, LR, CLIP = 32, 6, 16, 0.5, 0.02, 5e-4, 5.0
LOSS_TERMS = ("reconstruction", "attention", "contrastive", "l2")


@pytest.fixture(scope="module")
def windows():
    """Real-looking rev_rec pairs: 2 synthetic persons x 2 walks, f = 6, at least 3 batches of 16."""
    ws = make_windows(generate_dataset(num_persons=2, walks_per_person=2, frames=(110, 130), seed=3),
                      length=LENGTH, clip=10)
    x, y = TASKS.get("rev_rec").make(ws, 0)
    assert len(x) >= 3 * BATCH
    return x[: 3 * BATCH], y[: 3 * BATCH]


def _model(seed: int = 0, dtype=torch.float64) -> GaitSeq2Seq:
    torch.manual_seed(seed)
    m = GaitSeq2Seq(num_axes=3, num_joints=20, length=LENGTH, hidden=HIDDEN, proj_dim=HIDDEN).to(dtype)
    with torch.no_grad():  # non-zero biases, so the gate order of the biases matters from step one
        for name, p in m.named_parameters():
            if "bias" in name:
                p.normal_(0.0, 0.1)
    return m


def _batched_terms(model, x, y, objective):
    t = step_losses(model, x, y, objective, TEMPERATURE, L2W, True)
    return {k: t[k].detach().numpy() for k in TERMS}


def _baseline_terms(bases, x, y, objective):
    rows = [b.losses(x[a], y[a], objective, TEMPERATURE, L2W, True) for a, b in enumerate(bases)]
    return {k: np.array([float(r[k].detach()) for r in rows]) for k in TERMS}


def _axis_major(arr, dtype=torch.float64):
    return to_axis_major(arr).to(dtype)


def _assert_terms_close(a, b, rtol, atol=0.0):
    for k in TERMS:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)


def test_forward_losses_and_outputs_agree_float64(windows):
    x, y = (_axis_major(a[:BATCH]) for a in windows)
    model = _model()
    bases = baseline_models(model)
    assert all(b.forget_bias == TF_FORGET_BIAS == 1.0 for b in bases)   # TF-1 LSTMCell default
    objective = L.la_objective(LENGTH, dtype=torch.float64)
    mine, ref = _batched_terms(model, x, y, objective), _baseline_terms(bases, x, y, objective)
    for k in LOSS_TERMS:                        # every term is live, so comparing it means something
        assert np.all(ref[k] > 0), k
    _assert_terms_close(mine, ref, rtol=1e-10)
    # ... and so are the tensors behind them, axis by axis
    with torch.no_grad():
        out = model(x, y)
        for a, b in enumerate(bases):
            o = b(x[a], y[a])
            for field in ("output", "attention", "context", "encoder_outputs", "projection"):
                torch.testing.assert_close(getattr(out, field)[a], getattr(o, field), rtol=1e-10, atol=1e-12,
                                           msg=field)


def test_forward_losses_agree_float32(windows):
    x, y = (_axis_major(a[:BATCH], torch.float32) for a in windows)
    model = _model(dtype=torch.float32)
    objective = L.la_objective(LENGTH)
    _assert_terms_close(_batched_terms(model, x, y, objective), _baseline_terms(baseline_models(model), x, y, objective),
                        rtol=2e-5)


def test_three_adam_steps_agree_float64(windows):
    """The train_encoder step (summed axes, one Adam, clip by value) vs three per-axis runs."""
    x, y = (_axis_major(a) for a in windows)
    model = _model(seed=1)
    bases = baseline_models(model)
    objective = L.la_objective(LENGTH, dtype=torch.float64)
    batches = [torch.as_tensor(b) for b in batch_order(x.shape[1], BATCH, shuffle_once=False, seed=0)]
    assert len(batches) == 3

    opt = torch.optim.Adam(model.parameters(), lr=LR)
    mine = {k: [] for k in TERMS}
    for idx in batches:                                    # the loop body of train_encoder
        terms = step_losses(model, x[:, idx], y[:, idx], objective, TEMPERATURE, L2W, True)
        opt.zero_grad(set_to_none=True)
        terms["total"].sum().backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), CLIP)
        opt.step()
        for k in TERMS:
            mine[k].append(terms[k].detach().numpy())
    ref = baseline_train_steps(bases, x, y, batches, objective=objective, temperature=TEMPERATURE, l2=L2W,
                               contrastive=True, lr=LR, grad_clip=CLIP)
    _assert_terms_close({k: np.stack(v) for k, v in mine.items()}, ref, rtol=1e-9)
    # the losses really moved, so the steps (hence the gradients) were compared, not just the start
    assert np.all(ref["total"][-1] != ref["total"][0])
    # after the 3 steps: same weights, hence the same losses on a fresh batch
    for a, b in enumerate(bases):
        trained = BaselineAxisModel.from_batched(model, a)
        for p, q in zip(trained.trainable_parameters(), b.trainable_parameters()):
            torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)
    idx = torch.arange(5, 5 + BATCH)
    _assert_terms_close(_batched_terms(model, x[:, idx], y[:, idx], objective),
                        _baseline_terms(bases, x[:, idx], y[:, idx], objective), rtol=1e-9)


def test_train_encoder_matches_baseline_after_three_steps(windows):
    """The real training entry point (float32, epochs=1 over 3 batches) against the baseline."""
    inputs, targets = windows
    cfg = build_config("synthetic", [parse_set([
        "progress=false", "encoder.epochs=1", f"encoder.batch_size={BATCH}", f"encoder.hidden={HIDDEN}",
        f"encoder.proj_dim={HIDDEN}", f"encoder.temperature={TEMPERATURE}", f"encoder.lr={LR}", "seed=4"])])
    from skelreid.training.encoder import EncoderSpec

    model, hist = train_encoder(inputs, targets, EncoderSpec("rev_rec", "LA"), cfg, torch.device("cpu"))
    torch.manual_seed(cfg.seed)                             # train_encoder's own initialisation
    start = build_model(cfg, inputs.shape[2], inputs.shape[3], True)
    bases = baseline_models(start)
    x, y = _axis_major(inputs, torch.float32), _axis_major(targets, torch.float32)
    batches = [torch.as_tensor(b) for b in batch_order(len(inputs), BATCH, shuffle_once=False, seed=cfg.seed)]
    ref = baseline_train_steps(bases, x, y, batches, objective=L.la_objective(LENGTH), temperature=TEMPERATURE,
                               l2=cfg.encoder.l2, contrastive=True, lr=cfg.encoder.lr,
                               grad_clip=cfg.encoder.grad_clip)
    row = hist.epochs[0]
    for k in TERMS:                                         # epoch means of the pre-step losses
        np.testing.assert_allclose([row[f"{k}_{a}"] for a in "xyz"], ref[k].mean(axis=0), rtol=2e-5, err_msg=k)
    idx = torch.arange(BATCH)
    objective = L.la_objective(LENGTH)
    _assert_terms_close(_batched_terms(model, x[:, idx], y[:, idx], objective),
                        _baseline_terms(bases, x[:, idx], y[:, idx], objective), rtol=1e-4)


# ----------------------------------------------------------------------------- the comparison has teeth

def _forward_agrees(model, bases, x, y) -> bool:
    objective = L.la_objective(LENGTH, dtype=torch.float64)
    a, b = _batched_terms(model, x, y, objective), _baseline_terms(bases, x, y, objective)
    return all(np.allclose(a[k], b[k], rtol=1e-10, atol=0) for k in TERMS)


def test_a_changed_forget_bias_on_either_side_breaks_agreement(windows):
    x, y = (_axis_major(a[:BATCH]) for a in windows)
    model = _model()
    assert _forward_agrees(model, baseline_models(model), x, y)
    # baseline side: an LSTM without TF's +1 forget bias
    plain = [BaselineAxisModel.from_batched(model, a) for a in range(3)]
    for b in plain:
        for cell in (*b.enc_cells, *b.dec_cells):
            with torch.no_grad():
                cell.bias_hh.zero_()
    assert not _forward_agrees(model, plain, x, y)
    # optimised side
    bases = baseline_models(model)
    model.encoder.forget_bias = model.decoder.forget_bias = 0.0
    assert not _forward_agrees(model, bases, x, y)


def test_a_changed_attention_on_either_side_breaks_agreement(windows, monkeypatch):
    x, y = (_axis_major(a[:BATCH]) for a in windows)
    model = _model()
    bases = baseline_models(model)
    assert _forward_agrees(model, bases, x, y)
    original = GaitSeq2Seq._attend

    def scaled(self, h_top, keys, memory):                 # scores scaled by 1/sqrt(H) (the reference has none)
        return original(self, h_top, keys / HIDDEN ** 0.5, memory)

    monkeypatch.setattr(GaitSeq2Seq, "_attend", scaled)
    assert not _forward_agrees(model, bases, x, y)
    monkeypatch.setattr(GaitSeq2Seq, "_attend", original)
    assert _forward_agrees(model, bases, x, y)
    # baseline side: Luong "dot" instead of "general" (no memory layer W_m on the keys)
    for b in bases:
        b.memory_layer.forward = lambda m: m
    assert not _forward_agrees(model, bases, x, y)
