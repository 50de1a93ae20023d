"""BraTS-layout case folders, in the naming of the release they come from, found anywhere under a root.

A case folder is any folder ``NAME/`` holding one file per MRI sequence named after the folder.
Two namings exist, detected per folder (:data:`NAMINGS`):

=============  ========================================================  ===============================
naming         files (``.nii.gz`` or ``.nii``)                            labels (:class:`LabelSchema`)
=============  ========================================================  ===============================
``brats2019``  ``NAME_{flair,t1,t1ce,t2}``, ``NAME_seg`` (BraTS           BRATS_2019: 0, 1, 2, 4 (4 = ET)
               2017-2021: ``BraTS19_2013_2_1``, ``BraTS2021_00000``)
``brats2023``  ``NAME-{t2f,t1n,t1c,t2w}``, ``NAME-seg`` (BraTS            BRATS_2023: 0, 1, 2, 3 (3 = ET), or
               2023-2025 GLI/MEN/MET/PED/SSA: ``BraTS-GLI-00000-000``)    BRATS_2024_POST (4 = cavity)
=============  ========================================================  ===============================

The 2023 sequences are the store's channels under other names (t2f = flair, t1n = t1, t1c = t1ce,
t2w = t2), so both namings of the same scans give the same store. Folders are found anywhere
under a root (``HGG/``, ``LGG/``, ``MICCAI_BraTS_2019_Data_Training/``, ...); cases without a
seg file are unlabeled. A root mixing the two namings is refused (their labels differ).
:func:`kequireg.data.discovery.discover` chooses between this reader and the nnU-Net one.

Example:
    >>> BRATS2023_NAMING.image_name("BraTS-GLI-00000-000", "t1ce")
    'BraTS-GLI-00000-000-t1c.nii.gz'
    >>> BRATS2023_NAMING.schema().name, BRATS2023_NAMING.schema("brats2024-post").num_classes
    ('brats2023', 5)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

from kequireg.data.case_files import CaseFiles
from kequireg.label_schema import LabelSchema
from kequireg.settings import LABEL_CONVENTIONS
from kequireg.vocabulary import BRATS_2019, BRATS_2023, BRATS_2024_POST, BRATS_SCHEMAS, MODALITIES

_EXTENSIONS = (".nii.gz", ".nii")


@dataclasses.dataclass(frozen=True)
class BratsNaming:
    """How one generation of BraTS releases names a case's files, and the label schemas it is used with.

    Args:
        name: ``"brats2019"`` (BraTS 2017-2021) or ``"brats2023"`` (2023-2025).
        title: for messages.
        separator: between the case id and the sequence: ``"_"`` or ``"-"``.
        sequences: (store channel, file suffix) pairs; a channel not listed keeps its own name.
        schemas: the label schemas of this naming's releases, the default (``--labels auto``) first.
    """

    name: str
    title: str
    separator: str
    sequences: tuple[tuple[str, str], ...]
    schemas: tuple[LabelSchema, ...]

    def suffix(self, channel: str) -> str:
        """The file suffix of a store channel (``"t1ce"`` -> ``"t1c"`` in the 2023 naming)."""
        return dict(self.sequences).get(channel, channel)

    def image_name(self, case_id: str, channel: str, ext: str = ".nii.gz") -> str:
        """The file name of a case's ``channel`` (``BraTS-GLI-00000-000-t1c.nii.gz``)."""
        return f"{case_id}{self.separator}{self.suffix(channel)}{ext}"

    def seg_name(self, case_id: str, ext: str = ".nii.gz") -> str:
        """The file name of a case's labels (``NAME_seg.nii.gz`` / ``NAME-seg.nii.gz``)."""
        return f"{case_id}{self.separator}seg{ext}"

    def schema(self, labels: str = "auto", prefer: LabelSchema | None = None) -> LabelSchema:
        """The label schema of a folder in this naming.

        Args:
            labels: ``"auto"`` or a BraTS schema name (``--labels``): that schema, whatever the naming.
            prefer: with ``"auto"``, a schema to take when it is one of this naming's releases (a
                run trained on BraTS 2024 post-treatment data predicting 2023-named folders writes
                its labels); else the naming's default.

        Raises:
            ValueError: an unknown ``labels``.
        """
        check_labels_choice(labels)
        if labels != "auto":
            return BRATS_SCHEMAS[labels]
        mine = {s.name: s for s in self.schemas}
        return mine.get(getattr(prefer, "name", None), self.schemas[0])


BRATS2019_NAMING = BratsNaming("brats2019", "BraTS 2017-2021 naming (NAME_flair, NAME_t1, NAME_t1ce, NAME_t2, NAME_seg)",
                               "_", tuple((m, m) for m in MODALITIES), (BRATS_2019,))
BRATS2023_NAMING = BratsNaming("brats2023", "BraTS 2023-2025 naming (NAME-t2f, NAME-t1n, NAME-t1c, NAME-t2w, NAME-seg)",
                               "-", (("flair", "t2f"), ("t1", "t1n"), ("t1ce", "t1c"), ("t2", "t2w")),
                               (BRATS_2023, BRATS_2024_POST))
NAMINGS: dict[str, BratsNaming] = {n.name: n for n in (BRATS2019_NAMING, BRATS2023_NAMING)}


