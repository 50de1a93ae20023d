"""Augment engine benchmarks (docs/architecture.md "Performance workloads") as a script.

Runs ``kequireg.bench.augment.run``, the code of ``kequireg bench augment``. Example::

    python benchmarks/bench_augment.py --imgaug-python /work/venv-imgaug/bin/python --json bench_augment.json
"""

import argparse
import os

from kequireg.bench.augment import PEERS, run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="bench_augment.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--json", dest="json_path", default=None, help="Also write the results as JSON (atomically).")
    parser.add_argument("--seconds", type=float, default=3.0, help="Measuring time per strong-workload library.")
    parser.add_argument("--batch", type=int, default=64, help="Batch size for parallel scaling.")
    parser.add_argument("--repeats", type=int, default=5, help="Repeats for bare warp and parallel scaling.")
    parser.add_argument("--imgaug-python", default=os.environ.get("KEQUIREG_IMGAUG_PYTHON"),
                        help="Interpreter with imgaug==0.4.0 and numpy<2 (env KEQUIREG_IMGAUG_PYTHON).")
    parser.add_argument("--peers", nargs="*", choices=PEERS, default=list(PEERS), help="Peers to measure.")
    parser.add_argument("--skip-compile", action="store_true", help="Do not measure the Numba compile time.")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="No status lines on stderr.")
    run(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
