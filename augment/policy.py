"""Policies: which ops, how many, in which order; and the thesis's weak and strong ones."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from augment._checks import check_seed, check_shape
from augment.ops import Elastic, FlipLR, FlipUD, Op, Rotate, Scale, Shear, Translate, step_op
from augment.transform import Transform, grids

__all__ = ["Policy", "weak", "strong"]


class Policy:
    """A random choice of ops applied in (optionally random) order, sampled into Transforms.

    Args:
        ops: sequence of ``augment`` ops (FlipLR, Translate, Elastic, ...).
        n_ops: how many ops each transform uses. ``None``: all of them; an int k: exactly k;
            ``(low, high)``: uniformly low..high inclusive, ``high=None`` meaning ``len(ops)``.
            Defaults to ``(3, None)``.
        random_order: bool. Apply the chosen ops in random order (else in list order).
            Defaults to True.

    Example:
        >>> import augment
        >>> policy = augment.Policy([augment.FlipLR(p=.5), augment.Rotate(degrees=(-20, 20))], n_ops=None)
        >>> policy.sample((64, 64), seed=3).grid().shape
        (64, 64, 2)
    """

    def __init__(self, ops: Sequence[Op], n_ops: int | tuple[int, int | None] | None = (3, None), random_order: bool = True):
        if isinstance(ops, Op) or not isinstance(ops, Sequence) or not ops or not all(isinstance(o, Op) for o in ops):
            raise ValueError(f"ops must be a non-empty list of augment ops. Received: ops={ops!r}.")
        self.ops = tuple(ops)
        total = len(self.ops)
        if n_ops is None:
            low, high = total, total
        elif isinstance(n_ops, (int, np.integer)) and not isinstance(n_ops, bool):
            low = high = int(n_ops)
        elif isinstance(n_ops, (tuple, list)) and len(n_ops) == 2:
            low, high = n_ops[0], total if n_ops[1] is None else n_ops[1]
        else:
            raise ValueError(f"n_ops must be None, an int or a (low, high) pair. Received: n_ops={n_ops!r}.")
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (low, high)) or not (
            0 <= low <= high <= total
        ):
            raise ValueError(
                f"n_ops must satisfy 0 <= low <= high <= len(ops)={total}. Received: n_ops={n_ops!r}."
            )
        self.n_ops = n_ops
        self._low, self._high = int(low), int(high)
        self.random_order = bool(random_order)

    def sample(self, shape: tuple[int, int], seed) -> Transform:
        """Draw one Transform for images of ``shape``; same (policy, shape, seed) -> same transform.

        Args:
            shape: (H, W).
            seed: non-negative int or ``numpy.random.SeedSequence``.

        Returns:
            Transform.
        """
        shape = check_shape(shape)
        rng = np.random.default_rng(check_seed(seed))
        n = self._low if self._low == self._high else int(rng.integers(self._low, self._high + 1))
        if self.random_order:
            chosen = rng.permutation(len(self.ops))[:n]
        else:
            chosen = np.sort(rng.permutation(len(self.ops))[:n])
        return Transform._from_sampled(shape, [self.ops[i].sample(rng, shape) for i in chosen])

    def sample_transforms(self, shape: tuple[int, int], seeds: Sequence) -> list[Transform]:
        """One Transform per seed."""
        if isinstance(seeds, (int, np.integer)) or not hasattr(seeds, "__len__") or len(seeds) == 0:
            raise ValueError(f"seeds must be a non-empty sequence of ints. Received: seeds={seeds!r}.")
        return [self.sample(shape, s) for s in seeds]

    def sample_grids(self, shape: tuple[int, int], seeds: Sequence) -> np.ndarray:
        """(B, H, W, 2) float32 grids, one per seed, computed in parallel over the batch.

        Example:
            >>> import augment
            >>> augment.strong().sample_grids((32, 32), [1, 2, 3]).shape
            (3, 32, 32, 2)
        """
        return grids(self.sample_transforms(shape, seeds))

    def get_config(self) -> dict:
        return {
            "ops": [{"op": o.name, **o.get_config()} for o in self.ops],
            "n_ops": list(self.n_ops) if isinstance(self.n_ops, tuple) else self.n_ops,
            "random_order": self.random_order,
        }

    @classmethod
    def from_config(cls, config: dict) -> Policy:
        ops = []
        for spec in config["ops"]:
            spec = dict(spec)
            op = step_op(spec)
            del spec["op"]
            ops.append(op(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}))
        n_ops = config.get("n_ops", (3, None))
        return cls(ops, tuple(n_ops) if isinstance(n_ops, list) else n_ops, config.get("random_order", True))

    def __eq__(self, other) -> bool:
        return isinstance(other, Policy) and self.get_config() == other.get_config()

    __hash__ = None

    def __repr__(self) -> str:
        return f"Policy({list(self.ops)!r}, n_ops={self.n_ops!r}, random_order={self.random_order})"


def weak() -> Policy:
    """The thesis's weak policy: flips lr/ud (p=.5) and translations x, y of U(-10%, 10%), all
    four in random order."""
    return Policy(
        [FlipLR(p=0.5), FlipUD(p=0.5), Translate(x=(-0.1, 0.1)), Translate(y=(-0.1, 0.1))],
        n_ops=None,
        random_order=True,
    )


def strong(elastic_mode: str = "thesis") -> Policy:
    """The thesis's strong policy: 3..8 of flip lr, flip ud (p=.5), translate x, translate y
    (U(±10%)), rotate U(±20°), shear U(±11.31°), scale U(0.9, 1.1) and elastic (α=720, σ=24)
    in random order.

    Args:
        elastic_mode: "thesis" (imgaug 0.4.0's field, default) or "gaussian".
    """
    return Policy(
        [
            FlipLR(p=0.5),
            FlipUD(p=0.5),
            Translate(x=(-0.1, 0.1)),
            Translate(y=(-0.1, 0.1)),
            Rotate(degrees=(-20.0, 20.0)),
            Shear(degrees=(-11.31, 11.31)),
            Scale((0.9, 1.1)),
            Elastic(alpha=720.0, sigma=24.0, mode=elastic_mode),
        ],
        n_ops=(3, None),
        random_order=True,
    )
