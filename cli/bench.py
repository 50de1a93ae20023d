"""``kequireg bench``: throughput benchmarks; each workload is a subcommand."""

from __future__ import annotations

import importlib

import click

WORKLOADS: dict[str, tuple[str, str, str]] = {
    "augment": ("cli.bench_augment", "augment", "Strong augmentation, bare warp and parallel scaling vs peers."),
    "preprocess": ("cli.bench_preprocess", "preprocess", "N4 + equalization time per brats-preset case."),
    "train-step": ("cli.bench_train", "train_step", "EquiReg (2+6) step time vs a supervised step of 8."),
    "pipeline": ("cli.bench_train", "pipeline", "fit throughput: real PyDataset vs in-memory arrays."),
    "grid": ("cli.bench_grid", "grid", "Study-grid runs/hour: sequential vs the local executor's workers."),
}


class _LazyBench(click.Group):
    def list_commands(self, ctx):
        return list(WORKLOADS)

    def get_command(self, ctx, name):
        if name not in WORKLOADS:
            return None
        module, attr, _ = WORKLOADS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        with formatter.section("Workloads"):
            formatter.write_dl([(k, v[2]) for k, v in WORKLOADS.items()])


@click.group(cls=_LazyBench)
def bench() -> None:
    """Throughput benchmarks defined in DESIGN.md; each prints ratios against peers run in the same process."""
