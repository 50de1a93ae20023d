#!/usr/bin/env bash
# Which QC score ranks cases by their true Dice (issue 21 item 5, docs/evaluation.md "Which QC score"): a fresh
# cohort of the frozen glioma phantom (seed 2615, never used for training or calibration), almost all of it held out,
# scored with --tta 4 --uncertainty by the given runs (e.g. the 10% baseline and EquiReg runs of
# benchmarks/phantom_comparison.sh). Spearman of each qc.csv score with the true collective Dice, with 95% intervals,
# is in each output's summary.json "qc" and printed.
#   benchmarks/phantom_qc.sh OUT_DIR RUN_DIR [RUN_DIR ...]
set -euo pipefail
OUT=${1:?usage: benchmarks/phantom_qc.sh OUT_DIR RUN_DIR [RUN_DIR ...]}
shift
mkdir -p "$OUT"
[ -f "$OUT/qc.h5" ] || {
    kequireg synth "$OUT/cohort" --preset glioma --cases 56 --seed 2615 --no-progress
    kequireg preprocess "$OUT/cohort" "$OUT/qc.h5" --val 0 --test 0.9 --seed 0 --no-progress
}
for run in "$@"; do
    kequireg evaluate "$run" --data "$OUT/qc.h5" --split test --tta 4 --uncertainty --no-hd95 --no-progress \
        --out "$OUT/$(basename "$run")"
done
