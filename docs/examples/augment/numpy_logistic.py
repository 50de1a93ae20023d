"""Train a per-pixel softmax regression in plain NumPy with `augment` (strong policy).

Run: python augment/examples/numpy_logistic.py --steps 300

Each step samples one strong transform per image (``policy.sample_grids``), warps the images
bilinearly and the label maps nearest-neighbour with the same grids, and masks the loss to
pixels whose source lies inside the image (``valid_mask``). Features are the pixel and its
3x3 / 7x7 box means, so the model is small enough to train in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import augment  # noqa: E402
from synthetic import make_disks  # noqa: E402


def features(images: np.ndarray) -> np.ndarray:
    """(B, H, W, 1) -> (B, H, W, 4): pixel, 3x3 mean, 7x7 mean, bias."""
    from scipy import ndimage

    x = images[..., 0]
    f3 = ndimage.uniform_filter(x, size=(1, 3, 3), mode="constant")
    f7 = ndimage.uniform_filter(x, size=(1, 7, 7), mode="constant")
    return np.stack([x, f3, f7, np.ones_like(x)], axis=-1)


def dice(pred: np.ndarray, target: np.ndarray, cls: int) -> float:
    p, t = pred == cls, target == cls
    denom = p.sum() + t.sum()
    return 1.0 if denom == 0 else 2.0 * (p & t).sum() / denom


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3.0)
    args = parser.parse_args(argv)

    train_x, train_y = make_disks(64, seed=0)
    test_x, test_y = make_disks(32, seed=1)
    policy = augment.strong()
    n_classes = 3
    weights = np.zeros((4, n_classes))
    rng = np.random.default_rng(0)
    for step in range(args.steps):
        idx = rng.choice(len(train_x), args.batch, replace=False)
        grids = policy.sample_grids(train_x.shape[1:3], [step * args.batch + k for k in range(args.batch)])
        x = augment.warp_image(np.ascontiguousarray(train_x[idx]), grids)
        y = augment.warp_labels(np.ascontiguousarray(train_y[idx]), grids)
        mask = augment.valid_mask(grids)
        f = features(x)[mask]  # (N, 4) valid pixels only
        onehot = np.eye(n_classes)[y[mask]]
        logits = f @ weights
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        weights -= args.lr * f.T @ (p - onehot) / len(f)
        if step % 100 == 0 or step == args.steps - 1:
            loss = -np.log(np.clip((p * onehot).sum(-1), 1e-9, None)).mean()
            print(f"step {step:4d}  cross-entropy {loss:.3f}")
    pred = (features(test_x) @ weights).argmax(-1)
    scores = {f"dice_class_{c}": dice(pred, test_y, c) for c in (1, 2)}
    # the same model on transformed test images, compared with the transformed prediction
    grids = policy.sample_grids(test_x.shape[1:3], range(10**6, 10**6 + len(test_x)))
    pred_t = (features(augment.warp_image(test_x, grids)) @ weights).argmax(-1)
    warped_pred = augment.warp_labels(pred.astype(np.uint8), grids)
    scores["equivariance_agreement"] = float((pred_t == warped_pred)[augment.valid_mask(grids)].mean())
    print("  ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    return scores


if __name__ == "__main__":
    main()
