"""The library's version, and the versions a checkpoint or a results file records."""
from __future__ import annotations

__version__ = "0.1.0"


def versions() -> dict:
    import platform

    import numpy
    import sklearn
    import torch

    return {"skelreid": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "sklearn": sklearn.__version__, "python": platform.python_version()}
