"""matplotlib for the figures (evaluation's QC figure, an experiment's report): loaded when a
figure is drawn, on the Agg backend, and every PNG written atomically. Keras-free; matplotlib is
the optional ``plotting`` extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kequireg.io import atomic_path

# RGBA of the classes over an image: 1 red (BraTS necrosis), 2 green (edema), 3 yellow (enhancing), then
# more colours for datasets with more classes; row = stored label value (class index or IGNORE_INDEX).
CLASS_COLOUR_NAMES: tuple[str, ...] = ("none", "red", "green", "yellow", "blue", "magenta", "cyan", "orange", "purple")
_MORE = [[0.15, 0.35, 0.95, 0.7], [0.9, 0.2, 0.8, 0.7], [0.1, 0.85, 0.9, 0.7], [1.0, 0.55, 0.0, 0.75], [0.5, 0.2, 0.7, 0.7]]
CLASS_COLOURS = np.array([[0, 0, 0, 0], [0.85, 0.1, 0.1, 0.75], [0.1, 0.75, 0.2, 0.55], [1.0, 0.85, 0.0, 0.8], *_MORE])
# every uint8 label value: classes past the named colours repeat them; IGNORE_INDEX (255, not annotated) transparent
LABEL_COLOURS = np.concatenate([CLASS_COLOURS, np.tile(CLASS_COLOURS[1:], (32, 1))])[:256]
LABEL_COLOURS[255] = 0.0


def pyplot():
    """matplotlib's pyplot on the Agg backend.

    Raises:
        ImportError: matplotlib is missing (it says which extra to install).
    """
    try:
        import matplotlib
    except ImportError as err:  # plotting is an optional extra
        raise ImportError("figures need matplotlib: pip install 'kequireg[plotting]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically, then close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    pyplot().close(fig)
    return path


def overlay_rgba(labels: np.ndarray) -> np.ndarray:
    """RGBA colours of class labels (``LABEL_COLOURS``): 1 red (BraTS necrosis), 2 green (edema), 3 yellow
    (enhancing), more for more classes; not-annotated pixels (255) transparent."""
    return LABEL_COLOURS[np.asarray(labels, dtype=np.intp)]


def blend_labels(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """An RGB uint8 picture of a grey image (values in [0, 1]) with the labels painted over it
    in ``LABEL_COLOURS`` (alpha blending); needs no matplotlib.

    Args:
        image: (H, W) float array.
        labels: (H, W) class labels (0..254, 255 not annotated); None = the image alone.

    Returns:
        (H, W, 3) uint8.
    """
    grey = np.clip(np.asarray(image, np.float64), 0.0, 1.0)[..., None].repeat(3, axis=-1)
    if labels is not None:
        rgba = LABEL_COLOURS[np.asarray(labels, dtype=np.intp)]
        grey = grey * (1.0 - rgba[..., 3:]) + rgba[..., :3] * rgba[..., 3:]
    return np.round(grey * 255.0).astype(np.uint8)
