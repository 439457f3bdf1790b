"""Dataset registry: a dataset name -> a loader that returns walks (:class:`Sequence`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ConfigError
from ..registry import Registry
from .records import Sequence


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    load: Callable[..., list[Sequence]]   # (data config, progress) -> walks
    description: str
    needs_root: bool = True


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def default_cache_dir() -> Path:
    base = os.environ.get("SKELREID_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "skelreid")
    return Path(base)


def _root(cfg, name: str) -> Path:
    if not cfg.root:
        raise ConfigError(f"dataset {name} needs --root PATH (the folder with its raw files)")
    return Path(cfg.root).expanduser()


def _cache(cfg, name: str) -> Path:
    return (Path(cfg.cache).expanduser() if cfg.cache else default_cache_dir()) / name.lower()


def _load_synthetic(cfg, progress: bool = False) -> list[Sequence]:
    from .synthetic import generate_dataset

    params = dict(cfg.synthetic)
    if "frames" in params:
        params["frames"] = tuple(params["frames"])
    return generate_dataset(**params)


def _load_kgbd(cfg, progress: bool = False) -> list[Sequence]:
    from .readers.kgbd import read_kgbd

    return read_kgbd(_root(cfg, "KGBD"), cache_dir=_cache(cfg, "KGBD"), progress=progress, nan_policy=cfg.nan_policy)


def _load_biwi_ias(name: str):
    def load(cfg, progress: bool = False) -> list[Sequence]:
        from .readers.biwi_ias import read_biwi_ias

        return read_biwi_ias(_root(cfg, name), progress=progress, nan_policy=cfg.nan_policy)
    return load


def _load_ks20(cfg, progress: bool = False) -> list[Sequence]:
    from .readers.ks20 import read_ks20

    return read_ks20(_root(cfg, "KS20"), progress=progress, nan_policy=cfg.nan_policy)


def _load_casia_b(cfg, progress: bool = False) -> list[Sequence]:
    from .readers.casia_b import read_casia_b

    return read_casia_b(_root(cfg, "CASIA_B"), progress=progress, nan_policy=cfg.nan_policy)


def _load_generic(cfg, progress: bool = False) -> list[Sequence]:
    from .readers.generic import read_generic

    return read_generic(_root(cfg, "generic"), nan_policy=cfg.nan_policy)


for _spec in (
    DatasetSpec("synthetic", _load_synthetic, "procedural walkers (embedded, no download)", needs_root=False),
    DatasetSpec("KGBD", _load_kgbd, "Kinect Gait Biometry Dataset raw text (Data/PersonNNN/K.txt)"),
    DatasetSpec("BIWI", _load_biwi_ias("BIWI"), "BIWI RGBD-ID raw skeletons (Training/, Testing/Walking/, Testing/Still/)"),
    DatasetSpec("IAS", _load_biwi_ias("IAS"), "IAS-Lab RGBD-ID raw skeletons (Training/, TestingA/, TestingB/)"),
    DatasetSpec("KS20", _load_ks20, "KS20 VisLab multi-view Kinect v2 skeletons (25 joints, 5 views)"),
    DatasetSpec("CASIA_B", _load_casia_b, "CASIA-B 3D skeletons (14 joints, 11 views, nm/bg/cl)"),
    DatasetSpec("generic", _load_generic, "your own data: one .npz or .csv per sequence"),
):
    DATASETS.add(_spec.name, _spec)


def load_sequences(cfg, persons: int | None = None, progress: bool = False) -> list[Sequence]:
    """Load a dataset's walks; ``persons`` keeps only the first N persons (natural order)."""
    from .records import natural_key

    from .pack import is_pack, read_pack

    spec = DATASETS.get(cfg.dataset)
    if is_pack(cfg.root):  # `skelreid pack` output: the parsed walks of this dataset, compact
        _, seqs = read_pack(Path(cfg.root).expanduser(), dataset=spec.name)
    else:
        seqs = spec.load(cfg, progress)
    if persons:
        keep = sorted({s.person for s in seqs}, key=natural_key)[:persons]
        seqs = [s for s in seqs if s.person in set(keep)]
    return seqs
