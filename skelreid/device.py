"""Device selection: ``cpu``, ``cuda``, ``cuda:N`` or a bare GPU index (the reference's ``--gpu N``)."""
from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(name: str | int | None) -> torch.device:
    text = "cpu" if name is None else str(name).strip().lower()
    if text.isdigit():
        text = f"cuda:{text}"
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        suffix = text.split(":", 1)[1] if ":" in text else "0"
        if not suffix.isdigit():
            raise ConfigError(f"--device {name!r} is not valid; use cpu, cuda, cuda:N or a GPU index")
        index = int(suffix)
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: no CUDA GPU is available on this machine; use --device cpu")
        count = torch.cuda.device_count()
        if not 0 <= index < count:
            raise ConfigError(f"--device {name}: GPU index out of range; this machine has {count} GPU(s)")
        return torch.device("cuda", index)
    raise ConfigError(f"--device {name!r} is not valid; use cpu, cuda, cuda:N or a GPU index")
