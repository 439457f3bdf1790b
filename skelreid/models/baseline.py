"""A plain, one-axis-at-a-time implementation of the AGE/CAGE encoder-decoder.

This is the *reference baseline* for the speed work (docs/performance.md) and
the independent second implementation that ``tests/test_baseline_equivalence.py``
checks the optimised, axis-batched :class:`~skelreid.models.seq2seq.GaitSeq2Seq`
against. It is deliberately written the obvious way:

* one model per coordinate axis, trained one after another;
* ``nn.LSTMCell`` layers stepped in a Python loop over time and layers;
* ``nn.Linear`` layers for the attention memory, attention, output and
  projection layers.

TF-1 ``LSTMCell`` semantics (spec §2.1) on top of ``nn.LSTMCell``:

* gate order: TF's fused kernel is ``i, j(=g), f, o``; ``nn.LSTMCell`` uses
  ``i, f, g, o``. :meth:`BaselineAxisModel.from_batched` reorders the gates.
* forget bias: TF adds a constant ``forget_bias`` (1.0) to the forget gate.
  Here ``bias_ih`` carries the trainable TF bias and ``bias_hh`` is a frozen
  tensor (``requires_grad=False``) that is zero except for ``forget_bias`` in
  the forget-gate slots. It is not a trainable parameter, so neither Adam nor the
  L2 penalty sees it, exactly like TF's Python-float constant.

The maths of one decoder step (spec §2.2) is spelled out again in
:meth:`BaselineAxisModel.forward`: input feeding ``[x_t ; a_{t-1}]``, Luong
"general" attention (``α = softmax_s(ĥ_t · W_m h_s)``, unscaled), context over
the raw encoder outputs, attentional vector ``W_a [ĥ_t ; c_t]`` without bias or
tanh, output ``W_o a_t + b_o``, and the CAGE head ``relu(flat W1 + b1) W + b``
on the flattened contexts. The losses are :mod:`skelreid.losses` applied to
one axis at a time.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .. import losses as L
from .seq2seq import GaitSeq2Seq, Seq2SeqOutput

TF_FORGET_BIAS = 1.0
"""TF-1 ``LSTMCell``'s default ``forget_bias``, which the reference keeps."""

TERMS = ("reconstruction", "attention", "contrastive", "l2", "total")


def _tf_to_torch_gates(t: Tensor, dim: int) -> Tensor:
    """Reorder TF's ``i, j, f, o`` gate blocks along ``dim`` into torch's ``i, f, g(=j), o``."""
    i, j, f, o = t.chunk(4, dim=dim)
    return torch.cat((i, f, j, o), dim=dim)


class _TFCell(nn.LSTMCell):
    """``nn.LSTMCell`` with TF-1 semantics: the forget bias is a frozen constant in ``bias_hh``."""

    def __init__(self, input_size: int, hidden: int, forget_bias: float):
        super().__init__(input_size, hidden, bias=True)
        self.forget_bias = float(forget_bias)
        with torch.no_grad():
            self.bias_ih.zero_()
            self.bias_hh.zero_()
            self.bias_hh[hidden: 2 * hidden] = self.forget_bias   # torch order i, f, g, o
        self.bias_hh.requires_grad_(False)

    def trainable(self) -> list[nn.Parameter]:
        return [self.weight_ih, self.weight_hh, self.bias_ih]

    def load_tf(self, kernel: Tensor, bias: Tensor) -> None:
        """Copy a TF fused kernel ``[in + H, 4H]`` (rows ``[x ; h]``, gates ``i, j, f, o``) and bias ``[4H]``."""
        n_in = self.input_size
        if kernel.shape != (n_in + self.hidden_size, 4 * self.hidden_size):
            raise ValueError(f"kernel {list(kernel.shape)} does not fit an LSTM cell {n_in} -> {self.hidden_size}")
        w = _tf_to_torch_gates(kernel, dim=1)                    # [in + H, 4H], torch gate order
        with torch.no_grad():
            self.weight_ih.copy_(w[:n_in].T)
            self.weight_hh.copy_(w[n_in:].T)
            self.bias_ih.copy_(_tf_to_torch_gates(bias, dim=0))


