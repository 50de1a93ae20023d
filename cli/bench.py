"""``kequireg bench``: throughput benchmarks; each workload is a subcommand."""

from __future__ import annotations

import click

from cli.lazy_group import LazyGroup

WORKLOADS: dict[str, tuple[str, str, str]] = {
    "augment": ("cli.bench_augment", "augment", "Strong augmentation, bare warp and parallel scaling vs peers."),
    "preprocess": ("cli.bench_preprocess", "preprocess", "N4 + equalization time per brats-preset case."),
    "train-step": ("cli.bench_train", "train_step", "EquiReg (2+6) step time vs a supervised step of 8."),
    "pipeline": ("cli.bench_train", "pipeline", "fit throughput: real PyDataset vs in-memory arrays."),
    "grid": ("cli.bench_grid", "grid", "Study-grid runs/hour: sequential vs the local executor's workers."),
}


@click.group(cls=LazyGroup, commands=WORKLOADS, section="Workloads")
def bench() -> None:
    """Throughput benchmarks defined in docs/architecture.md; each prints ratios against peers run in the same process."""
