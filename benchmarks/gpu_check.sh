#!/usr/bin/env bash
# One prepared GPU check: everything a short GPU slot should measure, in one call, inside 9 minutes.
#
#   benchmarks/gpu_check.sh OUT_DIR             on a CUDA machine (the project's device tool: carry the KGBD
#                                               pack, e.g. carry=[".cache/pack/kgbd.skpack"])
#   benchmarks/gpu_check.sh --dry-run OUT_DIR   on CPU, every step at toy size (under a minute; a test runs it)
#
# Steps, each with its own time limit, each writing JSON under OUT_DIR (a step that fails or runs out of
# time is recorded as such and the next one runs):
#   1. environment.json   GPU, driver, CUDA, torch and library versions (nvidia-smi when present)
#   2. harness_*.json     benchmarks/harness.py side by side: the plain baseline, then train_encoder's step
#                         eager, compiled, whole-step CUDA graphs (+ fused Adam), graphs + bf16, three
#                         seeds in one model (--runs 3); embedding throughput and peak memory of each
#   3. feature_equality.json  benchmarks/feature_equality.py: the inference API's features against the
#                         pipeline's on this device (bit for bit, over more windows than one encoder batch)
#   4. kgbd_*/            the KGBD runs at the paper's settings (rev_rec, LA, 150 encoder + 200 RN epochs;
#                         the headline with all three selection rules, then probe/gallery, rev_rec_plus, AGE,
#                         three seeds) from the pack, with resume checkpoints every minute: a second
#                         call of this script continues the run where the first one stopped
#   5. summary.json, summary.md   every figure of the above in one table (benchmarks/gpu_summary.py)
#
# Environment: PYTHON (default python3; the checkout runs from PYTHONPATH, nothing is installed),
# KGBD_PACK (default .cache/pack/kgbd.skpack), GPU_CHECK_BUDGET_S (default 540).
set -uo pipefail

DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
if [ $# -ne 1 ]; then
  echo "usage: benchmarks/gpu_check.sh [--dry-run] OUT_DIR" >&2
  exit 2
fi
OUT=$1
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BUDGET=${GPU_CHECK_BUDGET_S:-540}
[ $DRY -eq 1 ] && BUDGET=${GPU_CHECK_BUDGET_S:-1800}   # the dry run checks the steps, not the time: no tight limits
START=$(date +%s)
LOG="$OUT/gpu_check.log"
# a second call continues: the previous call's step table is kept beside the new one
[ -s "$OUT/steps.tsv" ] && cat "$OUT/steps.tsv" >> "$OUT/steps_earlier.tsv"
: > "$OUT/steps.tsv"

left() { echo $(( BUDGET - ($(date +%s) - START) )); }

# step NAME SECONDS COMMAND...: run with a time limit (never more than what is left), record the outcome
step() {
  local name=$1 limit=$2; shift 2
  local remain; remain=$(left)
  # a limit under 15 s is no limit worth starting (and `timeout 0` would mean none at all)
  if [ "$remain" -lt 15 ] || [ "$limit" -lt 15 ]; then
    printf '%s\tskipped\t0\tno time left\n' "$name" >> "$OUT/steps.tsv"; return 0
  fi
  [ "$limit" -gt "$remain" ] && limit=$remain
  local t0; t0=$(date +%s)
  echo "== $name (limit ${limit}s)" | tee -a "$LOG"
  timeout --signal=TERM --kill-after=10 "$limit" "$@" >> "$LOG" 2>&1
  local rc=$?
  local status=ok; [ $rc -ne 0 ] && status="rc=$rc"; [ $rc -eq 124 ] && status=timeout
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - t0 ))" "$limit" >> "$OUT/steps.tsv"
  echo "   $name: $status" | tee -a "$LOG"
}

if [ $DRY -eq 1 ]; then
  DEVICE=cpu
  # 3-frame windows: the compiled step's graph (the one slow part on CPU) is half the size of 6 frames
  SIZE=(--hidden 16 --batch 32 --length 3 --steps 3 --warmup 1 --repeats 1 --baseline-steps 1 --rn-steps 5 --rn-epochs 1
        --embed-windows 256 --same-process --compile-backend aot_eager)
  PACK="$OUT/fixture/kgbd.skpack"
  # the headline run keeps a milestone (its table is checked); the follow-on runs need only finish
  HEAD_OPTS=(--epochs 2 --milestones 1); FOLLOW_OPTS=(--epochs 1)
  RUN_OPTS=(--rn-epochs 3 --set encoder.hidden=8 --set encoder.proj_dim=8
            --set encoder.batch_size=32 --set rn.hidden=16)
  H_LIMIT=300; RUN_LIMIT=300
  FE_OPTS=(--hidden 8 --persons 4 --embed-batch 128); FE_LIMIT=300
  # without CUDA the graphs step falls back to the eager one: its RN and embedding phases would repeat
  # harness_eager's (each phase still runs once in the dry run)
  GRAPHS_SKIP=(rn embed)
else
  DEVICE=cuda
  SIZE=(--hidden 256 --batch 128 --length 6 --joints 20 --steps 100 --warmup 10 --repeats 3
        --baseline-steps 10 --rn-steps 200 --rn-epochs 2 --embed-windows 262144)
  PACK=${KGBD_PACK:-$REPO/.cache/pack/kgbd.skpack}
  HEAD_OPTS=(); FOLLOW_OPTS=()
  RUN_OPTS=()   # no intermediate milestone on the GPU: each adds two RNs of ~10 min (docs/results/gpu_check_2026-12-04)
  H_LIMIT=70; RUN_LIMIT=100000
  FE_OPTS=(); FE_LIMIT=90
  GRAPHS_SKIP=()
fi

