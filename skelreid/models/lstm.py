"""Stacked LSTM with TensorFlow-1 ``LSTMCell`` semantics, batched over axes.

One :class:`StackedTFLSTM` holds ``A`` mathematically independent LSTMs (one per
coordinate axis, or per axis and pretext model). Every parameter carries the
axis as its leading dimension and every product is a batched matmul over that
dimension, so axis ``a``'s outputs depend only on axis ``a``'s parameters and
inputs.

Cell (spec §2.1), per layer with one fused kernel ``K`` of shape
``[in + H, 4H]`` and bias ``b`` of shape ``[4H]``::

    i, j, f, o = split([x ; h_prev] K + b, 4)          # gate order i, j(=g), f, o
    c = σ(f + forget_bias) · c_prev + σ(i) · tanh(j)
    h = σ(o) · tanh(c)

``forget_bias`` (1.0) is a plain Python float, not a parameter, so an L2
penalty over the parameters never sees it. There are no peepholes and no
projection. Kernels start U(-0.1, 0.1) and biases zero.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

LSTMState = list[tuple[Tensor, Tensor]]
"""Per layer ``(h, c)``, each ``[A, B, H]``."""

KERNEL_INIT_RANGE = 0.1


def seeded_uniform_kernel(rows: int, cols: int, seed: int, limit: float = KERNEL_INIT_RANGE) -> Tensor:
    """A ``[rows, cols]`` U(-limit, limit) matrix drawn from a generator seeded with ``seed``.

    The same ``(rows, cols, seed)`` always gives the same matrix: this reproduces
    the reference's fixed-seed kernel initialiser, under which every LSTM kernel
    of one shape starts identical (spec §2.1, §7.P).
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    return torch.empty(rows, cols).uniform_(-limit, limit, generator=gen)


class StackedTFLSTM(nn.Module):
    """``layers`` stacked TF-style LSTM cells for ``num_axes`` independent models.

    Parameters: ``kernels[l]`` ``[A, in_l + H, 4H]`` (``in_0 = input_size``,
    ``in_l = H`` above) and ``biases[l]`` ``[A, 4H]``.

    ``kernel_seed``: ``None`` draws every kernel from the global RNG (axes
    differ); an integer draws each kernel from a generator seeded with it, so
    all kernels of the same shape are identical across layers, axes and modules.
    """

    def __init__(
        self,
        num_axes: int,
        input_size: int,
        hidden: int = 256,
        layers: int = 2,
        *,
        forget_bias: float = 1.0,
        kernel_seed: int | None = None,
    ):
        super().__init__()
        if num_axes < 1 or input_size < 1 or hidden < 1 or layers < 1:
            raise ValueError(
                f"StackedTFLSTM needs positive sizes, got num_axes={num_axes}, "
                f"input_size={input_size}, hidden={hidden}, layers={layers}"
            )
        self.num_axes = int(num_axes)
        self.input_size = int(input_size)
        self.hidden = int(hidden)
        self.layers = int(layers)
        self.forget_bias = float(forget_bias)
        self.kernel_seed = kernel_seed
        A, H = self.num_axes, self.hidden
        self.kernels = nn.ParameterList(
            nn.Parameter(torch.empty(A, (self.input_size if l == 0 else H) + H, 4 * H))
            for l in range(self.layers)
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(A, 4 * H)) for _ in range(self.layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for kernel, bias in zip(self.kernels, self.biases):
                if self.kernel_seed is None:
                    kernel.uniform_(-KERNEL_INIT_RANGE, KERNEL_INIT_RANGE)
                else:
                    rows, cols = kernel.shape[1:]
                    kernel.copy_(seeded_uniform_kernel(rows, cols, self.kernel_seed).expand_as(kernel))
                bias.zero_()

    def zero_state(self, batch: int, *, like: Tensor | None = None) -> LSTMState:
        ref = like if like is not None else self.kernels[0]
        shape = (self.num_axes, batch, self.hidden)
        return [
            (ref.new_zeros(shape), ref.new_zeros(shape)) for _ in range(self.layers)
        ]

    def step(self, x_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        """One time step. ``x_t`` ``[A, B, in]`` -> (top ``h`` ``[A, B, H]``, new state)."""
        if len(state) != self.layers:
            raise ValueError(f"state has {len(state)} layers, expected {self.layers}")
        inp = x_t
        new_state: LSTMState = []
        for kernel, bias, (h_prev, c_prev) in zip(self.kernels, self.biases, state):
            gates = torch.baddbmm(bias.unsqueeze(1), torch.cat((inp, h_prev), dim=-1), kernel)
            i, j, f, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f + self.forget_bias) * c_prev + torch.sigmoid(i) * torch.tanh(j)
            h = torch.sigmoid(o) * torch.tanh(c)
            new_state.append((h, c))
            inp = h
        return inp, new_state

    def forward(self, x: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        """Run over time. ``x`` ``[A, B, T, in]`` -> (top outputs ``[A, B, T, H]``, final state)."""
        if x.dim() != 4 or x.shape[0] != self.num_axes or x.shape[-1] != self.input_size:
            raise ValueError(
                f"expected input [A={self.num_axes}, B, T, {self.input_size}], got {list(x.shape)}"
            )
        if x.shape[2] < 1:
            raise ValueError("expected at least one time step")
        if state is None:
            state = self.zero_state(x.shape[1], like=x)
        outputs = []
        for t in range(x.shape[2]):
            h, state = self.step(x[:, :, t], state)
            outputs.append(h)
        return torch.stack(outputs, dim=2), state

    def extra_repr(self) -> str:
        return (
            f"num_axes={self.num_axes}, input_size={self.input_size}, hidden={self.hidden}, "
            f"layers={self.layers}, forget_bias={self.forget_bias}, kernel_seed={self.kernel_seed}"
        )
