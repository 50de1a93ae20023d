"""nnU-Net raw datasets (``DatasetXXX_Name/``) read as kequireg cases.

The layout (nnU-Net v2's raw data format)::

    Dataset043_BraTS19/
        dataset.json                      channel_names, labels, file_ending, numTraining
        imagesTr/CASE_0000.nii.gz ...     one file per channel, 4-digit channel index
        labelsTr/CASE.nii.gz              segmentation of a training case
        imagesTs/CASE_0000.nii.gz ...     optional test cases (no labels)

What is mapped, and how:

- **Channels by name** (case-insensitive; spaces, dashes and underscores ignored): FLAIR / T2-FLAIR /
  t2f -> flair, T1 / T1w / t1n -> t1, T1ce / T1c / T1Gd / T1post -> t1ce, T2 / T2w -> t2. A dataset
  whose channels are the four BraTS sequences (in any file order) gives the store's channel order
  :data:`kequireg.vocabulary.MODALITIES`; any other dataset keeps its own file order, its names
  (recognized ones spelled as above) becoming the store's ``channels``.
- **Labels** through ``dataset.json`` into the dataset's
  :class:`kequireg.label_schema.LabelSchema` (:mod:`kequireg.data.nnunet_labels`): plain labels
  (``{"background": 0, "RV": 1, "MYO": 2, "LV": 3}``) give one class and one evaluated region per
  label, named as there; region-based labels (lists of values with ``regions_class_order``) give
  the declared regions; ``"ignore": N`` marks not-annotated voxels. Labels that name the four BraTS
  classes keep the BraTS mapping (family ``"brats"``, regions WT / TC / ET), by name: background ->
  0, edema -> 2, necrosis / necrotic / non-enhancing tumour -> 1, enhancing tumour -> 3, or
  nnU-Net's Dataset043_BraTS19 regions (``"whole tumor": [1, 2, 3]``, ``"tumor core": [2, 3]``,
  ``"enhancing tumor": [3]``) resolved by set differences: WT - TC is edema, TC - ET the necrotic
  core, ET enhancing. nnU-Net's BraTS conversion (edema 1, necrosis 2, enhancing 3) therefore maps
  1 -> 2, 2 -> 1, 3 -> 3.
- **Unlabeled pool**: every case of ``imagesTs/`` and every ``imagesTr/`` case without a file in
  ``labelsTr/``.
- **Output naming** for ``kequireg predict``: ``CASE`` + ``file_ending``, labels in the dataset's
  own values (:meth:`NnunetDataset.internal_to_file`).

MSD-style files (nnU-Net v1, the Medical Segmentation Decathlon) are read too: ``modality``
instead of ``channel_names`` and ``labels`` as ``{"0": "background", ...}``.

Errors name the file (``dataset.json``, an image or a label file) and say what to fix.

Example:
    >>> dataset = read_dataset("nnUNet_raw/Dataset043_BraTS19")      # doctest: +SKIP
    >>> dataset.channels, dataset.label_map                          # doctest: +SKIP
    (('flair', 't1', 't1ce', 't2'), ((0, 0), (1, 2), (2, 1), (3, 3)))
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

from kequireg.data.case_files import CaseFiles
from kequireg.data.nnunet_labels import read_labels
from kequireg.label_schema import LabelSchema
from kequireg.vocabulary import MODALITIES

DATASET_JSON = "dataset.json"
IMAGE_FOLDERS: tuple[str, ...] = ("imagesTr", "imagesTs")
LABEL_FOLDER = "labelsTr"
FILE_ENDINGS: tuple[str, ...] = (".nii.gz", ".nii")  # what kequireg reads (nibabel)

# Normalized channel name (lower case, letters and digits only) -> BraTS modality.
CHANNEL_ALIASES: dict[str, str] = {
    **dict.fromkeys(("flair", "t2flair", "t2f", "flairt2"), "flair"),
    **dict.fromkeys(("t1", "t1w", "t1n", "t1native", "t1pre"), "t1"),
    **dict.fromkeys(("t1ce", "t1c", "t1gd", "t1wce", "t1post", "t1contrast", "t1cegd", "t1wgd"), "t1ce"),
    **dict.fromkeys(("t2", "t2w"), "t2"),
}
_IMAGE_NAME = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def _normalize(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def canonical_channel(name: str) -> str:
    """A channel's store name: the BraTS modality it names (``"T1Gd"`` -> ``"t1ce"``), else ``name`` stripped."""
    return CHANNEL_ALIASES.get(_normalize(name), str(name).strip())


