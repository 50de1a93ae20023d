#!/usr/bin/env bash
# GPU readiness check (issue 11 item 3): one call of <= 8 minutes on a lent GPU machine.
#
# FC-DenseNet103 at 224x224: EquiReg (2+6) and supervised (8) steps on jax and torch, float32 and
# mixed_bfloat16 (slices/s, step ratio, peak device memory), then the real PyDataset vs in-memory
# fit ratio with 8 pipeline workers, on a store of random slices written there. Results:
# $OUT/gpu-jax.json, $OUT/gpu-torch.json and $OUT/gpu-check.log.
#
# The GPU machine has jax, torch, numba, h5py, scipy and click but no keras: carry it as wheels.
# Once, here, in the repository root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl keras==3.15.1 namex optree
# then run this script through the device tool with carry [".whl"] and a timeout of ~540 s:
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}" || exit 1
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 JAX_THREEFRY_PARTITIONABLE=false TF_CPP_MIN_LOG_LEVEL=3
# jax preallocates 75% of the GPU by default, which hides the real peak; grow on demand instead.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$OUT/gpu-check.log"
status=0
for backend in jax torch; do
  # each backend in its own process, with its own time limit, so one slow compile cannot eat the other's budget
  timeout 240 python3 -m kequireg.bench.gpu --backend "$backend" --out "$OUT" "$@" 2>&1 \
    | grep -v -e '^I0000' -e '^WARNING: All log' | tee -a "$OUT/gpu-check.log" || status=1
done
exit $status
