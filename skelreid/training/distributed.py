"""Data-parallel encoder training over several processes (``torchrun``), one GPU (or CPU process) each.

Every rank holds a full copy of the (axis-batched) encoder, starts from the same
weights (same seed), trains on its own contiguous slice of the epoch's batches,
and averages the gradients over all ranks after each backward pass, before
clipping and the Adam step. Every rank therefore applies the same update and
the weights stay identical on all ranks. One step of ``W`` ranks equals one
single-process step on the ``W`` batches it covers with their gradients
averaged (:func:`average_gradients`): the effective batch is ``W`` times larger,
while the contrastive positives stay neighbours inside each rank's batches.

:func:`~skelreid.training.encoder.train_encoder` calls :func:`local_batches`
and :func:`average_gradients` and only writes on the main rank; both are no-ops
in an ordinary single process. Launch through :mod:`skelreid.torchrun` (the entry point; training code never imports the
command line) so that the process group exists before the normal command runs::

    torchrun --nproc_per_node 4 -m skelreid.torchrun \\
        train-encoder --dataset KGBD --root KinectGait/Data --device cuda --out runs/enc_dp

The arguments after the module are exactly those of the ``skelreid`` command.
On CUDA each rank is pinned to GPU ``LOCAL_RANK`` (through
``CUDA_VISIBLE_DEVICES`` before CUDA starts, so ``--device cuda`` means "my
GPU"), and NCCL is used; on CPU, gloo.
"""
from __future__ import annotations

import os
from typing import Sequence, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: An explicit ``init_method`` URL (``file://...``) instead of MASTER_ADDR/MASTER_PORT (torchrun sets those).
INIT_ENV = "SKELREID_DIST_INIT"


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0, and in an ordinary single process: the one that saves and logs."""
    return rank() == 0


def init_from_env(device: torch.device | str) -> torch.device:
    """Join the process group described by torchrun's environment; returns this rank's device.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` (or, instead of the last two, ``SKELREID_DIST_INIT``, an
    ``init_method`` URL such as ``file:///tmp/store``). Without ``WORLD_SIZE`` (or with 1) nothing is initialised
    and ``device`` is returned unchanged. Backend: NCCL for CUDA, gloo for CPU.
    A CUDA device without an index becomes ``cuda:<LOCAL_RANK mod visible GPUs>``.
    """
    device = torch.device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or is_distributed():
        return device
    init = os.environ.get(INIT_ENV)  # e.g. file:///tmp/store: a rendezvous that needs no TCP port
    missing = [v for v in ENV_VARS if v not in os.environ and not (init and v in ("MASTER_ADDR", "MASTER_PORT"))]
    if missing:
        raise RuntimeError(f"distributed run: environment variables {missing} are not set (launch with torchrun)")
    local = int(os.environ["LOCAL_RANK"])
    kwargs = {"rank": int(os.environ["RANK"]), "world_size": world, **({"init_method": init} if init else {})}
    if device.type == "cuda":
        index = device.index if device.index is not None else local % torch.cuda.device_count()
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", **kwargs)
    else:
        dist.init_process_group("gloo", **kwargs)
    return device


def shard_batches(batches: Sequence[T], rank: int, world: int) -> list[T]:
    """Rank ``rank``'s contiguous slice of an epoch's batches; every rank gets the same number.

    Consecutive batches stay together (the walk order the contrastive loss
    relies on is kept inside each batch anyway). The last ``len(batches) % world``
    batches are dropped so that every rank takes the same number of steps.
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world}")
    per = len(batches) // world
    if per == 0:
        raise ValueError(f"{len(batches)} batch(es) cannot be shared by {world} processes: "
                         "use fewer processes or a smaller batch size")
    return list(batches[rank * per: (rank + 1) * per])


def local_batches(batches: Sequence[T]) -> list[T]:
    """This rank's shard (:func:`shard_batches`), or all batches outside a process group."""
    return shard_batches(batches, rank(), world_size()) if is_distributed() else list(batches)


def average_gradients(model: nn.Module) -> None:
    """Replace every gradient by its mean over all ranks (one all-reduce SUM of a flat buffer, / world).

    A no-op outside a process group. A parameter without a gradient counts as zeros.
    """
    if not is_distributed():
        return
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset: offset + n].view_as(g))
        offset += n


def barrier() -> None:
    """Wait for every rank (a no-op outside a process group)."""
    if is_distributed():
        dist.barrier()
