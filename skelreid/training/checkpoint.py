"""Checkpoints: safetensors weights plus a JSON sidecar; never pickle.

``<name>.safetensors`` holds the tensors; ``<name>.json`` holds the metadata
(config, epoch, seed, dataset fingerprint, library versions), the SHA-256 of
the weights file (``weights_sha256``) and the SHA-256 of the metadata itself
(``meta_sha256``, over the sorted-key JSON of every other field). Both are
checked on load: a damaged or edited file is refused with a
:class:`~skelreid.errors.DataError` naming it.

The weights are written first and the sidecar second, each atomically, so a
sidecar only ever describes weights that were completely written.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..errors import DataError
from ..io import json_dumps, read_json, remove_file, sha256_bytes, write_bytes, write_text
from ..version import versions  # noqa: F401  (re-exported: older imports)


def checkpoint_paths(prefix: str | Path) -> tuple[Path, Path]:
    """``(<prefix>.safetensors, <prefix>.json)``."""
    prefix = Path(prefix)
    return prefix.with_suffix(".safetensors"), prefix.with_suffix(".json")


def _meta_sha256(meta: dict) -> str:
    return sha256_bytes(json_dumps(meta).encode("utf-8"))


def save_checkpoint(prefix: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    wpath, mpath = checkpoint_paths(prefix)
    data = st_save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
    write_bytes(wpath, data)
    full = {**meta, "weights_sha256": sha256_bytes(data), "versions": versions()}
    full.pop("meta_sha256", None)
    write_text(mpath, json_dumps({**full, "meta_sha256": _meta_sha256(full)}))


def read_checkpoint_meta(prefix: str | Path) -> dict:
    """The checked metadata of a checkpoint (the weights are not read)."""
    _, mpath = checkpoint_paths(prefix)
    meta = read_json(mpath)
    if not isinstance(meta, dict) or "weights_sha256" not in meta:
        raise DataError(mpath, "not a skelreid checkpoint sidecar (no weights_sha256)")
    expected = meta.pop("meta_sha256", None)
    # Files written before meta_sha256 existed have none; they are still read.
    if expected is not None and _meta_sha256(meta) != expected:
        raise DataError(mpath, "checksum mismatch: the metadata file is damaged or was changed")
    return meta


def load_checkpoint(prefix: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    wpath, _ = checkpoint_paths(prefix)
    meta = read_checkpoint_meta(prefix)
    try:
        data = wpath.read_bytes()
    except FileNotFoundError:
        raise DataError(wpath, "checkpoint weights not found") from None
    except OSError as exc:
        raise DataError(wpath, f"cannot read weights: {exc.strerror or exc}") from None
    if sha256_bytes(data) != meta.get("weights_sha256"):
        raise DataError(wpath, "checksum mismatch: the weights file is damaged or was changed")
    try:
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise DataError(wpath, f"cannot read weights: {exc}") from None
    return tensors, meta


def delete_checkpoint(prefix: str | Path) -> None:
    """Remove a checkpoint: the sidecar first, so no sidecar outlives its weights."""
    wpath, mpath = checkpoint_paths(prefix)
    remove_file(mpath)
    remove_file(wpath)
