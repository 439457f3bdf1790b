#!/usr/bin/env python
"""Benchmark harness: training and embedding throughput of skelreid on one device.

Measures, for one configuration (hidden ``H``, batch ``B``, window length ``f``,
joints ``J``):

a. encoder training: the train step of ``training.encoder.train_encoder``
   (axis-batched forward, every CAGE loss, backward, clip by value, Adam) in
   windows/s and ms/step, against the plain baseline
   (``models.baseline``: the three axes one after another, ``nn.LSTMCell``
   loops), and their ratio, both from the two separate phases and from blocks
   of the two paths alternated in one process (``paired``: robust to a machine
   load that drifts between phases);
b. Recognition Network training (``training.recognition.train_rn``, 768 inputs,
   164 classes) in samples/s;
c. embedding (``training.encoder.embed_windows``, host arrays in and out) and
   the bare on-device ``GaitSeq2Seq.embed`` in windows/s;
d. peak memory of each phase: on CUDA ``torch.cuda.max_memory_allocated``; on
   CPU the increase of the process's resident set size (RSS, read from
   ``/proc/self/statm`` by a sampling thread every 2 ms) above its value at the
   start of the phase;
e. optionally (``--pipeline-kgbd``) the wall time of the whole KGBD pipeline
   (``skelreid.pipeline.run``, i.e. ``skelreid train --dataset KGBD``).

Timing: ``--warmup`` untimed steps, then ``--repeats`` blocks of ``--steps``
timed steps, each block between two ``perf_counter`` reads with
``torch.cuda.synchronize()`` before each read on CUDA. The encoder figures are
those of the best block (the least disturbed on a shared machine); every block
is kept in the JSON. Each phase runs in a fresh process (``--same-process`` to
turn that off). Prints a plain-text table and writes the JSON (atomically, via
``skelreid.io.write_json``) to ``--out``.

Usage::

    python benchmarks/harness.py --device cpu --hidden 256 --batch 128 --length 6 --joints 20 \\
        --steps 10 --out docs/performance_cpu.json
    python benchmarks/harness.py --device cuda --steps 200 --step graphs --fused-adam --out docs/performance_cuda.json
    python benchmarks/harness.py --device cuda --pipeline-kgbd --out docs/performance_cuda_kgbd.json

The optimised path is ``train_encoder``'s own step (``skelreid.training.step``):
``--step eager|compiled|graphs`` (``--compile`` = ``--step compiled``, with
``--compile-backend``), ``--fused-adam``, ``--bf16`` (bfloat16 autocast of the
forward pass, and of the embedding). Each one that cannot run here falls back with
a message, and the JSON records what was actually used.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import skelreid  # noqa: E402,F401  (first: it sets how torch's CPU threads wait before torch loads, as the CLI does)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from skelreid import losses as L  # noqa: E402
from skelreid.io import write_json  # noqa: E402
from skelreid.models.baseline import baseline_models, baseline_train_steps  # noqa: E402
from skelreid.models.seq2seq import GaitSeq2Seq  # noqa: E402
from skelreid.training.encoder import embed_windows, step_losses, to_axis_major  # noqa: E402

TEMPERATURE, L2_WEIGHT, LR, GRAD_CLIP = 0.5, 0.02, 5e-4, 5.0   # KGBD / paper settings
RN_INPUTS, RN_CLASSES = 768, 164
KGBD_ARCHIVE = REPO.parent / "shared" / "datasets" / "kgbd" / "KinectGait.tar.xz"
KGBD_TEST_CACHE = REPO / ".cache" / "tests" / "kgbd" / "Data"


def note(msg: str) -> None:
    print(f"[harness] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- machine and timing

def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict:
    info = {
        "cpu_model": _cpu_model(),
        "cpu_cores_visible": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1_5_15min": [round(v, 2) for v in os.getloadavg()],
        "device": str(device),
        "device_name": _cpu_model() if device.type == "cpu" else torch.cuda.get_device_name(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(cuda=torch.version.cuda, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    gpu_count=torch.cuda.device_count())
    with contextlib.suppress(Exception):
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                                            text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        info["git_dirty"] = bool(dirty)
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory of a phase: CUDA allocator peak, or sampled RSS increase on CPU."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_bytes = 0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._max = max(self._max, self._rss())
            time.sleep(0.002)

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            self._start = self._max = self._rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            sync(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self._max = max(self._max, self._rss())
            self.peak_bytes = self._max - self._start

    @property
    def mib(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


def memory_method(device: torch.device) -> str:
    if device.type == "cuda":
        return ("torch.cuda.max_memory_allocated over the phase (peak of live tensors: for training the model, "
                "optimiser state and activations, plus the phase's input data)")
    return ("CPU: peak increase of the process RSS over the phase, read from /proc/self/statm every 2 ms, each "
            "phase in a fresh process (for training: model, optimiser state, activations, and compiler work "
            "with --compile); not tracemalloc, which cannot see PyTorch's allocator. process_max_rss_mib is "
            "the phase process's ru_maxrss (includes the Python/PyTorch runtime)")


def timed(fn: Callable[[int], object], steps: int, warmup: int, repeats: int, device: torch.device) -> list[float]:
    """Seconds of each of ``repeats`` blocks of ``steps`` calls ``fn(i)``, after ``warmup`` untimed calls."""
    for i in range(warmup):
        fn(i)
    blocks = []
    i = warmup
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            fn(i)
            i += 1
        sync(device)
        blocks.append(time.perf_counter() - t0)
    return blocks


def block_stats(blocks: list[float], steps: int, batch: int) -> dict:
    """Per-step figures from timed blocks: the best block (least disturbed), and the median for spread."""
    best, med = min(blocks), float(np.median(blocks))
    return {"ms_per_step": 1000 * best / steps, "windows_per_s": steps * batch / best,
            "ms_per_step_median_block": 1000 * med / steps,
            "ms_per_step_blocks": [round(1000 * b / steps, 3) for b in blocks], "steps_per_block": steps}


# ----------------------------------------------------------------------------- data

def window_pool(n: int, length: int, joints: int, seed: int) -> np.ndarray:
    """``[n, f, J, 3]`` float32 windows: synthetic Kinect walkers for J = 20, else Gaussian noise."""
    if joints == 20:
        from skelreid.data.synthetic import generate_dataset
        from skelreid.data.windows import make_windows

        persons = 4
        while True:
            ws = make_windows(generate_dataset(num_persons=persons, walks_per_person=4, seed=seed),
                              length=length, clip=10)
            if len(ws) >= min(n, 4096) or persons >= 64:
                break
            persons *= 2
        data = ws.data
    else:
        rng = np.random.default_rng(seed)
        data = rng.normal(0.0, 0.5, size=(min(n, 4096), length, joints, 3)).astype(np.float32)
    reps = -(-n // len(data))
    return np.ascontiguousarray(np.concatenate([data] * reps)[:n])


# ----------------------------------------------------------------------------- (a) encoder training

def _autocast(device: torch.device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def build_optimised_step(model: GaitSeq2Seq, objective: torch.Tensor, device: torch.device, args, used: dict,
                         x_all: torch.Tensor, y_all: torch.Tensor):
    """The training step of ``train_encoder`` itself (``skelreid.training.step``) with the requested
    options; returns ``step(batch_index)``. Options that cannot run here fall back with a message, and
    ``used`` records what ran."""
    from skelreid.config import TrainConfig
    from skelreid.training.step import make_optimizer, make_step, plan_step

    mode = args.step or ("compiled" if args.compile else "eager")
    tc = TrainConfig(step=mode, fused_adam="on" if args.fused_adam else ("auto" if args.step else "off"),
                     compile_backend=args.compile_backend, bf16=bool(args.bf16))
    plan = plan_step(tc, device)
    for line in plan.notes:
        note(line)
    opt = make_optimizer(model, LR, plan)

    def losses(m, x, y):
        return step_losses(m, x, y, objective, TEMPERATURE, L2_WEIGHT, True)

    step = make_step(plan, model, opt, x_all, y_all, losses, GRAD_CLIP, note=note)
    # Compilation or capture happens on the first call: make it here, so a failure falls back before timing.
    probe = torch.arange(args.batch, device=device)
    step(probe)
    sync(device)
    used.update(step=plan.mode, fused_adam=plan.fused, bf16=plan.bf16,
                compile_backend=plan.backend if plan.mode == "compiled" else None)
    return lambda idx: step(idx)["total"]


def _prewarm(device: torch.device, f: int, J: int) -> None:
    """One tiny step of both paths, so one-time library set-up is not billed to the first measured phase."""
    torch.manual_seed(0)
    tiny = GaitSeq2Seq(num_axes=3, num_joints=J, length=f, hidden=8, proj_dim=8).to(device)
    x = torch.randn(3, 4, f, J, device=device)
    objective = L.la_objective(f).to(device)
    step_losses(tiny, x, x, objective, TEMPERATURE, L2_WEIGHT, True)["total"].sum().backward()
    baseline_train_steps(baseline_models(tiny), x, x, [torch.arange(4, device=device)], objective=objective,
                         temperature=TEMPERATURE, l2=L2_WEIGHT, contrastive=True, lr=LR, grad_clip=GRAD_CLIP)
    sync(device)


def _encoder_data(args, device: torch.device):
    B, f, J = args.batch, args.length, args.joints
    n_batches = max(4, min(args.steps + args.warmup, 16))
    pool = window_pool(B * n_batches, f, J, args.seed)
    x_all = to_axis_major(pool).to(device)
    y_all = to_axis_major(np.ascontiguousarray(pool[:, ::-1])).to(device)          # rev_rec targets
    batches = [torch.arange(i * B, (i + 1) * B, device=device) for i in range(n_batches)]
    return x_all, y_all, batches, L.la_objective(f).to(device)


def _new_model(args, device: torch.device, axes: int = 3) -> GaitSeq2Seq:
    torch.manual_seed(args.seed)
    return GaitSeq2Seq(num_axes=axes, num_joints=args.joints, length=args.length, hidden=args.hidden,
                       proj_dim=args.hidden).to(device)


def bench_encoder(args, device: torch.device, results: dict) -> None:
    """(a) the optimised train step."""
    x_all, y_all, batches, objective = _encoder_data(args, device)
    n_batches = len(batches)
    _prewarm(device, args.length, args.joints)
    used: dict = {}
    runs = max(1, int(args.runs))
    if runs > 1:   # --runs R: R seeds in one model (train_encoders), the same windows for every run (CAGE)
        x_all, y_all = x_all.repeat(runs, 1, 1, 1), y_all.repeat(runs, 1, 1, 1)
    with PeakMemory(device) as mem:                 # model, Adam state, activations (and compiler work)
        model = _new_model(args, device, axes=3 * runs).train()
        step = build_optimised_step(model, objective, device, args, used, x_all, y_all)
        blocks = timed(lambda i: step(batches[i % n_batches]), args.steps, args.warmup, args.repeats, device)
    used["runs"] = runs
    stats = block_stats(blocks, args.steps, args.batch)
    ms = stats["ms_per_step"]
    results["encoder_optimised"] = {
        **stats, "warmup": args.warmup, "peak_memory_mib": mem.mib, "options": used,
        "what": "train_encoder step: 3 axes batched, forward + rec/LA/contrastive/L2 + backward + clip + Adam",
    }
    note(f"optimised: {ms:.1f} ms/step ({args.steps} steps)")


def bench_baseline(args, device: torch.device, results: dict) -> None:
    """(a) the baseline: the three axis models one after another."""
    x_all, y_all, batches, objective = _encoder_data(args, device)
    n_batches = len(batches)
    steps = args.baseline_steps or args.steps
    _prewarm(device, args.length, args.joints)
    kw = dict(objective=objective, temperature=TEMPERATURE, l2=L2_WEIGHT, contrastive=True, lr=LR,
              grad_clip=GRAD_CLIP)
    order = [batches[i % n_batches] for i in range(steps)]
    warm = max(args.warmup, 1)
    with PeakMemory(device) as mem:                 # models, Adam states, activations
        bases = baseline_models(_new_model(args, device))
        baseline_train_steps(bases, x_all, y_all, [batches[i % n_batches] for i in range(warm)], **kw)
        blocks = []
        for _ in range(args.repeats):       # each block: the 3 axes one after another, `steps` steps each
            sync(device)
            t0 = time.perf_counter()
            baseline_train_steps(bases, x_all, y_all, order, **kw)
            sync(device)
            blocks.append(time.perf_counter() - t0)
    stats = block_stats(blocks, steps, args.batch)
    ms = stats["ms_per_step"]
    results["encoder_baseline"] = {
        **stats, "warmup": warm, "peak_memory_mib": mem.mib,
        "what": "models.baseline: per axis nn.LSTMCell loops, the 3 axes one after another, float32 eager, "
                "own Adam + clip per axis; ms per step = all 3 axes on one batch",
    }
    note(f"baseline: {ms:.1f} ms/step ({steps} steps)")


def bench_paired(args, device: torch.device, results: dict) -> None:
    """(a) the ratio from alternating blocks of both paths in one process: robust to a drifting machine load."""
    x_all, y_all, batches, objective = _encoder_data(args, device)
    n_batches = len(batches)
    steps = min(args.steps, args.baseline_steps or args.steps)
    _prewarm(device, args.length, args.joints)
    model = _new_model(args, device).train()
    bases = baseline_models(model)                      # same starting weights
    used: dict = {}
    step = build_optimised_step(model, objective, device, args, used, x_all, y_all)
    kw = dict(objective=objective, temperature=TEMPERATURE, l2=L2_WEIGHT, contrastive=True, lr=LR,
              grad_clip=GRAD_CLIP)
    order = [batches[i % n_batches] for i in range(steps)]
    for i in range(args.warmup):
        step(batches[i % n_batches])
    baseline_train_steps(bases, x_all, y_all, order[: max(args.warmup, 1)], **kw)
    pairs = []
    for _ in range(args.repeats):
        opt_s = timed(lambda i: step(order[i]), steps, 0, 1, device)[0]
        sync(device)
        t0 = time.perf_counter()
        baseline_train_steps(bases, x_all, y_all, order, **kw)
        sync(device)
        pairs.append((1000 * opt_s / steps, 1000 * (time.perf_counter() - t0) / steps))
    ratios = [b / o for o, b in pairs]
    results["encoder_paired"] = {
        "ratio_median": float(np.median(ratios)), "ratios": [round(r, 3) for r in ratios],
        "ms_per_step_pairs_optimised_baseline": [[round(o, 3), round(b, 3)] for o, b in pairs],
        "steps_per_block": steps, "options": used,
        "what": "blocks of the optimised step and of the baseline alternated in one process; "
                "ratio = baseline ms/step / optimised ms/step of each pair",
    }
    note(f"paired ratio (median of {len(ratios)}): {np.median(ratios):.2f}x")


# ----------------------------------------------------------------------------- (b) recognition network

def bench_rn(args, device: torch.device, results: dict) -> None:
    from skelreid.config import RNConfig
    from skelreid.training.recognition import EvalSet, train_rn

    bs = 128
    rng = np.random.default_rng(args.seed)

    def data(n):
        return EvalSet(rng.normal(size=(n, RN_INPUTS)).astype(np.float32),
                       rng.integers(0, RN_CLASSES, size=n).astype(np.int64), 1)

    def cfg(epochs):
        c = RNConfig()
        c.epochs, c.batch_size = epochs, bs
        return c

    train_rn(data(bs * 4), RN_CLASSES, cfg(1), device, seed=0)                       # warm-up
    n = bs * args.rn_steps
    train = data(n)
    with PeakMemory(device) as mem:
        sync(device)
        t0 = time.perf_counter()
        train_rn(train, RN_CLASSES, cfg(args.rn_epochs), device, seed=0)
        sync(device)
        seconds = time.perf_counter() - t0
    samples = n * args.rn_epochs
    results["rn_training"] = {
        "samples_per_s": samples / seconds, "ms_per_step": 1000 * seconds / (args.rn_steps * args.rn_epochs),
        "rows": n, "epochs": args.rn_epochs, "batch": bs, "inputs": RN_INPUTS, "classes": RN_CLASSES,
        "peak_memory_mib": mem.mib,
        "what": "training.recognition.train_rn (whole call: permutation + copy to device + epochs, no validation)",
    }
    note(f"RN: {samples / seconds:,.0f} samples/s")


# ----------------------------------------------------------------------------- (c) embedding

def bench_embed(args, device: torch.device, results: dict) -> None:
    f, J, H = args.length, args.joints, args.hidden
    n = args.embed_windows or (262_144 if device.type == "cuda" else 4096)
    windows = window_pool(n, f, J, args.seed)
    torch.manual_seed(args.seed)
    model = GaitSeq2Seq(num_axes=3, num_joints=J, length=f, hidden=H, proj_dim=H).to(device).eval()
    bf16 = bool(args.bf16) and (device.type != "cuda" or torch.cuda.is_bf16_supported())
    bs = args.embed_batch
    with _autocast(device, bf16):
        embed_windows(model, windows[: min(n, 2 * bs)], device, batch_size=bs)          # warm-up
        with PeakMemory(device) as mem:
            sync(device)
            t0 = time.perf_counter()
            out = embed_windows(model, windows, device, batch_size=bs)
            sync(device)
            seconds = time.perf_counter() - t0
        assert out.shape == (n, 3, f, H)
        del out
        # the model alone, inputs already on the device, outputs left there
        x = to_axis_major(windows).to(device)
        chunks = [x[:, i: i + bs] for i in range(0, n, bs)]
        model.embed(chunks[0])
        sync(device)
        t0 = time.perf_counter()
        for c in chunks:
            model.embed(c)
        sync(device)
        on_device = time.perf_counter() - t0
    results["embedding"] = {
        "windows_per_s": n / seconds, "windows": n, "batch": bs, "peak_memory_mib": mem.mib, "bf16": bf16,
        "on_device_windows_per_s": n / on_device,
        "what": "training.encoder.embed_windows (numpy in, numpy out, includes host<->device copies); "
                "on_device_windows_per_s: GaitSeq2Seq.embed on device-resident batches",
    }
    note(f"embedding: {n / seconds:,.0f} windows/s (on device {n / on_device:,.0f})")


# ----------------------------------------------------------------------------- (e) KGBD pipeline

def kgbd_root(args) -> tuple[Path, tempfile.TemporaryDirectory | None, float]:
    if args.kgbd_root:
        return Path(args.kgbd_root), None, 0.0
    if KGBD_TEST_CACHE.is_dir():
        return KGBD_TEST_CACHE, None, 0.0
    from skelreid.data.archive import extract_archive

    tmp = tempfile.TemporaryDirectory(prefix="skelreid-bench-kgbd-")
    t0 = time.perf_counter()
    extract_archive(KGBD_ARCHIVE, Path(tmp.name) / "kgbd")
    return Path(tmp.name) / "kgbd" / "Data", tmp, time.perf_counter() - t0


def bench_pipeline(args, device: torch.device, results: dict) -> None:
    from skelreid.config import build_config, parse_set
    from skelreid.pipeline import run

    root, keep, unpack_s = kgbd_root(args)
    with tempfile.TemporaryDirectory(prefix="skelreid-bench-run-") as tmp:
        cache = args.pipeline_cache or str(Path(tmp) / "parse-cache")   # cold parse unless told otherwise
        sets = [f"data.root={root}", f"data.cache={cache}", f"device={device}", "progress=false",
                f"encoder.epochs={args.pipeline_encoder_epochs}", f"rn.epochs={args.pipeline_rn_epochs}",
                *args.pipeline_set]
        cfg = build_config("kgbd", [parse_set(sets)])
        note(f"KGBD pipeline: {' '.join(sets)}")
        t0 = time.perf_counter()
        out = run(cfg, Path(tmp) / "run")
        wall = time.perf_counter() - t0
    if keep is not None:
        keep.cleanup()
    entry = {"wall_s": wall, "unpack_s_not_counted": unpack_s, "settings": sets,
             "parse_cache": "cold (fresh folder)" if not args.pipeline_cache else args.pipeline_cache}
    stages = out.get("stages") if isinstance(out, dict) else None
    if isinstance(stages, dict) and isinstance(stages.get("encoder"), dict):
        entry["encoder_seconds"] = {k: v.get("seconds") for k, v in stages["encoder"].items() if isinstance(v, dict)}
    results["pipeline_kgbd"] = entry
    note(f"KGBD pipeline: {wall:.1f} s")


# ----------------------------------------------------------------------------- report

def table(report: dict) -> str:
    r = report["results"]
    c = report["config"]
    m = report["machine"]
    lines = [f"skelreid benchmark on {m['device_name']} ({m['device']}, torch {m['torch']}, "
             f"{m['torch_threads']} threads)",
             f"H={c['hidden']} B={c['batch']} f={c['length']} J={c['joints']}; load average (1 min) "
             f"{m.get('load_average_at_start', ['?'])[0]} at start, {m['load_average_1_5_15min'][0]} at the end, "
             f"{m['cpu_cores_visible']} cores", ""]
    rows = [("measure", "value", "unit", "peak mem MiB")]
    if "encoder_optimised" in r:
        o = r["encoder_optimised"]
        rows += [("encoder train, optimised", f"{o['ms_per_step']:.2f}", "ms/step", f"{o['peak_memory_mib']}"),
                 ("", f"{o['windows_per_s']:,.0f}", "windows/s", "")]
    if "encoder_baseline" in r:
        b = r["encoder_baseline"]
        rows += [("encoder train, baseline", f"{b['ms_per_step']:.2f}", "ms/step", f"{b['peak_memory_mib']}"),
                 ("", f"{b['windows_per_s']:,.0f}", "windows/s", "")]
    if "encoder_speedup" in r:
        rows.append(("baseline / optimised", f"{r['encoder_speedup']:.2f}", "x", ""))
    if "encoder_paired" in r:
        p = r["encoder_paired"]
        rows.append((f"  paired blocks, median of {len(p['ratios'])}", f"{p['ratio_median']:.2f}", "x", ""))
    if "rn_training" in r:
        rows.append(("RN training", f"{r['rn_training']['samples_per_s']:,.0f}", "samples/s",
                     f"{r['rn_training']['peak_memory_mib']}"))
    if "embedding" in r:
        e = r["embedding"]
        rows += [("embedding (embed_windows)", f"{e['windows_per_s']:,.0f}", "windows/s", f"{e['peak_memory_mib']}"),
                 ("embedding (on device)", f"{e['on_device_windows_per_s']:,.0f}", "windows/s", "")]
    if "pipeline_kgbd" in r:
        rows.append(("KGBD pipeline", f"{r['pipeline_kgbd']['wall_s']:.1f}", "s", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if j in (0, 2) else cell.rjust(w)
                               for j, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if "encoder_optimised" in r:
        lines += ["", "optimised path options used: "
                  + ", ".join(f"{k}={v}" for k, v in r["encoder_optimised"]["options"].items())]
    lines += ["", f"peak memory: {report['memory_method']}"]
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--length", type=int, default=6)
    ap.add_argument("--joints", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20, help="timed encoder training steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed blocks of --steps steps per encoder path; the best block is reported, all are kept")
    ap.add_argument("--baseline-steps", type=int, default=None, help="timed baseline steps (default --steps)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    ap.add_argument("--rn-steps", type=int, default=200, help="RN batches per epoch")
    ap.add_argument("--rn-epochs", type=int, default=3)
    ap.add_argument("--embed-windows", type=int, default=None, help="windows to embed (CPU 4096, CUDA 262144)")
    ap.add_argument("--embed-batch", type=int, default=2048, help="embed_windows batch size")
    ap.add_argument("--skip", nargs="*", default=[], choices=("encoder", "baseline", "paired", "rn", "embed"),
                    help="phases to skip")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--step", choices=("eager", "compiled", "graphs"), default=None,
                    help="the train_encoder step (skelreid.training.step); default eager, or compiled with --compile")
    ap.add_argument("--compile", action="store_true", help="the same as --step compiled")
    ap.add_argument("--compile-backend", default="inductor", help="torch.compile backend of --step compiled")
    ap.add_argument("--fused-adam", action="store_true", help="Adam(fused=True)")
    ap.add_argument("--runs", type=int, default=1,
                    help="encoder phase: this many runs (seeds) trained together in one model, as --seeds does")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast for forward + losses and embedding")
    ap.add_argument("--pipeline-kgbd", action="store_true", help="also time the whole KGBD pipeline")
    ap.add_argument("--kgbd-root", default=None, help="KGBD Data/ folder (default: the test cache, else unpack "
                    "../shared/datasets/kgbd/KinectGait.tar.xz; unpacking is not timed)")
    ap.add_argument("--pipeline-encoder-epochs", type=int, default=150, help="paper: 150")
    ap.add_argument("--pipeline-rn-epochs", type=int, default=200, help="paper: 200")
    ap.add_argument("--pipeline-cache", default=None, help="parse-cache folder (default: a fresh one, cold parse)")
    ap.add_argument("--pipeline-set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra config override for the pipeline run (repeatable), e.g. data.persons=10")
    ap.add_argument("--same-process", action="store_true",
                    help="run every phase in this process (default: a fresh process per phase, so peak memory "
                         "is per phase)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--phase", choices=sorted(PHASES), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--phase-out", type=Path, default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


PHASES = {"encoder": bench_encoder, "baseline": bench_baseline, "paired": bench_paired, "rn": bench_rn,
          "embed": bench_embed, "pipeline": bench_pipeline}


def _setup(args) -> torch.device:
    from skelreid.device import resolve_device

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = False     # keep float32 maths float32 (TF32 is a separate choice)
    if args.threads:
        torch.set_num_threads(args.threads)
    return device


def _phases(args) -> list[str]:
    wanted = [p for p in ("encoder", "baseline", "paired", "rn", "embed") if p not in args.skip]
    if args.no_baseline:
        wanted = [p for p in wanted if p not in ("baseline", "paired")]
    return wanted + (["pipeline"] if args.pipeline_kgbd else [])


def _run_phase_here(args, device: torch.device, phase: str) -> dict:
    results: dict = {}
    PHASES[phase](args, device, results)
    for entry in results.values():
        entry["process_max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


def _run_phase_subprocess(argv: list[str], phase: str) -> dict:
    """One phase in a fresh Python process, so no phase inherits another's memory (or its allocator cache)."""
    with tempfile.TemporaryDirectory(prefix="skelreid-bench-") as tmp:
        out = Path(tmp) / "phase.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--phase", phase, "--phase-out", str(out)]
        subprocess.run(cmd, check=True)
        import json

        return json.loads(out.read_text())


