"""Phantom speed: seconds per case of kequireg.data.phantom.generate_case per preset, beside the old
kequireg.data.synth generator on the same grid, with the machine and its load.

One process, one core's worth of NumPy/SciPy work per case (no parallelism in the generator). Example::

    python benchmarks/phantom_speed.py --cases demo=40 demo96=10 brats=3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from kequireg.data import synth
from kequireg.data.phantom import PHANTOM_PRESETS, generate_case

OLD = {"demo": "demo", "brats": "brats"}  # the old generator's preset on the same grid


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"{cpu}; {os.cpu_count()} logical CPUs; load average {load}; numpy {np.__version__}"


def seconds_per_case(make, cases: int) -> list[float]:
    make(10_000)  # warm-up (imports, caches)
    out = []
    for seed in range(cases):
        start = time.perf_counter()
        make(seed)
        out.append(time.perf_counter() - start)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="phantom_speed.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["demo=40", "demo96=10", "brats=3"],
                        help="PRESET=N pairs: cases to time per preset.")
    args = parser.parse_args(argv)
    print(machine())
    print(f"{'preset':8} {'shape':>16} {'cases':>5} {'phantom median s':>17} {'mean s':>8} {'old synth median s':>19}")
    for item in args.cases:
        name, n = item.split("=")
        preset = PHANTOM_PRESETS[name]
        times = seconds_per_case(lambda seed: generate_case(preset, seed), int(n))
        old = ""
        if name in OLD:
            old_times = seconds_per_case(lambda seed: synth.generate_case(synth.SYNTH_PRESETS[OLD[name]], seed), int(n))
            old = f"{statistics.median(old_times):.4f}"
        shape = "x".join(map(str, preset.shape))
        print(f"{name:8} {shape:>16} {int(n):>5} {statistics.median(times):>17.4f} {statistics.mean(times):>8.4f} {old:>19}")
    print(f"after: load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
