"""BraTS folders -> N4 bias correction -> histogram equalization -> axial slices -> HDF5 slice store.

Per case and modality (the thesis's recipe):

1. **N4** (SimpleITK) inside the modality's non-zero mask, fitted on an image shrunk by
   ``n4_shrink`` (per axis); the fitted log bias field is evaluated on the fitting grid's own
   domain and resampled to full resolution, then divided out. ``DEFAULT_N4_SHRINK`` is the
   cheapest grid whose result stays within 1% of full-resolution N4 (measured, see docs/data.md).
2. **Histogram equalization** over the non-zero voxels: each voxel becomes the empirical CDF of
   its value, ``#{u <= v} / N``. This is equalization with one bin per distinct value, so the bin
   count never depends on the intensity scale: the result is exactly invariant to any global
   scale (indeed to any increasing map). Zeros stay 0, everything else lies in (0, 1].
3. **Slices**: axial (``volume[:, :, z]``); slices that are zero in every modality are dropped.
4. **Crop**: BraTS 240x240 -> 224x224 at rows/cols 8..231 (``crop_origin = (8, 8)``). In general
   each in-plane axis of length n goes to the nearest multiple of 32 (ties crop: 240 -> 224,
   64 -> 64, 250 -> 256); the store takes the largest such size over its cases. The window is
   centred, then shifted as little as possible to hold the brain's bounding box; a brain larger
   than the window is centred and the number of cut brain voxels is reported.

Parallel and resumable: cases run in a process pool; each finished case is written atomically to
``STORE.h5.parts/<case>.npz`` (cropped to the brain's bounding box), so after any crash or
``kill -9`` a rerun skips finished cases. The store is assembled from the parts by
:func:`kequireg.data.store.write_store` (atomic). A failing case is reported with its file and
reason; the others still make a valid store, and the summary lists the failures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from kequireg.io import atomic_path
from kequireg.settings import DEFAULT_TEST_SHARE, DEFAULT_VAL_SHARE
from kequireg.data.ingest import MODALITIES, CaseError, CaseFiles, find_cases, load_case

# The cheapest fitting grid whose N4 result stays within 1% of full-resolution N4 with the same
# iterations (mean |a - b| / b over the brain): 0.90% flair, 0.83% t1 on a brats-preset case;
# shrink 6 in every axis gives 1.03% on flair (docs/data.md, "N4 shrink").
DEFAULT_N4_SHRINK = (6, 6, 5)
# 4 fitting levels x 10 iterations: against the known synthetic bias field it leaves as little or
# less residual bias than 4 x 20 or 4 x 50 (more iterations start to fit anatomy: FLAIR residual
# 34% at 4 x 10, 45% at 4 x 20, 69% at 4 x 50), in half the time of 4 x 20 (docs/data.md).
DEFAULT_N4_ITERATIONS = (10, 10, 10, 10)
CROP_MULTIPLE = 32
_PART_VERSION = 1


@dataclasses.dataclass(frozen=True)
class PreprocessParams:
    """Preprocessing settings; recorded in the store and in every part file.

    Args:
        n4: run N4 bias correction. Defaults to True.
        n4_shrink: N4 fitting shrink factor, one for all axes or (x, y, z). Defaults to
            DEFAULT_N4_SHRINK.
        n4_iterations: iterations per N4 fitting level. Defaults to (10, 10, 10, 10).
        equalize: run histogram equalization (else: divide by the 99.5th percentile of the
            brain and clip to [0, 1], so images still lie in [0, 1]). Defaults to True.
        channels: modality order. Defaults to flair, t1, t1ce, t2.
        dtype: image storage type, "float16" or "float32". Defaults to "float16".
    """

    n4: bool = True
    n4_shrink: int | tuple[int, int, int] = DEFAULT_N4_SHRINK
    n4_iterations: tuple[int, ...] = DEFAULT_N4_ITERATIONS
    equalize: bool = True
    channels: tuple[str, ...] = MODALITIES
    dtype: str = "float16"

    def __post_init__(self) -> None:
        shrink = self.n4_shrink
        if isinstance(shrink, (list, tuple)):
            if len(shrink) != 3 or any(int(f) != f or int(f) < 1 for f in shrink):
                raise ValueError(f"n4_shrink must be an integer >= 1 or three of them (x, y, z). Received: n4_shrink={shrink!r}")
            object.__setattr__(self, "n4_shrink", tuple(int(f) for f in shrink))
        elif int(shrink) != shrink or int(shrink) < 1:
            raise ValueError(f"n4_shrink must be an integer >= 1 or three of them (x, y, z). Received: n4_shrink={shrink!r}")
        if self.dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be 'float16' or 'float32'. Received: dtype={self.dtype!r}")
        if not self.n4_iterations or min(self.n4_iterations) < 1:
            raise ValueError(f"n4_iterations must be positive integers. Received: {self.n4_iterations!r}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["n4_iterations"] = list(self.n4_iterations)
        if isinstance(self.n4_shrink, tuple):
            d["n4_shrink"] = list(self.n4_shrink)
        d["channels"] = list(self.channels)
        d["equalize_method"] = "empirical CDF over non-zero voxels (one bin per distinct value)"
        d["slice_axis"] = 2
        return d


# --------------------------------------------------------------------------- per-volume math
def n4_correct(
    volume: np.ndarray,
    *,
    shrink: int | Sequence[int] = DEFAULT_N4_SHRINK,
    iterations: Sequence[int] = DEFAULT_N4_ITERATIONS,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """N4 bias-field correction inside the non-zero mask, fitted on a shrunken image.

    Args:
        volume: float (X, Y, Z), non-negative; 0 = outside the brain.
        shrink: shrink factor for fitting, one for all axes or one per axis (capped so that each
            axis keeps >= 8 voxels).
        iterations: maximum iterations per fitting level (its length = number of levels).
        spacing: voxel size (mm) per axis; the B-spline mesh lives in physical space.
        mask: bool (X, Y, Z). Defaults to ``volume > 0``.

    Returns:
        float32 (X, Y, Z): ``volume / bias`` inside the mask, 0 outside.

    Raises:
        ValueError: on a non-3D volume, negative values, an empty mask or a bad shrink.

    Example:
        >>> vol = np.random.default_rng(0).uniform(1, 2, (32, 32, 16)).astype(np.float32)
        >>> n4_correct(vol, shrink=2).shape
        (32, 32, 16)
    """
    import SimpleITK as sitk

    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3D (X, Y, Z). Received: volume.shape={volume.shape}")
    shrinks = (int(shrink),) * 3 if np.ndim(shrink) == 0 else tuple(int(f) for f in shrink)
    if len(shrinks) != 3 or min(shrinks) < 1:
        raise ValueError(f"shrink must be an integer >= 1 or three of them (x, y, z). Received: shrink={shrink!r}")
    if np.any(volume < 0):
        raise ValueError(
            f"N4 needs non-negative intensities; found {int(np.count_nonzero(volume < 0))} negative voxels. "
            "Use --no-n4 for data that is already normalized."
        )
    mask = volume > 0 if mask is None else np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("N4 mask is empty: the volume has no non-zero voxel.")
    # N4 only on the brain's bounding box: the B-spline field then spans the brain, and BraTS
    # volumes shrink ~2.7x (240x240x155 -> ~140x175x135), which cuts N4's time accordingly.
    box = tuple(slice(max(0, int(i[0]) - 2), int(i[-1]) + 3) for i in (np.flatnonzero(mask.any(axis=a)) for a in ((1, 2), (0, 2), (0, 1))))
    sub, sub_mask = volume[box], mask[box]
    # SimpleITK reads a C-order array as (z, y, x). A Fortran-order volume (as NIfTI files and
    # load_case give) goes in transposed, so its x is SimpleITK's x; a C-order one goes in as it
    # is, with its axes reversed for SimpleITK. Either way the hand-over is a block copy, not a
    # transpose of every voxel. `order` lists our axes in SimpleITK's (x, y, z) order.
    fortran = volume.strides[0] < volume.strides[2]
    order = (0, 1, 2) if fortran else (2, 1, 0)
    view = (lambda a: a.T) if fortran else (lambda a: a)
    image = sitk.GetImageFromArray(np.ascontiguousarray(view(sub)))
    image.SetSpacing([float(spacing[a]) for a in order])
    mask_image = sitk.GetImageFromArray(np.ascontiguousarray(view(sub_mask)).view(np.uint8))
    mask_image.CopyInformation(image)
    factors = [max(1, min(f, n // 8)) for f, n in zip(shrinks, sub.shape)]
    sitk_factors = [factors[a] for a in order]
    small = sitk.Shrink(image, sitk_factors) if max(factors) > 1 else image
    small_mask = sitk.Shrink(mask_image, sitk_factors) if max(factors) > 1 else mask_image
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([int(i) for i in iterations])
    corrector.Execute(small, small_mask)
    if small is image:
        log_bias = view(sitk.GetArrayFromImage(corrector.GetLogBiasFieldAsImage(image)))
    else:
        # The fitted B-spline lives on the fitting grid's domain [first, last voxel centre]. Asked
        # for the full image, ITK maps its lattice onto the full image's larger domain: a stretch
        # that moves the field by up to ~4% near the box edges at shrink 6, and puts the result
        # further from full-resolution N4 (docs/data.md). So evaluate it on its own domain, on a
        # grid of ~2-voxel steps (a quarter of the cost of every voxel), resampled cubically to the
        # voxels (B-spline knots >= 16 voxels apart: < 0.02% error in the field).
        steps = [max(1, round(f / 2)) for f in sitk_factors]
        grid = sitk.Image([(m - 1) * k + 1 for m, k in zip(small.GetSize(), steps)], sitk.sitkFloat32)
        grid.SetOrigin(small.GetOrigin())
        grid.SetSpacing([v / k for v, k in zip(small.GetSpacing(), steps)])
        coarse = view(sitk.GetArrayFromImage(corrector.GetLogBiasFieldAsImage(grid)))
        ours = np.argsort(order)  # SimpleITK axis of each of our axes
        log_bias = _upsample_field(coarse, [grid.GetOrigin()[a] for a in ours], [grid.GetSpacing()[a] for a in ours],
                                   [image.GetOrigin()[a] for a in ours], [image.GetSpacing()[a] for a in ours], sub.shape)
    out = np.zeros(volume.shape, np.float32, order="F" if fortran else "C")
    out[box] = np.where(sub_mask, sub * np.exp(-log_bias), 0)  # elementwise: no gather of the mask
    return out


def _interp_matrix(m: int, origin_small: float, step_small: float, origin: float, step: float, n: int) -> np.ndarray:
    """(n, m) weights resampling m coarse samples onto n fine points along one axis.

    Cubic (Catmull-Rom) interpolation, exact for quadratics; a ghost sample quadratically
    extrapolated at each end serves the end intervals and the fine points that overhang the
    coarse grid (by less than one coarse step). Fewer than 3 samples: linear / constant.
    """
    pos = (origin + step * np.arange(n) - origin_small) / step_small  # fractional coarse index
    weights = np.zeros((n, m), np.float64)
    rows = np.arange(n)
    if m == 1:
        weights[:, 0] = 1.0
    elif m == 2:
        weights[:, 0], weights[:, 1] = 1 - pos, pos
    else:
        left = np.clip(np.floor(pos).astype(np.int64), 0, m - 2)
        t = pos - left
        taps = (((-t + 2) * t - 1) * t / 2, ((3 * t - 5) * t * t + 2) / 2, ((-3 * t + 4) * t + 1) * t / 2, (t - 1) * t * t / 2)
        for k, w in zip((-1, 0, 1, 2), taps):
            j = left + k
            for lo_side, at, cols in ((True, -1, (0, 1, 2)), (False, m, (m - 1, m - 2, m - 3))):
                ghost = j == at
                for c, g in zip(cols, (3.0, -3.0, 1.0)):  # s[-1] = 3 s[0] - 3 s[1] + s[2]
                    np.add.at(weights, (rows[ghost], np.full(int(ghost.sum()), c)), g * w[ghost])
            real = (j >= 0) & (j < m)
            np.add.at(weights, (rows[real], j[real]), w[real])
    return weights.astype(np.float32)


def _upsample_field(coarse: np.ndarray, origin_small, spacing_small, origin, spacing, shape) -> np.ndarray:
    """Separable cubic resampling of a smooth (x, y, z) field onto a finer grid, in physical coordinates."""
    out = coarse.astype(np.float32)
    for axis in range(3):
        w = _interp_matrix(out.shape[axis], origin_small[axis], spacing_small[axis], origin[axis], spacing[axis], shape[axis])
        out = np.moveaxis(np.tensordot(w, np.moveaxis(out, axis, 0), axes=(1, 0)), 0, axis)
    return np.ascontiguousarray(out)


def equalize(volume: np.ndarray) -> np.ndarray:
    """Histogram equalization over non-zero voxels: value -> empirical CDF, zeros stay 0.

    Args:
        volume: float (any shape); 0 = outside the brain.

    Returns:
        float32 of the same shape, in (0, 1] where ``volume != 0``, 0 elsewhere. Exactly
        invariant to a positive global scale of ``volume``.

    Example:
        >>> equalize(np.array([0.0, 5.0, 1.0, 5.0, 3.0])).tolist()
        [0.0, 1.0, 0.25, 1.0, 0.5]
    """
    volume = np.asarray(volume)
    if not (volume.flags.c_contiguous or volume.flags.f_contiguous):
        volume = np.ascontiguousarray(volume)
    out = np.zeros(volume.shape, np.float32, order="F" if volume.flags.f_contiguous and not volume.flags.c_contiguous else "C")
    # same memory order as the input: the ravels below are views
    flat, flat_out = volume.ravel(order="K"), out.ravel(order="K")
    nonzero = flat != 0
    values = flat[nonzero]
    if values.size == 0:
        return out
    # One argsort, then every voxel gets (position of the last copy of its value + 1) / N; ~30%
    # faster than np.unique(return_inverse, return_counts) on N4 output (all values distinct).
    n = values.size
    order = np.argsort(values)
    ordered = values[order]
    last = np.empty(n, bool)
    last[-1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=last[:-1])
    counts_le = (np.flatnonzero(last) + 1) / n  # CDF at each distinct value, ascending
    cdf = np.empty(n, np.float32)
    cdf[order] = counts_le.astype(np.float32)[np.cumsum(last) - last]
    flat_out[nonzero] = cdf
    return out


def _scale_unit(volume: np.ndarray) -> np.ndarray:
    """Without equalization: divide by the brain's 99.5th percentile, clip to [0, 1]."""
    out = np.zeros(volume.shape, np.float32)
    nonzero = volume > 0
    if nonzero.any():
        top = float(np.percentile(volume[nonzero], 99.5))
        out[nonzero] = np.clip(volume[nonzero] / max(top, 1e-12), 1e-6, 1.0)
    return out


