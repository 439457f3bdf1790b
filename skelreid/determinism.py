"""Process-level set-up that keeps CPU results bit-reproducible from one process to the next.

**The race this removes.** On CPU, PyTorch's element-wise ``tanh``, ``exp``,
``log``, ``sqrt``, ``erf``, ... call Intel MKL's vector math library (VML) on
chunks of the tensor, one chunk per OpenMP thread. VML picks its kernel for the
CPU from a CPU-type value that it detects lazily, on its first call in the
process, and caches. When the first VML call of a process is a *parallel* one,
two threads can enter that detection at once, and a thread that reads the cache
between two of its writes runs a lower-accuracy kernel for its chunk. The result
of that one call then differs in the last bits (up to 4e-7 for ``tanh``) in a
few values, and only in that process: one process in 12 to 80, more often under
CPU load. For skelreid the first VML call is the encoder LSTM's first ``tanh``,
so a process that resumes a run at its recognition network (or runs
``skelreid evaluate``) could recompute slightly different features from the
same weights, and the resumed run would no longer be bit-identical.

:func:`warm_up_math_kernels` removes the race at its root: it calls every
VML-backed unary operation once on a one-element tensor, which runs on one
thread, so the detection is over before any parallel call. It runs when
:mod:`skelreid.models`, :mod:`skelreid.training` or :mod:`skelreid.evaluation`
is imported (before any model computation of skelreid) and is idempotent.
A program that already made parallel VML calls before importing skelreid has
passed the first call already: later calls are consistent.
"""
from __future__ import annotations

import os
import threading

import torch

from . import cpu_waits

#: Diagnostic switch, for measuring the race (tools/vml_race_probe.py): ``1`` skips the warm-up.
NO_WARMUP_ENV = "SKELREID_NO_VML_WARMUP"

#: PyTorch's CPU unary kernels that call MKL VML (ATen ``cpu/vml.h``) when MKL is present.
VML_OPS = ("tanh", "exp", "log", "log10", "log2", "sqrt", "sin", "cos", "tan", "asin", "acos", "atan",
           "erf", "erfc", "erfinv", "trunc", "lgamma", "expm1", "log1p", "sinh", "cosh")

_lock = threading.Lock()
_done = False


def warm_up_math_kernels() -> None:
    """One single-threaded call of every VML-backed operation, before any parallel one (idempotent)."""
    global _done
    if _done or os.environ.get(NO_WARMUP_ENV) == "1":
        return
    with _lock:
        if _done:
            return
        for dtype in (torch.float32, torch.float64):
            x = torch.full((1,), 0.5, dtype=dtype)
            for name in VML_OPS:
                fn = getattr(torch, name, None)
                if fn is not None:
                    fn(x)
            # BLAS dispatch is detected lazily too: one tiny single-threaded product of each kind used.
            m = x.reshape(1, 1, 1)
            torch.baddbmm(m, m, m)
            torch.mm(m[0], m[0])
        _done = True


_flushing = False


def flush_denormals() -> bool:
    """Flush denormal floats to zero on CPU (``torch.set_flush_denormal``); True where supported."""
    global _flushing
    import numpy as np

    # numpy measures each float type's limits once, on first use; measured after the flush it would see
    # its smallest subnormal as zero and warn ("The value of the smallest subnormal ... is zero")
    for dtype in (np.float16, np.float32, np.float64, np.longdouble):
        np.finfo(dtype).smallest_subnormal
    _flushing = bool(torch.set_flush_denormal(True))
    return _flushing


def thread_settings() -> dict:
    """What decides how CPU kernels compute: recorded with every run."""
    return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "mkl": bool(torch.backends.mkl.is_available()), "flush_denormal": _flushing,
            "omp_waits": cpu_waits.state()}


warm_up_math_kernels()