@dataclasses.dataclass(frozen=True)
class NnunetDataset:
    """An nnU-Net raw dataset as kequireg reads it (parsed once by :func:`read_dataset`).

    Args:
        root: the ``DatasetXXX_Name`` folder.
        json_path: its ``dataset.json``.
        channel_names: the dataset's channel names, index = file suffix (``_0000`` first).
        channels: store channel names, in store order (see the module docstring).
        file_index: per store channel, its file's channel index.
        label_schema: the LabelSchema of its ``labels`` (:func:`kequireg.data.nnunet_labels.read_labels`).
        file_ending: the image/label file ending, ``".nii.gz"`` or ``".nii"``.
        labels: the ``labels`` entry of ``dataset.json`` as read (for the store's record).
    """

    root: Path
    json_path: Path
    channel_names: tuple[str, ...]
    channels: tuple[str, ...]
    file_index: tuple[int, ...]
    label_schema: LabelSchema
    file_ending: str
    labels: tuple[tuple[str, object], ...] = ()

    @property
    def schema(self) -> LabelSchema:
        """The dataset's :class:`kequireg.label_schema.LabelSchema` (what every later stage reads)."""
        return self.label_schema

    @property
    def label_map(self) -> tuple[tuple[int, int], ...]:
        """(file value, class index) pairs, sorted by file value (the ignore value is not a class)."""
        return tuple(sorted((value, k) for k, value in enumerate(self.label_schema.file_values)))

    @property
    def internal_to_file(self) -> dict[int, int]:
        """Class index -> the dataset's label value (predictions are written in these)."""
        return dict(enumerate(self.label_schema.file_values))

    def image_filename(self, case_id: str, channel: str) -> str:
        """``CASE_000k`` + file ending of a store channel (or of a dataset channel name)."""
        index = self.channel_index(channel)
        return f"{case_id}_{index:04d}{self.file_ending}"

    def output_filename(self, case_id: str) -> str:
        """The file name of a case's labels in this dataset: ``CASE`` + file ending."""
        return f"{case_id}{self.file_ending}"

    def channel_index(self, channel: str) -> int:
        """File channel index of a store channel, matched by name.

        Raises:
            ValueError: naming ``dataset.json`` when no channel of that name exists.
        """
        wanted = canonical_channel(channel)
        for index, name in enumerate(self.channel_names):
            if canonical_channel(name) == wanted:
                return index
        raise ValueError(
            f"{self.json_path}: no channel {channel!r} in channel_names {dict(enumerate(self.channel_names))}; "
            f"the model needs it (matched by name, case-insensitive: e.g. T1ce = T1c = T1Gd). "
            "Add the channel's files and its name, or use a model trained on these channels."
        )

    def describe_labels(self) -> str:
        """``"0 background, 1 RV, ..."`` in the dataset's values (its schema's :meth:`describe_labels`)."""
        return self.label_schema.describe_labels()

    def describe(self) -> dict:
        """JSON-friendly record of what was mapped (kept in the store's ``params``)."""
        return {
            "format": "nnunet-raw", "dataset_json": str(self.json_path), "file_ending": self.file_ending,
            "channel_names": {str(i): n for i, n in enumerate(self.channel_names)},
            "labels": {k: list(v) if isinstance(v, tuple) else v for k, v in self.labels},
            "label_map": {str(value): internal for value, internal in self.label_map},
        }


