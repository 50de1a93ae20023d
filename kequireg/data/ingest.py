"""Find case folders (BraTS or nnU-Net raw layout) and load them with validation.

A case folder is any folder ``NAME/`` that holds files named ``NAME_<modality>.nii.gz`` (or
``.nii``) for modality in flair, t1, t1ce, t2, and optionally ``NAME_seg.nii[.gz]``; BraTS 2019
folders (``BraTS19_<inst>_<id>_1``) are the usual case. Folders are found anywhere under a root
(``HGG/``, ``LGG/``, ``MICCAI_BraTS_2019_Data_Training/``, ...). Cases without ``_seg`` are
unlabeled. A root holding a ``dataset.json`` (an nnU-Net raw dataset ``DatasetXXX_Name/``, or
its ``imagesTr/`` / ``imagesTs/``) is read by :mod:`kequireg.data.nnunet` instead: channels and
labels are mapped through ``dataset.json``, and every case says where it came from
(``CaseFiles.dataset``).

Every problem with a case raises :class:`CaseError` naming the file, what was found and what to
do, so a batch job can report it and go on with the other cases.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from kequireg.vocabulary import BRATS_TO_INTERNAL, MODALITIES

_EXTENSIONS = (".nii.gz", ".nii")


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
    file names, label values and output naming), or None for a BraTS case folder.
    """

    case_id: str
    folder: Path
    modalities: dict[str, Path]
    seg: Path | None
    missing: tuple[str, ...] = ()
    dataset: "object | None" = None

    def expected_file(self, modality: str) -> str:
        """The file name this case's ``modality`` should have (for messages about a missing one)."""
        if self.dataset is not None:
            return self.dataset.image_filename(self.case_id, modality)
        return f"{self.case_id}_{modality}.nii.gz"


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


def find_cases(root: str | os.PathLike, channels: tuple[str, ...] | None = None) -> list[CaseFiles]:
    """Case folders under ``root``, sorted by case id.

    An nnU-Net raw dataset (``root`` or its parent holds ``dataset.json``) is read by
    :func:`kequireg.data.nnunet.find_cases` instead (its errors name ``dataset.json`` or the file).

    Args:
        root: a case folder or any folder above case folders.
        channels: modalities every case must have. Defaults to the layout's own: flair, t1,
            t1ce, t2 for BraTS folders, the channels of ``dataset.json`` for nnU-Net.

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
    from kequireg.data import nnunet

    root = Path(root)
    if root.is_dir() and nnunet.dataset_json(root) is not None:
        return nnunet.find_cases(nnunet.read_dataset(root), channels, images=root)
    channels = MODALITIES if channels is None else tuple(channels)
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
    no modality all zero, segmentation integer-valued in {0, 1, 2, 4} (mapped to {0, 1, 2, 3});
    for an nnU-Net case, in the label values of its ``dataset.json`` (mapped to the same classes).

    Args:
        case: from :func:`find_cases`.
        channels: modality order of the returned images.

    Returns:
        LoadedCase; affine, spacing and header come from the first modality.

    Raises:
        CaseError: naming the file and the problem.
    """
    if case.missing:
        expected = ", ".join(case.expected_file(m) for m in case.missing)
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
        labels = _internal_labels(case, seg)
    spacing = tuple(float(v) for v in first_image.header.get_zooms()[:3])
    return LoadedCase(
        case_id=case.case_id,
        images=images,
        labels=labels,
        affine=np.asarray(first_image.affine, np.float64),
        spacing=spacing,
        header=bytes(first_image.header.binaryblock),
        source=str(case.folder),
    )


def _internal_labels(case: CaseFiles, seg: np.ndarray) -> np.ndarray:
    """A segmentation's file values -> internal classes {0, 1, 2, 3} (uint8, the file's memory order)."""
    if case.dataset is None:
        mapping, where = BRATS_TO_INTERNAL, "{0, 1, 2, 4}"
        hint = "BraTS segmentations use 1 necrosis, 2 edema, 4 enhancing"
    else:
        mapping = dict(case.dataset.label_map)
        where = "{" + ", ".join(str(v) for v in sorted(mapping)) + "}"
        hint = f"the labels of {case.dataset.json_path} ({case.dataset.describe_labels()})"
    outside = ~np.isin(seg, tuple(mapping))  # one comparison per value; np.unique sorted all 9M
    if outside.any():
        bad = np.unique(seg[outside]).tolist()
        shown = ", ".join(f"{v:g}" for v in bad[:10])
        raise CaseError(case.seg, f"labels outside {where}: found {shown}; {hint}")
    labels = seg.astype(np.uint8)  # keeps the Fortran order of the file
    for value, internal in mapping.items():
        if value != internal:  # masks from the file's values, so that swaps (1 <-> 2) stay right
            labels[seg == value] = internal
    return labels
