"""The network's output head, decided once: a softmax over the classes or one sigmoid per region.

``EquiRegModel`` asks its head for every output-dependent part of a step, so the step itself is
written once: how the teacher's logits become probabilities, how those are warped, the
supervised and consistency terms, the confidence mask, the validation loss and the Dice metrics.

- :class:`SoftmaxHead` (``--output softmax``, the thesis): K class channels, CE / soft Dice,
  KL / pseudo-CE / MSE over the class distribution, warped with one-hot background outside.
- :class:`RegionHead` (``--output regions``, nnU-Net's BraTS way): R region channels, BCE / soft
  Dice per region, the consistency per region (:mod:`kequireg.training.region_losses`), warped
  with zeros outside (no region there).

Example:
    >>> from kequireg.vocabulary import BRATS_2019
    >>> output_head("regions", BRATS_2019).channels, output_head("softmax", BRATS_2019).channels
    (3, 4)
"""

from __future__ import annotations

from kequireg.label_schema import LabelSchema
from kequireg.settings import OUTPUTS
from kequireg.training import losses, region_losses
from kequireg.training.device_warp import warp_image, warp_probs
from kequireg.training.metrics import RegionSliceDice, SliceDice

# The class whose one-hot fills a warped softmax map outside the image.
BACKGROUND = 0


class SoftmaxHead:
    """K softmax channels, one per class of the schema."""

    name = "softmax"

    def __init__(self, schema: LabelSchema):
        self.schema = schema
        self.channels = schema.num_classes

    def teacher_probs(self, logits, temperature):
        return losses.teacher_probabilities(logits, temperature)

    def warp(self, probs, grid):
        return warp_probs(probs, grid, background=BACKGROUND)

    def supervised(self, kind, labels, logits):
        return losses.supervised_loss(kind, labels, logits)

    def consistency(self, kind, targets, logits):
        return losses.consistency_map(kind, targets, logits)

    def confidence(self, targets, threshold):
        return losses.confidence_mask(targets, threshold)

    def validation_loss(self, labels, logits):
        return losses.sparse_cross_entropy(labels, logits)

    def dice_metrics(self) -> list:
        return [SliceDice(r.name, r.classes) for r in self.schema.regions]


class RegionHead:
    """R sigmoid channels, one per region of the schema (its ``regions_class_order`` paints labels back)."""

    name = "regions"

    def __init__(self, schema: LabelSchema):
        if schema.regions_class_order is None:
            raise ValueError(f"--output regions needs a label schema that says how regions become labels "
                             f"(regions_class_order); {schema.name!r} ({schema.describe_labels()}) has none. "
                             "Train it with --output softmax.")
        self.schema = schema
        self.channels = len(schema.regions)
        self.region_classes = tuple(r.classes for r in schema.regions)

    def teacher_probs(self, logits, temperature):
        return region_losses.teacher_region_probabilities(logits, temperature)

    def warp(self, probs, grid):
        return warp_image(probs, grid)  # zeros outside the image: no region there

    def supervised(self, kind, labels, logits):
        return region_losses.region_supervised_loss(kind, labels, logits, self.region_classes)

    def consistency(self, kind, targets, logits):
        return region_losses.region_consistency_map(kind, targets, logits)

    def confidence(self, targets, threshold):
        return region_losses.region_confidence_mask(targets, threshold)

    def validation_loss(self, labels, logits):
        targets, annotated = region_losses.region_targets(labels, self.region_classes)
        return region_losses.bce_loss(targets, logits, annotated)

    def dice_metrics(self) -> list:
        return [RegionSliceDice(r.name, r.classes, index=i) for i, r in enumerate(self.schema.regions)]


def output_head(output: str, schema: LabelSchema):
    """The head of ``output`` (one of ``settings.OUTPUTS``) for ``schema``.

    Raises:
        ValueError: an unknown output, or regions for a schema without ``regions_class_order``.
    """
    heads = {"softmax": SoftmaxHead, "regions": RegionHead}
    if output not in heads:
        raise ValueError(f"output must be one of {OUTPUTS}. Received: output={output!r}")
    return heads[output](schema)


def output_channels(output: str, schema: LabelSchema) -> int:
    """The network's output channels for ``output`` and ``schema`` (classes or regions)."""
    return output_head(output, schema).channels