# 1. the machine
step environment 30 "$PY" - "$OUT/environment.json" "$DEVICE" "$DRY" <<'EOF'
import json, platform, shutil, subprocess, sys
from importlib import metadata
info = {"python": platform.python_version(), "platform": platform.platform(), "device": sys.argv[2],
        "dry_run": sys.argv[3] == "1"}
# the installed distributions' versions, read without importing each library (torchmetrics alone takes seconds)
DIST = {"sklearn": "scikit-learn", "yaml": "PyYAML"}
for mod in ("numpy", "safetensors", "sklearn", "torchmetrics", "matplotlib", "tensorboard", "tqdm", "yaml",
            "pyarrow"):
    try:
        info[mod] = metadata.version(DIST.get(mod, mod))
    except Exception as exc:  # noqa: BLE001
        info[mod] = f"missing ({type(exc).__name__})"
import torch
info["torch"] = torch.__version__
info["cuda_available"] = torch.cuda.is_available()
if torch.cuda.is_available():
    info.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                gpus=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
                gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
                bf16=torch.cuda.is_bf16_supported())
if shutil.which("nvidia-smi"):
    info["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                         "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
json.dump(info, open(sys.argv[1], "w"), indent=2, sort_keys=True)
print(json.dumps(info))
EOF

# 2. the harness, side by side (each run times the baseline and the optimised step in its own processes)
H=("$PY" "$REPO/benchmarks/harness.py" --device "$DEVICE" "${SIZE[@]}")
hstep() {  # hstep NAME ARGS...: one harness measurement into OUT/NAME.json, skipped if an earlier call made it
  local name=$1; shift
  if [ -s "$OUT/$name.json" ]; then
    printf '%s\tok (earlier call)\t0\t-\n' "$name" >> "$OUT/steps.tsv"; return 0
  fi
  step "$name" "$H_LIMIT" "${H[@]}" "$@" --out "$OUT/$name.json"
}
hstep harness_eager    --step eager
hstep harness_compiled --step compiled --skip baseline paired
hstep harness_graphs   --step graphs --fused-adam --skip baseline "${GRAPHS_SKIP[@]}"
hstep harness_bf16     --step graphs --fused-adam --bf16 --skip baseline paired rn
hstep harness_seeds3   --step graphs --fused-adam --runs 3 --skip baseline paired rn embed

# 3. the inference API's features against the pipeline's (a small run trained on the spot), once
if [ -s "$OUT/feature_equality.json" ]; then
  printf '%s\tok (earlier call)\t0\t-\n' feature_equality >> "$OUT/steps.tsv"
else
  step feature_equality "$FE_LIMIT" "$PY" "$REPO/benchmarks/feature_equality.py" --device "$DEVICE" "${FE_OPTS[@]}" \
    --out "$OUT/feature_equality.json"
fi

# 4. the KGBD runs at the paper's settings, resumable (a second call continues each where it stopped), in
#    this order of priority: the legacy headline (all three selection rules), probe/gallery, Rev. Rec. Plus,
#    AGE, three seeds. Each gets what time is left; one that finished in an earlier call is not run again.
if [ $DRY -eq 1 ] && [ ! -f "$PACK" ]; then
  step fixture_pack 30 bash -c "'$PY' -m skelreid.cli make-fixture KGBD '$OUT/fixture/raw' --persons 4 >/dev/null && \
    '$PY' -m skelreid.cli pack --dataset KGBD --root '$OUT/fixture/raw/Data' --out '$PACK' --no-progress"
fi
# the whole-step CUDA graph has its own harness step: if that failed, the runs use the eager step
STEP_OPT=()
if [ ! -s "$OUT/harness_graphs.json" ]; then
  STEP_OPT=(--set train.step=eager)
fi
kgbd_run() {  # kgbd_run NAME OPTIONS...: one resumable KGBD run in OUT/NAME
  local name=$1; shift
  # finished in an earlier call (its step ended ok and its results are there): not evaluated again
  if [ -s "$OUT/$name/results.json" ] && [ -f "$OUT/steps_earlier.tsv" ] && \
     grep -q "^$name	ok" "$OUT/steps_earlier.tsv"; then
    printf '%s\tok (earlier call)\t0\t-\n' "$name" >> "$OUT/steps.tsv"; return 0
  fi
  if [ ! -f "$PACK" ]; then
    printf '%s\tskipped\t0\tno KGBD pack at %s (skelreid pack --dataset KGBD ...)\n' "$name" "$PACK" >> "$OUT/steps.tsv"
    return 0
  fi
  local remain lim; remain=$(left); lim=$(( remain - 25 )); [ $lim -gt $RUN_LIMIT ] && lim=$RUN_LIMIT
  step "$name" "$lim" "$PY" -m skelreid.cli train --dataset KGBD --root "$PACK" --device "$DEVICE" \
    --model rev_rec --attention LA "${RUN_OPTS[@]}" "${STEP_OPT[@]}" --checkpoint-minutes 1 --no-progress \
    --out "$OUT/$name" "$@"
}
kgbd_run kgbd_pipeline "${HEAD_OPTS[@]}" --report-both --paper-like
kgbd_run kgbd_pg "${FOLLOW_OPTS[@]}" --protocol probe_gallery
kgbd_run kgbd_rev_rec_plus "${FOLLOW_OPTS[@]}" --model rev_rec_plus --report-both --paper-like
kgbd_run kgbd_age "${FOLLOW_OPTS[@]}" --method age --report-both --paper-like
kgbd_run kgbd_seeds3 "${FOLLOW_OPTS[@]}" --seeds 0,1,2 --report-both

# 5. one table
"$PY" "$REPO/benchmarks/gpu_summary.py" "$OUT" | tee -a "$LOG"
echo "gpu_check: $(( $(date +%s) - START )) s; summary in $OUT/summary.md"
