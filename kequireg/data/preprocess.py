"""Preprocess a dataset: raw cases -> parts -> HDF5 slice store plus its splits (the driver).

The steps live in their own modules: case discovery (:mod:`kequireg.data.discovery`), one case
through reorientation, N4, equalization, resampling, slicing and its bounding box
(:mod:`kequireg.data.case_pipeline`), the resumable parts folder (:mod:`kequireg.data.parts`), the
crop window (:mod:`kequireg.data.crop`) and the store writer (:mod:`kequireg.data.store_writer`).
The geometry is planned here once for the dataset, from the cases' headers, before any case is
processed (:func:`plan_geometry`).

Parallel and resumable: cases run in a process pool; each finished case is written atomically to
``STORE.h5.parts/<case>.npz``, so after any crash or ``kill -9`` a rerun skips finished cases.
The store is assembled from the parts (atomic). A failing case is reported with its file and
reason; the others still make a valid store, and the summary lists the failures.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from kequireg.data import resample
from kequireg.data.case_files import CaseError, CaseFiles
from kequireg.data.case_pipeline import process_case
from kequireg.data.crop import CROP_MULTIPLE, store_window, window_case
from kequireg.data.discovery import discover
from kequireg.data.nnunet import NnunetDataset
from kequireg.data.params import PreprocessParams
from kequireg.data.parts import part_is_current, part_params_json, part_summaries, parts_dir, read_part, remove_parts, write_part
from kequireg.data.splits import make_folds, make_splits, save_splits, splits_path
from kequireg.data.store import PreprocessedCase
from kequireg.data.store_writer import write_store
from kequireg.settings import DEFAULT_TEST_SHARE, DEFAULT_VAL_SHARE
from kequireg.vocabulary import MODALITIES

# An in-plane axis this many times thicker than the slice axis (axis 2) makes the slices "not
# axial-like": the thick (through-slice) axis of the acquisition lies in the slice plane.
NOT_AXIAL_RATIO = 1.2


@dataclasses.dataclass
class Failure:
    """A case that could not be preprocessed: the file at fault and why."""

    case_id: str
    file: str
    reason: str


@dataclasses.dataclass
class PreprocessReport:
    """What :func:`preprocess_dataset` did."""

    store_path: Path | None
    splits_path: Path | None
    cases: list[str]
    resumed: list[str]
    failures: list[Failure]
    image_shape: tuple[int, int, int] | None
    warnings: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.failures and self.store_path is not None


def _worker_init(threads: int) -> None:
    """Give SimpleITK ``threads`` threads in this process (the cores shared among the workers).

    N4's output depends on SimpleITK's thread count, so a store built with other ``workers`` on
    the same machine may differ in the last bits of its N4-corrected images.
    """
    import SimpleITK as sitk  # lazy: SimpleITK is heavy to import and only N4 needs it

    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(max(1, threads))


def _run_case(case: CaseFiles, params: PreprocessParams, folder: Path) -> tuple[str, str, str]:
    """Worker: process one case and write its part. Returns (status, file, reason)."""
    try:
        write_part(folder, process_case(case, params))
        return "ok", "", ""
    except CaseError as err:
        return "error", err.file, err.reason
    except Exception as err:  # a bug or resource error must not take the other cases down
        return "error", str(case.folder), f"{type(err).__name__}: {err}"


def preprocess_case(case: CaseFiles, params: PreprocessParams, size: tuple[int, int]) -> PreprocessedCase:
    """Preprocess one raw case exactly as a store build does and cut the (H, W) window.

    :func:`kequireg.data.case_pipeline.process_case` (load, reorientation and in-plane resampling
    to the params' planned geometry, N4, equalization, slicing, brain bounding box) followed by :func:`kequireg.data.crop.window_case`; ``kequireg predict`` uses it
    on cases that are not in a store.

    Args:
        case: CaseFiles from :func:`kequireg.data.discovery.find_cases`.
        params: PreprocessParams (a store's settings for prediction).
        size: (H, W) window, e.g. the training store's ``image_shape[:2]``.

    Returns:
        PreprocessedCase with images (S, H, W, C) float32 (labels too when the case has ``_seg``).

    Raises:
        CaseError: naming the file and the reason.
    """
    return window_case(process_case(case, params), size)[0]


def assemble_cases(parts: list[Path], size: tuple[int, int], warnings: list[str]) -> Iterator[PreprocessedCase]:
    """The parts' cases in the ``size`` window, for the store writer; cut brains and dropped labels
    are appended to ``warnings``."""
    for path in parts:
        part = read_part(path)
        case, cut = window_case(part, size)
        if cut is not None:
            r0, r1, c0, c1 = (int(v) for v in part["bbox"])
            warnings.append(f"{part['case_id']}: brain {r1 - r0}x{c1 - c0} exceeds the {size[0]}x{size[1]} window; {cut} brain pixels cut")
        if int(part.get("labels_dropped", 0)):
            warnings.append(f"{part['case_id']}: {int(part['labels_dropped'])} labeled voxels lie on slices with no image data (dropped)")
        yield case


def dataset_cases(root: str | os.PathLike, params: PreprocessParams = PreprocessParams(), labels: str = "auto",
                  ) -> tuple[list[CaseFiles], PreprocessParams, NnunetDataset | None]:
    """The cases under ``root``, the params with the channels its layout fixes, and the layout.

    BraTS folders: the cases with ``params.channels`` and the label schema ``labels`` chooses
    (:func:`kequireg.data.discovery.discover`), params unchanged, layout None. An nnU-Net
    raw dataset (``root`` holds ``dataset.json``): its channels replace the default ``channels``
    (:data:`kequireg.vocabulary.MODALITIES`; the BraTS four mapped by name, any other set in the
    dataset's own order), and the layout is the :class:`kequireg.data.nnunet.NnunetDataset`.

    Raises:
        FileNotFoundError / ValueError: as :func:`kequireg.data.discovery.discover`.
    """
    # the default channels stand for "the layout's own"; channels given otherwise are kept
    found = discover(root, None if params.channels == MODALITIES else params.channels, labels=labels)
    if found.layout is not None and params.channels == MODALITIES:
        params = dataclasses.replace(params, channels=found.channels)
    return found.cases, params, found.layout


def _header_geometry(cases: list[CaseFiles], channel: str) -> list[tuple[tuple[str, str, str], tuple[float, float, float]]]:
    """(axis codes, spacing) of each case's ``channel`` file from its header (no pixels read); cases
    whose file is missing or unreadable are left out (they fail with their reason when processed)."""
    import nibabel as nib

    found = []
    for case in cases:
        try:
            image = nib.load(str(case.modalities[channel]))
            found.append((resample.axcodes(image.affine), tuple(float(v) for v in image.header.get_zooms()[:3])))
        except Exception:  # any unreadable header: the case reports it itself when processed
            continue
    return found


def plan_geometry(cases: list[CaseFiles], params: PreprocessParams) -> tuple[PreprocessParams, list[str], list[str]]:
    """Plan the dataset's orientation and in-plane spacing once, from the cases' headers (as nnU-Net plans).

    The orientation is ``params.orientation`` if set, else the one most cases have (ties: the first
    case's), so a dataset in one orientation (BraTS, the synthetic data) is not touched. The
    in-plane spacing is ``params.spacing`` if set (``--spacing``), else the median over the cases
    of each in-plane axis's spacing in that orientation (nnU-Net's target spacing); a case within
    1e-3 (relative) of it is not resampled. The slices are ``volume[:, :, z]``; when an in-plane
    axis's median spacing is more than NOT_AXIAL_RATIO times the slice axis's, a warning says so.

    Args:
        cases: the dataset's cases (:func:`dataset_cases`).
        params: PreprocessParams; its ``orientation`` and ``spacing`` are filled in where None.

    Returns:
        (planned params, status lines, warnings). Without any readable header: ``params`` as given.

    Example:
        >>> cases, params, _ = dataset_cases("data/synth")                       # doctest: +SKIP
        >>> plan_geometry(cases, params)[0].spacing                              # doctest: +SKIP
        (2.5, 2.5)
    """
    found = _header_geometry(cases, params.channels[0])
    if not found:
        return params, [], []
    orientation = params.orientation or collections.Counter("".join(c) for c, _ in found).most_common(1)[0][0]
    spacings = np.array([resample.reoriented_values(s, resample.ornt_between(c, orientation)) for c, s in found])
    median = np.median(spacings, axis=0)
    spacing = params.spacing or tuple(round(float(v), 6) for v in median[:2])
    planned = dataclasses.replace(params, orientation=orientation, spacing=spacing)
    moved = sum("".join(c) != orientation for c, _ in found)
    resampled = sum(resample.needs_resampling(s[:2], planned.spacing) for s in spacings)
    source = "given" if params.spacing else "the dataset's median"
    lines = [f"geometry: orientation {orientation} ({moved} of {len(found)} cases reoriented), in-plane spacing "
             f"{planned.spacing[0]:g} x {planned.spacing[1]:g} mm ({source}; {resampled} of {len(found)} cases resampled)"]
    warnings = []
    thick = int(np.argmax(median[:2]))
    if median[thick] > NOT_AXIAL_RATIO * median[2]:
        warnings.append(
            f"slices are not axial-like: kequireg slices volume[:, :, z] along voxel axis 2 (median spacing {median[2]:g} mm), "
            f"but in-plane axis {thick} is thicker ({median[thick]:g} mm; median spacing {' x '.join(f'{v:g}' for v in median)} mm "
            f"in orientation {orientation}), so each 2D slice holds the through-plane axis. If the scans were acquired in "
            "another plane, store them with their thick axis as the third voxel axis (or pass --spacing to make the slice plane isotropic)."
        )
    return planned, lines, warnings


def _print_status(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _checked_arguments(store_path: str | os.PathLike, workers: int | None) -> tuple[Path, int]:
    """(store path, worker count) of :func:`preprocess_dataset`, checked; ``workers`` None = all cores."""
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1. Received: workers={workers}")
    store_path = Path(store_path)
    if store_path.suffix not in (".h5", ".hdf5"):
        raise ValueError(f"store path must end in .h5. Received: {str(store_path)!r}")
    return store_path, workers


def preprocess_dataset(
    root: str | os.PathLike,
    store_path: str | os.PathLike,
    *,
    params: PreprocessParams = PreprocessParams(),
    workers: int | None = None,
    val: float = DEFAULT_VAL_SHARE,
    test: float = DEFAULT_TEST_SHARE,
    seed: int = 0,
    folds: int | None = None,
    keep_parts: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    log: Callable[[str], None] | None = None,
    plan: bool = True,
    labels: str = "auto",
) -> PreprocessReport:
    """Preprocess every case under ``root`` into a slice store plus its splits JSON.

    Args:
        root: folder with BraTS-layout case folders (searched recursively), or an nnU-Net raw
            dataset ``DatasetXXX_Name/`` (see :mod:`kequireg.data.nnunet`; the store's params
            record the mapping under ``source_layout``).
        store_path: output ``.h5``; parts go to ``<store_path>.parts/``.
        params: PreprocessParams.
        workers: processes. Defaults to all cores (``os.cpu_count()``); 1 runs in this process.
        val, test: split shares of the labeled patients (see :func:`kequireg.data.splits.make_splits`).
        seed: split seed.
        folds: int or None. Also store this many cross-validation folds over the non-test labeled
            patients in the splits file (``kequireg.data.splits.make_folds``). When there are too
            few patients for them the splits are written without folds, with a warning.
        keep_parts: keep the parts folder after a complete run (else it is removed when no case
            failed; with failures it is kept so a rerun only retries the failed cases).
        progress: callback ``(done, total, case_id)`` after each case.
        log: callback for status lines. Defaults to printing on stderr.
        plan: plan the geometry first (:func:`plan_geometry`: orientation, in-plane spacing; the
            store's params record it). False applies ``params`` as given. Defaults to True.
        labels: the label convention of BraTS folders (``--labels``): ``"auto"`` (from the folder
            naming: 2017-2021 -> brats2019, 2023-2025 -> brats2023) or a BraTS schema name
            (``"brats2024-post"``); an nnU-Net dataset's ``dataset.json`` decides its own. The
            store's params record the schema (``label_schema``). Defaults to ``"auto"``.

    Returns:
        PreprocessReport (store path None if no case succeeded).

    Raises:
        FileNotFoundError / ValueError: missing or empty root, bad arguments.

    Example:
        >>> report = preprocess_dataset("data/synth", "data/synth.h5", workers=2)  # doctest: +SKIP
        >>> report.ok, report.image_shape  # doctest: +SKIP
        (True, (64, 64, 4))
    """
    start_time = time.time()
    log = log or _print_status
    store_path, workers = _checked_arguments(store_path, workers)
    cases, params, layout = dataset_cases(root, params, labels)
    params, lines, warnings = plan_geometry(cases, params) if plan else (params, [], [])
    lines.append(f"labels: {cases[0].label_schema.name} ({cases[0].label_schema.describe_labels()})")
    for line in lines + [f"warning: {w}" for w in warnings]:
        log(line)
    folder = parts_dir(store_path)
    resumed, failures = _run_cases(cases, params, folder, workers, progress, log)
    failed = {f.case_id for f in failures}
    good = [c for c in cases if c.case_id not in failed]
    if not good:
        log(f"no case could be preprocessed ({len(failures)} failed); no store written")
        return PreprocessReport(None, None, [], resumed, failures, None, warnings, time.time() - start_time)
    planned = len(warnings)
    size, labeled_ids = _store_from_parts(store_path, [folder / f"{c.case_id}.npz" for c in good], params, layout,
                                          cases[0].label_schema, warnings)
    for w in warnings[planned:]:
        log(f"warning: {w}")
    split_file = _write_splits(store_path, [c.case_id for c in good], labeled_ids, dict(val=val, test=test, seed=seed), folds,
                               warnings, log)
    if not failures and not keep_parts:
        remove_parts(folder)
    return PreprocessReport(
        store_path, split_file, [c.case_id for c in good], resumed, failures,
        (size[0], size[1], len(params.channels)), warnings, time.time() - start_time,
    )


def _write_splits(store_path: Path, case_ids: list[str], labeled_ids: list[str], shares: dict, folds: int | None,
                  warnings: list[str], log: Callable[[str], None]) -> Path | None:
    """Write the store's splits file (``shares``: val, test, seed; with ``folds`` folds); None, with a
    warning, when the cases allow no splits."""
    try:
        splits = make_splits(case_ids, labeled_ids, **shares)
        if folds is not None:
            try:
                splits["folds"] = make_folds(splits, folds)
            except ValueError as err:
                warnings.append(f"no folds written: {err}")
                log(f"warning: no folds written: {err}")
        return save_splits(splits_path(store_path), splits)
    except ValueError as err:
        warnings.append(f"no splits written: {err}")
        log(f"warning: no splits written: {err}")
        return None


def _run_cases(cases: list[CaseFiles], params: PreprocessParams, folder: Path, workers: int,
               progress: Callable[[int, int, str], None] | None, log: Callable[[str], None]) -> tuple[list[str], list[Failure]]:
    """Write a part for every case without a current one; returns (resumed case ids, failures)."""
    resumed = [c.case_id for c in cases if part_is_current(folder / f"{c.case_id}.npz", part_params_json(params, c.label_schema))]
    todo = [c for c in cases if c.case_id not in set(resumed)]
    if resumed:
        log(f"resuming: {len(resumed)} of {len(cases)} cases already done in {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    failures: list[Failure] = []
    done = len(resumed)
    if progress is not None and done:
        progress(done, len(cases), "")
    for case, (status, file, reason) in _results(todo, params, folder, workers):
        if status != "ok":
            failures.append(Failure(case.case_id, file, reason))
            log(f"FAILED {case.case_id}: {file}: {reason}")
        done += 1
        if progress is not None:
            progress(done, len(cases), case.case_id)
    return resumed, failures


def _results(todo: list[CaseFiles], params: PreprocessParams, folder: Path, workers: int) -> Iterator[tuple[CaseFiles, tuple[str, str, str]]]:
    """(case, :func:`_run_case`'s result) as cases finish: in this process, or in a pool of ``workers``."""
    n_proc = min(workers, max(1, len(todo)))
    threads = max(1, (os.cpu_count() or 1) // n_proc)
    if n_proc == 1:
        _worker_init(threads)
        for case in todo:
            yield case, _run_case(case, params, folder)
        return
    with cf.ProcessPoolExecutor(n_proc, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(threads,)) as pool:
        futures = {pool.submit(_run_case, case, params, folder): case for case in todo}
        for future in cf.as_completed(futures):
            case = futures[future]
            try:
                result = future.result()
            except Exception as err:  # a worker killed by the OS (out of memory, ...)
                result = ("error", str(case.folder), f"worker died: {type(err).__name__}: {err}")
            yield case, result


def _store_from_parts(store_path: Path, part_paths: list[Path], params: PreprocessParams, layout: NnunetDataset | None,
                      schema, warnings: list[str]) -> tuple[tuple[int, int], list[str]]:
    """Write the store from finished parts; returns (its (H, W) window, the labeled case ids)."""
    shapes, labeled_ids = part_summaries(part_paths)
    size = store_window(shapes)
    store_params = params.to_dict()
    store_params["window"] = list(size)
    store_params["crop_rule"] = f"each in-plane axis to the nearest multiple of {CROP_MULTIPLE} (ties crop), window around the brain"
    if layout is not None:
        store_params["source_layout"] = layout.describe()
    store_params["label_schema"] = schema.to_dict()  # what every later stage reads (kequireg.label_schema)
    write_store(store_path, assemble_cases(part_paths, size, warnings), channels=params.channels, params=store_params,
                dtype=params.dtype)
    return size, labeled_ids
