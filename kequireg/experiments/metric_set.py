"""The metric columns an experiment's tables and figures show, decided once from its label schema.

A :class:`MetricSet` is built from the :class:`kequireg.label_schema.LabelSchema` the runs trained
on (their ``config.json`` carries it; an experiment whose runs do not is BraTS 2019) and passed to
the aggregation, the Markdown tables and the figures, which read its column names and titles
instead of BraTS's WT / TC / ET. The summary of a non-BraTS-2019 experiment records its schema
(``summary["label_schema"]``), so that the tables printed from a summary name the same regions;
a BraTS 2019 summary stays as it always was.

Example:
    >>> from kequireg.label_schema import per_class_schema
    >>> metrics = MetricSet.from_schema(per_class_schema("acdc", ("background", "RV", "MYO", "LV"), (0, 1, 2, 3)))
    >>> metrics.bridging, metrics.labels["hd95_lv"]
    (('dice_rv', 'dice_myo', 'dice_lv', 'dice'), 'HD95 LV')
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from kequireg.io import read_json
from kequireg.label_schema import LabelSchema
from kequireg.vocabulary import BRATS_2019

SCHEMA_KEY = "label_schema"


@dataclasses.dataclass(frozen=True)
class MetricSet:
    """Per-region metric columns and how the tables name them.

    Args:
        regions: (column key, display name) per evaluated region, in the schema's order. Defaults to
            BraTS 2019's (WT, TC, ET).
        schema: the LabelSchema they come from. Defaults to BraTS 2019.
    """

    regions: tuple[tuple[str, str], ...] = tuple((r.key, r.name) for r in BRATS_2019.regions)
    schema: LabelSchema = BRATS_2019

    @classmethod
    def from_schema(cls, schema: LabelSchema) -> "MetricSet":
        return cls(tuple((r.key, r.name) for r in schema.regions), schema)

    @classmethod
    def of_summary(cls, summary: dict) -> "MetricSet":
        """The metric set a summary was made with (BraTS 2019 when it records no schema)."""
        record = summary.get(SCHEMA_KEY)
        return cls.from_schema(LabelSchema.from_dict(record) if record else BRATS_2019)

    @property
    def dice(self) -> tuple[str, ...]:
        return tuple(f"dice_{key}" for key, _ in self.regions)

    @property
    def hd95(self) -> tuple[str, ...]:
        return tuple(f"hd95_{key}" for key, _ in self.regions)

    @property
    def summary(self) -> tuple[str, ...]:
        """Every metric summarised per cell: Dice per region, collective Dice, HD95 per region, equivariance Dice."""
        return (*self.dice, "dice", *self.hd95, "equivariance_dice")

    @property
    def bridging(self) -> tuple[str, ...]:
        """The metrics with a bridging coefficient: Dice per region and the collective Dice."""
        return (*self.dice, "dice")

    @property
    def labels(self) -> dict[str, str]:
        """How the tables and figures name each metric column."""
        return {**{f"dice_{key}": name for key, name in self.regions}, "dice": "collective",
                **{f"hd95_{key}": f"HD95 {name}" for key, name in self.regions}, "equivariance_dice": "equivariance"}

    def record(self) -> dict:
        """What a summary records of the schema: nothing for BraTS 2019 (old summaries stay byte-identical)."""
        return {} if self.schema == BRATS_2019 else {SCHEMA_KEY: self.schema.to_dict()}


def run_schema(config_paths) -> LabelSchema:
    """The label schema of the first run whose ``config.json`` exists (BraTS 2019 when none records one).

    Args:
        config_paths: ``config.json`` paths of an experiment's runs, in grid order.
    """
    for path in config_paths:
        path = Path(path)
        if path.is_file():
            record = read_json(path, "run config").get(SCHEMA_KEY)
            return LabelSchema.from_dict(record) if record else BRATS_2019
    return BRATS_2019


def experiment_metrics(experiment_dir: str | os.PathLike, specs, folder) -> MetricSet:
    """The MetricSet of an experiment: its runs' schema (``folder(experiment_dir, spec)`` is a run's folder)."""
    return MetricSet.from_schema(run_schema(Path(folder(experiment_dir, s)) / "config.json" for s in specs))
