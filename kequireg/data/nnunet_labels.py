"""The ``labels`` of an nnU-Net v2 ``dataset.json`` read into a :class:`kequireg.label_schema.LabelSchema`.

Three kinds of ``labels`` (nnU-Net's ``dataset_format.md``, ``region_based_training.md`` and
``ignore_label.md``), each read into the schema every later stage follows:

- **Plain labels** ``{"background": 0, "RV": 1, "MYO": 2, "LV": 3}``: one class per label, in value
  order, named as in ``dataset.json``; one evaluated region per foreground class (family
  ``"generic"``). Values need not be consecutive (0, 1, 2, 4 is read as classes 0..3).
- **Region-based labels**: some values are lists (``"whole tumor": [1, 2, 3]``), and
  ``regions_class_order`` gives, per region in ``labels`` order, the file value nnU-Net paints
  where that region is predicted. The classes are the file values (0 and those of
  ``regions_class_order``; class ``v`` is named after the region that paints it), the evaluated
  regions are the declared ones with their ``dataset.json`` names, and ``regions_class_order`` is
  kept in the schema as class indices (what ``--output regions`` paints).
- **An ignore label** ``"ignore": N``: voxels of value N are not annotated; they become
  :data:`kequireg.label_schema.IGNORE_INDEX` in the store and count in no supervised loss and no
  metric. nnU-Net requires N to be the highest label value (its ``LabelManager`` asserts
  ``ignore == max(labels) + 1``); kequireg asks that it be larger than every class value.

Labels that name the four BraTS classes (background, necrosis / non-enhancing tumour, edema,
enhancing tumour, in any of their usual spellings, or the regions whole tumour / tumour core /
enhancing tumour nested as BraTS's, e.g. nnU-Net's Dataset043_BraTS19) keep the BraTS mapping:
the BraTS classes and WT / TC / ET regions (family ``"brats"``), whatever values the file uses;
their ``regions_class_order`` is not needed (the set differences decide the classes) and not read.

MSD-style ``{"0": "background", "1": "edema"}`` (nnU-Net v1) is read too. Every error names the
``dataset.json`` and says what to fix.

Example:
    >>> from pathlib import Path
    >>> _, schema = read_labels(Path("dataset.json"), {"labels": {"background": 0, "RV": 1, "MYO": 2, "LV": 3}},
    ...                         "Dataset027_ACDC")
    >>> schema.name, schema.family, schema.region_names
    ('nnunet:Dataset027_ACDC', 'generic', ('RV', 'MYO', 'LV'))
"""

from __future__ import annotations

import re
from pathlib import Path

from kequireg.label_schema import IGNORE_INDEX, LabelSchema, Region, per_class_schema
from kequireg.vocabulary import BRATS_2019, REGIONS

IGNORE_KEY = "ignore"
MAX_VALUE = IGNORE_INDEX - 1  # 255 is the stored ignore value, so no class may use it


def _fail(path: Path, reason: str) -> ValueError:
    return ValueError(f"{path}: {reason}")


