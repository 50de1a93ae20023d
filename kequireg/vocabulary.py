"""The words of the BraTS task, defined once: modalities, label values, classes, regions and the BraTS label schemas.

The schemas (:class:`kequireg.label_schema.LabelSchema`) are what the code consults:
:data:`BRATS_2019` (BraTS 2017-2021 releases: labels 0, 1, 2, 4), :data:`BRATS_2023` (2023-2025
challenges, GLI / MEN / MET / PED / SSA: 0, 1, 2, 3 with 3 = ET) and :data:`BRATS_2024_POST`
(2024 post-treatment glioma: 4 = resection cavity). The constants below are BraTS 2019's, kept for old callers.

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

from kequireg.label_schema import LabelSchema, Region

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

# ---- label schemas ---------------------------------------------------------------------------------
_TUMOUR_REGIONS = (Region("WT", "whole tumour", (1, 2, 3)), Region("TC", "tumour core", (1, 3)),
                   Region("ET", "enhancing tumour", (3,)))
# Region-based training paints WT as edema, then TC as necrosis, then ET (nnU-Net's BraTS regions_class_order).
_TUMOUR_ORDER = (2, 1, 3)
BRATS_2019 = LabelSchema(
    name="brats2019", title="BraTS 2017-2021", family="brats", classes=CLASS_NAMES, file_values=BRATS_LABELS,
    regions=_TUMOUR_REGIONS, regions_class_order=_TUMOUR_ORDER)
# BraTS 2023-2025 (GLI, MEN, MET, PED, SSA): NCR 1, SNFH (edema) 2, ET 3.
BRATS_2023 = LabelSchema(
    name="brats2023", title="BraTS 2023-2025", family="brats",
    classes=("background", "necrotic tumour core", "surrounding non-enhancing FLAIR hyperintensity (edema)",
             "enhancing tumour"),
    file_values=(0, 1, 2, 3), regions=_TUMOUR_REGIONS, regions_class_order=_TUMOUR_ORDER)
# BraTS 2024 post-treatment glioma: NETC 1, SNFH 2, ET 3, RC 4. Regions as its challenge scores them
# (lesion-wise): ET, NETC, SNFH, RC, TC = ET + NETC, WT = ET + NETC + SNFH (the cavity in none of TC / WT).
BRATS_2024_POST = LabelSchema(
    name="brats2024-post", title="BraTS 2024 post-treatment glioma", family="brats",
    classes=("background", "non-enhancing tumour core", "surrounding non-enhancing FLAIR hyperintensity (edema)",
             "enhancing tissue", "resection cavity"),
    file_values=(0, 1, 2, 3, 4),
    regions=(*_TUMOUR_REGIONS, Region("NETC", "non-enhancing tumour core", (1,)),
             Region("SNFH", "surrounding non-enhancing FLAIR hyperintensity", (2,)), Region("RC", "resection cavity", (4,))))
BRATS_SCHEMAS: dict[str, LabelSchema] = {s.name: s for s in (BRATS_2019, BRATS_2023, BRATS_2024_POST)}


def schema_of(record) -> LabelSchema:
    """The schema a store's params (or a run config's ``label_schema``) records; BraTS 2019 when none.

    Args:
        record: a dict holding ``"label_schema"``, a schema dict itself, a LabelSchema, or None.
    """
    if isinstance(record, LabelSchema):
        return record
    if isinstance(record, dict) and "classes" not in record:  # a store's params or a run's config
        record = record.get("label_schema")
    if not record:
        return BRATS_2019  # stores, runs and experiments made before schemas: BraTS 2019 implicitly
    return LabelSchema.from_dict(record)
