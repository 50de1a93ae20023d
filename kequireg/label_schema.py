"""The label schema of a dataset, decided once at ingest: its classes, regions, ignore value and file convention.

Every part of kequireg that needs to know what the labels mean reads a :class:`LabelSchema`:
the network's output channels (``num_classes``), the losses (``IGNORE_INDEX``), the training
and evaluation metrics (``regions``), the tables and figures (region names), the predictions
written back (``file_values``) and BraTS post-processing (only where ``family == "brats"``).

Three spaces of values:

- **file values**: what the dataset's label files hold (BraTS 2019: 0, 1, 2, 4);
- **classes**: contiguous indices 0..K-1 in the store, the networks and the losses (class 0 is
  background); class ``k`` is written back to files as ``file_values[k]``;
- **ignore**: the file value of "not annotated" (nnU-Net's ``ignore`` label), stored as
  :data:`IGNORE_INDEX`; such pixels count in no supervised loss and no metric.

A region is a union of classes, evaluated as one binary mask (BraTS: WT = {1, 2, 3},
TC = {1, 3}, ET = {3}; any other dataset: one region per foreground class unless its
``dataset.json`` declares regions). The BraTS schemas are data in :mod:`kequireg.vocabulary`.
A schema is saved as JSON in the slice store's params and in every run's config; a store or a
run without one is BraTS 2019 (:func:`kequireg.vocabulary.schema_of`).

Importing this module imports neither keras nor numpy (NumPy is imported where arrays are made).

Example:
    >>> from kequireg.vocabulary import BRATS_2019
    >>> BRATS_2019.num_classes, BRATS_2019.region_names
    (4, ('WT', 'TC', 'ET'))
    >>> BRATS_2019.region("TC").classes, BRATS_2019.file_values
    ((1, 3), (0, 1, 2, 4))
    >>> LabelSchema.from_dict(BRATS_2019.to_dict()) == BRATS_2019
    True
"""

from __future__ import annotations

import dataclasses
import re

# The stored value of an ignored (not annotated) pixel; no class index reaches it (uint8 labels).
IGNORE_INDEX: int = 255
FAMILIES: tuple[str, ...] = ("brats", "generic")


def column_key(name: str) -> str:
    """A region or class name as a column suffix: ``"WT"`` -> ``"wt"``, ``"left ventricle"`` -> ``"left_ventricle"``."""
    key = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")
    return key or "region"


@dataclasses.dataclass(frozen=True)
class Region:
    """One evaluated region: a union of classes.

    Args:
        name: short name used in tables and column names (``"WT"``, ``"LV"``).
        title: what it is (``"whole tumour"``).
        classes: the class indices it unites (never 0, the background).
    """

    name: str
    title: str
    classes: tuple[int, ...]

    @property
    def key(self) -> str:
        """Column suffix: ``dice_<key>``, ``hd95_<key>``."""
        return column_key(self.name)