def _normalize(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _label_class(name: str) -> int | None:
    """BraTS class of a plain label by its name, or None when it is not one of BraTS's."""
    n = _normalize(name)
    if n in ("background", "bg", "healthy", "normal"):
        return 0
    # edema first: BraTS 2023's name for it, "surrounding non-enhancing FLAIR hyperintensity", says non-enhancing too
    if "edema" in n or "oedema" in n or "hyperintens" in n or n in ("ed", "snfh"):
        return 2
    if "necro" in n or "nonenhancing" in n or n in ("ncr", "net", "ncrnet", "netc"):
        return 1
    if "enhancing" in n or n == "et":
        return 3
    return None


def _brats_region(name: str) -> str | None:
    n = _normalize(name)
    if "whole" in n or n == "wt":
        return "WT"
    if "core" in n or n == "tc":
        return "TC"
    if "enhancing" in n or n == "et":
        return "ET"
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entries(path: Path, meta: dict) -> tuple[dict, int | None]:
    """``labels`` as {name: int | tuple of ints} without the ignore entry, and the ignore value."""
    raw = meta.get("labels")
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, 'no "labels" entry (e.g. {"background": 0, "RV": 1, "MYO": 2, "LV": 3})')
    if all(re.fullmatch(r"\d+", str(k)) for k in raw) and all(isinstance(v, str) for v in raw.values()):
        raw = {v: int(k) for k, v in raw.items()}  # MSD / nnU-Net v1: {"0": "background", ...}
    entries, ignore = {}, None
    for name, value in raw.items():
        if isinstance(value, (list, tuple)) and value and all(_is_int(v) for v in value):
            value = tuple(value)
        elif not _is_int(value):
            raise _fail(path, f"label {name!r} must be an integer value or a list of them (a region). Received: {value!r}")
        if str(name).strip().lower() == IGNORE_KEY:
            if not _is_int(value):
                raise _fail(path, f'"ignore" must be one integer value (nnU-Net: the highest label value). Received: {value!r}')
            ignore = value
            continue
        values = value if isinstance(value, tuple) else (value,)
        if any(not 0 <= v <= MAX_VALUE for v in values):
            raise _fail(path, f"label {name!r} = {value!r}: label values must lie in 0..{MAX_VALUE} "
                              f"({IGNORE_INDEX} is kept for not-annotated voxels)")
        entries[str(name)] = value
    if not any(v == 0 for v in entries.values()):
        raise _fail(path, f'no background label 0 (nnU-Net datasets declare "background": 0). Received: {raw}')
    return entries, ignore


def _plain_values(path: Path, entries: dict) -> dict[str, int]:
    """The plain labels {name: value}; an error naming both labels when two share a value."""
    plain: dict[str, int] = {}
    for name, value in entries.items():
        value = value[0] if isinstance(value, tuple) and len(value) == 1 else value
        if isinstance(value, tuple):
            continue
        clash = next((other for other, v in plain.items() if v == value), None)
        if clash is not None:
            raise _fail(path, f"labels {clash!r} and {name!r} have the same value {value}; give every label its own value")
        plain[name] = value
    return plain


def _brats_classes(path: Path, plain: dict[str, int], regions: dict[str, tuple]) -> dict[int, int] | None:
    """{BraTS class: file value} when the labels name the four BraTS classes (or WT / TC / ET nested as
    BraTS's), else None. Regions given beside the four plain classes must agree with them."""
    by_class: dict[int, int] = {}
    for name, value in plain.items():
        internal = _label_class(name)
        if internal is None or internal in by_class:
            return None
        by_class[internal] = value
    if len(by_class) != 4 and regions:  # region style: "enhancing tumor": 3 is the one-value region ET
        regions = {**regions, **{n: (v,) for n, v in plain.items() if v != 0}}
        by_class = {0: plain[n] for n, v in plain.items() if v == 0}
    named = {_brats_region(name): frozenset(values) for name, values in regions.items()}
    if None in named or len(named) != len(regions):
        return None
    if len(by_class) == 4:
        expected = {"WT": frozenset(by_class[c] for c in (1, 2, 3)), "TC": frozenset(by_class[c] for c in (1, 3)),
                    "ET": frozenset({by_class[3]})}
        wrong = [r for r, members in named.items() if members != expected[r]]
        if wrong:
            raise _fail(path, f"region {wrong[0]} = {sorted(named[wrong[0]])} disagrees with the labels "
                              f"(expected {sorted(expected[wrong[0]])})")
        return by_class
    if set(named) != set(REGIONS) or set(by_class) != {0}:
        return None
    wt, tc, et = named["WT"], named["TC"], named["ET"]
    if not (et < tc < wt) or len(et) != 1 or len(tc - et) != 1 or len(wt - tc) != 1:
        return None  # not nested as BraTS's: read as a region-based dataset of its own
    return {0: by_class[0], 3: next(iter(et)), 1: next(iter(tc - et)), 2: next(iter(wt - tc))}


