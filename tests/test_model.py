"""The axis-batched TF-style LSTM and the AGE/CAGE seq2seq model (spec §2.1, 2.2, 2.6)."""
from __future__ import annotations

import pytest
import torch

from skelreid.losses import reconstruction_loss
from skelreid.models.lstm import StackedTFLSTM, seeded_uniform_kernel
from skelreid.models.seq2seq import GaitSeq2Seq
from skelreid.models.size import format_model_size, model_size

SMALL = dict(num_joints=5, length=4, hidden=8, proj_dim=6)


def _small(num_axes=3, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(SMALL)
    cfg.update(kw)
    return GaitSeq2Seq(num_axes=num_axes, **cfg).double()


def _x(model, batch=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(model.num_axes, batch, model.length, model.num_joints, generator=g, dtype=torch.float64)


def _randomise_biases(model, seed=7):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "bias" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))


# ----------------------------------------------------------------------------- LSTM cell

def test_tf_lstm_matches_torch_lstm_with_reordered_gates_and_folded_forget_bias():
    torch.manual_seed(0)
    A, B, T, I, H = 2, 3, 5, 4, 6
    lstm = StackedTFLSTM(A, I, H, layers=2).double()
    with torch.no_grad():
        for b in lstm.biases:
            b.normal_(0, 0.1)
    x = torch.randn(A, B, T, I, dtype=torch.float64)
    out, state = lstm(x)
    assert out.shape == (A, B, T, H)
    for a in range(A):
        ref = torch.nn.LSTM(I, H, num_layers=2, batch_first=True).double()
        with torch.no_grad():
            for l in range(2):
                k, bias = lstm.kernels[l][a], lstm.biases[l][a]
                n_in = k.shape[0] - H
                gi, gj, gf, go = k.chunk(4, dim=1)          # TF order i, j, f, o
                bi, bj, bf, bo = bias.chunk(4)
                w = torch.cat((gi, gf, gj, go), dim=1)       # torch order i, f, g, o
                getattr(ref, f"weight_ih_l{l}").copy_(w[:n_in].T)
                getattr(ref, f"weight_hh_l{l}").copy_(w[n_in:].T)
                getattr(ref, f"bias_ih_l{l}").copy_(torch.cat((bi, bf + 1.0, bj, bo)))
                getattr(ref, f"bias_hh_l{l}").zero_()
        ref_out, (h_n, c_n) = ref(x[a])
        assert torch.allclose(out[a], ref_out, atol=1e-12)
        for l in range(2):
            assert torch.allclose(state[l][0][a], h_n[l], atol=1e-12)
            assert torch.allclose(state[l][1][a], c_n[l], atol=1e-12)


def test_lstm_init_ranges_and_shapes():
    torch.manual_seed(0)
    lstm = StackedTFLSTM(3, 20, 256, layers=2)
    assert [tuple(k.shape) for k in lstm.kernels] == [(3, 276, 1024), (3, 512, 1024)]
    assert [tuple(b.shape) for b in lstm.biases] == [(3, 1024), (3, 1024)]
    for k in lstm.kernels:
        assert k.abs().max() <= 0.1 and k.abs().max() > 0.099
        assert abs(k.mean().item()) < 2e-3 and abs(k.std().item() - 0.2 / 12 ** 0.5) < 2e-3
        assert not torch.equal(k[0], k[1])                       # global RNG: axes differ
    for b in lstm.biases:
        assert torch.equal(b, torch.zeros_like(b))


