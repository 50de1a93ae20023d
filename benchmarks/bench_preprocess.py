"""Preprocessing benchmark: brats-preset case time (default N4 shrink vs full resolution, one core),
store size per case extrapolated to 335 cases, random slice read time.

Same code as ``kequireg bench preprocess``; run ``python benchmarks/bench_preprocess.py --help``.
"""

from cli.bench_preprocess import preprocess

if __name__ == "__main__":
    preprocess()