def dataset_json(path: str | os.PathLike) -> Path | None:
    """The ``dataset.json`` of an nnU-Net dataset folder, or of its ``imagesTr``/``imagesTs`` folder; None if none."""
    path = Path(path)
    for candidate in (path / DATASET_JSON, path.parent / DATASET_JSON if path.name in IMAGE_FOLDERS else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def is_dataset(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an nnU-Net raw dataset (or one of its image folders)."""
    return Path(path).is_dir() and dataset_json(path) is not None


def _fail(path: Path, reason: str) -> ValueError:
    return ValueError(f"{path}: {reason}")


def _channel_names(path: Path, meta: dict) -> tuple[str, ...]:
    raw = meta.get("channel_names", meta.get("modality"))
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, 'no "channel_names" entry (e.g. {"0": "FLAIR", "1": "T1", "2": "T1ce", "3": "T2"}); '
                          "nnU-Net datasets name their channels there")
    try:
        indexed = {int(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError):
        raise _fail(path, f"channel_names keys must be channel indices \"0\", \"1\", ... Received: {list(raw)}") from None
    if sorted(indexed) != list(range(len(indexed))):
        missing = sorted(set(range(max(indexed) + 1)) - set(indexed))
        raise _fail(path, f"channel_names must number the channels 0..{len(indexed) - 1} without gaps; "
                          f"channel {missing[0] if missing else min(indexed)} is missing. Received: {raw}")
    names = tuple(indexed[i] for i in range(len(indexed)))
    canonical = [canonical_channel(n) for n in names]
    for i, c in enumerate(canonical):
        if canonical.index(c) != i:
            raise _fail(path, f"channels {names[canonical.index(c)]!r} and {names[i]!r} name the same sequence ({c}); "
                              "give every channel its own name")
    return names


def read_dataset(path: str | os.PathLike) -> NnunetDataset:
    """Read and validate an nnU-Net raw dataset's ``dataset.json``.

    Args:
        path: the ``DatasetXXX_Name`` folder (or its ``imagesTr``/``imagesTs``).

    Returns:
        NnunetDataset.

    Raises:
        FileNotFoundError: no ``dataset.json`` there.
        ValueError: naming ``dataset.json``: unreadable JSON, channel names missing or with gaps,
            labels kequireg cannot read (:func:`kequireg.data.nnunet_labels.read_labels`), an
            unsupported file ending.
    """
    json_path = dataset_json(path)
    if json_path is None:
        raise FileNotFoundError(f"{path}: no {DATASET_JSON}; an nnU-Net raw dataset folder holds dataset.json, imagesTr/ "
                                "and labelsTr/.")
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _fail(json_path, f"cannot read it as JSON ({err})") from err
    if not isinstance(meta, dict):
        raise _fail(json_path, f"expected a JSON object. Received: {type(meta).__name__}")
    names = _channel_names(json_path, meta)
    raw_labels, schema = read_labels(json_path, meta, json_path.parent.name)
    ending = meta.get("file_ending", ".nii.gz")
    if ending not in FILE_ENDINGS:
        raise _fail(json_path, f"file_ending {ending!r} is not supported; kequireg reads NIfTI ({', '.join(FILE_ENDINGS)})")
    canonical = tuple(canonical_channel(n) for n in names)
    channels = MODALITIES if sorted(canonical) == sorted(MODALITIES) else canonical
    return NnunetDataset(
        root=json_path.parent, json_path=json_path, channel_names=names, channels=channels,
        file_index=tuple(canonical.index(c) for c in channels), label_schema=schema, file_ending=ending,
        labels=tuple((str(k), tuple(v) if isinstance(v, list) else v) for k, v in raw_labels.items()),
    )


def _scan(folder: Path, dataset: NnunetDataset, pattern: re.Pattern | None) -> dict[str, Path]:
    """Files of an nnU-Net folder by stem; a file with another ending or name is an error naming it."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if not path.name.endswith(dataset.file_ending) or (dataset.file_ending == ".nii" and path.name.endswith(".nii.gz")):
            raise _fail(path, f"file ending differs from file_ending {dataset.file_ending!r} of {dataset.json_path}; "
                              "rename the files or fix file_ending")
        stem = path.name[: -len(dataset.file_ending)]
        if pattern is not None and not pattern.match(stem):
            raise _fail(path, f"image files are named CASE_XXXX{dataset.file_ending} (XXXX = 4-digit channel index, "
                              f"see {dataset.json_path})")
        found[stem] = path
    return found


def find_cases(dataset: NnunetDataset, channels: tuple[str, ...] | None = None,
               images: str | os.PathLike | None = None) -> list[CaseFiles]:
    """The cases of an nnU-Net dataset as :class:`kequireg.data.case_files.CaseFiles`, sorted by case id.

    Args:
        dataset: from :func:`read_dataset`.
        channels: store channels every case must have (matched by name). Defaults to
            ``dataset.channels``.
        images: read only this image folder (``imagesTr`` or ``imagesTs``). Defaults to both.

    Returns:
        CaseFiles with ``modalities`` keyed by store channel, ``seg`` the ``labelsTr`` file
        (None for ``imagesTs`` cases and unlabeled ``imagesTr`` cases), ``missing`` the channels
        without a file, ``dataset`` set.

    Raises:
        ValueError: naming the file: a file with another ending than ``file_ending``, an image
            name without a 4-digit channel index, a channel index that ``dataset.json`` does not
            name, a label file without images, a case id in both folders; or naming
            ``dataset.json``: a channel the model needs that the dataset lacks, no cases at all.
    """
    channels = dataset.channels if channels is None else tuple(channels)
    wanted = {c: dataset.channel_index(c) for c in channels}
    only = None if images is None or Path(images).resolve() == dataset.root.resolve() else Path(images).name
    folders = [dataset.root / name for name in IMAGE_FOLDERS if only in (None, name) and (dataset.root / name).is_dir()]
    cases: dict[str, CaseFiles] = {}
    for folder in folders:
        by_case: dict[str, dict[int, Path]] = {}
        for stem, path in _scan(folder, dataset, _IMAGE_NAME).items():
            match = _IMAGE_NAME.match(stem)
            index = int(match["channel"])
            if index >= len(dataset.channel_names):
                raise _fail(path, f"channel index {index} is not in channel_names of {dataset.json_path} "
                                  f"({dict(enumerate(dataset.channel_names))})")
            by_case.setdefault(match["case"], {})[index] = path
        labels = {}
        if folder.name == "imagesTr" and (dataset.root / LABEL_FOLDER).is_dir():
            labels = _scan(dataset.root / LABEL_FOLDER, dataset, None)
            orphans = sorted(set(labels) - set(by_case))
            if orphans:
                raise _fail(labels[orphans[0]], f"label file without images in {folder} ({orphans[0]}_0000"
                                                f"{dataset.file_ending} ...); add the images or remove the label file")
        for case_id, files in sorted(by_case.items()):
            if case_id in cases:
                raise _fail(folder, f"case id {case_id!r} is in both {IMAGE_FOLDERS[0]}/ and {IMAGE_FOLDERS[1]}/; "
                                    "case ids must be unique")
            cases[case_id] = CaseFiles(
                case_id=case_id, folder=folder,
                modalities={c: files[i] for c, i in wanted.items() if i in files},
                seg=labels.get(case_id), missing=tuple(c for c, i in wanted.items() if i not in files), dataset=dataset,
            )
    if not cases:
        raise _fail(dataset.json_path, f"no images in {' or '.join(str(dataset.root / f) for f in IMAGE_FOLDERS)}: "
                                       f"expected CASE_0000{dataset.file_ending} ...")
    return [cases[k] for k in sorted(cases)]
