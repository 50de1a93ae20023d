"""``kequireg experiment``'s executor options (sequential, local workers, a SLURM job array).

Flags, defaults, ranges and help come from ``ExecutorOptions``' fields; only the parsing of
``--slurm-option KEY=VALUE`` is the CLI's.
"""

from __future__ import annotations

import click

from cli.dataclass_options import click_options
from kequireg.experiments.executors import ExecutorOptions


def _key_value(ctx, param, values):
    """A click callback parsing repeated ``KEY=VALUE`` into ((key, value), ...)."""
    pairs = []
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE like account=mylab. Received: {value!r}")
        pairs.append((key.strip().lstrip("-"), val.strip()))
    return tuple(pairs)


# ``--executor`` and its options, handed to the command as one ``executor`` (ExecutorOptions).
executor_options = click_options(
    ExecutorOptions, into="executor",
    overrides={"slurm_options": {"multiple": True, "callback": _key_value, "metavar": "KEY=VALUE", "type": str,
                                 "show_default": False}},
)
