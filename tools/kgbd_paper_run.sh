#!/usr/bin/env bash
# The KGBD paper-setting run (docs/results/kgbd.md: rev_rec, LA, f = 6, 150 encoder + 200 RN epochs,
# milestones 75 and 150, both protocols' selection rules) on CPU, one thread, outside the work tree.
#
#   tools/kgbd_paper_run.sh [BASE]      BASE defaults to ~/skelreid_runs
#
# Sets up what is missing (a clone of this checkout with its own venv, the KGBD pack from
# ../shared/datasets/kgbd), then starts the run in the background, or says it is running already.
# The same call after a kill resumes from the last checkpoint; the epoch reached is in
# BASE/kgbd_paper_150/resume/encoder_rev_rec_LA.json ("epoch").
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BASE=${1:-$HOME/skelreid_runs}
ARCHIVE=$REPO/../shared/datasets/kgbd/KinectGait.tar.xz
PACK=$BASE/data/kgbd.skpack
OUT=$BASE/kgbd_paper_150
mkdir -p "$BASE"
cd "$BASE"
[ -d code ] || git clone -q "$REPO" code
if [ ! -x code/.venv/bin/skelreid ]; then
  python3 -m venv code/.venv
  code/.venv/bin/pip install -q torch==2.13.0
  code/.venv/bin/pip install -q -e code
fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
if [ ! -f "$PACK" ]; then
  [ -f "$ARCHIVE" ] || { echo "kgbd_paper_run: KGBD archive missing: $ARCHIVE" >&2; exit 2; }
  mkdir -p data
  tar -xJf "$ARCHIVE" -C data
  code/.venv/bin/skelreid pack --dataset KGBD --root data/Data --out "$PACK" --no-progress
fi
if pgrep -f -- "--out $OUT" >/dev/null; then
  echo "kgbd_paper_run: already running (pid $(pgrep -f -- "--out $OUT" | head -1))"
  exit 0
fi
setsid nohup code/.venv/bin/skelreid train --dataset KGBD --root "$PACK" --model rev_rec --attention LA --length 6 \
  --epochs 150 --rn-epochs 200 --milestones 75,150 --report-both --paper-like --monitor-every 5 --split-seed 0 \
  --seed 0 --threads 1 --no-progress --out "$OUT" >> "$BASE/kgbd_paper_150.log" 2>&1 < /dev/null &
echo "kgbd_paper_run: started (pid $!); log $BASE/kgbd_paper_150.log, epoch in $OUT/resume/encoder_rev_rec_LA.json"
