"""Train-step and input-pipeline benchmarks (docs/architecture.md) as a script::

    python benchmarks/bench_train.py train-step [--backend jax] [--model fc-densenet56 --size 64]
    python benchmarks/bench_train.py pipeline   [--backend torch] [--data STORE.h5]

Prints each method's (2+6) / supervised (8) step-time ratio (EquiReg's target <= 1.35) and the
real-PyDataset / in-memory fit throughput ratio (target >= 0.95), measured in one process.
Runs ``kequireg.bench.train.run_train_step`` / ``run_pipeline``, the code of ``kequireg bench``.
"""

import argparse
import os

from kequireg.settings import BACKENDS


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="bench_train.py", description=__doc__.split("::")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    workloads = parser.add_subparsers(dest="workload", required=True)
    step = workloads.add_parser("train-step", help="EquiReg step (2+6) vs a supervised step of 8.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    step.add_argument("--size", type=int, default=64, help="Image height = width.")
    step.add_argument("--methods", type=lambda v: tuple(m for m in v.split(",") if m),
                      default=("equireg", "mean-teacher", "fixmatch"),
                      help="Comma-separated methods (and equireg-ema) timed against the supervised step.")
    pipe = workloads.add_parser("pipeline", help="fit throughput: real PyDataset vs in-memory arrays.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    pipe.add_argument("--data", default=None, help="Slice store. Default: the demo data set (64x64).")
    pipe.add_argument("--workers", type=int, default=2, help="PyDataset threads.")
    for sub, steps in ((step, 10), (pipe, 20)):
        sub.add_argument("--backend", choices=BACKENDS, default=None,
                         help="Keras backend. Defaults to $KERAS_BACKEND, else tensorflow.")
        sub.add_argument("--model", dest="preset", default="fc-densenet56", help="Network preset.")
        sub.add_argument("--steps", type=int, default=steps, help="Steps per timed fit.")
        sub.add_argument("--repeats", type=int, default=3, help="Timed rounds.")
    options = vars(parser.parse_args(argv))
    workload, backend = options.pop("workload"), options.pop("backend")
    if backend:
        os.environ["KERAS_BACKEND"] = backend  # before keras loads
    from kequireg.bench.train import run_pipeline, run_train_step

    (run_train_step if workload == "train-step" else run_pipeline)(**options)


if __name__ == "__main__":
    main()