def test_forget_bias_is_a_constant_not_a_parameter():
    model = _small()
    names = {n for n, _ in model.named_parameters()}
    assert names == {
        "encoder.kernels.0", "encoder.kernels.1", "encoder.biases.0", "encoder.biases.1",
        "decoder.kernels.0", "decoder.kernels.1", "decoder.biases.0", "decoder.biases.1",
        "memory_kernel", "attention_kernel", "output_kernel", "output_bias",
        "proj_kernel1", "proj_bias1", "proj_kernel2", "proj_bias2",
    }
    assert not any("forget" in n for n in names) and not any("forget" in n for n, _ in model.named_buffers())
    assert model.encoder.forget_bias == 1.0 and model.decoder.forget_bias == 1.0
    x = _x(model)
    base = model(x).output
    # Folding the constant into the f-block of the bias (third quarter) gives the same model:
    # the +1 acts on the forget gate, in TF gate order i, j, f, o.
    folded = _small(forget_bias=0.0)
    folded.load_state_dict(model.state_dict())
    H = model.hidden
    with torch.no_grad():
        for lstm in (folded.encoder, folded.decoder):
            for b in lstm.biases:
                b[:, 2 * H:3 * H] += 1.0
    assert torch.allclose(folded(x).output, base, atol=1e-12)
    # Changing the constant changes the outputs.
    model.encoder.forget_bias = 0.0
    model.decoder.forget_bias = 0.0
    assert not torch.allclose(model(x).output, base, atol=1e-6)


# ----------------------------------------------------------------------------- seq2seq

def _naive_forward(model: GaitSeq2Seq, x: torch.Tensor, a: int, dec_in: torch.Tensor | None = None):
    """Unbatched port of spec §2.1–2.2 for axis ``a``, written independently of the model code."""
    H, L = model.hidden, model.layers
    xa = x[a]                                           # [B, f, J]
    B, f, J = xa.shape

    def cell(kernel, bias, inp, h, c):
        z = torch.cat((inp, h), 1) @ kernel + bias
        i, j, fg, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        c = torch.sigmoid(fg + 1.0) * c + torch.sigmoid(i) * torch.tanh(j)
        return torch.sigmoid(o) * torch.tanh(c), c

    state = [(xa.new_zeros(B, H), xa.new_zeros(B, H)) for _ in range(L)]
    enc = []
    for t in range(f):
        inp = xa[:, t]
        for l in range(L):
            h, c = cell(model.encoder.kernels[l][a], model.encoder.biases[l][a], inp, *state[l])
            state[l] = (h, c)
            inp = h
        enc.append(inp)
    memory = torch.stack(enc, 1)                        # [B, f, H]
    keys = memory @ model.memory_kernel[a]
    att_vec = xa.new_zeros(B, H)
    outs, alphas, ctxs = [], [], []
    for t in range(f):
        x_t = xa.new_zeros(B, J) if dec_in is None else dec_in[a][:, t]
        inp = torch.cat((x_t, att_vec), 1)              # input feeding
        for l in range(L):
            h, c = cell(model.decoder.kernels[l][a], model.decoder.biases[l][a], inp, *state[l])
            state[l] = (h, c)
            inp = h
        scores = torch.stack([(keys[:, s] * inp).sum(1) for s in range(f)], 1)
        alpha = torch.softmax(scores, 1)
        ctx = sum(alpha[:, s:s + 1] * memory[:, s] for s in range(f))
        att_vec = torch.cat((inp, ctx), 1) @ model.attention_kernel[a]   # no bias, no tanh
        outs.append(att_vec @ model.output_kernel[a] + model.output_bias[a])
        alphas.append(alpha)
        ctxs.append(ctx)
    ctx = torch.stack(ctxs, 1)
    hid = torch.relu(ctx.reshape(B, -1) @ model.proj_kernel1[a] + model.proj_bias1[a])
    proj = hid @ model.proj_kernel2[a] + model.proj_bias2[a]
    return torch.stack(outs, 1), torch.stack(alphas, 1), ctx, memory, proj


def test_forward_matches_naive_unbatched_port():
    model = _small()
    _randomise_biases(model)
    x = _x(model, batch=5)
    out = model(x)
    for a in range(model.num_axes):
        y, alpha, ctx, mem, proj = _naive_forward(model, x, a)
        assert torch.allclose(out.output[a], y, atol=1e-10)
        assert torch.allclose(out.attention[a], alpha, atol=1e-12)
        assert torch.allclose(out.context[a], ctx, atol=1e-12)
        assert torch.allclose(out.encoder_outputs[a], mem, atol=1e-12)
        assert torch.allclose(out.projection[a], proj, rtol=1e-10, atol=1e-9)