def _region_schema(path: Path, entries: dict, order, name: str, ignore: int | None) -> LabelSchema:
    """A region-based ``labels`` (nnU-Net's region-based training) with its ``regions_class_order``."""
    background = next(n for n, v in entries.items() if v == 0)
    regions = {n: (v if isinstance(v, tuple) else (v,)) for n, v in entries.items() if v != 0}
    if order is None:
        raise _fail(path, "region-based labels (lists of values) need \"regions_class_order\": per region, in labels "
                          f"order, the label value painted where it is predicted (e.g. {list(range(1, len(regions) + 1))})")
    if not isinstance(order, (list, tuple)) or not all(_is_int(v) for v in order):
        raise _fail(path, f"regions_class_order must be a list of label values. Received: {order!r}")
    union = sorted({v for values in regions.values() for v in values})
    if 0 in union:
        raise _fail(path, f"a region cannot hold background 0. Received: {dict(regions)}")
    if len(order) != len(regions) or len(set(order)) != len(order) or sorted(order) != union:
        raise _fail(path, f"regions_class_order {list(order)} is inconsistent with the regions {dict(regions)}: it needs one "
                          f"value per region ({len(regions)}), each once, together the regions' values {union}")
    values = (0, *union)
    painter = {v: r for r, v in zip(regions, order)}
    classes = (background, *(painter[v] for v in union))
    declared = tuple(Region(r, r, tuple(values.index(v) for v in sorted(set(members)))) for r, members in regions.items())
    return LabelSchema(name=name, title=name.split(":", 1)[-1], classes=classes, file_values=values, regions=declared,
                       ignore_value=ignore, regions_class_order=tuple(values.index(int(v)) for v in order))  # class indices


def read_labels(path: Path, meta: dict, dataset_name: str) -> tuple[dict, LabelSchema]:
    """Read ``labels`` (and ``regions_class_order``) of a parsed ``dataset.json`` (see the module docstring).

    Args:
        path: the ``dataset.json`` (for messages).
        meta: its parsed content.
        dataset_name: the dataset folder's name (``Dataset027_ACDC``); the schema is ``nnunet:<name>``.

    Returns:
        (the ``labels`` as read, MSD style converted; the LabelSchema).

    Raises:
        ValueError: naming ``dataset.json``: no labels, no background 0, two labels with one value,
            values outside 0..254, ``regions_class_order`` missing or inconsistent with the regions,
            an ignore value that is a class's or not the largest value.
    """
    entries, ignore = _entries(path, meta)
    name = f"nnunet:{dataset_name}"
    plain = _plain_values(path, entries)
    values = {v for value in entries.values() for v in (value if isinstance(value, tuple) else (value,))}
    if ignore is not None and ignore <= max(values):
        what = "is also a label's value" if ignore in values else "is not the largest label value"
        raise _fail(path, f"the ignore label {ignore} {what}; nnU-Net requires the ignore label to be the highest "
                          f"value (here {max(values) + 1})")
    lists = {n: v for n, v in entries.items() if isinstance(v, tuple)}
    brats = _brats_classes(path, {n: v for n, v in entries.items() if n not in lists}, lists)
    try:
        if brats is not None:
            schema = LabelSchema(name=name, title=dataset_name, family="brats", classes=BRATS_2019.classes,
                                 file_values=tuple(brats[k] for k in range(4)), regions=BRATS_2019.regions,
                                 ignore_value=ignore, regions_class_order=BRATS_2019.regions_class_order)
        elif any(len(v) > 1 for v in lists.values()):  # nnU-Net's rule for region-based training
            schema = _region_schema(path, entries, meta.get("regions_class_order"), name, ignore)
        else:
            ordered = sorted(plain.items(), key=lambda item: item[1])
            schema = per_class_schema(name, tuple(n for n, _ in ordered), tuple(v for _, v in ordered),
                                      ignore_value=ignore, title=dataset_name)
    except ValueError as err:  # the schema's own checks (e.g. two names with one column key)
        raise _fail(path, f"labels cannot be read: {err}") from None
    labels = {k: list(v) if isinstance(v, tuple) else v for k, v in entries.items()}
    if ignore is not None:
        labels[IGNORE_KEY] = ignore
    return labels, schema