@dataclasses.dataclass(frozen=True)
class LabelSchema:
    """What a dataset's labels mean (see the module docstring).

    Args:
        name: the schema's name (``"brats2019"``, ``"brats2021"``, ``"nnunet:Dataset027_ACDC"``).
        classes: class names, index = class (0 = background).
        file_values: per class, its value in the dataset's label files (predictions are written
            with these).
        regions: the evaluated regions, in the order of every per-region array and column.
        ignore_value: the file value of not-annotated pixels, or None.
        family: ``"brats"`` (BraTS words, BraTS post-processing) or ``"generic"``.
        regions_class_order: per region, the class index painted where the region is predicted,
            regions painted in order, later ones over earlier ones (nnU-Net's rule turning
            region predictions back into labels: ``--output regions``); None = this schema
            cannot be trained region-based.
        title: a short human description.
    """

    name: str
    classes: tuple[str, ...]
    file_values: tuple[int, ...]
    regions: tuple[Region, ...]
    ignore_value: int | None = None
    family: str = "generic"
    regions_class_order: tuple[int, ...] | None = None
    title: str = ""

    def __post_init__(self):
        k = len(self.classes)
        if k < 2:
            raise ValueError(f"label schema {self.name!r}: needs background and at least one class. Received: {self.classes}")
        if len(self.file_values) != k or len(set(self.file_values)) != k:
            raise ValueError(f"label schema {self.name!r}: one distinct file value per class. Received: "
                             f"classes={self.classes}, file_values={self.file_values}")
        if any(not 0 <= v < IGNORE_INDEX for v in self.file_values):
            raise ValueError(f"label schema {self.name!r}: file values must be in 0..{IGNORE_INDEX - 1}. Received: {self.file_values}")
        if self.ignore_value is not None and self.ignore_value in self.file_values:
            raise ValueError(f"label schema {self.name!r}: the ignore value {self.ignore_value} is also a class's value")
        if not self.regions:
            raise ValueError(f"label schema {self.name!r}: needs at least one region")
        keys = [r.key for r in self.regions]
        if len(set(keys)) != len(keys):
            raise ValueError(f"label schema {self.name!r}: region names must differ. Received: {[r.name for r in self.regions]}")
        for region in self.regions:
            if not region.classes or any(not 0 < c < k for c in region.classes):
                raise ValueError(f"label schema {self.name!r}: region {region.name!r} must unite foreground classes "
                                 f"1..{k - 1}. Received: {region.classes}")
        order = self.regions_class_order
        if order is not None and (len(order) != len(self.regions) or any(not 0 < c < k for c in order)):
            raise ValueError(f"label schema {self.name!r}: regions_class_order needs one foreground class per region "
                             f"{self.region_names}. Received: {order}")
        if self.family not in FAMILIES:
            raise ValueError(f"label schema {self.name!r}: family must be one of {FAMILIES}. Received: {self.family!r}")

    # ---- what the network and the tables need -----------------------------------------------------
    @property
    def num_classes(self) -> int:
        """The network's output channels (softmax)."""
        return len(self.classes)

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions)

    @property
    def region_keys(self) -> tuple[str, ...]:
        return tuple(r.key for r in self.regions)

    @property
    def is_brats(self) -> bool:
        return self.family == "brats"

    def region(self, name: str) -> Region:
        """The region called ``name`` (or whose column key is ``name``).

        Raises:
            ValueError: naming the schema's regions.
        """
        for r in self.regions:
            if name in (r.name, r.key):
                return r
        raise ValueError(f"region must be one of {self.region_names} (label schema {self.name!r}). Received: {name!r}")

    # ---- value conversions -------------------------------------------------------------------------
    @property
    def file_to_class(self) -> dict[int, int]:
        return {v: k for k, v in enumerate(self.file_values)}

    def describe_labels(self) -> str:
        """``"0 background, 1 necrosis, ..."`` in file values (for messages)."""
        text = ", ".join(f"{v} {name}" for v, name in zip(self.file_values, self.classes))
        return text + (f", {self.ignore_value} ignore" if self.ignore_value is not None else "")

    def to_classes(self, seg):
        """File values -> class indices (uint8; ignore -> :data:`IGNORE_INDEX`), keeping the array's memory order.

        Raises:
            ValueError: listing the values that are neither a class's nor the ignore value.
        """
        import numpy as np

        known = (*self.file_values, *(() if self.ignore_value is None else (self.ignore_value,)))
        outside = ~np.isin(seg, known)  # one comparison per value; np.unique would sort every voxel
        if outside.any():
            bad = np.unique(seg[outside]).tolist()
            shown = ", ".join(f"{v:g}" for v in bad[:10])
            raise ValueError(f"labels outside {{{', '.join(str(v) for v in sorted(known))}}}: found {shown}; "
                             f"the {self.title or self.name} labels are {self.describe_labels()}")
        out = np.asarray(seg).astype(np.uint8)
        for value, k in self.file_to_class.items():
            if value != k:  # masks from the file's values, so that swaps (1 <-> 2) stay right
                out[seg == value] = k
        if self.ignore_value is not None:
            out[seg == self.ignore_value] = IGNORE_INDEX
        return out

    def to_file(self, labels):
        """Class indices -> the dataset's file values (uint8 when they fit, else uint16).

        Raises:
            ValueError: on values that are not class indices.
        """
        import numpy as np

        labels = np.asarray(labels)
        bad = np.setdiff1d(np.unique(labels), np.arange(self.num_classes))
        if bad.size:
            raise ValueError(f"labels must be class indices 0..{self.num_classes - 1} of {self.name!r}. "
                             f"Received: values {bad.tolist()}")
        table = np.asarray(self.file_values, np.uint8 if max(self.file_values) < 256 else np.uint16)
        return table[labels.astype(np.intp)]

    def region_table(self):
        """bool (256, R): row = stored label value (class or IGNORE_INDEX), column = region membership."""
        import numpy as np

        table = np.zeros((256, len(self.regions)), bool)
        for r, region in enumerate(self.regions):
            table[list(region.classes), r] = True
        return table

    def regions_to_classes(self, region_probs, threshold: float = 0.5):
        """Region probabilities (or masks) ``(..., R)`` -> class indices (uint8), nnU-Net's rule: start from
        background and paint ``regions_class_order[r]`` where region r exceeds ``threshold``, in region order.

        Raises:
            ValueError: the schema has no ``regions_class_order``, or the last axis is not R.

        Example:
            >>> from kequireg.vocabulary import BRATS_2019
            >>> import numpy as np
            >>> BRATS_2019.regions_to_classes(np.array([[0.9, 0.8, 0.7], [0.9, 0.1, 0.0], [0.2, 0.9, 0.0]])).tolist()
            [3, 2, 1]
        """
        import numpy as np

        if self.regions_class_order is None:
            raise ValueError(f"label schema {self.name!r} has no regions_class_order: it cannot turn region "
                             "predictions into labels (train it with --output softmax)")
        probs = np.asarray(region_probs)
        if probs.shape[-1] != len(self.regions):
            raise ValueError(f"expected {len(self.regions)} region channels {self.region_names}. "
                             f"Received: shape {probs.shape}")
        out = np.zeros(probs.shape[:-1], np.uint8)
        for r, c in enumerate(self.regions_class_order):
            out[probs[..., r] > threshold] = c
        return out

    def region_masks(self, labels):
        """bool ``labels.shape + (R,)``: the regions of a class-index map (ignored pixels in none)."""
        import numpy as np

        return self.region_table()[np.asarray(labels).astype(np.intp)]

    # ---- JSON --------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-friendly (stored in the slice store's params and the run's config)."""
        return {
            "name": self.name, "title": self.title, "family": self.family, "classes": list(self.classes),
            "file_values": list(self.file_values),
            "regions": [{"name": r.name, "title": r.title, "classes": list(r.classes)} for r in self.regions],
            "ignore_value": self.ignore_value,
            "regions_class_order": None if self.regions_class_order is None else list(self.regions_class_order),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "LabelSchema":
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: on a malformed record (naming what is wrong).
        """
        try:
            order = data.get("regions_class_order")
            return cls(
                name=str(data["name"]), title=str(data.get("title", "")), family=str(data.get("family", "generic")),
                classes=tuple(str(c) for c in data["classes"]), file_values=tuple(int(v) for v in data["file_values"]),
                regions=tuple(Region(str(r["name"]), str(r.get("title", r["name"])), tuple(int(c) for c in r["classes"]))
                              for r in data["regions"]),
                ignore_value=None if data.get("ignore_value") is None else int(data["ignore_value"]),
                regions_class_order=None if order is None else tuple(int(v) for v in order),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a label schema record ({type(err).__name__}: {err}). Received: {data!r}") from err


def per_class_schema(name: str, classes: tuple[str, ...], file_values: tuple[int, ...], *, ignore_value: int | None = None,
                     title: str = "") -> LabelSchema:
    """A generic schema evaluating one region per foreground class (named as the class).

    Example:
        >>> s = per_class_schema("acdc", ("background", "RV", "MYO", "LV"), (0, 1, 2, 3))
        >>> s.region_names, s.region("LV").classes
        (('RV', 'MYO', 'LV'), (3,))
    """
    regions = tuple(Region(c, c, (k,)) for k, c in enumerate(classes) if k > 0)
    return LabelSchema(name=name, classes=tuple(classes), file_values=tuple(file_values), regions=regions,
                       ignore_value=ignore_value, title=title)


def compatible(a: LabelSchema, b: LabelSchema) -> bool:
    """Whether a network trained on ``a`` reads data of ``b``: the same classes and regions (file values may differ,
    as BraTS 2019's 4 and BraTS 2023's 3 for the enhancing tumour)."""
    return a.num_classes == b.num_classes and a.regions == b.regions


def check_same_schema(trained: LabelSchema, data: LabelSchema, *, run_dir=None, store=None) -> None:
    """Refuse data whose classes are not the run's (:func:`compatible`).

    Raises:
        ValueError: naming the run, the store and both schemas' classes.
    """
    if not compatible(trained, data):
        where = " and ".join(str(x) for x in (run_dir, store) if x is not None) or "the run and the data"
        raise ValueError(f"{where}: the run was trained on label schema {trained.name!r} ({trained.describe_labels()}), "
                         f"the data's is {data.name!r} ({data.describe_labels()}); a network predicts the classes it was "
                         "trained on: use a store of the same dataset, or train a run on this one.")
