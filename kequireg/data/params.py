"""Preprocessing settings (:class:`PreprocessParams`), recorded in the store and in every part file."""

from __future__ import annotations

import dataclasses

import math

from kequireg.data.n4 import DEFAULT_N4_ITERATIONS, DEFAULT_N4_SHRINK
from kequireg.data.resample import check_orientation
from kequireg.vocabulary import MODALITIES


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
        orientation: axis codes every case is reoriented to (e.g. "LPS"), or None to keep each
            case's own. Planned by :func:`kequireg.data.preprocess.plan_geometry` (the dataset's most
            common orientation). Defaults to None.
        spacing: (row, col) in-plane voxel size in mm every case's slices are resampled to (one
            number: both), or None for no resampling. Planned as the dataset's median unless given
            (``--spacing``). A case within 1e-3 (relative) of it is not resampled. Defaults to None.
    """

    n4: bool = True
    n4_shrink: int | tuple[int, int, int] = DEFAULT_N4_SHRINK
    n4_iterations: tuple[int, ...] = DEFAULT_N4_ITERATIONS
    equalize: bool = True
    channels: tuple[str, ...] = MODALITIES
    dtype: str = "float16"
    orientation: str | None = None
    spacing: float | tuple[float, float] | None = None

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
        if self.orientation is not None:
            object.__setattr__(self, "orientation", check_orientation(self.orientation))
        if self.spacing is not None:
            values = tuple(self.spacing) if isinstance(self.spacing, (list, tuple)) else (self.spacing,) * 2
            try:
                values = tuple(float(v) for v in values)
            except (TypeError, ValueError):
                values = ()
            if len(values) != 2 or not all(math.isfinite(v) and v > 0 for v in values):
                raise ValueError(f"spacing must be one or two positive in-plane voxel sizes in mm (row, col). Received: spacing={self.spacing!r}")
            object.__setattr__(self, "spacing", values)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["n4_iterations"] = list(self.n4_iterations)
        if isinstance(self.n4_shrink, tuple):
            d["n4_shrink"] = list(self.n4_shrink)
        d["channels"] = list(self.channels)
        if self.spacing is not None:
            d["spacing"] = list(self.spacing)
        d["equalize_method"] = "empirical CDF over non-zero voxels (one bin per distinct value)"
        d["slice_axis"] = 2
        return d
