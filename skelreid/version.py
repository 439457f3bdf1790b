"""The library's version, and the versions a checkpoint or a results file records."""
from __future__ import annotations

import functools

__version__ = "0.1.0"


@functools.lru_cache(maxsize=None)
def _sklearn_version() -> str:
    # The installed distribution's version: the same string as ``sklearn.__version__``, without
    # importing scikit-learn (seconds, with scipy) in a process that only saves a checkpoint.
    from importlib import metadata

    try:
        return metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        import sklearn

        return sklearn.__version__


def versions() -> dict:
    import platform

    import numpy
    import torch

    return {"skelreid": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "sklearn": _sklearn_version(), "python": platform.python_version()}
