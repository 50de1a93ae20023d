#!/usr/bin/env bash
# The teacher-mode / step-budget study of docs/training.md: each run trains on the embedded demo
# store and is scored on its held-out test patients. Usage: bash docs/studies/teacher_mode.sh OUT_DIR
set -euo pipefail
out=${1:-teacher-study}
mkdir -p "$out"
run() {  # run NAME [train options...]
  local name=$1; shift
  [ -f "$out/$name/best.keras" ] || kequireg train --labeled 0.1 --run-dir "$out/$name" --no-progress "$@"
  [ -f "$out/$name/eval-test/summary.json" ] || kequireg evaluate "$out/$name" --split test --no-hd95 --no-progress
}
for ls in 0 1; do
  for steps in 300 600; do
    run "base-$steps-ls$ls" --method baseline --label-seed "$ls" --max-steps "$steps"
    run "inference-$steps-ls$ls" --label-seed "$ls" --max-steps "$steps" --teacher-mode inference
    run "train-$steps-ls$ls" --label-seed "$ls" --max-steps "$steps" --teacher-mode train
  done
  run "inference-ramp-300-ls$ls" --label-seed "$ls" --max-steps 300 --teacher-mode inference --rampup-steps 150
  run "train-ramp-300-ls$ls" --label-seed "$ls" --max-steps 300 --teacher-mode train --rampup-steps 150
done
run base-1000-ls0 --method baseline --label-seed 0 --max-steps 1000
run train-1000-ls0 --label-seed 0 --max-steps 1000 --teacher-mode train
