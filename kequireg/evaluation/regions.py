"""BraTS label schemes and the nested tumour regions WT / TC / ET.

Two label schemes exist in kequireg: the BraTS files use {0, 1, 2, 4}; the slice store and the
networks use {0, 1, 2, 3} (BraTS 4 -> 3, so that class indices are contiguous). The evaluated
regions are nested unions of labels:

    whole tumour     WT = {1, 2, 4}   (internal {1, 2, 3})
    tumour core      TC = {1, 4}      (internal {1, 3})
    enhancing tumour ET = {4}         (internal {3})
"""

from __future__ import annotations

import numpy as np

REGIONS: tuple[str, ...] = ("WT", "TC", "ET")
SCHEMES: tuple[str, ...] = ("internal", "brats")

_REGION_LABELS = {
    "internal": {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)},
    "brats": {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)},
}
_ALLOWED = {"internal": (0, 1, 2, 3), "brats": (0, 1, 2, 4)}


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}. Received: scheme={scheme!r}")


def check_labels(labels: np.ndarray, scheme: str = "internal", name: str = "labels") -> np.ndarray:
    """Validate that an integer label map uses only the values of ``scheme``.

    Args:
        labels: integer array of any shape.
        scheme: str. ``"internal"`` ({0,1,2,3}) or ``"brats"`` ({0,1,2,4}). Defaults to ``"internal"``.
        name: str. Name used in the error message. Defaults to ``"labels"``.

    Returns:
        The input as a NumPy array.

    Raises:
        ValueError: on a float array or a value outside the scheme.

    Example:
        >>> check_labels(np.array([0, 1, 4]), "brats").tolist()
        [0, 1, 4]
    """
    _check_scheme(scheme)
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        # NIfTI label files are often stored as float; accept exact integers.
        if np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0):
            labels = labels.astype(np.int16)
        else:
            raise ValueError(f"{name} must hold integer labels. Received: {name}.dtype={labels.dtype}")
    present = np.unique(labels)
    bad = np.setdiff1d(present, _ALLOWED[scheme])
    if bad.size:
        hint = " (BraTS files use 4 for enhancing tumour: pass scheme='brats')" if scheme == "internal" and 4 in bad else ""
        hint = hint or (" (the store uses 3 for enhancing tumour: pass scheme='internal')" if 3 in bad else "")
        raise ValueError(
            f"{name} holds values outside the {scheme} label set {_ALLOWED[scheme]}. "
            f"Received: values {bad.tolist()}{hint}"
        )
    return labels


def region_masks(labels: np.ndarray, scheme: str = "internal") -> np.ndarray:
    """Boolean WT / TC / ET masks of a label map.

    Args:
        labels: integer array of any shape, values in the scheme's label set.
        scheme: str. ``"internal"`` ({0,1,2,3}) or ``"brats"`` ({0,1,2,4}). Defaults to ``"internal"``.

    Returns:
        bool array of shape ``labels.shape + (3,)``, last axis in the order of ``REGIONS``.

    Raises:
        ValueError: on values outside the scheme's label set.

    Example:
        >>> region_masks(np.array([0, 1, 2, 3]))[..., 0].tolist()  # WT
        [False, True, True, True]
    """
    labels = check_labels(labels, scheme)
    table = np.zeros((5, 3), dtype=bool)
    for r, region in enumerate(REGIONS):
        table[list(_REGION_LABELS[scheme][region]), r] = True
    return table[labels.astype(np.intp)]


def to_brats(labels: np.ndarray) -> np.ndarray:
    """Internal labels {0,1,2,3} -> BraTS labels {0,1,2,4} as uint8.

    Raises:
        ValueError: on values outside {0,1,2,3}.

    Example:
        >>> to_brats(np.array([0, 1, 2, 3])).tolist()
        [0, 1, 2, 4]
    """
    labels = check_labels(labels, "internal")
    out = labels.astype(np.uint8, copy=True)
    out[labels == 3] = 4
    return out


def to_internal(labels: np.ndarray) -> np.ndarray:
    """BraTS labels {0,1,2,4} -> internal labels {0,1,2,3} as uint8.

    Raises:
        ValueError: on values outside {0,1,2,4}.

    Example:
        >>> to_internal(np.array([0, 1, 2, 4])).tolist()
        [0, 1, 2, 3]
    """
    labels = check_labels(labels, "brats")
    out = labels.astype(np.uint8, copy=True)
    out[labels == 4] = 3
    return out
