"""``--source successors_npy``: windows and splits from the successors' released npy layout (issue 19).

Glue between :mod:`skelreid.data.readers.successors_npy` and the pipeline's ``Prepared``; kept out of
``pipeline`` so the call site there is one line.
"""
from __future__ import annotations

from pathlib import Path

from .errors import ConfigError


def prepare_successors(cfg, manifest_path: Path | None):
    """The authors' exact split: train and test splits as written by SPC-MGR's ``Preprocess.py``."""
    from .data.readers.successors_npy import read_successors_layout
    from .data.splits import load_manifest, make_predefined_manifest, save_manifest
    from .pipeline import _merge_splits, _prepared

    d = cfg.data
    if d.root is None:
        raise ConfigError("--source successors_npy needs --root (the folder that holds Datasets/)")
    if d.view == "all":
        raise ConfigError("--view all is not available with --source successors_npy; give one view")
    if d.protocol != "probe_gallery":
        raise ConfigError("--source successors_npy holds probe/gallery splits: use --protocol probe_gallery")
    splits = read_successors_layout(d.root, d.dataset, d.length, view=None if d.view is None else int(d.view))
    merged, ids = _merge_splits(splits)
    if manifest_path is not None and manifest_path.exists():
        manifest = load_manifest(manifest_path, merged.walks)
    else:
        manifest = make_predefined_manifest(d.dataset, ids, d.protocol, d.split_seed, source="successors_npy")
        if manifest_path is not None:
            save_manifest(manifest_path, manifest)
    return _prepared(cfg, merged, manifest, {}, frames=len(merged) * d.length)
