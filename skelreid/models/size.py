"""Analytic size and cost of :class:`~skelreid.models.seq2seq.GaitSeq2Seq`.

Parameter counts are exact (a test checks them against an instantiated model).

Cost convention: multiply-accumulates (MACs) of every matrix product of one
forward pass of the *training* graph for one window (one sequence of ``f``
frames) on all axes and models — encoder LSTM kernels, decoder LSTM kernels
(with input feeding), the memory layer applied once to the encoder outputs, the
attention scores and context sums, the attentional layer, the output layer and
the projection head. Bias additions, gate non-linearities, element-wise
products and the softmax are not counted. FLOPs = 2 · MACs. The inference
(autoregressive) decoder is not part of the training graph and is not counted.

The papers report 8.47 M parameters and 7.47 GFLOPs for CAGE without stating
the FLOP convention; the parameter figure is reproduced exactly by the
reference-equivalent count (our parameters plus the reference's two unused
trainable copies ``lstm_weights_1`` ``[J+H, 4H]`` and ``lstm_weights_2``
``[4H]`` per axis, spec §2.2 "Extras").
"""
from __future__ import annotations

PAPER_PARAMS = 8.47e6
PAPER_FLOPS = 7.47e9


def _lstm_params(input_size: int, hidden: int, layers: int) -> list[int]:
    return [((input_size if l == 0 else hidden) + hidden) * 4 * hidden + 4 * hidden for l in range(layers)]


def _lstm_macs_per_step(input_size: int, hidden: int, layers: int) -> int:
    return sum(((input_size if l == 0 else hidden) + hidden) * 4 * hidden for l in range(layers))


def model_size(
    num_joints: int = 20,
    length: int = 6,
    hidden: int = 256,
    contrastive: bool = True,
    num_axes: int = 3,
    num_models: int = 1,
    layers: int = 2,
    proj_dim: int = 256,
    batch: int = 128,
) -> dict:
    """Parameter and cost figures for ``num_models`` × ``num_axes`` seq2seq models.

    Returns a dict with per-axis parameter breakdown (``params_breakdown``),
    ``params_per_axis``, ``params_total``, ``reference_extra_per_axis``,
    ``reference_params_total``, per-axis and total MACs/FLOPs per window
    (``macs_per_axis``, ``macs_per_window``, ``flops_per_window``) and the same
    for a batch of ``batch`` windows (``flops_per_batch``).
    """
    J, f, H, P = int(num_joints), int(length), int(hidden), int(proj_dim)
    copies = int(num_axes) * int(num_models)
    enc = _lstm_params(J, H, layers)
    dec = _lstm_params(J + H, H, layers)
    breakdown = {f"encoder_layer{l + 1}": n for l, n in enumerate(enc)}
    breakdown.update({f"decoder_layer{l + 1}": n for l, n in enumerate(dec)})
    breakdown["memory_layer"] = H * H
    breakdown["attention_layer"] = 2 * H * H
    breakdown["output_layer"] = H * J + J
    head = f * H * P + P + P * P + P if contrastive else 0
    if contrastive:
        breakdown["projection_head"] = head
    per_axis = sum(breakdown.values())
    extra = (J + H) * 4 * H + 4 * H            # lstm_weights_1 + lstm_weights_2

    mac_parts = {
        "encoder": f * _lstm_macs_per_step(J, H, layers),
        "decoder_lstm": f * _lstm_macs_per_step(J + H, H, layers),
        "memory_layer": f * H * H,
        "attention_scores_context": f * 2 * f * H,
        "attention_layer": f * 2 * H * H,
        "output_layer": f * H * J,
    }
    if contrastive:
        mac_parts["projection_head"] = f * H * P + P * P
    macs_axis = sum(mac_parts.values())
    macs_window = macs_axis * copies
    return {
        "num_joints": J, "length": f, "hidden": H, "layers": layers, "proj_dim": P,
        "contrastive": bool(contrastive), "num_axes": int(num_axes), "num_models": int(num_models),
        "params_breakdown": breakdown,
        "params_per_axis": per_axis,
        "params_head_per_axis": head,
        "params_total": per_axis * copies,
        "reference_extra_per_axis": extra,
        "reference_params_total": (per_axis + extra) * copies,
        "macs_breakdown_per_axis": mac_parts,
        "macs_per_axis": macs_axis,
        "macs_per_window": macs_window,
        "flops_per_window": 2 * macs_window,
        "batch": int(batch),
        "flops_per_batch": 2 * macs_window * int(batch),
        "paper_params": PAPER_PARAMS,
        "paper_flops": PAPER_FLOPS,
    }


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def format_model_size(d: dict) -> str:
    """A plain-text table of :func:`model_size` figures beside the paper's."""
    lines = [
        f"GaitSeq2Seq size: J={d['num_joints']} f={d['length']} H={d['hidden']} layers={d['layers']} "
        f"contrastive={d['contrastive']} axes={d['num_axes']} models={d['num_models']}",
        "",
        f"{'per-axis parameters':<34}{'count':>14}",
    ]
    for name, n in d["params_breakdown"].items():
        lines.append(f"  {name:<32}{n:>14,}")
    lines.append(f"  {'total per axis':<32}{d['params_per_axis']:>14,}")
    lines += [
        "",
        f"{'quantity':<34}{'skelreid':>14}{'':>4}{'paper (CAGE)':>14}",
        f"{'parameters, total':<34}{d['params_total']:>14,}{'':>4}{_human(d['paper_params']):>14}",
        f"{'parameters, reference-equivalent':<34}{d['reference_params_total']:>14,}{'':>4}"
        f"{_human(d['paper_params']):>14}",
        f"{'MACs per window':<34}{d['macs_per_window']:>14,}{'':>4}{'-':>14}",
        f"{'FLOPs per window (2*MACs)':<34}{_human(d['flops_per_window']):>14}{'':>4}"
        f"{_human(d['paper_flops']):>14}",
        f"{'FLOPs per batch of ' + str(d['batch']):<34}{_human(d['flops_per_batch']):>14}{'':>4}{'-':>14}",
        "",
        "reference-equivalent = ours + the reference's unused trainable copies "
        "lstm_weights_1 [J+H, 4H] and lstm_weights_2 [4H] per axis;",
        "FLOPs count matmuls only (FLOPs = 2*MACs); the paper does not state its FLOP convention.",
    ]
    return "\n".join(lines)
