"""Checkpoints: safetensors weights plus a JSON sidecar; never pickle.

``<name>.safetensors`` holds the tensors; ``<name>.json`` holds the metadata
(config, epoch, seed, dataset fingerprint, library versions) and the SHA-256 of
the weights file, which is checked on load.
"""
from __future__ import annotations

import platform
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..errors import DataError
from ..io import read_json, sha256_bytes, write_bytes, write_json


def versions() -> dict:
    import numpy
    import sklearn

    from .. import __version__

    return {"skelreid": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "sklearn": sklearn.__version__, "python": platform.python_version()}


def save_checkpoint(prefix: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    prefix = Path(prefix)
    data = st_save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
    write_bytes(prefix.with_suffix(".safetensors"), data)
    write_json(prefix.with_suffix(".json"), {**meta, "weights_sha256": sha256_bytes(data), "versions": versions()})


def load_checkpoint(prefix: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    prefix = Path(prefix)
    wpath, mpath = prefix.with_suffix(".safetensors"), prefix.with_suffix(".json")
    meta = read_json(mpath)
    try:
        data = wpath.read_bytes()
    except FileNotFoundError:
        raise DataError(wpath, "checkpoint weights not found") from None
    if sha256_bytes(data) != meta.get("weights_sha256"):
        raise DataError(wpath, "checksum mismatch: the weights file is damaged or was changed")
    try:
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise DataError(wpath, f"cannot read weights: {exc}") from None
    return tensors, meta
