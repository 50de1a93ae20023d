"""Write synthetic cases in a dataset's layout: BraTS 2017-2021 folders, BraTS 2023-2025 folders, an nnU-Net raw dataset.

The generators (:func:`kequireg.data.synth.generate_case` for the brain,
:func:`kequireg.data.synth_cardiac.generate_cardiac_case` for the cardiac task) make arrays; a
writer here only writes them, so the same cases (same seed, same arrays) come out in every layout:

============  ==============================================================  ==========================================
layout        files                                                           labels written
============  ==============================================================  ==========================================
``brats2019`` ``BraTS19_SYN_0001_1/BraTS19_SYN_0001_1_{flair,t1,t1ce,t2,seg}``   BraTS 2017-2021: 1 NCR, 2 edema, 4 ET
``brats2023`` ``BraTS-SYN-00001-000/BraTS-SYN-00001-000-{t2f,t1n,t1c,t2w,seg}``  BraTS 2023-2025: 1 NCR, 2 SNFH, 3 ET
``nnunet``    ``Dataset990_Synth/{dataset.json, imagesTr/synth_0001_0000 ..,     nnU-Net's BraTS conversion: 1 edema,
              labelsTr/synth_0001, imagesTs/..}``                                2 NCR, 3 ET; region-based dataset.json
============  ==============================================================  ==========================================

The cardiac task is written only as an nnU-Net dataset (``Dataset991_SynthCardiac``, channel
``cine``, labels background 0, RV 1, MYO 2, LV 3, as nnU-Net's ACDC conversion). Unlabeled cases
go without a seg file (BraTS) or into ``imagesTs/`` (nnU-Net). Every file (BraTS: every case
folder) appears atomically; the nnU-Net ``dataset.json`` is written last, once every case is there.

Example:
    >>> writer = layout_writer("brats2023", "brain")
    >>> writer.case_id(0), writer.naming.image_name(writer.case_id(0), "flair")
    ('BraTS-SYN-00001-000', 'BraTS-SYN-00001-000-t2f.nii.gz')
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from kequireg.data.brats import BRATS2019_NAMING, BRATS2023_NAMING, BratsNaming
from kequireg.io import atomic_dir, atomic_path, atomic_write_text
from kequireg.settings import SYNTH_LAYOUTS

TASKS: tuple[str, ...] = ("brain", "cardiac")
# The brain generator's label values are BraTS 2019's (1 NCR, 2 edema, 4 ET); the cardiac one's 1 RV, 2 MYO, 3 LV.
_IDENTITY = ((0, 0), (1, 1), (2, 2), (3, 3), (4, 4))


def save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Write ``array`` with ``affine`` (qform and sform, mm) to ``path`` (not atomic: callers write into a temporary place)."""
    import nibabel as nib

    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm", "sec")
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=1)
    nib.save(image, str(path))


def relabel(labels: np.ndarray, values: tuple[tuple[int, int], ...]) -> np.ndarray:
    """``labels`` (uint8) with each generator value mapped to its file value.

    Raises:
        ValueError: a value the table does not list (a generator bug).
    """
    if values == _IDENTITY[:len(values)]:
        return labels
    table = np.full(256, 255, np.uint8)
    for source, target in values:
        table[source] = target
    out = table[labels]
    if np.any(out == 255):
        raise ValueError(f"label values {sorted(set(np.unique(labels)) - {s for s, _ in values})} have no file value in {values}")
    return out


@dataclasses.dataclass(frozen=True)
class BratsFolderWriter:
    """One folder per case in a BraTS release's naming.

    Args:
        naming: the release's file naming (:mod:`kequireg.data.brats`).
        id_format: the case id of case ``n`` (1-based), e.g. ``"BraTS19_SYN_{n:04d}_1"``.
        values: (generator value, file value) pairs of the labels.
    """

    naming: BratsNaming
    id_format: str
    values: tuple[tuple[int, int], ...] = _IDENTITY

    def root(self, out: Path) -> Path:
        """The folder to preprocess (the case folders are right in it)."""
        return Path(out)

    def case_id(self, index: int) -> str:
        return self.id_format.format(n=index + 1)

    def case_path(self, out: Path, index: int, labeled: bool = True) -> Path:
        return Path(out) / self.case_id(index)

    def is_written(self, out: Path, index: int, labeled: bool = True) -> bool:
        return self.case_path(out, index).is_dir()  # a case folder appears whole (atomic_dir)

    def write(self, out: Path, index: int, images: dict[str, np.ndarray], labels: np.ndarray | None, affine: np.ndarray) -> Path:
        """Write case ``index`` (labels None: unlabeled, no seg file)."""
        return self.write_named(out, self.case_id(index), images, labels, affine)

    def write_named(self, out: Path, name: str, images: dict[str, np.ndarray], labels: np.ndarray | None,
                    affine: np.ndarray) -> Path:
        """Write one case folder ``out/name`` atomically (:func:`kequireg.io.atomic_dir`)."""
        final = Path(out) / name
        with atomic_dir(final, replace=True) as tmp:
            for channel, array in images.items():
                save_nifti(array, affine, tmp / self.naming.image_name(name, channel))
            if labels is not None:
                save_nifti(relabel(labels, self.values), affine, tmp / self.naming.seg_name(name))
        return final

    def finish(self, out: Path, labeled: int) -> None:
        """Nothing to add: the case folders are the dataset."""