def test_teacher_forcing_feeds_shifted_target_in_naive_port():
    model = _small(teacher_forcing=True)
    x = _x(model)
    tgt = _x(model, seed=9)
    shifted = torch.cat((torch.zeros_like(tgt[:, :, :1]), tgt[:, :, :-1]), 2)
    out = model(x, tgt)
    for a in range(model.num_axes):
        assert torch.allclose(out.output[a], _naive_forward(model, x, a, dec_in=shifted)[0], atol=1e-10)


def test_decoder_receives_zero_inputs_without_teacher_forcing():
    model = _small()
    x = _x(model)
    t1, t2 = _x(model, seed=2), _x(model, seed=3)
    a, b, c = model(x), model(x, t1), model(x, t2)
    for field in ("output", "attention", "context", "projection"):
        assert torch.equal(getattr(a, field), getattr(b, field))
        assert torch.equal(getattr(a, field), getattr(c, field))

    forced = _small(teacher_forcing=True)
    forced.load_state_dict(model.state_dict())
    f1, f2 = forced(x, t1), forced(x, t2)
    assert not torch.allclose(f1.output, f2.output)
    assert not torch.allclose(f1.output, a.output)
    # Only y_0..y_{f-2} are fed: the last target frame cannot matter.
    t3 = t1.clone()
    t3[:, :, -1] += 5.0
    assert torch.equal(forced(x, t3).output, f1.output)
    with pytest.raises(ValueError):
        forced(x)


def test_axes_are_independent():
    model = _small()
    _randomise_biases(model)
    x = _x(model)
    base = model(x)
    x2 = x.clone()
    x2[1] += 1.0
    pert = model(x2)
    for field in ("output", "attention", "context", "encoder_outputs", "projection"):
        ref, got = getattr(base, field), getattr(pert, field)
        assert torch.equal(ref[0], got[0]) and torch.equal(ref[2], got[2])
        assert not torch.equal(ref[1], got[1])

    with torch.no_grad():
        for p in model.parameters():
            p[1].mul_(1.5).add_(0.01)
    pert = model(x)
    for field in ("output", "attention", "context", "encoder_outputs", "projection"):
        ref, got = getattr(base, field), getattr(pert, field)
        assert torch.equal(ref[0], got[0]) and torch.equal(ref[2], got[2])
        assert not torch.equal(ref[1], got[1])

    # Gradients: a loss on axis 0 reaches no other axis's parameters.
    model.zero_grad()
    out = model(x)
    (out.output[0].square().sum() + out.projection[0].square().sum()).backward()
    for name, p in model.named_parameters():
        assert torch.equal(p.grad[1:], torch.zeros_like(p.grad[1:])), name
    assert model.encoder.kernels[0].grad[0].abs().sum() > 0


def test_single_axis_model_copied_from_axis_k_matches_axis_k():
    model = _small()
    _randomise_biases(model)
    x = _x(model)
    full = model(x)
    for k in range(model.num_axes):
        single = _small(num_axes=1, seed=123)
        with torch.no_grad():
            src = dict(model.named_parameters())
            for name, p in single.named_parameters():
                p.copy_(src[name][k:k + 1])
        one = single(x[k:k + 1])
        for field in ("output", "attention", "context", "encoder_outputs", "projection"):
            assert torch.allclose(getattr(one, field)[0], getattr(full, field)[k], rtol=0, atol=1e-12), field
        sel = model.select_axes([k])(x[k:k + 1])
        assert torch.equal(sel.output, one.output)
    swapped = model.select_axes([2, 0])(x[[2, 0]])
    assert torch.allclose(swapped.context, full.context[[2, 0]], atol=1e-12)


def test_attention_rows_sum_to_one_and_context_is_attention_times_encoder_outputs():
    model = _small(length=6)
    out = model(_x(model, batch=3))
    A, B, f = 3, 3, 6
    assert out.attention.shape == (A, B, f, f)
    assert torch.allclose(out.attention.sum(-1), torch.ones(A, B, f, dtype=torch.float64), atol=1e-12)
    assert (out.attention >= 0).all()
    assert torch.allclose(out.context, out.attention @ out.encoder_outputs, atol=1e-12)
    assert out.projection.shape == (A, B, model.proj_dim)
    assert out.output.shape == (A, B, f, model.num_joints)


