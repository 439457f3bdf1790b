#!/usr/bin/env python
"""CPU step times on idle cores and beside busy ones, for the ways torch's OpenMP threads can wait.

Runs ``benchmarks/harness.py`` (the encoder's training step, the recognition network's step and
embedding, at the paper's encoder size) in fresh processes under three settings:

* ``libgomp default``: ``GOMP_SPINCOUNT=300000``, libgomp's own default when nothing is set (each
  waiting thread spins that long before it sleeps), at torch's default thread count;
* ``skelreid``: skelreid's short spin (:data:`skelreid.cpu_waits.SPINCOUNT`, what ``import skelreid``
  sets before torch loads), at torch's default thread count;
* ``one thread``: ``--threads 1``, skelreid's spin (nothing waits for another thread);

each on idle cores and beside ``--burners`` processes that each keep one core busy (a pure Python
loop: another user's job). Each cell is the median of ``--repeats`` runs. Wall-clock figures: run it
on a machine with nothing else running.

Usage::

    python benchmarks/busy_cores.py [--repeats 2] [--burners 1] [--json docs/performance_busy_cores.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skelreid.cpu_waits import POLICY_ENV, SPIN_ENV, SPINCOUNT  # noqa: E402
from skelreid.io import write_json  # noqa: E402
from skelreid.machine import cpu_summary  # noqa: E402

LIBGOMP_DEFAULT_SPINS = "300000"   # libgomp's documented default with OMP_WAIT_POLICY unset
SETTINGS = {
    "libgomp default": ({SPIN_ENV: LIBGOMP_DEFAULT_SPINS}, []),
    "skelreid": ({SPIN_ENV: str(SPINCOUNT)}, []),
    "one thread": ({SPIN_ENV: str(SPINCOUNT)}, ["--threads", "1"]),
}
FIGURES = (("encoder ms/step", ("encoder_optimised", "ms_per_step")),
           ("RN ms/step", ("rn_training", "ms_per_step")),
           ("embedding windows/s", ("embedding", "windows_per_s")))


def harness(extra_env: dict, extra_args: list, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (SPIN_ENV, POLICY_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(extra_env)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "h.json"
        cmd = [sys.executable, str(REPO / "benchmarks" / "harness.py"), "--device", "cpu", "--hidden", "256",
               "--batch", "128", "--length", "6", "--joints", "20", "--steps", str(steps), "--warmup", "2",
               "--repeats", "1", "--skip", "baseline", "paired", "--rn-steps", "100", "--rn-epochs", "1",
               "--embed-windows", "4096", "--same-process", "--out", str(out), *extra_args]
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=1800)
        res = json.loads(out.read_text())["results"]
    return {name: float(res[a][b]) for name, (a, b) in FIGURES}


def measure(burners: int, repeats: int, steps: int) -> dict:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(burners)]
    try:
        table = {}
        for name, (env, args) in SETTINGS.items():
            runs = [harness(env, args, steps) for _ in range(repeats)]
            table[name] = {fig: statistics.median(r[fig] for r in runs) for fig, _ in FIGURES}
            table[name]["runs"] = runs
            print(f"  {name}: " + ", ".join(f"{fig} {table[name][fig]:.1f}" for fig, _ in FIGURES), flush=True)
        return table
    finally:
        for p in procs:
            p.kill()
            p.wait()


def markdown(result: dict) -> str:
    lines = ["| cores | setting | " + " | ".join(f for f, _ in FIGURES) + " |",
             "|---|---|" + "---:|" * len(FIGURES)]
    for cond, table in result["conditions"].items():
        for name, row in table.items():
            lines.append(f"| {cond} | {name} | " + " | ".join(f"{row[f]:.1f}" for f, _ in FIGURES) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2, help="runs per cell (the median is reported)")
    ap.add_argument("--burners", type=int, default=1, help="busy processes beside the measured one")
    ap.add_argument("--steps", type=int, default=8, help="timed encoder steps per run")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    conditions = {}
    for cond, burners in (("idle", 0), (f"{args.burners} busy", args.burners)):
        print(f"{cond}:", flush=True)
        conditions[cond] = measure(burners, args.repeats, args.steps)
    result = {"machine": {**cpu_summary(), "python": platform.python_version()},
              "repeats": args.repeats, "steps": args.steps, "conditions": conditions}
    print(markdown(result))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