class BaselineAxisModel(nn.Module):
    """One axis's AGE/CAGE seq2seq model, computed step by step with ``nn.LSTMCell``.

    Inputs are ``[B, f, J]`` (one axis, no axis dimension). Arguments as for
    :class:`~skelreid.models.seq2seq.GaitSeq2Seq`, without ``num_axes``.
    """

    def __init__(self, num_joints: int = 20, length: int = 6, hidden: int = 256, layers: int = 2,
                 contrastive: bool = True, proj_dim: int = 256, teacher_forcing: bool = False,
                 forget_bias: float = TF_FORGET_BIAS):
        super().__init__()
        J, H, P = int(num_joints), int(hidden), int(proj_dim)
        self.num_joints, self.length, self.hidden, self.layers = J, int(length), H, int(layers)
        self.contrastive, self.proj_dim, self.teacher_forcing = bool(contrastive), P, bool(teacher_forcing)
        self.forget_bias = float(forget_bias)
        self.enc_cells = nn.ModuleList(_TFCell(J if l == 0 else H, H, forget_bias) for l in range(self.layers))
        self.dec_cells = nn.ModuleList(_TFCell(J + H if l == 0 else H, H, forget_bias) for l in range(self.layers))
        self.memory_layer = nn.Linear(H, H, bias=False)          # keys W_m h_s
        self.attention_layer = nn.Linear(2 * H, H, bias=False)   # a_t = W_a [ĥ_t ; c_t]
        self.output_layer = nn.Linear(H, J)                      # ŷ_t = W_o a_t + b_o
        if self.contrastive:
            self.proj1 = nn.Linear(self.length * H, P)
            self.proj2 = nn.Linear(P, P)

    # ---------------------------------------------------------------- weights
    @classmethod
    def from_batched(cls, model: GaitSeq2Seq, axis: int) -> "BaselineAxisModel":
        """A baseline model holding a copy of axis ``axis``'s weights of ``model``.

        The forget bias is taken from ``model`` (its TF default is 1.0, see :data:`TF_FORGET_BIAS`).
        """
        a = int(axis)
        if not 0 <= a < model.num_axes:
            raise ValueError(f"axis {axis} out of range for a model with {model.num_axes} axes")
        ref = next(model.parameters())
        out = cls(num_joints=model.num_joints, length=model.length, hidden=model.hidden, layers=model.layers,
                  contrastive=model.contrastive, proj_dim=model.proj_dim, teacher_forcing=model.teacher_forcing,
                  forget_bias=model.encoder.forget_bias).to(device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            for cells, lstm in ((out.enc_cells, model.encoder), (out.dec_cells, model.decoder)):
                for cell, kernel, bias in zip(cells, lstm.kernels, lstm.biases):
                    cell.load_tf(kernel[a], bias[a])
            # The batched model multiplies row vectors (x @ K); nn.Linear stores K transposed.
            out.memory_layer.weight.copy_(model.memory_kernel[a].T)
            out.attention_layer.weight.copy_(model.attention_kernel[a].T)
            out.output_layer.weight.copy_(model.output_kernel[a].T)
            out.output_layer.bias.copy_(model.output_bias[a])
            if model.contrastive:
                out.proj1.weight.copy_(model.proj_kernel1[a].T)
                out.proj1.bias.copy_(model.proj_bias1[a])
                out.proj2.weight.copy_(model.proj_kernel2[a].T)
                out.proj2.bias.copy_(model.proj_bias2[a])
        return out

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Every trainable tensor (what Adam updates and the L2 penalty covers); not the frozen forget bias."""
        params: list[nn.Parameter] = []
        for cell in (*self.enc_cells, *self.dec_cells):
            params += cell.trainable()
        params += [self.memory_layer.weight, self.attention_layer.weight,
                   self.output_layer.weight, self.output_layer.bias]
        if self.contrastive:
            params += [self.proj1.weight, self.proj1.bias, self.proj2.weight, self.proj2.bias]
        return params

    # ---------------------------------------------------------------- forward
    def _run_cells(self, cells: nn.ModuleList, inp: Tensor, state: list[tuple[Tensor, Tensor]]):
        new_state = []
        for cell, (h, c) in zip(cells, state):
            h, c = cell(inp, (h, c))
            new_state.append((h, c))
            inp = h
        return inp, new_state

    def forward(self, x: Tensor, target: Tensor | None = None) -> Seq2SeqOutput:
        """Training decoder pass on one axis. ``x`` ``[B, f, J]``; outputs without an axis dimension."""
        if x.dim() != 3 or x.shape[1] != self.length or x.shape[2] != self.num_joints:
            raise ValueError(f"expected input [B, f={self.length}, J={self.num_joints}], got {list(x.shape)}")
        B, f, _ = x.shape
        H = self.hidden
        if self.teacher_forcing:
            if target is None:
                raise ValueError("teacher_forcing=True needs the target sequence")
            dec_in = torch.cat((torch.zeros_like(target[:, :1]), target[:, :-1]), dim=1)
        else:
            dec_in = torch.zeros_like(x)                         # the reference feeds zeros

        # Encoder: h_1..h_f of the top layer and the final (h, c) of each layer.
        state = [(x.new_zeros(B, H), x.new_zeros(B, H)) for _ in range(self.layers)]
        enc_out = []
        for t in range(f):
            h_top, state = self._run_cells(self.enc_cells, x[:, t], state)
            enc_out.append(h_top)
        memory = torch.stack(enc_out, dim=1)                     # [B, f, H]  h_s
        keys = self.memory_layer(memory)                         # [B, f, H]  W_m h_s

        # Decoder, initial state = encoder final state, input feeding of a_{t-1}.
        attentional = x.new_zeros(B, H)                          # a_{-1} = 0
        outputs, alignments, contexts = [], [], []
        for t in range(f):
            h_top, state = self._run_cells(self.dec_cells, torch.cat((dec_in[:, t], attentional), dim=1), state)
            scores = torch.bmm(keys, h_top.unsqueeze(2)).squeeze(2)        # [B, f]  ĥ_t · W_m h_s
            alpha = torch.softmax(scores, dim=1)
            context = torch.bmm(alpha.unsqueeze(1), memory).squeeze(1)     # [B, H]  Σ_s α_s h_s
            attentional = self.attention_layer(torch.cat((h_top, context), dim=1))
            outputs.append(self.output_layer(attentional))
            alignments.append(alpha)
            contexts.append(context)
        context = torch.stack(contexts, dim=1)                   # [B, f, H]
        projection = None
        if self.contrastive:
            projection = self.proj2(torch.relu(self.proj1(context.reshape(B, -1))))
        return Seq2SeqOutput(output=torch.stack(outputs, dim=1), attention=torch.stack(alignments, dim=1),
                             context=context, encoder_outputs=memory, projection=projection)

    def losses(self, x: Tensor, y: Tensor, objective: Tensor | None, temperature: float, l2: float,
               contrastive: bool) -> dict[str, Tensor]:
        """The CAGE loss terms of one axis (scalars), with the same rules as ``training.encoder.step_losses``."""
        out = self(x, y)
        one = Seq2SeqOutput(                                     # skelreid.losses wants a leading axis dim
            output=out.output.unsqueeze(0), attention=out.attention.unsqueeze(0),
            context=out.context.unsqueeze(0), encoder_outputs=out.encoder_outputs.unsqueeze(0),
            projection=None if out.projection is None else out.projection.unsqueeze(0),
        )
        use_contrastive = contrastive and out.projection is not None and x.shape[0] > 2
        terms = L.encoder_objective(one, y.unsqueeze(0), [p.unsqueeze(0) for p in self.trainable_parameters()],
                                    la_target=objective, temperature=temperature if use_contrastive else None,
                                    l2_weight=l2)
        return {k: v[0] for k, v in terms._asdict().items()}


def baseline_models(model: GaitSeq2Seq) -> list[BaselineAxisModel]:
    """One :class:`BaselineAxisModel` per axis of ``model``, holding copies of its weights."""
    return [BaselineAxisModel.from_batched(model, a) for a in range(model.num_axes)]


def baseline_train_steps(models: Sequence[BaselineAxisModel], x: Tensor, y: Tensor, batches: Sequence,
                         *, objective: Tensor | None, temperature: float, l2: float, contrastive: bool,
                         lr: float, grad_clip: float) -> dict[str, np.ndarray]:
    """Train the axis models one after another, one Adam step per batch, as ``train_encoder`` does.

    ``x``/``y`` are axis-major ``[A, N, f, J]`` (``A == len(models)``); ``batches``
    index their dim 1. Each axis gets its own ``Adam(lr)`` over its trainable
    parameters and its gradients clipped by value to ``±grad_clip``. Returns, per
    term of :data:`TERMS`, the losses *before* each step as ``[steps, A]``.
    """
    if x.shape[0] != len(models) or y.shape[0] != len(models):
        raise ValueError(f"{len(models)} axis models but inputs with {x.shape[0]} / {y.shape[0]} axes")
    per_axis: dict[str, list[Tensor]] = {k: [] for k in TERMS}
    for a, m in enumerate(models):
        m.train()
        params = m.trainable_parameters()
        opt = torch.optim.Adam(params, lr=lr)
        rows: dict[str, list[Tensor]] = {k: [] for k in TERMS}
        for idx in batches:
            terms = m.losses(x[a, idx], y[a, idx], objective, temperature, l2, contrastive)
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            torch.nn.utils.clip_grad_value_(params, grad_clip)
            opt.step()
            for k in TERMS:
                rows[k].append(terms[k].detach())
        for k in TERMS:
            per_axis[k].append(torch.stack(rows[k]) if rows[k] else x.new_zeros(0))
    return {k: torch.stack(v, dim=1).cpu().numpy() for k, v in per_axis.items()}