def test_without_head_projection_is_none():
    model = _small(contrastive=False)
    assert model(_x(model)).projection is None
    assert not any(n.startswith("proj") for n, _ in model.named_parameters())


def test_init_distributions():
    torch.manual_seed(0)
    m = GaitSeq2Seq()
    H = 256
    assert m.memory_kernel.abs().max() <= (6 / (2 * H)) ** 0.5
    assert m.memory_kernel.abs().max() > 0.99 * (6 / (2 * H)) ** 0.5
    assert m.attention_kernel.abs().max() <= (6 / (3 * H)) ** 0.5
    assert m.output_kernel.abs().max() <= 0.2 and 0.07 < m.output_kernel.std() < 0.1
    assert torch.equal(m.output_bias, torch.zeros_like(m.output_bias))
    for w in (m.proj_kernel1, m.proj_kernel2):
        assert abs(w.std().item() - 1.0) < 0.01 and abs(w.mean().item()) < 0.01
    for b in (m.proj_bias1, m.proj_bias2):
        assert torch.equal(b, torch.zeros_like(b))


def test_kernel_seed_makes_same_shape_kernels_identical():
    a = GaitSeq2Seq(num_axes=3, num_joints=5, length=4, hidden=8, proj_dim=6, kernel_seed=2)
    b = GaitSeq2Seq(num_axes=2, num_joints=5, length=4, hidden=8, proj_dim=6, kernel_seed=2)
    k_enc2, k_dec2 = a.encoder.kernels[1], a.decoder.kernels[1]
    assert k_enc2.shape == k_dec2.shape == (3, 16, 32)
    expect = seeded_uniform_kernel(16, 32, 2)
    for k in (k_enc2, k_dec2, b.encoder.kernels[1], b.decoder.kernels[1]):
        for axis in range(k.shape[0]):
            assert torch.equal(k[axis], expect)
    assert torch.equal(a.encoder.kernels[0][1], b.encoder.kernels[0][0])
    assert torch.equal(a.decoder.kernels[0][2], b.decoder.kernels[0][1])
    # encoder layer 1 [J+H, 4H] and decoder layer 1 [J+2H, 4H] differ in shape (input feeding)
    assert a.encoder.kernels[0].shape[1:] == (13, 32) and a.decoder.kernels[0].shape[1:] == (21, 32)
    other = GaitSeq2Seq(num_axes=1, num_joints=5, length=4, hidden=8, proj_dim=6, kernel_seed=3)
    assert not torch.equal(other.encoder.kernels[1][0], expect)
    assert expect.abs().max() <= 0.1


def test_per_axis_parameter_counts_full_size():
    m = GaitSeq2Seq(num_axes=3, num_joints=20, length=6, hidden=256)
    per = {n: p[0].numel() for n, p in m.named_parameters()}
    assert per["encoder.kernels.0"] + per["encoder.biases.0"] == 283_648
    assert per["encoder.kernels.1"] + per["encoder.biases.1"] == 525_312
    assert per["decoder.kernels.0"] + per["decoder.biases.0"] == 545_792
    assert per["decoder.kernels.1"] + per["decoder.biases.1"] == 525_312
    assert per["memory_kernel"] == 65_536
    assert per["attention_kernel"] == 131_072
    assert per["output_kernel"] + per["output_bias"] == 5_140
    head = sum(v for n, v in per.items() if n.startswith("proj"))
    assert head == 459_264
    assert m.parameters_per_axis() == 2_081_812 + 459_264
    assert sum(p.numel() for p in m.parameters()) == 3 * (2_081_812 + 459_264)
    assert all(p.shape[0] == 3 for _, p in m.axis_parameters())
    assert GaitSeq2Seq(num_axes=1, contrastive=False).parameters_per_axis() == 2_081_812


