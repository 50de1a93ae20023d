"""Preprocessing benchmark: brats-preset case time (default N4 shrink vs full resolution, one core),
store size per case extrapolated to 335 cases, random slice read time.

Runs ``kequireg.bench.preprocess.run``, the code of ``kequireg bench preprocess``. Example::

    python benchmarks/bench_preprocess.py --cases 2 --full-modalities 1 --json
"""

import argparse

from kequireg.bench.preprocess import run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="bench_preprocess.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--cases", type=int, default=2, help="brats-preset cases to time.")
    parser.add_argument("--full-modalities", type=int, choices=range(5), default=1,
                        help="Modalities of the first case also corrected with full-resolution N4 (slow); 0 skips.")
    parser.add_argument("--reads", type=int, default=300, help="Random single-slice reads.")
    parser.add_argument("--seed", type=int, default=0, help="Synthetic data seed.")
    parser.add_argument("--json", dest="as_json", action="store_true", help="Print JSON.")
    run(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
