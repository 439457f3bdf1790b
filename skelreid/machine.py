"""The CPU a figure was measured on: recorded with every run and benchmark.

Machines of one kind can differ by CPU generation, and with it by a factor of 2 to 3 in speed
(measured on this project's 2-core machines: ``docs/video.md``, README), while reporting the same
model name. The instruction-set extensions tell the generations apart, so they are recorded too.
"""
from __future__ import annotations

import os
import platform

#: Instruction-set extensions that mark a CPU generation (and matter to torch's CPU kernels).
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def parse_cpuinfo(text: str) -> dict:
    """Model name, family / model numbers and :data:`ISA_FLAGS` of the first processor in ``text``
    (the contents of Linux's ``/proc/cpuinfo``)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break                       # the first processor's block is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {"model_name": fields.get("model name"), "family": fields.get("cpu family"),
            "model": fields.get("model"), "isa": [f for f in ISA_FLAGS if f in flags]}


def cpu_summary() -> dict:
    """This machine's CPU: core count and, on Linux, what :func:`parse_cpuinfo` reads."""
    out = {"cpus": os.cpu_count(), "machine": platform.machine()}
    try:
        with open("/proc/cpuinfo") as fh:
            out.update(parse_cpuinfo(fh.read()))
    except OSError:
        out["model_name"] = platform.processor() or None
    return out