@pytest.mark.parametrize(
    "J,f,H,contrastive,A,P",
    [(20, 6, 256, True, 3, 256), (25, 4, 16, False, 2, 8), (14, 10, 8, True, 1, 5), (20, 8, 12, True, 3, 7)],
)
def test_model_size_matches_instantiated_model_and_flop_counter(J, f, H, contrastive, A, P):
    from torch.utils.flop_counter import FlopCounterMode

    m = GaitSeq2Seq(num_axes=A, num_joints=J, length=f, hidden=H, contrastive=contrastive, proj_dim=P)
    d = model_size(J, f, H, contrastive, num_axes=A, proj_dim=P)
    assert d["params_total"] == sum(p.numel() for p in m.parameters())
    assert d["params_per_axis"] == m.parameters_per_axis()
    assert model_size(J, f, H, contrastive, num_axes=A, num_models=3, proj_dim=P)["params_total"] == 3 * d["params_total"]
    B = 2
    with FlopCounterMode(display=False) as counter:
        m(torch.randn(A, B, f, J))
    assert counter.get_total_flops() == d["flops_per_window"] * B


def test_model_size_reference_equivalent_is_the_papers_8_47m():
    d = model_size(20, 6, 256, True)
    assert d["params_total"] == 7_623_228
    assert d["reference_params_total"] == 8_474_172
    text = format_model_size(d)
    assert "8,474,172" in text and "8.47M" in text and "7.47G" in text


def test_embed_is_deterministic_without_grad_and_equals_training_context():
    model = _small()
    x = _x(model)
    model.train()
    e1, e2 = model.embed(x), model.embed(x)
    assert torch.equal(e1, e2)
    assert not e1.requires_grad
    assert model.training                                # mode restored
    assert torch.allclose(e1, model(x).context, atol=0)
    forced = _small(teacher_forcing=True)
    forced.load_state_dict(model.state_dict())
    assert torch.equal(forced.embed(x), e1)              # features always use zero decoder inputs


def test_predict_is_autoregressive():
    model = _small()
    _randomise_biases(model)
    x = _x(model)
    pred = model.predict(x)
    train = model(x).output
    assert pred.shape == train.shape and not pred.requires_grad
    assert torch.allclose(pred[:, :, 0], train[:, :, 0], atol=1e-12)    # step 0 input is zeros in both
    assert not torch.allclose(pred[:, :, 1:], train[:, :, 1:])
    # Feeding the model's own predictions as teacher-forced targets reproduces predict().
    forced = _small(teacher_forcing=True)
    forced.load_state_dict(model.state_dict())
    assert torch.allclose(forced(x, pred).output, pred, atol=1e-10)


def test_a_few_adam_steps_reduce_reconstruction_loss():
    torch.manual_seed(0)
    model = GaitSeq2Seq(num_axes=3, num_joints=5, length=4, hidden=16, contrastive=False)
    x = torch.randn(3, 8, 4, 5)
    target = x.flip(2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss = reconstruction_loss(model(x).output, target)
        if first is None:
            first = loss.detach()
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    last = reconstruction_loss(model(x).output, target).detach()
    assert (last < 0.7 * first).all(), (first, last)


@pytest.mark.parametrize("J,f", [(25, 4), (14, 10), (20, 6), (14, 4)])
def test_shapes_for_joint_counts_and_lengths(J, f):
    model = GaitSeq2Seq(num_axes=3, num_joints=J, length=f, hidden=8, proj_dim=5)
    x = torch.randn(3, 2, f, J)
    out = model(x)
    assert out.output.shape == (3, 2, f, J)
    assert out.attention.shape == (3, 2, f, f)
    assert out.context.shape == out.encoder_outputs.shape == (3, 2, f, 8)
    assert out.projection.shape == (3, 2, 5)
    assert model.embed(x).shape == (3, 2, f, 8)
    assert model.predict(x).shape == (3, 2, f, J)
    with pytest.raises(ValueError):
        model(torch.randn(3, 2, f + 1, J))
    with pytest.raises(ValueError):
        model(torch.randn(2, 2, f, J))
