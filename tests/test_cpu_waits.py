"""The process's CPU set-up: how torch's OpenMP threads wait (skelreid/cpu_waits.py: a short spin by default,
the user's choice kept) and the CPU recorded with every figure (skelreid/machine.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from skelreid import cpu_waits

REPO = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (cpu_waits.SPIN_ENV, cpu_waits.POLICY_ENV)}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def test_unset_before_torch_gets_the_short_spin():
    env = {}
    got = cpu_waits.choose(env, torch_loaded=False)
    assert env == {"GOMP_SPINCOUNT": "3000"}
    assert got == {"GOMP_SPINCOUNT": "3000", "OMP_WAIT_POLICY": None, "set_by": "skelreid",
                   "torch_imported_first": False}


@pytest.mark.parametrize("user", [{"GOMP_SPINCOUNT": "INFINITY"}, {"OMP_WAIT_POLICY": "active"},
                                  {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"}])
def test_a_wait_policy_the_user_chose_is_kept(user):
    env = dict(user)
    got = cpu_waits.choose(env, torch_loaded=False)
    assert env == user and got["set_by"] == "user"
    assert got["GOMP_SPINCOUNT"] == user.get("GOMP_SPINCOUNT") and got["OMP_WAIT_POLICY"] == user.get("OMP_WAIT_POLICY")


def test_nothing_is_changed_once_torch_is_loaded():
    env = {"PATH": "/bin"}
    got = cpu_waits.choose(env, torch_loaded=True)
    assert env == {"PATH": "/bin"}
    assert got["set_by"] is None and got["torch_imported_first"] and got["GOMP_SPINCOUNT"] is None


@pytest.mark.parametrize("entry", ["skelreid", "skelreid.cli", "skelreid.pipeline", "skelreid.inference"])
def test_the_spin_is_set_before_torch_loads_and_recorded(entry):
    # every way in (the CLI, the pipeline, the inference API) passes through the package __init__ first
    code = ("import sys, os, builtins\n"
            "seen = {}\n"
            "real = builtins.__import__\n"
            "def spy(name, *a, **k):\n"
            "    if name.split('.')[0] == 'torch' and 'torch' not in sys.modules and 'at' not in seen:\n"
            "        seen['at'] = os.environ.get('GOMP_SPINCOUNT')\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = spy\n"
            f"import {entry}\n"
            "import skelreid.determinism as d, json\n"   # loads torch where the entry did not
            "builtins.__import__ = real\n"
            "print(json.dumps({'at_torch': seen.get('at'), 'state': d.thread_settings()['omp_waits']}))\n")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["at_torch"] == "3000", got
    assert got["state"]["set_by"] == "skelreid" and got["state"]["GOMP_SPINCOUNT"] == "3000"
    assert got["state"]["torch_imported_first"] is False


def test_torch_imported_first_is_left_alone_and_said():
    code = ("import torch, os, skelreid.determinism as d, json\n"
            "print(json.dumps([os.environ.get('GOMP_SPINCOUNT'), d.thread_settings()['omp_waits']]))\n")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    spin, state = json.loads(out.stdout.strip().splitlines()[-1])
    assert spin is None and state["set_by"] is None and state["torch_imported_first"] is True


def test_the_cpu_generation_is_read_from_cpuinfo():
    from skelreid.machine import parse_cpuinfo

    text = ("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
            "model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n\n"
            "processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n")
    got = parse_cpuinfo(text)
    assert got == {"model_name": "Intel(R) Xeon(R) Processor", "family": "6", "model": "143",
                   "isa": ["avx2", "avx512f", "avx512_bf16", "amx_tile"]}
    assert parse_cpuinfo("")["isa"] == []
