"""The per-axis gait encoder-decoder of AGE / CAGE, batched over axes (spec §2.1–2.2, 2.6).

:class:`GaitSeq2Seq` holds ``A`` independent seq2seq models (one per coordinate
axis, possibly several pretext models stacked along the same dimension). Every
parameter's dim 0 is the axis, inputs are ``[A, B, f, J]``, and every product is
a batched matmul over the axis, so axis ``a`` only ever sees its own parameters
and its own input.

One axis, for an input window ``x`` of ``f`` frames × ``J`` joint values:

* encoder: 2-layer TF-style LSTM (256 units) over the raw frames, no embedding;
  outputs ``h_1..h_f`` and final ``(h, c)`` per layer;
* decoder: 2-layer TF-style LSTM whose state starts at the encoder's final
  state, with *input feeding*: the cell input at step ``t`` is
  ``[x_t ; a_{t-1}]`` (``a_{-1} = 0``);
* Luong "general" attention, unscaled, no mask: keys ``W_m h_s`` (computed once),
  ``α_t = softmax_s(ĥ_t · W_m h_s)``, context ``c_t = Σ_s α_{t,s} h_s`` over the
  raw encoder outputs;
* attentional vector ``a_t = W_a [ĥ_t ; c_t]`` (no bias, no tanh);
* output ``ŷ_t = W_o a_t + b_o``;
* CAGE projection head on the flattened contexts ``[c_0; …; c_{f-1}]``:
  ``v = relu(flat W1 + b1) W + b``.

In training the decoder inputs ``x_t`` are all zeros (spec §2.2, §7.E): the
target never reaches the decoder. ``teacher_forcing=True`` instead feeds
``[0, y_0, …, y_{f-2}]``. The features used for re-identification are the
context vectors (:meth:`GaitSeq2Seq.embed`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

from .lstm import StackedTFLSTM

OUTPUT_INIT_STD = 0.1


@dataclass(frozen=True)
class Seq2SeqOutput:
    """What one forward pass of :class:`GaitSeq2Seq` returns (``A`` axes, batch ``B``)."""

    output: Tensor
    """Reconstruction ``ŷ`` ``[A, B, f, J]``."""
    attention: Tensor
    """Alignments ``[A, B, f_dec, f_enc]``: row ``t`` is decoder step ``t``, column ``s`` encoder position ``s``."""
    context: Tensor
    """Context vectors ``c_t`` ``[A, B, f, H]`` in decoding-step order (the AGE/CAGE features)."""
    encoder_outputs: Tensor
    """Top-layer encoder outputs ``h_s`` ``[A, B, f, H]``."""
    projection: Tensor | None
    """Contrastive projection ``v`` ``[A, B, proj_dim]``, or ``None`` without the head."""


def _glorot_uniform_(w: Tensor) -> Tensor:
    """Glorot-uniform for a stacked kernel ``[A, fan_in, fan_out]``."""
    fan_in, fan_out = w.shape[-2], w.shape[-1]
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return nn.init.uniform_(w, -limit, limit)


class GaitSeq2Seq(nn.Module):
    """``num_axes`` independent AGE/CAGE seq2seq models computed as one batch.

    Args:
        num_axes: number of independent models ``A`` (3 for x, y, z).
        num_joints: ``J``, values per frame for one axis.
        length: ``f``, frames per window (fixes the projection head's input size).
        hidden: LSTM, attention and memory width ``H``.
        layers: LSTM layers in encoder and decoder.
        contrastive: build the CAGE projection head.
        proj_dim: projection width.
        teacher_forcing: feed ``[0, y_0..y_{f-2}]`` to the decoder instead of zeros
            (off by default: the reference feeds zeros).
        kernel_seed: ``None`` or an integer that makes all LSTM kernels of one
            shape start identical (the reference's fixed-seed initialiser).
        forget_bias: the constant added to the forget gate pre-activation.
    """

    def __init__(
        self,
        num_axes: int = 3,
        num_joints: int = 20,
        length: int = 6,
        hidden: int = 256,
        layers: int = 2,
        contrastive: bool = True,
        proj_dim: int = 256,
        teacher_forcing: bool = False,
        kernel_seed: int | None = None,
        forget_bias: float = 1.0,
    ):
        super().__init__()
        for name, value in (("num_axes", num_axes), ("num_joints", num_joints), ("length", length),
                            ("hidden", hidden), ("layers", layers), ("proj_dim", proj_dim)):
            if int(value) < 1:
                raise ValueError(f"GaitSeq2Seq: {name} must be >= 1, got {value}")
        self.num_axes = A = int(num_axes)
        self.num_joints = J = int(num_joints)
        self.length = f = int(length)
        self.hidden = H = int(hidden)
        self.layers = int(layers)
        self.contrastive = bool(contrastive)
        self.proj_dim = P = int(proj_dim)
        self.teacher_forcing = bool(teacher_forcing)
        self.kernel_seed = kernel_seed

        self.encoder = StackedTFLSTM(A, J, H, self.layers, forget_bias=forget_bias, kernel_seed=kernel_seed)
        # Input feeding: the decoder cell reads [x_t ; a_{t-1}].
        self.decoder = StackedTFLSTM(A, J + H, H, self.layers, forget_bias=forget_bias, kernel_seed=kernel_seed)
        self.memory_kernel = nn.Parameter(torch.empty(A, H, H))          # W_m, keys = h_s W_m
        self.attention_kernel = nn.Parameter(torch.empty(A, 2 * H, H))   # W_a on [ĥ_t ; c_t]
        self.output_kernel = nn.Parameter(torch.empty(A, H, J))          # W_o
        self.output_bias = nn.Parameter(torch.zeros(A, J))               # b_o
        if self.contrastive:
            self.proj_kernel1 = nn.Parameter(torch.empty(A, f * H, P))   # W1
            self.proj_bias1 = nn.Parameter(torch.zeros(A, P))            # b1
            self.proj_kernel2 = nn.Parameter(torch.empty(A, P, P))       # W
            self.proj_bias2 = nn.Parameter(torch.zeros(A, P))            # b
        self._reset_heads()

    # ------------------------------------------------------------------ init
    def _reset_heads(self) -> None:
        with torch.no_grad():
            _glorot_uniform_(self.memory_kernel)
            _glorot_uniform_(self.attention_kernel)
            nn.init.trunc_normal_(self.output_kernel, 0.0, OUTPUT_INIT_STD,
                                  -2 * OUTPUT_INIT_STD, 2 * OUTPUT_INIT_STD)
            self.output_bias.zero_()
            if self.contrastive:
                nn.init.normal_(self.proj_kernel1, 0.0, 1.0)
                self.proj_bias1.zero_()
                nn.init.normal_(self.proj_kernel2, 0.0, 1.0)
                self.proj_bias2.zero_()

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        self.decoder.reset_parameters()
        self._reset_heads()

    # -------------------------------------------------------------- helpers
    def config(self) -> dict:
        """Constructor arguments that rebuild this architecture."""
        return dict(
            num_axes=self.num_axes, num_joints=self.num_joints, length=self.length,
            hidden=self.hidden, layers=self.layers, contrastive=self.contrastive,
            proj_dim=self.proj_dim, teacher_forcing=self.teacher_forcing,
            kernel_seed=self.kernel_seed, forget_bias=self.encoder.forget_bias,
        )

    def axis_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """All ``(name, parameter)`` pairs; each parameter's dim 0 is the axis."""
        for name, p in self.named_parameters():
            assert p.shape[0] == self.num_axes, name
            yield name, p

    def parameters_per_axis(self) -> int:
        """Number of trainable scalars of one axis's model."""
        return sum(p[0].numel() for _, p in self.axis_parameters())

    def select_axes(self, axes: Sequence[int]) -> "GaitSeq2Seq":
        """A new model holding copies of the given axes' parameters, in that order."""
        idx = [int(a) for a in axes]
        cfg = self.config()
        cfg["num_axes"] = len(idx)
        ref = next(self.parameters())
        other = GaitSeq2Seq(**cfg).to(device=ref.device, dtype=ref.dtype)
        mine = dict(self.named_parameters())
        with torch.no_grad():
            for name, p in other.named_parameters():
                p.copy_(mine[name][idx])
        return other

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[0] != self.num_axes or x.shape[2] != self.length \
                or x.shape[3] != self.num_joints:
            raise ValueError(
                f"expected input [A={self.num_axes}, B, f={self.length}, J={self.num_joints}], "
                f"got {list(x.shape)}"
            )

    def _decoder_inputs(self, x: Tensor, target: Tensor | None) -> Tensor:
        if not self.teacher_forcing:
            return torch.zeros_like(x)
        if target is None:
            raise ValueError("teacher_forcing=True needs the target sequence")
        if target.shape != x.shape:
            raise ValueError(f"target shape {list(target.shape)} differs from input {list(x.shape)}")
        return torch.cat((torch.zeros_like(target[:, :, :1]), target[:, :, :-1]), dim=2)

    def _attend(self, h_top: Tensor, keys: Tensor, memory: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Luong general attention + attentional layer for one decoder step.

        ``h_top`` ``[A, B, H]``, ``keys``/``memory`` ``[A, B, f, H]`` ->
        (attentional vector ``[A, B, H]``, alignment ``[A, B, f]``, context ``[A, B, H]``).
        """
        scores = torch.matmul(keys, h_top.unsqueeze(-1)).squeeze(-1)         # [A, B, f]
        alpha = torch.softmax(scores, dim=-1)
        context = torch.matmul(alpha.unsqueeze(-2), memory).squeeze(-2)      # [A, B, H]
        attentional = torch.bmm(torch.cat((h_top, context), dim=-1), self.attention_kernel)
        return attentional, alpha, context

    def _project_output(self, attentional: Tensor) -> Tensor:
        return torch.baddbmm(self.output_bias.unsqueeze(1), attentional, self.output_kernel)

    def _encode(self, x: Tensor):
        memory, state = self.encoder(x)                                      # [A, B, f, H]
        A, B, f, H = memory.shape
        keys = torch.bmm(memory.reshape(A, B * f, H), self.memory_kernel).reshape(A, B, f, H)
        return memory, keys, state

    def project(self, context: Tensor) -> Tensor:
        """Contrastive head on contexts ``[A, B, f, H]`` -> ``[A, B, proj_dim]``."""
        if not self.contrastive:
            raise RuntimeError("this model has no projection head (contrastive=False)")
        A, B = context.shape[:2]
        flat = context.reshape(A, B, -1)
        hidden = torch.relu(torch.baddbmm(self.proj_bias1.unsqueeze(1), flat, self.proj_kernel1))
        return torch.baddbmm(self.proj_bias2.unsqueeze(1), hidden, self.proj_kernel2)

    # -------------------------------------------------------------- forward
    def _decode(self, x: Tensor, dec_inputs: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Encoder + training decoder -> (output, attention, context, encoder outputs)."""
        memory, keys, state = self._encode(x)
        A, B, f, H = memory.shape
        attentional = memory.new_zeros(A, B, H)                              # a_{-1} = 0
        outputs, alignments, contexts = [], [], []
        for t in range(f):
            h_top, state = self.decoder.step(torch.cat((dec_inputs[:, :, t], attentional), dim=-1), state)
            attentional, alpha, context = self._attend(h_top, keys, memory)
            outputs.append(self._project_output(attentional))
            alignments.append(alpha)
            contexts.append(context)
        return (torch.stack(outputs, dim=2), torch.stack(alignments, dim=2),
                torch.stack(contexts, dim=2), memory)

    def forward(self, x: Tensor, target: Tensor | None = None) -> Seq2SeqOutput:
        """Training decoder pass. ``x`` ``[A, B, f, J]``; ``target`` only matters with teacher forcing."""
        self._check_input(x)
        output, attention, context, memory = self._decode(x, self._decoder_inputs(x, target))
        return Seq2SeqOutput(
            output=output,
            attention=attention,
            context=context,
            encoder_outputs=memory,
            projection=self.project(context) if self.contrastive else None,
        )

    def embed(self, x: Tensor) -> Tensor:
        """Context vectors ``[A, B, f, H]`` of the zero-input training decoder, in eval mode, without gradients.

        Zero decoder inputs regardless of ``teacher_forcing``: the reference reads
        its features from the training decoder, whose inputs are zeros.
        """
        self._check_input(x)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self._decode(x, torch.zeros_like(x))[2]
        finally:
            self.train(was_training)

    def predict(self, x: Tensor) -> Tensor:
        """Autoregressive inference decoder: start input zeros, then ``ŷ_{t-1}``. Returns ``[A, B, f, J]``.

        Not used for losses or features; it shares all weights with the training decoder.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                self._check_input(x)
                memory, keys, state = self._encode(x)
                A, B, f, H = memory.shape
                y = x.new_zeros(A, B, self.num_joints)
                attentional = memory.new_zeros(A, B, H)
                outputs = []
                for _ in range(f):
                    h_top, state = self.decoder.step(torch.cat((y, attentional), dim=-1), state)
                    attentional, _, _ = self._attend(h_top, keys, memory)
                    y = self._project_output(attentional)
                    outputs.append(y)
                return torch.stack(outputs, dim=2)
        finally:
            self.train(was_training)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items())
