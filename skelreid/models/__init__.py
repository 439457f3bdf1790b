from .. import determinism as _determinism  # noqa: F401  (VML warm-up before any parallel math: see the module)
