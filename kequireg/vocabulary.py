"""The words of the BraTS task, defined once: modalities, label values, classes and regions.

Two label schemes exist in kequireg. The BraTS files use {0, 1, 2, 4}; the slice store, the
networks and the training metrics use {0, 1, 2, 3} (BraTS 4 -> 3, so that class indices are
contiguous). The evaluated regions are nested unions of labels::

    whole tumour     WT = {1, 2, 4}   (internal {1, 2, 3})
    tumour core      TC = {1, 4}      (internal {1, 3})
    enhancing tumour ET = {4}         (internal {3})

Plain tuples and dicts only: importing this module imports neither keras nor numpy, so the
data readers, the training metrics, the evaluation and the CLI all read the same constants.

Example:
    >>> from kequireg import vocabulary
    >>> vocabulary.REGION_LABELS["internal"]["TC"]
    (1, 3)
    >>> [vocabulary.BRATS_TO_INTERNAL[v] for v in vocabulary.BRATS_LABELS]
    [0, 1, 2, 3]
"""

from __future__ import annotations

# ---- images --------------------------------------------------------------------------------------
# The four MRI sequences of a BraTS case, in the channel order of the slice store.
MODALITIES: tuple[str, ...] = ("flair", "t1", "t1ce", "t2")

# ---- label values --------------------------------------------------------------------------------
LABEL_SCHEMES: tuple[str, ...] = ("internal", "brats")
BRATS_LABELS: tuple[int, ...] = (0, 1, 2, 4)
INTERNAL_LABELS: tuple[int, ...] = (0, 1, 2, 3)
SCHEME_LABELS: dict[str, tuple[int, ...]] = {"internal": INTERNAL_LABELS, "brats": BRATS_LABELS}
BRATS_TO_INTERNAL: dict[int, int] = dict(zip(BRATS_LABELS, INTERNAL_LABELS))
INTERNAL_TO_BRATS: dict[int, int] = dict(zip(INTERNAL_LABELS, BRATS_LABELS))
# What each internal class is (index = internal label; BraTS label via INTERNAL_TO_BRATS).
CLASS_NAMES: tuple[str, ...] = ("background", "necrotic / non-enhancing tumour core", "edema", "enhancing tumour")
NUM_CLASSES: int = len(CLASS_NAMES)  # the network's output channels

# ---- regions -------------------------------------------------------------------------------------
# The evaluated regions, in the order of every per-region array and column.
REGIONS: tuple[str, ...] = ("WT", "TC", "ET")
REGION_NAMES: dict[str, str] = {"WT": "whole tumour", "TC": "tumour core", "ET": "enhancing tumour"}
_BRATS_REGIONS = {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}
# Label values of each region, per scheme.
REGION_LABELS: dict[str, dict[str, tuple[int, ...]]] = {
    "brats": _BRATS_REGIONS,
    "internal": {region: tuple(BRATS_TO_INTERNAL[v] for v in values) for region, values in _BRATS_REGIONS.items()},
}
