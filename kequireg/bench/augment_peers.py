"""The augment engine's peers on the strong workload of ``kequireg.bench.augment``.

Each function warps the same inputs (``kequireg.bench.augment.make_inputs``: image, probability
map, label map) by one strong transform per slice with every op on, as ``augment`` does, and
returns the best slices/s of many short rounds (``kequireg.bench.timing.best_slice_rate``) with
the peer's version: albumentations, scipy.ndimage, and imgaug 0.4.0 in its own interpreter
(it needs numpy < 2; ``peers/imgaug_strong.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from kequireg.bench.timing import best_slice_rate

PEER_SCRIPTS = Path(__file__).resolve().parent / "peers"


def strong_albumentations(inputs, seconds: float) -> dict:
    import albumentations as A

    image, probs, labels = inputs
    pipeline = A.Compose(
        [
            A.HorizontalFlip(p=1.0),
            A.VerticalFlip(p=1.0),
            A.Affine(
                translate_percent={"x": (-0.1, 0.1), "y": (-0.1, 0.1)},
                rotate=(-20, 20),
                shear={"x": (-11.31, 11.31), "y": (0, 0)},
                scale=(0.9, 1.1),
                p=1.0,
            ),
            A.ElasticTransform(alpha=720, sigma=24, p=1.0),
        ],
        additional_targets={"probs": "image"},
        seed=0,
    )

    def step(i):
        pipeline(image=image, probs=probs, mask=labels)

    return {**best_slice_rate(step, seconds), "version": A.__version__}


def strong_scipy(inputs, seconds: float) -> dict:
    """Affine + imgaug-like elastic coordinates in NumPy, then map_coordinates per channel."""
    import numpy as np
    import scipy
    from scipy import ndimage

    image, probs, labels = inputs
    h, w = image.shape[:2]
    shape = (h, w)
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    ctr = np.array([(h - 1) / 2, (w - 1) / 2])

    def step(i):
        rng = np.random.default_rng(i)
        t, sh = np.radians(rng.uniform(-20, 20)), np.tan(np.radians(rng.uniform(-11.31, 11.31)))
        s = rng.uniform(0.9, 1.1)
        shift = rng.uniform(-0.1, 0.1, 2) * (h, w)
        a = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]]) @ np.array([[1, 0], [-sh, 1]]) / s
        r = a[0, 0] * (rows - ctr[0]) + a[0, 1] * (cols - ctr[1]) + ctr[0] - shift[0]
        c = a[1, 0] * (rows - ctr[0]) + a[1, 1] * (cols - ctr[1]) + ctr[1] - shift[1]
        r, c = (h - 1) - r, (w - 1) - c  # both flips
        dr = ndimage.gaussian_filter(rng.uniform(-1, 1, shape), 24, truncate=31 / 24) * 720
        dc = ndimage.gaussian_filter(rng.uniform(-1, 1, shape), 24, truncate=31 / 24) * 720
        coords = np.stack([r + dr, c + dc])
        for k in range(image.shape[-1]):
            ndimage.map_coordinates(image[..., k], coords, order=1, mode="grid-constant", cval=0)
        for k in range(probs.shape[-1]):
            ndimage.map_coordinates(probs[..., k], coords, order=1, mode="grid-constant", cval=float(k == 0))
        ndimage.map_coordinates(labels, coords, order=0, mode="grid-constant", cval=0)

    return {**best_slice_rate(step, seconds, warmup=1), "version": scipy.__version__}


def strong_imgaug(inputs, seconds: float, python: str | None) -> dict:
    """imgaug 0.4.0 in its own interpreter (it needs numpy < 2); same inputs via a temporary .npz."""
    import numpy as np

    if python is None:
        return {"skipped": "pass --imgaug-python PATH (an interpreter with imgaug==0.4.0 and numpy<2)"}
    image, probs, labels = inputs
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inputs.npz"
        np.savez(path, image=image, probs=probs, labels=labels)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        proc = subprocess.run(
            [python, str(PEER_SCRIPTS / "imgaug_strong.py"), str(path), str(seconds)],
            capture_output=True, text=True, env=env,
        )
    if proc.returncode != 0:
        return {"skipped": f"imgaug run failed with {python}: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])
