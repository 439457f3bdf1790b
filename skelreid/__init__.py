"""skelreid: self-supervised person re-identification from 3D skeleton gait (CAGE / AGE)."""
from . import cpu_waits as _cpu_waits

# before any skelreid module imports torch: libgomp reads how its threads wait once, when torch loads it
_cpu_waits.apply()

from .version import __version__  # noqa: E402

__all__ = ["__version__", "load"]


def load(run_dir, device: str = "cpu"):
    """The trained model of a run folder, ready to embed, enrol and identify walks
    (:class:`skelreid.inference.GaitModel`; imported on first use, so ``import skelreid`` stays cheap)."""
    from .inference import load as _load

    return _load(run_dir, device=device)