@dataclasses.dataclass(frozen=True)
class NnunetWriter:
    """An nnU-Net v2 raw dataset (``imagesTr/CASE_000k``, ``labelsTr/CASE``, ``imagesTs/``, ``dataset.json``).

    Args:
        dataset: the dataset folder's name, ``DatasetXXX_Name``.
        case_prefix: case ids are ``<prefix>_0001`` ...
        channels: (nnU-Net channel name, generator image key) in file order (``_0000`` first).
        labels: the ``labels`` entries of ``dataset.json``.
        values: (generator value, file value) pairs of the labels.
        regions_class_order: for region-based ``labels``, nnU-Net's ``regions_class_order``; else None.
        description: ``dataset.json``'s description.
    """

    dataset: str
    case_prefix: str
    channels: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, object], ...]
    values: tuple[tuple[int, int], ...]
    regions_class_order: tuple[int, ...] | None = None
    description: str = ""

    def root(self, out: Path) -> Path:
        return Path(out) / self.dataset

    def case_id(self, index: int) -> str:
        return f"{self.case_prefix}_{index + 1:04d}"

    def _files(self, out: Path, index: int, labeled: bool) -> list[Path]:
        case, root = self.case_id(index), self.root(out)
        images = root / ("imagesTr" if labeled else "imagesTs")
        files = [images / f"{case}_{k:04d}.nii.gz" for k in range(len(self.channels))]
        return files + ([root / "labelsTr" / f"{case}.nii.gz"] if labeled else [])

    def case_path(self, out: Path, index: int, labeled: bool = True) -> Path:
        """The case's first image file."""
        return self._files(out, index, labeled)[0]

    def is_written(self, out: Path, index: int, labeled: bool = True) -> bool:
        return all(path.is_file() for path in self._files(out, index, labeled))  # each file appears whole

    def write(self, out: Path, index: int, images: dict[str, np.ndarray], labels: np.ndarray | None, affine: np.ndarray) -> Path:
        """Write case ``index``: its images (``imagesTr``, or ``imagesTs`` when ``labels`` is None), then its labels."""
        files = self._files(out, index, labels is not None)
        arrays = [images[key] for _, key in self.channels] + ([] if labels is None else [relabel(labels, self.values)])
        for path, array in zip(files, arrays):
            with atomic_path(path, suffix=".nii.gz") as tmp:
                save_nifti(array, affine, tmp)
        return files[0]

    def dataset_json(self, labeled: int) -> dict:
        """``dataset.json`` as nnU-Net v2's ``generate_dataset_json`` writes it."""
        meta = {"channel_names": {str(k): name for k, (name, _) in enumerate(self.channels)},
                "labels": {name: list(v) if isinstance(v, tuple) else v for name, v in self.labels},
                "numTraining": int(labeled), "file_ending": ".nii.gz"}
        if self.regions_class_order is not None:
            meta["regions_class_order"] = list(self.regions_class_order)
        meta.update(name=self.dataset, description=self.description, reference="kequireg synth (synthetic data)")
        return meta

    def finish(self, out: Path, labeled: int) -> None:
        """Write ``dataset.json`` (atomically) once every case is there."""
        atomic_write_text(self.root(out) / "dataset.json", json.dumps(self.dataset_json(labeled), indent=2))


# nnU-Net's BraTS conversion (Dataset137_BraTS2021): channels T1, T1ce, T2, Flair; labels 2 (edema) -> 1,
# 1 (necrosis) -> 2, 4 (ET) -> 3; region-based labels whole tumour (1, 2, 3), tumour core (2, 3), ET (3).
_BRAIN_NNUNET = NnunetWriter(
    dataset="Dataset990_Synth", case_prefix="synth",
    channels=(("T1", "t1"), ("T1ce", "t1ce"), ("T2", "t2"), ("Flair", "flair")),
    labels=(("background", 0), ("whole tumor", (1, 2, 3)), ("tumor core", (2, 3)), ("enhancing tumor", (3,))),
    values=((0, 0), (2, 1), (1, 2), (4, 3)), regions_class_order=(1, 2, 3),
    description="kequireg synth: synthetic BraTS-like brains with tumours, in nnU-Net's BraTS convention")
# As nnU-Net's ACDC conversion (Dataset027_ACDC): one cine channel; RV 1, MYO 2, LV 3.
_CARDIAC_NNUNET = NnunetWriter(
    dataset="Dataset991_SynthCardiac", case_prefix="cardiac", channels=(("cine", "cine"),),
    labels=(("background", 0), ("RV", 1), ("MYO", 2), ("LV", 3)), values=_IDENTITY[:4],
    description="kequireg synth --preset cardiac: synthetic short-axis cine MRI (ACDC-like)")
_WRITERS = {
    ("brain", "brats2019"): BratsFolderWriter(BRATS2019_NAMING, "BraTS19_SYN_{n:04d}_1"),
    ("brain", "brats2023"): BratsFolderWriter(BRATS2023_NAMING, "BraTS-SYN-{n:05d}-000", values=((0, 0), (1, 1), (2, 2), (4, 3))),
    ("brain", "nnunet"): _BRAIN_NNUNET,
    ("cardiac", "nnunet"): _CARDIAC_NNUNET,
}


def layout_writer(layout: str, task: str = "brain") -> BratsFolderWriter | NnunetWriter:
    """The writer of ``task``'s cases (``"brain"`` or ``"cardiac"``) in ``layout``.

    Raises:
        ValueError: an unknown layout or task, or a BraTS layout for the cardiac task.
    """
    if layout not in SYNTH_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(SYNTH_LAYOUTS)}. Received: layout={layout!r}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}. Received: task={task!r}")
    if (task, layout) not in _WRITERS:
        raise ValueError(f"the {task} preset is written only as an nnU-Net dataset (--layout nnunet; one cine channel, "
                         f"labels RV, MYO, LV, as nnU-Net's ACDC); BraTS layouts hold the four MRI sequences of a brain. "
                         f"Received: layout={layout!r}")
    return _WRITERS[(task, layout)]
