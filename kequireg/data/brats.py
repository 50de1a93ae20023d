"""BraTS-layout case folders: find them anywhere under a root.

A case folder is any folder ``NAME/`` that holds files named ``NAME_<modality>.nii.gz`` (or
``.nii``) for modality in flair, t1, t1ce, t2, and optionally ``NAME_seg.nii[.gz]``; BraTS 2019
folders (``BraTS19_<inst>_<id>_1``) are the usual case. Folders are found anywhere under a root
(``HGG/``, ``LGG/``, ``MICCAI_BraTS_2019_Data_Training/``, ...). Cases without ``_seg`` are
unlabeled. :func:`kequireg.data.discovery.find_cases` chooses between this reader and the
nnU-Net one.
"""

from __future__ import annotations

import os
from pathlib import Path

from kequireg.data.case_files import CaseFiles

_EXTENSIONS = (".nii.gz", ".nii")


def _find_file(folder: Path, stem: str) -> Path | None:
    for ext in _EXTENSIONS:
        path = folder / f"{stem}{ext}"
        if path.is_file():
            return path
    return None


def find_brats_cases(root: str | os.PathLike, channels: tuple[str, ...]) -> list[CaseFiles]:
    """BraTS case folders under ``root``, sorted by case id.

    Args:
        root: a case folder or any folder above case folders.
        channels: modalities every case must have.

    Returns:
        One CaseFiles per folder holding at least one ``NAME_<modality>.nii[.gz]``; folders with
        some modality missing are included (``missing`` set) so that they are reported, not skipped.

    Raises:
        FileNotFoundError: ``root`` does not exist or is not a folder.
        ValueError: no case folder under ``root``, or two folders with the same case id.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"input folder does not exist. Received: {str(root)!r}. Pass the folder holding the BraTS case folders.")
    if not root.is_dir():
        raise FileNotFoundError(f"input must be a folder. Received: {str(root)!r} (a file). Pass the folder holding the BraTS case folders.")
    found: dict[str, CaseFiles] = {}
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        folder = Path(dirpath)
        name = folder.name
        files = {m: _find_file(folder, f"{name}_{m}") for m in channels}
        if not any(files.values()):
            continue
        if name in found:
            raise ValueError(
                f"case id {name!r} appears twice: {found[name].folder} and {folder}. "
                "Case ids must be unique; remove or rename one of them."
            )
        missing = tuple(m for m, p in files.items() if p is None)
        found[name] = CaseFiles(
            case_id=name,
            folder=folder,
            modalities={m: p for m, p in files.items() if p is not None},
            seg=_find_file(folder, f"{name}_seg"),
            missing=missing,
        )
    if not found:
        raise ValueError(
            f"no case folder found under {str(root)!r}: expected folders NAME/ holding "
            f"NAME_{{{','.join(channels)}}}.nii.gz (BraTS layout, e.g. BraTS19_2013_0_1/BraTS19_2013_0_1_flair.nii.gz)."
        )
    return [found[k] for k in sorted(found)]
