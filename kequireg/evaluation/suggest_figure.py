"""The overlay of one suggested case: what an annotator should look at first.

``overlays/NN_<case>.png`` (drawn by :func:`kequireg.evaluation.suggest.suggest`): on the middle
slice of the predicted tumour (the middle slice of the volume when none is predicted), three
panels: the case's first channel (FLAIR for BraTS), the predicted labels over it, and the
TTA entropy map (nats). Everything is read back from the files ``kequireg predict`` wrote (the
label NIfTI and ``uncertainty/<case>_uncertainty.nii.gz``, in the source geometry), so cases
predicted by an earlier, resumed run are drawn the same way. matplotlib is imported when drawing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kequireg.inference.nifti import output_filename
from kequireg.inference.uncertainty import uncertainty_paths
from kequireg.plotting import overlay_rgba, pyplot, save_figure
from kequireg.vocabulary import BRATS_TO_INTERNAL


def internal_labels(volume: np.ndarray, layout=None) -> np.ndarray:
    """A label volume in its file's values (BraTS {0, 1, 2, 4}, or an nnU-Net dataset's) -> internal {0..3}.

    Example:
        >>> internal_labels(np.array([0, 1, 2, 4])).tolist()
        [0, 1, 2, 3]
    """
    pairs = layout.label_map if layout is not None else tuple(BRATS_TO_INTERNAL.items())
    lut = np.zeros(256, np.uint8)
    for value, internal in pairs:
        lut[value] = internal
    return lut[np.clip(np.asarray(volume), 0, 255).astype(np.intp)]


def middle_tumour_slice(labels: np.ndarray) -> int:
    """The middle one of the axial (last-axis) slices holding tumour; the middle slice when none does.

    Example:
        >>> labels = np.zeros((2, 2, 9), np.uint8); labels[0, 0, [2, 3, 7]] = 1
        >>> middle_tumour_slice(labels), middle_tumour_slice(np.zeros((2, 2, 9)))
        (3, 4)
    """
    with_tumour = np.flatnonzero((np.asarray(labels) > 0).any(axis=(0, 1)))
    return int(with_tumour[len(with_tumour) // 2]) if with_tumour.size else labels.shape[-1] // 2


def _volume(path: Path) -> np.ndarray:
    import nibabel as nib

    data = np.asarray(nib.load(str(path)).dataobj)
    return data[..., 0] if data.ndim == 4 else data


def _shown(plane: np.ndarray) -> np.ndarray:
    """A NIfTI (X, Y) plane as an image: rows = Y from top, columns = X."""
    return np.rot90(np.asarray(plane))


def suggestion_overlay(case, predictions: Path, row: dict, score: str, path: Path) -> Path:
    """Draw one suggested case's overlay.

    Args:
        case: the case's ``CaseFiles`` (its first channel is shown).
        predictions: the folder ``kequireg predict`` wrote the case's labels and maps to.
        row: the case's ranked row (``rank``, ``score``).
        score: the name of the QC score ranked by (for the title).
        path: the PNG to write.

    Returns:
        ``path``.
    """
    labels = internal_labels(_volume(predictions / output_filename(case.case_id, case.dataset)), case.dataset)
    entropy_path = uncertainty_paths(case.case_id, predictions)[0]  # none for a case with no slice to predict
    entropy = _volume(entropy_path).astype(np.float32) if entropy_path.is_file() else np.zeros(labels.shape, np.float32)
    image = _volume(next(iter(case.modalities.values()))).astype(np.float32)
    z = middle_tumour_slice(labels)
    plane = _shown(image[..., z])
    low, high = np.percentile(plane, [1, 99.5]) if plane.size else (0.0, 1.0)
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(8.4, 3.0))
    for ax in axes[:2]:
        ax.imshow(plane, cmap="gray", vmin=low, vmax=max(high, low + 1e-6), interpolation="nearest")
    axes[1].imshow(overlay_rgba(_shown(labels[..., z])), interpolation="nearest")
    shown = axes[2].imshow(_shown(entropy[..., z]), cmap="magma", vmin=0, vmax=max(float(entropy.max()), 1e-6),
                           interpolation="nearest")
    fig.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.04)
    channel = next(iter(case.modalities))
    for ax, title in zip(axes, (channel, "prediction", "TTA entropy (nats)")):
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"#{row['rank']} {case.case_id}: {score} = {row['score']:.4g}, axial slice {z} "
                 "(red necrosis/non-enhancing, green edema, yellow enhancing)", fontsize=8)
    return save_figure(fig, Path(path))