def check_labels_choice(labels: str) -> str:
    """``labels`` if it is one of :data:`kequireg.settings.LABEL_CONVENTIONS`.

    Raises:
        ValueError: naming the choices.
    """
    if labels not in LABEL_CONVENTIONS:
        raise ValueError(f"labels must be one of {', '.join(LABEL_CONVENTIONS)}. Received: labels={labels!r}")
    return labels


def label_hint(schema: LabelSchema, values: Iterable[int], command: str = "preprocess") -> str:
    """A hint for label values outside a BraTS schema that another release's convention explains, or "".

    Example:
        >>> label_hint(BRATS_2023, [4])
        'BraTS 2024 post-treatment data (4 = resection cavity)? preprocess with --labels brats2024-post'
    """
    values = {int(v) for v in values if float(v).is_integer()}
    if schema.name == BRATS_2023.name and 4 in values:
        return f"BraTS 2024 post-treatment data (4 = resection cavity)? {command} with --labels {BRATS_2024_POST.name}"
    if schema.name == BRATS_2019.name and 3 in values and 4 not in values:
        return f"BraTS 2023-2025 labels (3 = enhancing tumour)? {command} with --labels {BRATS_2023.name}"
    return ""


def _find_file(folder: Path, stem: str) -> Path | None:
    for ext in _EXTENSIONS:
        path = folder / f"{stem}{ext}"
        if path.is_file():
            return path
    return None


def _folder_case(folder: Path, channels: tuple[str, ...], labels: str, prefer: LabelSchema | None) -> CaseFiles | None:
    """The case of one folder in the naming its files use, or None when it holds no sequence file.

    Raises:
        ValueError: the folder holds files of both namings.
    """
    name = folder.name
    found = []
    for naming in NAMINGS.values():
        files = {m: _find_file(folder, naming.image_name(name, m, ext="")) for m in channels}
        if any(files.values()):
            found.append((naming, files))
    if len(found) > 1:
        raise ValueError(f"{folder}: holds files of both the {found[0][0].title} and the {found[1][0].title}; "
                         "keep one naming per case folder.")
    if not found:
        return None
    naming, files = found[0]
    return CaseFiles(case_id=name, folder=folder, modalities={m: p for m, p in files.items() if p is not None},
                     seg=_find_file(folder, naming.seg_name(name, ext="")), missing=tuple(m for m, p in files.items() if p is None),
                     schema=naming.schema(labels, prefer), naming=naming)


def _check_one_naming(root: Path, cases: list[CaseFiles]) -> None:
    """Refuse a root whose case folders use both namings (their label conventions differ)."""
    first: dict[str, CaseFiles] = {}
    for case in cases:
        first.setdefault(case.naming.name, case)
    if len(first) > 1:
        a, b = first[BRATS2019_NAMING.name], first[BRATS2023_NAMING.name]
        raise ValueError(
            f"{str(root)!r} mixes BraTS releases: {a.folder} uses the {a.naming.title}, labels {a.label_schema.describe_labels()}; "
            f"{b.folder} uses the {b.naming.title}, labels {b.label_schema.describe_labels()}. One store holds one label "
            "convention: put each release's case folders under their own folder and preprocess each into its own store.")


def find_brats_cases(root: str | os.PathLike, channels: tuple[str, ...], labels: str = "auto",
                     prefer: LabelSchema | None = None) -> list[CaseFiles]:
    """BraTS case folders under ``root``, sorted by case id, each read in its own naming.

    Args:
        root: a case folder or any folder above case folders.
        channels: store channels every case must have (2023 naming: t2f, t1n, t1c, t2w files).
        labels: ``"auto"`` (the naming's schema) or a BraTS schema name for every case (``--labels``).
        prefer: see :meth:`BratsNaming.schema` (``kequireg predict``: the training store's schema).

    Returns:
        One CaseFiles per folder holding at least one sequence file, with ``schema`` and ``naming``
        set; folders with some sequence missing are included (``missing`` set) so that they are
        reported, not skipped.

    Raises:
        FileNotFoundError: ``root`` does not exist or is not a folder.
        ValueError: no case folder under ``root``, two folders with the same case id, a root (or
            a folder) mixing the two namings, an unknown ``labels``.
    """
    check_labels_choice(labels)
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"input folder does not exist. Received: {str(root)!r}. Pass the folder holding the BraTS case folders.")
    if not root.is_dir():
        raise FileNotFoundError(f"input must be a folder. Received: {str(root)!r} (a file). Pass the folder holding the BraTS case folders.")
    found: dict[str, CaseFiles] = {}
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        case = _folder_case(Path(dirpath), tuple(channels), labels, prefer)
        if case is None:
            continue
        if case.case_id in found:
            raise ValueError(
                f"case id {case.case_id!r} appears twice: {found[case.case_id].folder} and {case.folder}. "
                "Case ids must be unique; remove or rename one of them."
            )
        found[case.case_id] = case
    if not found:
        raise ValueError(
            f"no case folder found under {str(root)!r}: expected folders NAME/ holding "
            f"NAME_{{{','.join(channels)}}}.nii.gz (BraTS 2017-2021, e.g. BraTS19_2013_0_1/BraTS19_2013_0_1_flair.nii.gz) or "
            f"NAME-{{{','.join(BRATS2023_NAMING.suffix(c) for c in channels)}}}.nii.gz "
            "(BraTS 2023-2025, e.g. BraTS-GLI-00000-000/BraTS-GLI-00000-000-t1c.nii.gz)."
        )
    cases = [found[k] for k in sorted(found)]
    _check_one_naming(root, cases)
    return cases
