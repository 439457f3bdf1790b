"""Data-parallel encoder training (skelreid.training.distributed): 2 CPU processes with gloo.

Both ranks run the real ``train_encoder`` for 2 steps on their own shard of the
batches. They must end with identical weights, equal to a single-process run
that, at each step, averages the gradients of the batches the two ranks saw.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from skelreid import losses as L
from skelreid.config import build_config, parse_set
from skelreid.data.synthetic import generate_dataset
from skelreid.data.windows import make_windows
from skelreid.pretext import TASKS
from skelreid.training import distributed as D
from skelreid.training.encoder import EncoderSpec, batch_order, build_model, step_losses, train_encoder

pytestmark = pytest.mark.slow   # end-to-end: `make test-fast` (pytest -m "not slow") leaves it out

BATCH, WORLD = 16, 2


def _cfg():
    return build_config("synthetic", [parse_set([
        "progress=false", "encoder.epochs=1", f"encoder.batch_size={BATCH}", "encoder.hidden=32",
        "encoder.proj_dim=32", "encoder.temperature=0.5", "seed=7"])])


def _data():
    ws = make_windows(generate_dataset(num_persons=2, walks_per_person=2, frames=(110, 130), seed=3),
                      length=6, clip=10)
    x, y = TASKS.get("rev_rec").make(ws, 0)
    n = 2 * WORLD * BATCH                                   # 4 batches: 2 steps on each of 2 ranks
    return np.ascontiguousarray(x[:n]), np.ascontiguousarray(y[:n])


def _worker(rank: int, store: str, out_dir: str, x: np.ndarray, y: np.ndarray) -> None:
    # A file rendezvous: no TCP port to pick (a "free" port can be taken by another process meanwhile).
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), SKELREID_DIST_INIT=store)
    torch.set_num_threads(1)
    device = D.init_from_env("cpu")
    try:
        assert D.is_distributed() and D.rank() == rank and D.is_main() == (rank == 0)
        model, hist = train_encoder(x, y, EncoderSpec("rev_rec", "LA"), _cfg(), device,
                                    out_prefix=Path(out_dir) / f"enc_rank{rank}")
        torch.save({"state": model.state_dict(), "epochs": hist.epochs}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()


def test_shard_batches_contiguous_equal_counts():
    batches = list(range(7))
    assert D.shard_batches(batches, 0, 2) == [0, 1, 2]
    assert D.shard_batches(batches, 1, 2) == [3, 4, 5]       # the 7th is dropped: equal step counts
    assert D.shard_batches(batches, 0, 1) == batches
    with pytest.raises(ValueError):
        D.shard_batches([0], 0, 2)
    assert not D.is_distributed() and D.is_main() and D.local_batches(batches) == batches


def test_two_gloo_ranks_equal_single_process_with_averaged_gradients(tmp_path):
    x, y = _data()
    mp.spawn(_worker, args=(f"file://{tmp_path / 'store'}", str(tmp_path), x, y), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    # only the main rank saved its checkpoint
    assert (tmp_path / "enc_rank0.json").exists() and not (tmp_path / "enc_rank1.json").exists()
    for name, p in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][name], p, rtol=0, atol=0, msg=name)

    # single process over the union of the shards: step s averages the gradients of batch s and 2 + s
    cfg = _cfg()
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, x.shape[2], x.shape[3], True)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=cfg.encoder.lr)
    xa, ya = (torch.from_numpy(np.moveaxis(a, -1, 0).copy()) for a in (x, y))
    objective = L.la_objective(6)
    batches = [torch.as_tensor(b) for b in batch_order(len(x), BATCH, shuffle_once=False, seed=cfg.seed)]
    shards = [D.shard_batches(batches, r, WORLD) for r in range(WORLD)]
    assert [len(s) for s in shards] == [2, 2]
    for step in range(2):
        opt.zero_grad(set_to_none=True)
        for shard in shards:
            idx = shard[step]
            terms = step_losses(model, xa[:, idx], ya[:, idx], objective, cfg.encoder.temperature, cfg.encoder.l2, True)
            (terms["total"].sum() / WORLD).backward()         # accumulates the mean gradient
        torch.nn.utils.clip_grad_value_(model.parameters(), cfg.encoder.grad_clip)
        opt.step()
    moved = False
    for name, p in model.state_dict().items():
        torch.testing.assert_close(ranks[0]["state"][name], p, rtol=1e-5, atol=1e-6, msg=name)
        moved |= not torch.equal(p, start[name])
    assert moved
    # each rank logged the losses of its own batches
    assert ranks[0]["epochs"][0]["total"] != ranks[1]["epochs"][0]["total"]
