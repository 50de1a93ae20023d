"""Case discovery: the one place that tells a BraTS folder tree from an nnU-Net raw dataset.

A root holding a ``dataset.json`` (an nnU-Net raw dataset ``DatasetXXX_Name/``, or its
``imagesTr/`` / ``imagesTs/``) is read by :mod:`kequireg.data.nnunet` (channels and labels
mapped through ``dataset.json``; every case says where it came from in ``CaseFiles.dataset``);
any other folder by :mod:`kequireg.data.brats` (BraTS 2017-2021 or 2023-2025 naming, per folder;
``labels`` chooses the label convention of BraTS folders, ``--labels`` on the command line).
Ingest, preprocessing and prediction all find their cases here.

Example:
    >>> found = discover("MICCAI_BraTS_2019_Data_Training")  # doctest: +SKIP
    >>> found.channels, found.layout, found.cases[0].case_id  # doctest: +SKIP
    (('flair', 't1', 't1ce', 't2'), None, 'BraTS19_2013_0_1')
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from kequireg.data import nnunet
from kequireg.data.brats import check_labels_choice, find_brats_cases
from kequireg.data.case_files import CaseFiles
from kequireg.label_schema import LabelSchema
from kequireg.vocabulary import MODALITIES


@dataclasses.dataclass(frozen=True)
class Discovery:
    """The cases under a root, the channels they are read with, and the layout they came from.

    Args:
        cases: CaseFiles sorted by case id.
        channels: the modalities every case must have, in image order.
        layout: the :class:`kequireg.data.nnunet.NnunetDataset`, or None for BraTS folders.
    """

    cases: list[CaseFiles]
    channels: tuple[str, ...]
    layout: nnunet.NnunetDataset | None

    @property
    def schema(self):
        """The :class:`kequireg.label_schema.LabelSchema` the cases' labels are read with (one per dataset)."""
        return self.cases[0].label_schema


def discover(root: str | os.PathLike, channels: Sequence[str] | None = None, *, labels: str = "auto",
             prefer: LabelSchema | None = None) -> Discovery:
    """Find the cases under ``root`` with the reader its layout needs.

    Args:
        root: a BraTS case folder or any folder above case folders, or an nnU-Net raw dataset
            (or its ``imagesTr`` / ``imagesTs``).
        channels: modalities every case must have. Defaults to the layout's own: flair, t1,
            t1ce, t2 for BraTS folders, the channels of ``dataset.json`` for nnU-Net.
        labels: the label convention of BraTS folders: ``"auto"`` (from each folder's naming:
            BraTS 2019 for ``NAME_flair``, BraTS 2023 for ``NAME-t2f``) or a name of
            :data:`kequireg.vocabulary.BRATS_SCHEMAS`. An nnU-Net dataset's ``dataset.json``
            decides its labels: anything but ``"auto"`` is an error there. Defaults to ``"auto"``.
        prefer: with ``labels="auto"``, a schema BraTS folders take when their naming's releases
            use it (:meth:`kequireg.data.brats.BratsNaming.schema`). Defaults to None.

    Returns:
        Discovery; folders or cases with some modality missing are included (``missing`` set)
        so that they are reported, not skipped.

    Raises:
        FileNotFoundError: ``root`` does not exist or is not a folder.
        ValueError: no case under ``root``, two cases with the same id, BraTS folders mixing
            namings, an unknown ``labels`` or one given for an nnU-Net dataset, or (naming
            ``dataset.json`` or the file) an nnU-Net dataset kequireg cannot read.
    """
    check_labels_choice(labels)
    if nnunet.is_dataset(root):
        if labels != "auto":
            raise ValueError(f"--labels {labels} applies to BraTS case folders; {str(root)!r} is an nnU-Net dataset, whose "
                             f"dataset.json ({nnunet.dataset_json(root)}) decides its labels. Leave --labels at auto.")
        layout = nnunet.read_dataset(root)
        channels = layout.channels if channels is None else tuple(channels)
        return Discovery(nnunet.find_cases(layout, channels, images=root), channels, layout)
    channels = MODALITIES if channels is None else tuple(channels)
    return Discovery(find_brats_cases(root, channels, labels, prefer), channels, None)


def find_cases(root: str | os.PathLike, channels: Sequence[str] | None = None, *, labels: str = "auto",
               prefer: LabelSchema | None = None) -> list[CaseFiles]:
    """The cases under ``root``, sorted by case id (:func:`discover`'s ``cases``; same arguments).

    Example:
        >>> cases = find_cases("MICCAI_BraTS_2019_Data_Training")  # doctest: +SKIP
        >>> cases[0].case_id, cases[0].seg is not None  # doctest: +SKIP
        ('BraTS19_2013_0_1', True)
    """
    return discover(root, channels, labels=labels, prefer=prefer).cases
