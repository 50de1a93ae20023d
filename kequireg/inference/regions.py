"""Check label maps of either scheme, convert between them, and mask a label schema's regions.

``scheme`` says which values a map holds: ``"internal"`` the class indices of the store and the
networks (0..K-1, and :data:`kequireg.label_schema.IGNORE_INDEX` for ignored pixels),
``"brats"`` the values of the schema's label files. The regions are the ``schema``'s
(:class:`kequireg.label_schema.LabelSchema`); without one, BraTS 2019's (:mod:`kequireg.vocabulary`):
files {0, 1, 2, 4}, internal {0, 1, 2, 3}; WT = {1, 2, 4}, TC = {1, 4}, ET = {4} (internal
{1, 2, 3}, {1, 3}, {3}).
"""

from __future__ import annotations

import numpy as np

from kequireg.label_schema import IGNORE_INDEX, LabelSchema
from kequireg.vocabulary import BRATS_2019, BRATS_TO_INTERNAL, INTERNAL_TO_BRATS, LABEL_SCHEMES, SCHEME_LABELS

SCHEMES = LABEL_SCHEMES


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}. Received: scheme={scheme!r}")


def check_pair(target, predicted, dtype=None, ndim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``target`` and ``predicted`` as NumPy arrays (cast to ``dtype`` if given) of one shape.

    Args:
        target: array. The reference.
        predicted: array. The prediction.
        dtype: optional dtype to cast both to (e.g. ``bool`` for masks).
        ndim: int. The number of axes both must have; None = any.

    Raises:
        ValueError: on different shapes (or the wrong ``ndim``), naming both.

    Example:
        >>> [a.shape for a in check_pair(np.zeros((2, 3)), np.ones((2, 3)), dtype=bool)]
        [(2, 3), (2, 3)]
    """
    target, predicted = np.asarray(target, dtype=dtype), np.asarray(predicted, dtype=dtype)
    if predicted.shape != target.shape or (ndim is not None and target.ndim != ndim):
        rule = f" both have {ndim} axes and" if ndim is not None else ""
        raise ValueError(
            f"target and predicted must{rule} have the same shape. "
            f"Received: target.shape={target.shape}, predicted.shape={predicted.shape}"
        )
    return target, predicted


def integer_labels(labels, name: str = "labels") -> np.ndarray:
    """``labels`` as an integer array; NIfTI label files are often stored as float, so exact integers are accepted.

    Raises:
        ValueError: on a non-integer array, naming it.
    """
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        if np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0):
            return labels.astype(np.int16)
        raise ValueError(f"{name} must hold integer labels. Received: {name}.dtype={labels.dtype}")
    return labels


def scored_masks(target, predicted, scheme: str = "internal", schema: LabelSchema | None = None):
    """The region masks a metric compares: ``(target_masks, predicted_masks, ignored)``, shapes checked.

    Voxels the reference leaves unannotated (``IGNORE_INDEX``, internal scheme, a schema with an
    ignore value) are in no target region and are dropped from the predicted regions; ``ignored`` is
    their mask (None when the schema has no ignore value).
    """
    schema = BRATS_2019 if schema is None else schema
    target, predicted = check_pair(target, predicted)
    target_masks, predicted_masks = region_masks(target, scheme, schema), region_masks(predicted, scheme, schema)
    ignored = (target == IGNORE_INDEX) if scheme == "internal" and schema.ignore_value is not None else None
    if ignored is not None and ignored.any():
        predicted_masks = predicted_masks & ~ignored[..., None]  # the reference says nothing there
    return target_masks, predicted_masks, ignored


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
    labels = integer_labels(labels, name)
    present = np.unique(labels)
    bad = np.setdiff1d(present, SCHEME_LABELS[scheme])
    if bad.size:
        hint = " (BraTS files use 4 for enhancing tumour: pass scheme='brats')" if scheme == "internal" and 4 in bad else ""
        hint = hint or (" (3 is the enhancing tumour of BraTS 2023-2025 files and of the store's classes: read BraTS "
                        "2023 files with --labels brats2023)" if 3 in bad else "")
        raise ValueError(
            f"{name} holds values outside the {scheme} label set {SCHEME_LABELS[scheme]}. "
            f"Received: values {bad.tolist()}{hint}"
        )
    return labels


def region_masks(labels: np.ndarray, scheme: str = "internal", schema: LabelSchema | None = None) -> np.ndarray:
    """Boolean masks of the schema's regions (WT / TC / ET for BraTS) of a label map.

    Args:
        labels: integer array of any shape, values in the scheme's label set.
        scheme: str. ``"internal"`` (class indices; ignored pixels in no region) or ``"brats"``
            (the schema's file values). Defaults to ``"internal"``.
        schema: the LabelSchema. Defaults to BraTS 2019.

    Returns:
        bool array of shape ``labels.shape + (R,)``, last axis in the order of ``schema.regions``.

    Raises:
        ValueError: on values outside the scheme's label set.

    Example:
        >>> region_masks(np.array([0, 1, 2, 3]))[..., 0].tolist()  # WT
        [False, True, True, True]
    """
    schema = BRATS_2019 if schema is None else schema
    if schema == BRATS_2019:  # the BraTS 2019 checks and their hints
        labels = check_labels(labels, scheme)
        if scheme == "brats":
            labels = _relabel(labels, BRATS_TO_INTERNAL)
    elif scheme == "brats":
        labels = schema.to_classes(np.asarray(labels))
    else:
        labels = check_classes(labels, schema)
    return schema.region_masks(labels)


def check_classes(labels: np.ndarray, schema: LabelSchema, name: str = "labels") -> np.ndarray:
    """Validate a class-index map of ``schema``: values 0..K-1 or IGNORE_INDEX.

    Raises:
        ValueError: on a float array or another value, naming the schema.
    """
    labels = integer_labels(labels, name)
    bad = np.setdiff1d(np.unique(labels), [*range(schema.num_classes), IGNORE_INDEX])
    if bad.size:
        raise ValueError(f"{name} holds values outside the classes 0..{schema.num_classes - 1} of label schema "
                         f"{schema.name!r}. Received: values {bad.tolist()}")
    return labels


def to_brats(labels: np.ndarray) -> np.ndarray:
    """Internal labels {0,1,2,3} -> BraTS labels {0,1,2,4} as uint8.

    Raises:
        ValueError: on values outside {0,1,2,3}.

    Example:
        >>> to_brats(np.array([0, 1, 2, 3])).tolist()
        [0, 1, 2, 4]
    """
    return _relabel(check_labels(labels, "internal"), INTERNAL_TO_BRATS)


def to_internal(labels: np.ndarray) -> np.ndarray:
    """BraTS labels {0,1,2,4} -> internal labels {0,1,2,3} as uint8.

    Raises:
        ValueError: on values outside {0,1,2,4}.

    Example:
        >>> to_internal(np.array([0, 1, 2, 4])).tolist()
        [0, 1, 2, 3]
    """
    return _relabel(check_labels(labels, "brats"), BRATS_TO_INTERNAL)


def _relabel(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """``labels`` (values checked) with each value replaced by ``mapping[value]``, as uint8."""
    out = labels.astype(np.uint8, copy=True)
    for source, target in mapping.items():
        if source != target:
            out[labels == source] = target
    return out
