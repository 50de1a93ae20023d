"""matplotlib for the figures (evaluation's QC figure, an experiment's report): loaded when a
figure is drawn, on the Agg backend, and every PNG written atomically. Keras-free; matplotlib is
the optional ``plotting`` extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kequireg.io import atomic_path

# RGBA of the internal classes over an image: 1 necrosis red, 2 edema green, 3 enhancing yellow.
CLASS_COLOURS = np.array([[0, 0, 0, 0], [0.85, 0.1, 0.1, 0.75], [0.1, 0.75, 0.2, 0.55], [1.0, 0.85, 0.0, 0.8]])


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
    """RGBA colours of internal labels (``CLASS_COLOURS``): 1 necrosis red, 2 edema green, 3 enhancing yellow."""
    return CLASS_COLOURS[np.asarray(labels, dtype=np.intp)]
