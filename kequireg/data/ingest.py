"""Find BraTS-layout case folders and load them with validation.

A case folder is any folder ``NAME/`` that holds files named ``NAME_<modality>.nii.gz`` (or
``.nii``) for modality in flair, t1, t1ce, t2, and optionally ``NAME_seg.nii[.gz]``; BraTS 2019
folders (``BraTS19_<inst>_<id>_1``) are the usual case. Folders are found anywhere under a root
(``HGG/``, ``LGG/``, ``MICCAI_BraTS_2019_Data_Training/``, ...). Cases without ``_seg`` are
unlabeled.

Every problem with a case raises :class:`CaseError` naming the file, what was found and what to
do, so a batch job can report it and go on with the other cases.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from kequireg.vocabulary import BRATS_LABELS, MODALITIES

_EXTENSIONS = (".nii.gz", ".nii")


class CaseError(ValueError):
    """A case that cannot be used; ``file`` names the offending file (or folder)."""

    def __init__(self, file: str | os.PathLike, reason: str):
        self.file = str(file)
        self.reason = reason
        super().__init__(f"{self.file}: {reason}")


@dataclasses.dataclass(frozen=True)
class CaseFiles:
    """The files of one case folder; ``missing`` lists modalities without a file."""

    case_id: str
    folder: Path
    modalities: dict[str, Path]
    seg: Path | None
    missing: tuple[str, ...] = ()


@dataclasses.dataclass
class LoadedCase:
    """A validated case: images float32 (X, Y, Z, C) in ``channels`` order, labels internal {0,1,2,3}.

    Both arrays are in Fortran order, like the NIfTI files (x fastest; each channel contiguous).
    """

    case_id: str
    images: np.ndarray
    labels: np.ndarray | None
    affine: np.ndarray
    spacing: tuple[float, float, float]
    header: bytes
    source: str


def _find_file(folder: Path, stem: str) -> Path | None:
    for ext in _EXTENSIONS:
        path = folder / f"{stem}{ext}"
        if path.is_file():
            return path
    return None


def find_cases(root: str | os.PathLike, channels: tuple[str, ...] = MODALITIES) -> list[CaseFiles]:
    """Case folders under ``root``, sorted by case id.

    Args:
        root: a case folder or any folder above case folders.
        channels: modalities every case must have.

    Returns:
        One CaseFiles per folder holding at least one ``NAME_<modality>.nii[.gz]``; folders with
        some modality missing are included (``missing`` set) so that they are reported, not skipped.

    Raises:
        FileNotFoundError: ``root`` does not exist or is not a folder.
        ValueError: no case folder under ``root``, or two folders with the same case id.

    Example:
        >>> cases = find_cases("MICCAI_BraTS_2019_Data_Training")  # doctest: +SKIP
        >>> cases[0].case_id, cases[0].seg is not None  # doctest: +SKIP
        ('BraTS19_2013_0_1', True)
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


def _read(path: Path) -> tuple[np.ndarray, "object"]:
    import nibabel as nib

    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:  # nibabel raises many types for truncated/corrupt files
        raise CaseError(path, f"cannot read NIfTI ({type(exc).__name__}: {exc}); the file is corrupt or truncated, re-copy or re-download it") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise CaseError(path, f"expected a 3D volume. Received: shape={data.shape}")
    return data, image


def _check_finite(path: Path, data: np.ndarray) -> None:
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise CaseError(path, f"{bad} voxels are NaN or Inf; fix or remove this scan")


def load_case(case: CaseFiles, channels: tuple[str, ...] = MODALITIES) -> LoadedCase:
    """Load and validate one case.

    Checks: every modality present and readable, all volumes 3D with one shape, finite values,
    no modality all zero, segmentation integer-valued in {0, 1, 2, 4} (mapped to {0, 1, 2, 3}).

    Args:
        case: from :func:`find_cases`.
        channels: modality order of the returned images.

    Returns:
        LoadedCase; affine, spacing and header come from the first modality.

    Raises:
        CaseError: naming the file and the problem.
    """
    if case.missing:
        expected = ", ".join(f"{case.case_id}_{m}.nii.gz" for m in case.missing)
        raise CaseError(case.folder, f"missing modality file(s): {expected}")
    images = None
    first_path, first_image, shape = None, None, None
    for c, modality in enumerate(channels):
        path = case.modalities[modality]
        data, image = _read(path)
        if shape is None:
            first_path, first_image, shape = path, image, data.shape
            # NIfTI data is x-fastest (Fortran order): a Fortran-order (X, Y, Z, C) buffer takes
            # each modality as one block copy and hands each channel on as a contiguous volume
            # (a C-order np.stack transposed every voxel: ~1 s per BraTS case).
            images = np.empty((*shape, len(channels)), np.float32, order="F")
        elif data.shape != shape:
            raise CaseError(path, f"shape {data.shape} differs from {first_path.name} {shape}; modalities must be co-registered on one grid")
        _check_finite(path, data)
        if not np.any(data):
            raise CaseError(path, "all voxels are 0 (empty scan)")
        images[..., c] = data
    labels = None
    if case.seg is not None:
        seg, _ = _read(case.seg)
        if seg.shape != shape:
            raise CaseError(case.seg, f"shape {seg.shape} differs from {first_path.name} {shape}")
        _check_finite(case.seg, seg)
        outside = ~np.isin(seg, BRATS_LABELS)  # 4 comparisons per voxel; np.unique sorted all 9M
        if outside.any():
            bad = np.unique(seg[outside]).tolist()
            shown = ", ".join(f"{v:g}" for v in bad[:10])
            raise CaseError(case.seg, f"labels outside {{0, 1, 2, 4}}: found {shown}; BraTS segmentations use 1 necrosis, 2 edema, 4 enhancing")
        labels = seg.astype(np.uint8)  # keeps the Fortran order of the file
        labels[labels == 4] = 3
    spacing = tuple(float(s) for s in first_image.header.get_zooms()[:3])
    return LoadedCase(
        case_id=case.case_id,
        images=images,
        labels=labels,
        affine=np.asarray(first_image.affine, np.float64),
        spacing=spacing,
        header=bytes(first_image.header.binaryblock),
        source=str(case.folder),
    )
