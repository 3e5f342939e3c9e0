#!/usr/bin/env bash
# The GPU checks of issue 23 (item 8) and issue 24 (item 5) as one prepared script, for a session
# that is lent a GPU machine (the `device` tool). Prepared and dry-run on the CPU
# (DEVICE=cpu TINY=1); not yet run on a GPU.
#
# On the lent machine python3 already holds torch, torchvision, torchaudio, pandas, scipy,
# scikit-learn, matplotlib, seaborn, tqdm, pyyaml and tensorboard (not at this project's pinned
# versions: record what it prints). dsanet also needs soundfile, carried as a wheel. Ray cannot
# travel (its wheel, 79 MB, is over the 64 MiB a call carries), so the sweep below packs runs on
# the GPU with the local pool, not with Ray. Prepare the wheel here once:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 -d .whl soundfile==0.14.0
# then run, with carry [".whl"] and timeout_s 600:
#   bash scripts/device_checks.sh
# What it prints lands in $OUT/device_checks.txt (and its timings in $OUT/*.csv).
#
# The checks:
#   1. benchmarks/train_step.py at paper size (ms a step, the backbones' share) and at the quick
#      size with the sweep protocol (end to end against cached maps);
#   2. a paper-size run (ResNet18, 224 px) killed in the middle, resumed to its end, evaluated:
#      ms a step, images per second, peak GPU memory (sampled by nvidia-smi);
#   3. the quick profile's sweep protocol on the GPU: Table IX, 2 seeds, 4 runs at a time on
#      one GPU (local pool), runs per hour.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/device_checks}
DEVICE=${DEVICE:-cuda}
TINY=${TINY:-0}                     # 1: seconds-long sizes, for a dry run on the CPU
PY=${PY:-python3}
mkdir -p "$OUT"
LOG="$OUT/device_checks.txt"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
stamp() { echo "=== $(date +%H:%M:%S) $*"; }
stamp "versions"
$PY - <<'EOF'
import torch, torchvision, torchaudio
print("torch", torch.__version__, "cuda", torch.version.cuda, "torchvision", torchvision.__version__,
      "torchaudio", torchaudio.__version__)
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv

if [ "$TINY" = 1 ]; then
  N_ID=80; STEPS=40; KILL_AT=10; TS_STEPS=3; BATCH=4; SWEEP_STEPS=4; SWEEP_WORKERS=2
  SIZE_ARGS="--set face_size=64 --set spec_bins=64 --set spec_frames=32 --set backbone=compact"
  SWEEP_ARGS="--set batch_size=16"
else
  N_ID=300; STEPS=1000; KILL_AT=400; TS_STEPS=20; BATCH=50; SWEEP_STEPS=600; SWEEP_WORKERS=4
  SIZE_ARGS=""; SWEEP_ARGS=""
fi
DATA=/tmp/dsanet_bench
stamp "generate the embedded benchmark ($N_ID identities)"
[ -f "$DATA/calibration.json" ] || $PY -m dsanet generate --out "$DATA" --n-identities "$N_ID" --seed 0 --quiet || exit 1

stamp "1. training step, paper size and quick size (sweep protocol)"
if [ "$TINY" = 1 ]; then
  $PY benchmarks/train_step.py --device "$DEVICE" --size small --steps "$TS_STEPS" --warmup 1
else
  $PY benchmarks/train_step.py --device "$DEVICE" --size paper --steps "$TS_STEPS"
  $PY benchmarks/train_step.py --device "$DEVICE" --size small --protocol both --steps "$TS_STEPS"
fi

stamp "2. a paper-size run of $STEPS steps, killed at step >= $KILL_AT, resumed, evaluated"
RUN=/tmp/dsanet_paper_run
rm -rf "$RUN"
if command -v nvidia-smi >/dev/null && [ "$DEVICE" != cpu ]; then
  nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv -lms 500 \
      > "$OUT/gpu_samples.csv" 2>/dev/null &
  SMI=$!
