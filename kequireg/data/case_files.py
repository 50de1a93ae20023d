"""The files of one raw case, as both layout readers (BraTS folders, nnU-Net) give them, and the
error every problem with a case raises.

A leaf module: :mod:`kequireg.data.brats` and :mod:`kequireg.data.nnunet` build
:class:`CaseFiles`, :mod:`kequireg.data.discovery` picks the reader, and
:mod:`kequireg.data.ingest` loads the files.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from kequireg.vocabulary import BRATS_2019


class CaseError(ValueError):
    """A case that cannot be used; ``file`` names the offending file (or folder)."""

    def __init__(self, file: str | os.PathLike, reason: str):
        self.file = str(file)
        self.reason = reason
        super().__init__(f"{self.file}: {reason}")


@dataclasses.dataclass(frozen=True)
class CaseFiles:
    """The files of one case; ``missing`` lists modalities without a file.

    ``dataset`` is the :class:`kequireg.data.nnunet.NnunetDataset` the case belongs to (its
    file names, label values and output naming), or None for a BraTS case folder. ``schema`` is
    the :class:`kequireg.label_schema.LabelSchema` its labels are read with, set by the layout's
    reader (None: the nnU-Net dataset's, else BraTS 2019's); :attr:`label_schema` resolves it.
    ``naming`` is the :class:`kequireg.data.brats.BratsNaming` of a BraTS case folder (its
    release's file names), or None.
    """

    case_id: str
    folder: Path
    modalities: dict[str, Path]
    seg: Path | None
    missing: tuple[str, ...] = ()
    dataset: "object | None" = None
    schema: "object | None" = None
    naming: "object | None" = None

    @property
    def label_schema(self):
        """The LabelSchema of this case's label file."""
        if self.schema is not None:
            return self.schema
        if self.dataset is not None:
            return self.dataset.schema
        return BRATS_2019

    def expected_file(self, modality: str) -> str:
        """The file name this case's ``modality`` should have (for messages about a missing one)."""
        if self.dataset is not None:
            return self.dataset.image_filename(self.case_id, modality)
        if self.naming is not None:
            return self.naming.image_name(self.case_id, modality)
        return f"{self.case_id}_{modality}.nii.gz"
