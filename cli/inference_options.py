"""The options ``kequireg predict`` and ``kequireg evaluate`` share: batch size, TTA, uncertainty,
post-processing; made from ``InferenceOptions``' fields (flags, help, defaults and ranges live there)."""

from __future__ import annotations

from cli.dataclass_options import click_options
from kequireg.inference.options import InferenceOptions


def inference_options(save_probabilities: bool = False):
    """Batch size, test-time augmentation, uncertainty and post-processing options of predict and
    evaluate, handed to the command as one ``options: InferenceOptions`` argument.

    Args:
        save_probabilities: bool. Also offer ``--save-probabilities`` (predict). Defaults to False.
    """
    return click_options(InferenceOptions, exclude=() if save_probabilities else ("save_probabilities",), into="options")
