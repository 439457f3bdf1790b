"""The recognition network's training step: the eager loop on CPU, the whole-step graph on CUDA.

CI has no GPU, so what is checked here is everything of the graph path except the capture itself:
the row gather, the loss wrapper and the eager fallback (which a failed capture uses) must train exactly
as the plain loop does, and a failed capture must say so in one line.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from skelreid.config import RNConfig
from skelreid.training import recognition
from skelreid.training.recognition import EvalSet, RecognitionNet, train_rn


def _data(n=96, d=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = (rng.normal(size=(n, d)) + 4.0 * y[:, None]).astype(np.float32)
    return EvalSet(x, y.astype(np.int64), 1)


def test_graph_step_fallback_trains_exactly_as_the_eager_loop():
    s = _data()
    x, y = torch.from_numpy(s.x), torch.from_numpy(s.y)
    bs, loss_fn = 16, nn.CrossEntropyLoss()
    torch.manual_seed(0)
    plain = RecognitionNet(12, 4, 8)
    graphed = RecognitionNet(12, 4, 8)
    graphed.load_state_dict(plain.state_dict())
    opt_plain = torch.optim.Adam(plain.parameters(), lr=1e-2)
    opt_graphed = torch.optim.Adam(graphed.parameters(), lr=1e-2)
    notes = []
    step = recognition._graph_step(graphed, opt_graphed, x, y, bs, loss_fn, notes.append)
    for s0 in (0, 16, 32, 80, 0, 48):
        loss = loss_fn(plain(x[s0: s0 + bs]), y[s0: s0 + bs])
        opt_plain.zero_grad(set_to_none=True)
        loss.backward()
        opt_plain.step()
        got = step(s0)
        assert torch.equal(got, loss.detach()), (s0, got, loss)
    for a, b in zip(plain.parameters(), graphed.parameters()):
        assert torch.equal(a, b)
    # no CUDA here: the capture fails and the step says so once, then trains eagerly
    if not torch.cuda.is_available():
        assert len(notes) == 1 and "using the eager step" in notes[0], notes


def test_train_rn_auto_on_cpu_is_the_eager_loop_and_unknown_steps_are_refused():
    train, val = _data(seed=1), _data(n=40, seed=2)
    cfg = RNConfig(hidden=8, epochs=10, batch_size=16, lr=1e-2)
    a = train_rn(train, 4, cfg, torch.device("cpu"), seed=0, val=val)
    b = train_rn(train, 4, cfg, torch.device("cpu"), seed=0, val=val, step="eager")
    assert a.history == b.history
    for k, v in a.states["last"].items():
        assert torch.equal(v, b.states["last"][k])
    assert a.history[-1]["val_rank1"] > 1.5 * 0.25      # it learns: well above chance on 4 classes
    with pytest.raises(ValueError, match="unknown RN step 'graphs'; choose from auto, eager"):
        train_rn(train, 4, cfg, torch.device("cpu"), seed=0, step="graphs")
