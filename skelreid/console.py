"""One-line messages on stderr in the command line's style (``skelreid: ...``).

The lowest floor of the package: every layer may report through it (see docs/architecture.md).
"""
from __future__ import annotations

import sys


def warn(message: str) -> None:
    """One line on stderr, in the command line's style."""
    print(f"skelreid: warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def note(message: str) -> None:
    print(f"skelreid: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