def main(argv=None) -> int:
    from skelreid.errors import SkelreidError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        device = _setup(args)
    except SkelreidError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    if args.phase is not None:                      # child process: one phase, results to --phase-out
        write_json(args.phase_out, _run_phase_here(args, device, args.phase))
        return 0
    for name in ("fused_adam", "compile"):
        if getattr(args, name) and device.type == "cpu":
            note(f"--{name.replace('_', '-')} on CPU: trying it; it falls back to the plain path if unsupported")
    machine_before = machine_info(device)
    results: dict = {}
    t0 = time.perf_counter()
    for phase in _phases(args):
        results.update(_run_phase_here(args, device, phase) if args.same_process
                       else _run_phase_subprocess(argv, phase))
    if "encoder_optimised" in results and "encoder_baseline" in results:
        results["encoder_speedup"] = (results["encoder_baseline"]["ms_per_step"]
                                      / results["encoder_optimised"]["ms_per_step"])
    machine = machine_info(device)
    machine["load_average_at_start"] = machine_before["load_average_1_5_15min"]
    report = {
        "config": {k: v for k, v in vars(args).items()
                   if not k.startswith("_") and k not in ("out", "phase", "phase_out")},
        "command": " ".join(["python", "benchmarks/harness.py", *argv]),
        "machine": machine,
        "memory_method": memory_method(device),
        "isolation": "each phase in its own process" if not args.same_process else "one process",
        "results": results,
        "total_seconds": time.perf_counter() - t0,
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    print(table(report))
    if args.out is not None:
        write_json(args.out, report)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
