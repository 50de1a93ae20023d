"""Train-step and input-pipeline benchmarks (DESIGN.md): thin wrapper of `kequireg bench`.

    python benchmarks/bench_train.py train-step [--backend jax] [--model fc-densenet56 --size 64]
    python benchmarks/bench_train.py pipeline   [--backend torch] [--data STORE.h5]

Prints the EquiReg (2+6) / supervised (8) step-time ratio (target <= 1.35) and the
real-PyDataset / in-memory fit throughput ratio (target >= 0.95), measured in one process.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import click  # noqa: E402

from cli.bench_train import pipeline, train_step  # noqa: E402


@click.group()
def main():
    """Training benchmarks."""


main.add_command(train_step)
main.add_command(pipeline)

if __name__ == "__main__":
    main()
