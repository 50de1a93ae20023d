#!/usr/bin/env bash
# The method comparison on the frozen glioma phantom (issue 21, docs/phantom.md "Method comparison"): baseline,
# EquiReg, mean teacher, FixMatch and unimatch-lite at 10% labels, label seeds 0, 1, 2, each run to its own
# convergence (--budget converge), evaluated on the cohort's test patients. Run it in the calibration folder
# (benchmarks/phantom_calibration.sh) so that the cohort is the calibrated one: the baseline runs of the
# calibration are copied in (same cohort, same settings), the other methods trained.
#   benchmarks/phantom_comparison.sh CALIBRATION_DIR [FRACTION] [experiment options, e.g. --executor local --parallel 2]
set -euo pipefail
DIR=${1:?usage: benchmarks/phantom_comparison.sh CALIBRATION_DIR [FRACTION]}
FRACTION=${2:-0.1}
shift $(( $# < 2 ? $# : 2 ))
cd "$DIR"
test -f cohort.h5 || { echo "$DIR/cohort.h5 missing: run benchmarks/phantom_calibration.sh first" >&2; exit 2; }
OUT="compare${FRACTION}"
mkdir -p "$OUT/runs"
if [ "$FRACTION" = 0.1 ] && [ -d base10/runs ]; then
    for run in base10/runs/baseline-f0.1-l*-r0; do
        [ -e "$OUT/runs/$(basename "$run")" ] || cp -a "$run" "$OUT/runs/"
    done
fi
kequireg experiment "$OUT" --data cohort.h5 --methods baseline,equireg,mean-teacher,fixmatch,unimatch-lite \
    --fractions "$FRACTION" --label-seeds 0,1,2 --repeats 1 --no-equireg-full --model tiny --budget converge \
    --steps-per-epoch 50 --patience 4 --max-steps 3000 --no-figures --no-progress "$@"
