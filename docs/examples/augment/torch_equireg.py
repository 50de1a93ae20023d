"""EquiReg in a few lines of PyTorch with `augment` grids (CPU, seconds).

Run: python augment/examples/torch_equireg.py --steps 150

A tiny CNN is trained on 4 labeled images plus an unlabeled pool. Every step draws one strong
transform per unlabeled image on the CPU (``policy.sample_grids``), warps the images with
``augment.warp_image`` and the teacher's probabilities *on the device* with
``torch.nn.functional.grid_sample`` after ``augment.to_normalized`` (same rule as
``augment.warp_image``; out-of-image weight goes to the background class, as
``augment.warp_probs`` does). The loss is cross-entropy + lambda * masked KL(T(p(x)) || p(T(x))).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import augment  # noqa: E402
from synthetic import make_disks  # noqa: E402


def warp_probs_torch(probs: torch.Tensor, grid: np.ndarray, background: int = 0) -> torch.Tensor:
    """(B, K, H, W) probabilities warped like augment.warp_probs (one-hot background outside)."""
    norm = torch.from_numpy(augment.to_normalized(grid))
    warped = F.grid_sample(probs, norm, mode="bilinear", padding_mode="zeros", align_corners=True)
    inside = F.grid_sample(torch.ones_like(probs[:, :1]), norm, mode="bilinear", padding_mode="zeros", align_corners=True)
    onehot = F.one_hot(torch.tensor(background), probs.shape[1]).float().view(1, -1, 1, 1)
    return warped + (1.0 - inside) * onehot


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lam", type=float, default=1.0)
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    labeled_x, labeled_y = make_disks(4, seed=0)
    pool_x, _ = make_disks(64, seed=1)
    test_x, test_y = make_disks(32, seed=2)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=2, dilation=2), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 3, 1),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    policy = augment.strong()
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)  # noqa: E731
    rng = np.random.default_rng(0)
    for step in range(args.steps):
        idx = rng.choice(len(pool_x), 6, replace=False)
        grids = policy.sample_grids((32, 32), [step * 6 + k for k in range(6)])
        unlabeled = pool_x[idx]
        strong = augment.warp_image(np.ascontiguousarray(unlabeled), grids)
        mask = torch.from_numpy(augment.valid_mask(grids)).float()
        sup = F.cross_entropy(net(to_t(labeled_x)), torch.from_numpy(labeled_y).long())
        with torch.no_grad():
            teacher = warp_probs_torch(net(to_t(unlabeled)).softmax(1), grids)
        student = net(to_t(strong)).log_softmax(1)
        kl = (teacher * (torch.log(teacher.clamp_min(1e-8)) - student)).sum(1)
        equi = (kl * mask).sum() / mask.sum()
        loss = sup + args.lam * equi
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  supervised {sup.item():.3f}  equivariance KL {equi.item():.4f}")
    with torch.no_grad():
        pred = net(to_t(test_x)).argmax(1).numpy()
    fg_pred, fg_true = pred > 0, test_y > 0
    dice = 2 * (fg_pred & fg_true).sum() / max(1, fg_pred.sum() + fg_true.sum())
    print(f"test Dice (disk vs background): {dice:.3f}")
    return {"dice": float(dice)}


if __name__ == "__main__":
    main()
