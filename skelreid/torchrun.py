"""The ``torchrun`` entry point: data-parallel encoder training over several processes.

::

    torchrun --nproc_per_node 4 -m skelreid.torchrun \\
        train-encoder --dataset KGBD --root KinectGait/Data --device cuda --out runs/enc_dp

The arguments after the module are exactly those of the ``skelreid`` command. This module
joins the process group described by torchrun's environment (pinning each rank to GPU
``LOCAL_RANK`` before CUDA starts), then runs the command line; the data-parallel hooks
themselves live in :mod:`skelreid.training.distributed`, which never imports the command line.
"""
from __future__ import annotations

import os
import sys

import torch.distributed as dist

from .training import distributed


def _pin_gpu_before_cuda() -> None:
    """Make GPU ``LOCAL_RANK`` the only one this process sees, so ``cuda``/``cuda:0`` is its own GPU."""
    local = os.environ.get("LOCAL_RANK")
    if local is None or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else None
    if ids is None:
        os.environ["CUDA_VISIBLE_DEVICES"] = local
    elif int(local) < len(ids):
        os.environ["CUDA_VISIBLE_DEVICES"] = ids[int(local)]


def _device_argument(argv: list[str]) -> str:
    """The value of ``--device`` in a skelreid command line ("cpu" when absent)."""
    for i, a in enumerate(argv):
        if a == "--device" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--device="):
            return a.split("=", 1)[1]
    return "cpu"


def main(argv: list[str] | None = None) -> int:
    """``torchrun ... -m skelreid.torchrun <skelreid arguments>``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = _device_argument(argv).strip().lower()
    on_gpu = name.startswith("cuda") or name.isdigit()
    if on_gpu:
        _pin_gpu_before_cuda()
    distributed.init_from_env("cuda" if on_gpu else "cpu")
    from .cli import main as cli_main

    try:
        code = cli_main(argv)
        distributed.barrier()
        return code
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