def target_size(n: int, multiple: int = CROP_MULTIPLE) -> int:
    """Nearest multiple of ``multiple`` to ``n`` (ties crop): 240 -> 224, 64 -> 64, 250 -> 256."""
    if n < 1:
        raise ValueError(f"in-plane size must be >= 1. Received: {n}")
    down = (n // multiple) * multiple
    if down == 0:
        return multiple
    return down if n - down <= multiple // 2 else down + multiple


def window_origin(n: int, size: int, lo: int, hi: int) -> int:
    """Start of a ``size`` window on an axis of length ``n`` holding the brain span [lo, hi).

    Centred on the axis; shifted as little as possible to hold [lo, hi); centred on the brain if
    the brain is longer than the window. Negative starts mean zero padding.
    """
    origin = (n - size) // 2
    if hi - lo > size:
        return (lo + hi - size) // 2
    if lo < origin:
        origin = lo
    elif hi > origin + size:
        origin = hi - size
    return origin


# --------------------------------------------------------------------------- one case
def preprocess_volumes(images: np.ndarray, params: PreprocessParams, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    """N4 then equalization per channel of (X, Y, Z, C) float32; zeros stay 0."""
    out = np.empty(images.shape, np.float32, order="F")  # each channel one contiguous block
    for c in range(images.shape[-1]):
        vol = images[..., c]
        if params.n4:
            vol = n4_correct(vol, shrink=params.n4_shrink, iterations=params.n4_iterations, spacing=spacing)
        out[..., c] = equalize(vol) if params.equalize else _scale_unit(vol)
    return out


def process_case(case: CaseFiles, params: PreprocessParams) -> dict:
    """Load, validate, preprocess and slice one case; the result is a part (arrays, metadata).

    Slices are cut to the brain's in-plane bounding box (``bbox``: row0, row1, col0, col1);
    the store's window is chosen when all cases are known.

    Raises:
        CaseError: naming the file and the reason.
    """
    loaded = load_case(case, params.channels)
    images = loaded.images
    try:
        if params.n4 and np.any(images < 0):
            c = int(np.argmax(np.any(images < 0, axis=(0, 1, 2))))
            raise CaseError(case.modalities[params.channels[c]], "negative intensities; N4 needs non-negative scans (use --no-n4 for normalized data)")
        volumes = preprocess_volumes(images, params, loaded.spacing)
    except CaseError:
        raise
    except Exception as exc:
        raise CaseError(case.folder, f"preprocessing failed ({type(exc).__name__}: {exc})") from exc
    brain = np.any(volumes != 0, axis=-1)  # (X, Y, Z)
    z = np.flatnonzero(np.any(brain, axis=(0, 1)))
    if z.size == 0:
        raise CaseError(case.folder, "no non-zero slice after preprocessing")
    footprint = np.any(brain, axis=2)
    if loaded.labels is not None:
        footprint |= np.any(loaded.labels[:, :, z] > 0, axis=2)
    rows, cols = np.flatnonzero(footprint.any(axis=1)), np.flatnonzero(footprint.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    slices = np.ascontiguousarray(np.moveaxis(volumes[r0:r1, c0:c1][:, :, z], 2, 0), dtype=params.dtype)  # (S, h, w, C)
    part = {
        "case_id": case.case_id,
        "images": slices,
        "z": z.astype(np.int32),
        "bbox": np.array([r0, r1, c0, c1], np.int64),
        "original_shape": np.array(images.shape[:3], np.int64),
        "affine": loaded.affine,
        "spacing": np.asarray(loaded.spacing, np.float64),
        "header": np.frombuffer(loaded.header, np.uint8),
        "source": loaded.source,
        "params": json.dumps(params.to_dict(), sort_keys=True),
        "part_version": _PART_VERSION,
    }
    if loaded.labels is not None:
        lost = int(np.count_nonzero(np.delete(loaded.labels, z, axis=2)))
        part["labels"] = np.ascontiguousarray(np.moveaxis(loaded.labels[r0:r1, c0:c1][:, :, z], 2, 0))
        part["labels_dropped"] = lost
    return part


# --------------------------------------------------------------------------- parts folder
def parts_dir(store_path: str | os.PathLike) -> Path:
    """Folder of finished per-case results beside the store: ``STORE.h5.parts``."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".parts")


def write_part(folder: Path, part: dict) -> Path:
    """Save a part atomically (``kequireg.io.atomic_path``)."""
    final = folder / f"{part['case_id']}.npz"
    with atomic_path(final, suffix="", stable=True) as tmp, open(tmp, "wb") as fh:
        # an .npz as np.savez_compressed writes it, but at zlib level 1: float16 scan data barely
        # compresses further (+2% size) and level 6 took ~0.2 s more per BraTS case
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for key, value in part.items():
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
    return final


def read_part(path: Path) -> dict:
    """Load a part written by :func:`write_part` (raises on a damaged file)."""
    with np.load(path, allow_pickle=False) as data:
        part = {k: data[k] for k in data.files}
    for key in ("case_id", "source", "params"):
        part[key] = str(part[key])
    part["header"] = part["header"].tobytes()
    return part


def _part_is_current(path: Path, params_json: str) -> bool:
    try:
        with np.load(path, allow_pickle=False) as data:
            return str(data["params"]) == params_json and int(data["part_version"]) == _PART_VERSION
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return False


# --------------------------------------------------------------------------- whole dataset
@dataclasses.dataclass
class Failure:
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
    import SimpleITK as sitk

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


def window_case(part: dict, size: tuple[int, int]) -> tuple["PreprocessedCase", int]:
    """Place a part's bounding-box slices into the ``size`` window chosen by :func:`window_origin`.

    The one place where the store's crop/pad geometry is derived: the store build
    (:func:`preprocess_dataset`) and prediction on raw cases (:func:`preprocess_case`) both use it.

    Args:
        part: dict from :func:`process_case` or :func:`read_part`.
        size: (H, W) of the window (the store's, see :func:`store_window`).

    Returns:
        (PreprocessedCase with float32 images (S, H, W, C) and uint8 labels or None, cut): ``cut``
        is None when the bounding box fits the window, else the number of brain pixels (summed
        over slices) that fell outside it.
    """
    from kequireg.data.store import PreprocessedCase

    X, Y, Z = (int(v) for v in part["original_shape"])
    r0, r1, c0, c1 = (int(v) for v in part["bbox"])
    origin = (window_origin(X, size[0], r0, r1), window_origin(Y, size[1], c0, c1))
    full = origin[0] <= r0 and r1 <= origin[0] + size[0] and origin[1] <= c0 and c1 <= origin[1] + size[1]
    images = np.asarray(part["images"])
    # the bbox-cropped slices and the window are both in original plane coordinates
    window = np.zeros((images.shape[0], size[0], size[1], images.shape[3]), np.float32)
    labels = None if "labels" not in part else np.zeros((images.shape[0], size[0], size[1]), np.uint8)
    a0, a1 = max(r0, origin[0]), min(r1, origin[0] + size[0])
    b0, b1 = max(c0, origin[1]), min(c1, origin[1] + size[1])
    if a1 > a0 and b1 > b0:
        window[:, a0 - origin[0]:a1 - origin[0], b0 - origin[1]:b1 - origin[1]] = images[:, a0 - r0:a1 - r0, b0 - c0:b1 - c0]
        if labels is not None:
            labels[:, a0 - origin[0]:a1 - origin[0], b0 - origin[1]:b1 - origin[1]] = part["labels"][:, a0 - r0:a1 - r0, b0 - c0:b1 - c0]
    cut = None if full else int(np.count_nonzero(np.any(images != 0, axis=-1))) - int(np.count_nonzero(np.any(window != 0, axis=-1)))
    header = part["header"]
    case = PreprocessedCase(
        case_id=str(part["case_id"]), images=window, labels=labels, z=np.asarray(part["z"]).astype(np.int64),
        crop_origin=origin, original_shape=(X, Y, Z), affine=np.asarray(part["affine"]), spacing=np.asarray(part["spacing"]),
        header=header if isinstance(header, bytes) else np.asarray(header, np.uint8).tobytes(), source=str(part["source"]),
    )
    return case, cut


def preprocess_case(case: CaseFiles, params: PreprocessParams, size: tuple[int, int]) -> "PreprocessedCase":
    """Preprocess one raw case exactly as a store build does and cut the (H, W) window.

    :func:`process_case` (load, N4, equalization, slicing, brain bounding box) followed by
    :func:`window_case`; ``kequireg predict`` uses it on cases that are not in a store.

    Args:
        case: CaseFiles from :func:`kequireg.data.ingest.find_cases`.
        params: PreprocessParams (a store's settings for prediction).
        size: (H, W) window, e.g. the training store's ``image_shape[:2]``.

    Returns:
        PreprocessedCase with images (S, H, W, C) float32 (labels too when the case has ``_seg``).

    Raises:
        CaseError: naming the file and the reason.
    """
    return window_case(process_case(case, params), size)[0]


def _assemble(parts: list[Path], size: tuple[int, int], warnings: list[str]) -> Iterator:
    for path in parts:
        part = read_part(path)
        case, cut = window_case(part, size)
        if cut is not None:
            r0, r1, c0, c1 = (int(v) for v in part["bbox"])
            warnings.append(f"{part['case_id']}: brain {r1 - r0}x{c1 - c0} exceeds the {size[0]}x{size[1]} window; {cut} brain pixels cut")
        if int(part.get("labels_dropped", 0)):
            warnings.append(f"{part['case_id']}: {int(part['labels_dropped'])} labeled voxels lie on slices with no image data (dropped)")
        yield case


def store_window(shapes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The store's (H, W): per axis the largest :func:`target_size` over the cases' in-plane sizes."""
    return (max(target_size(s[0]) for s in shapes), max(target_size(s[1]) for s in shapes))


def dataset_cases(root: str | os.PathLike, params: PreprocessParams = PreprocessParams()) -> tuple[list[CaseFiles], PreprocessParams, "object | None"]:
    """The cases under ``root``, the params with the channels its layout fixes, and the layout.

    BraTS folders: ``find_cases(root, params.channels)``, params unchanged, layout None. An
    nnU-Net raw dataset (``root`` holds ``dataset.json``): its channels replace the default
    ``channels`` (:data:`MODALITIES`; the BraTS four mapped by name, any other set in the
    dataset's own order), and the layout is the :class:`kequireg.data.nnunet.NnunetDataset`.

    Raises:
        FileNotFoundError / ValueError: as :func:`kequireg.data.ingest.find_cases`.
    """
    from kequireg.data import nnunet

    if not nnunet.is_dataset(root):
        return find_cases(root, params.channels), params, None
    layout = nnunet.read_dataset(root)
    if params.channels == MODALITIES:
        params = dataclasses.replace(params, channels=layout.channels)
    return nnunet.find_cases(layout, params.channels, images=root), params, layout


def preprocess_dataset(
    root: str | os.PathLike,
    store_path: str | os.PathLike,
    *,
    params: PreprocessParams = PreprocessParams(),
    workers: int | None = None,
    val: float = DEFAULT_VAL_SHARE,
    test: float = DEFAULT_TEST_SHARE,
    seed: int = 0,
    keep_parts: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> PreprocessReport:
    """Preprocess every case under ``root`` into a slice store plus its splits JSON.

    Args:
        root: folder with BraTS-layout case folders (searched recursively), or an nnU-Net raw
            dataset ``DatasetXXX_Name/`` (see :mod:`kequireg.data.nnunet`; the store's params
            record the mapping under ``source_layout``).
        store_path: output ``.h5``; parts go to ``<store_path>.parts/``.
        params: PreprocessParams.
        workers: processes. Defaults to all cores (``os.cpu_count()``); 1 runs in this process.
        val, test: split shares of the labeled patients (see kequireg.data.splits.make_splits).
        seed: split seed.
        keep_parts: keep the parts folder after a complete run (else it is removed when no case
            failed; with failures it is kept so a rerun only retries the failed cases).
        progress: callback ``(done, total, case_id)`` after each case.
        log: callback for status lines. Defaults to printing on stderr.

    Returns:
        PreprocessReport (store path None if no case succeeded).

    Raises:
        FileNotFoundError / ValueError: missing or empty root, bad arguments.

    Example:
        >>> report = preprocess_dataset("data/synth", "data/synth.h5", workers=2)  # doctest: +SKIP
        >>> report.ok, report.image_shape  # doctest: +SKIP
        (True, (64, 64, 4))
    """
    from kequireg.data.splits import make_splits, save_splits, splits_path
    from kequireg.data.store import write_store

    start_time = time.time()
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1. Received: workers={workers}")
    store_path = Path(store_path)
    if store_path.suffix not in (".h5", ".hdf5"):
        raise ValueError(f"store path must end in .h5. Received: {str(store_path)!r}")
    cases, params, layout = dataset_cases(root, params)
    folder = parts_dir(store_path)
    params_json = json.dumps(params.to_dict(), sort_keys=True)
    resumed = [c.case_id for c in cases if _part_is_current(folder / f"{c.case_id}.npz", params_json)]
    todo = [c for c in cases if c.case_id not in set(resumed)]
    if resumed:
        log(f"resuming: {len(resumed)} of {len(cases)} cases already done in {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    failures: list[Failure] = []
    done = len(resumed)
    if progress is not None and done:
        progress(done, len(cases), "")

    def record(case: CaseFiles, result: tuple[str, str, str]) -> None:
        nonlocal done
        status, file, reason = result
        if status != "ok":
            failures.append(Failure(case.case_id, file, reason))
            log(f"FAILED {case.case_id}: {file}: {reason}")
        done += 1
        if progress is not None:
            progress(done, len(cases), case.case_id)

    n_proc = min(workers, max(1, len(todo)))
    threads = max(1, (os.cpu_count() or 1) // n_proc)
    if n_proc == 1:
        _worker_init(threads)
        for case in todo:
            record(case, _run_case(case, params, folder))
    else:
        import concurrent.futures as cf
        import multiprocessing as mp

        with cf.ProcessPoolExecutor(n_proc, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(threads,)) as pool:
            futures = {pool.submit(_run_case, case, params, folder): case for case in todo}
            for future in cf.as_completed(futures):
                case = futures[future]
                try:
                    result = future.result()
                except Exception as err:  # a worker killed by the OS (out of memory, ...)
                    result = ("error", str(case.folder), f"worker died: {type(err).__name__}: {err}")
                record(case, result)

    failed = {f.case_id for f in failures}
    good = [c for c in cases if c.case_id not in failed]
    warnings: list[str] = []
    if not good:
        log(f"no case could be preprocessed ({len(failures)} failed); no store written")
        return PreprocessReport(None, None, [], resumed, failures, None, warnings, time.time() - start_time)
    part_paths = [folder / f"{c.case_id}.npz" for c in good]
    shapes, labeled_ids = [], []
    for p in part_paths:
        with np.load(p) as data:
            shapes.append(tuple(int(v) for v in data["original_shape"][:2]))
            if "labels" in data.files:
                labeled_ids.append(str(data["case_id"]))
    size = store_window(shapes)
    store_params = params.to_dict()
    store_params["window"] = list(size)
    store_params["crop_rule"] = f"each in-plane axis to the nearest multiple of {CROP_MULTIPLE} (ties crop), window around the brain"
    if layout is not None:
        store_params["source_layout"] = layout.describe()
    write_store(store_path, _assemble(part_paths, size, warnings), channels=params.channels, params=store_params, dtype=params.dtype)
    for w in warnings:
        log(f"warning: {w}")
    try:
        splits = make_splits([c.case_id for c in good], labeled_ids, val=val, test=test, seed=seed)
        split_file = save_splits(splits_path(store_path), splits)
    except ValueError as err:
        split_file = None
        warnings.append(f"no splits written: {err}")
        log(f"warning: no splits written: {err}")
    if not failures and not keep_parts:
        for p in folder.glob("*"):
            p.unlink()
        folder.rmdir()
    return PreprocessReport(
        store_path, split_file, [c.case_id for c in good], resumed, failures,
        (size[0], size[1], len(params.channels)), warnings, time.time() - start_time,
    )
