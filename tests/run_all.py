"""Run the whole test suite the way CI does: one pytest process per Keras backend.

1. every test under the tensorflow backend;
2. the tests marked ``backend`` again under jax and under torch (one backend per process,
   since keras fixes its backend at import);
3. the augment kernel tests once more with ``NUMBA_DISABLE_JIT=1`` so that coverage and
   Python-level checks reach the kernel bodies.

Extra arguments are passed to every pytest run. Exit status is non-zero if any run failed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# JAX's partitionable threefry compiles one program per weight shape; the legacy generator cut
# the jax test run by more than half on 2 cores (the CLI sets the same default).
BASE_ENV = {"JAX_THREEFRY_PARTITIONABLE": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}


def run(label: str, env_extra: dict[str, str], args: list[str]) -> tuple[int, dict[str, int]]:
    env = {**BASE_ENV, **os.environ, **env_extra}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    print(f"\n=== {label}: {' '.join(cmd[1:])}  ({env_extra})", flush=True)
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = []
    for line in proc.stdout:
        sys.stdout.write(line)
        tail.append(line)
        tail = tail[-5:]
    rc = proc.wait()
    counts = {}
    for line in tail:
        for number, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", line):
            counts[word.rstrip("s") if word.startswith("error") else word] = int(number)
    print(f"=== {label}: exit {rc} in {time.time() - start:.0f} s", flush=True)
    # pytest exit 5 = nothing collected, fine for an optional pass
    return (0 if rc == 5 else rc), counts


def main(argv: list[str]) -> int:
    # XLA compilation of TensorFlow train steps costs ~30 s per model on this CPU; the suite builds
    # many small models, so it runs uncompiled except in the tests that ask for XLA explicitly.
    runs = [("tensorflow: all tests", {"KERAS_BACKEND": "tensorflow", "KEQUIREG_JIT_COMPILE": "off"}, ["tests", *argv])]
    missing = []
    for backend in ("jax", "torch"):
        if importlib.util.find_spec(backend) is None:
            missing.append(backend)
            continue
        runs.append((f"{backend}: backend tests", {"KERAS_BACKEND": backend}, ["tests", "-m", "backend", *argv]))
    if (ROOT / "tests" / "augment").is_dir():
        runs.append(
            ("augment kernels without JIT", {"NUMBA_DISABLE_JIT": "1"}, ["tests/augment", "-m", "not slow", "-k", "kernel", *argv])
        )
    total = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    worst = 0
    for label, env, args in runs:
        rc, counts = run(label, env, args)
        worst = worst or rc
        for key in total:
            total[key] += counts.get(key, 0)
    for backend in missing:
        print(f"!!! {backend} is not installed: `pip install '.[{backend}]'`; its backend tests could not run.")
        worst = worst or 1
    failed = total["failed"] + total["error"]
    if worst and not failed:
        failed = 1
    print(f"\n{total['passed']} passed, {failed} failed, {total['skipped']} skipped")
    return 1 if (worst or failed) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
