#!/usr/bin/env bash
# Baseline-only calibration runs of the glioma phantom (issue 21, docs/phantom.md "Calibration runs"):
# the supervised baseline at 10% (3 label seeds) and 100% (3 repeats) of the labels, each run to early
# stopping, on a fresh cohort. No semi-supervised method runs here: the generator is frozen first.
#   benchmarks/phantom_calibration.sh OUT_DIR [CASES] [SEED] [PRESET] [VAL] [TEST]
# VAL and TEST are the validation and test fractions of the patients (0.2 and 0.35 by default).
set -euo pipefail
OUT=${1:?usage: benchmarks/phantom_calibration.sh OUT_DIR [CASES] [SEED] [PRESET] [VAL] [TEST]}
CASES=${2:-48}
SEED=${3:-2612}
PRESET=${4:-glioma}
VAL=${5:-0.2}
TEST=${6:-0.35}
mkdir -p "$OUT" && cd "$OUT"
kequireg synth cohort --preset "$PRESET" --cases "$CASES" --seed "$SEED" --no-progress
kequireg preprocess cohort cohort.h5 --val "$VAL" --test "$TEST" --seed 0 --no-progress
COMMON=(--data cohort.h5 --methods baseline --no-equireg-full --model tiny --budget converge --steps-per-epoch 50
        --patience 4 --max-steps 3000 --no-figures --no-progress)
kequireg experiment base10 "${COMMON[@]}" --fractions 0.1 --label-seeds 0,1,2 --repeats 1
kequireg experiment base100 "${COMMON[@]}" --fractions 1.0 --label-seeds 0 --repeats 3
