"""skelreid: self-supervised person re-identification from 3D skeleton gait (CAGE / AGE)."""
from .version import __version__

__all__ = ["__version__", "load"]


def load(run_dir, device: str = "cpu"):
    """The trained model of a run folder, ready to embed, enrol and identify walks
    (:class:`skelreid.inference.GaitModel`; imported on first use, so ``import skelreid`` stays cheap)."""
    from .inference import load as _load

    return _load(run_dir, device=device)
