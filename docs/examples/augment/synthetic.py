"""Synthetic segmentation data for the examples: bright disks and rings on a noisy background."""

from __future__ import annotations

import numpy as np


def make_disks(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images (n, size, size, 1) float32 and labels (n, size, size) uint8 in {0, 1, 2}:
    1 = disk body, 2 = a brighter off-centre core."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    images = rng.normal(0.0, 0.15, (n, size, size, 1)).astype(np.float32)
    labels = np.zeros((n, size, size), np.uint8)
    for k in range(n):
        cy, cx = rng.uniform(0.3 * size, 0.7 * size, 2)
        radius = rng.uniform(0.15 * size, 0.25 * size)
        body = (rows - cy) ** 2 + (cols - cx) ** 2 < radius**2
        core = (rows - cy - radius / 3) ** 2 + (cols - cx) ** 2 < (radius / 2.5) ** 2
        labels[k][body] = 1
        labels[k][core] = 2
        images[k, ..., 0] += 0.6 * body + 0.6 * core
    return images, labels