fi
TRAIN=($PY -m dsanet train --profile paper --data "$DATA" --device "$DEVICE" --steps "$STEPS"
       --set eval_every=$((STEPS / 4)) --set batch_size=$BATCH --no-progress --out "$RUN" $SIZE_ARGS)
t0=$(date +%s.%N)
"${TRAIN[@]}" > "$OUT/paper_first.log" 2>&1 &
PID=$!
while kill -0 "$PID" 2>/dev/null; do   # kill once last.pt holds a step >= KILL_AT
  if [ -f "$RUN/last.pt" ] && $PY -c "import torch,sys; s=torch.load('$RUN/last.pt', map_location='cpu', weights_only=True, mmap=True)['step']; sys.exit(0 if $KILL_AT <= s < $STEPS else 1)" 2>/dev/null; then
    kill -9 "$PID"; echo "killed at $($PY -c "import torch; print(torch.load('$RUN/last.pt', map_location='cpu', weights_only=True, mmap=True)['step'])")"; break
  fi
  sleep 0.2
done
wait "$PID" 2>/dev/null
t1=$(date +%s.%N)
"${TRAIN[@]}" > "$OUT/paper_resume.log" 2>&1 || { tail -20 "$OUT/paper_resume.log"; }
t2=$(date +%s.%N)
[ -n "${SMI:-}" ] && kill "$SMI" 2>/dev/null
tail -3 "$OUT/paper_resume.log"
$PY - "$RUN" "$t0" "$t1" "$t2" "$STEPS" "$BATCH" <<'EOF'
import json, sys
from pathlib import Path
run, t0, t1, t2, steps, batch = sys.argv[1], *map(float, sys.argv[2:5]), int(sys.argv[5]), int(sys.argv[6])
wall = (t1 - t0) + (t2 - t1)
print(f"paper-size run: {steps} steps in {wall:.0f} s with the kill and the resume "
      f"({1000 * wall / steps:.0f} ms a step incl. evaluations); images per second "
      f"~{steps * batch * 2 / wall:.0f} (one voice and one face per identity)")
m = json.loads((Path(run) / "metrics.json").read_text()) if (Path(run) / "metrics.json").exists() else {}
print("metrics.json:", "written" if m else "missing")
EOF
if [ -f "$OUT/gpu_samples.csv" ]; then
  $PY - "$OUT/gpu_samples.csv" <<'EOF'
import sys, pandas as pd
d = pd.read_csv(sys.argv[1], skipinitialspace=True)
mem = d.iloc[:, 1].astype(str).str.extract(r"(\d+)")[0].astype(float)
print(f"peak GPU memory used (nvidia-smi, 0.5 s samples): {mem.max():.0f} MiB")
EOF
fi
$PY -m dsanet evaluate --checkpoint "$RUN/best.pt" --device "$DEVICE" --out "$RUN/eval" \
    > "$OUT/paper_eval.log" 2>&1 && tail -4 "$OUT/paper_eval.log"

stamp "3. the quick profile's sweep protocol on one $DEVICE: Table IX, 2 seeds, $SWEEP_WORKERS at a time"
t0=$(date +%s.%N)
$PY -m dsanet sweep --profile quick --data "$DATA" --tables IX --seeds 2 --steps "$SWEEP_STEPS" \
    --device "$DEVICE" --workers "$SWEEP_WORKERS" --runs /tmp/dsanet_sweep_runs \
    --out /tmp/dsanet_sweep_out --no-progress $SWEEP_ARGS > "$OUT/sweep.log" 2>&1
status=$?
t1=$(date +%s.%N)
tail -2 "$OUT/sweep.log"
[ "$status" = 0 ] && $PY -c "print(f'sweep: {($t1 - $t0):.0f} s for 16 runs (pretraining and maps included): {16 * 3600 / ($t1 - $t0):.0f} runs per hour (the 2-core CPU: about 270)')"
stamp "done"
