"""Transform: a small, replayable record of sampled steps, and its warp grid.

A Transform is the image shape plus a list of steps (plain dicts, see :mod:`augment.ops`)
in the order they act on the content. Its grid composes them by chained pull-backs: an
output pixel p goes through the inverse of the last step first,
``p -> T_k^-1(p) -> ... -> T_1^-1(p)``; an elastic step (an op with a displacement field)
pulls ``p -> p + d(p)`` with ``d`` read bilinearly. Consecutive affine steps are merged into
one matrix. Every step's geometry comes from its op class (:func:`augment.ops.step_op`).

The inverse grid undoes the grid: it chains each step's inverse in application order, exact
for steps whose op has an exact inverse (flips, translations, rotations, shears, scales) and
numerical for displacement fields, whose inverse q of p (q + d(q) = p) is found by a relaxed
fixed-point iteration. :meth:`Transform.round_trip_error` reports how well it worked:
``|T(T^-1(p)) - p|`` per pixel. Where a field folds (its Jacobian determinant is negative,
which happens for imgaug's ``thesis`` field on a few percent of the pixels) no exact inverse
exists and the error says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np

from augment import _kernels
from augment._checks import check_grid, check_shape
from augment.ops import IDENTITY_ROWS, Op, Rows, step_op
from augment.warp import identity_grid

__all__ = ["Transform", "compose", "grids", "inverse_grids"]

_OPS = Op.registry  # a Transform's steps are validated: their ops are looked up directly

# Numerical inverse of a displacement step: q <- q - RELAX * (q + d(q) - p) from q = p, until a
# step moves less than TOLERANCE px or after ITERATIONS. Relaxation 0.5 converges wherever the
# field's Jacobian has eigenvalues in (-1, 3) (plain iteration only in (-1, 1)): nearly every pixel
# of the thesis elastic field, whose gradient exceeds 1 on about 15% of the image.
INVERSE_ITERATIONS = 500
INVERSE_RELAX = 0.5
INVERSE_TOLERANCE = 1e-7


class Transform:
    """A sampled augmentation for images of one shape: replay it, store it, compose it.

    Args:
        shape: (H, W) of the images it applies to.
        steps: sequence of step dicts in the order they act (first = applied first).

    Example:
        >>> import augment
        >>> t = augment.strong().sample((64, 64), seed=7)
        >>> t2 = augment.Transform.from_dict(t.to_dict())
        >>> bool((t.grid() == t2.grid()).all())
        True
    """

    def __init__(self, shape: tuple[int, int], steps: Iterable[dict] = ()):
        self.shape = check_shape(shape)
        if isinstance(steps, (str, bytes, dict)) or not isinstance(steps, Iterable):
            raise ValueError(f"steps must be a sequence of step dicts. Received: steps={steps!r}.")
        self.steps = tuple(step_op(s).check_step(s) for s in steps)

    @classmethod
    def _from_sampled(cls, shape: tuple[int, int], steps: list[dict]) -> Transform:
        """Skip validation for steps that ops just sampled (they are valid by construction)."""
        t = cls.__new__(cls)
        t.shape = shape
        t.steps = tuple(steps)
        return t

    # ---- grids -------------------------------------------------------------------------
    def grid(self) -> np.ndarray:
        """(H, W, 2) float32 source (row, col) coordinates for every output pixel."""
        return grids([self])[0]

    @property
    def is_affine(self) -> bool:
        """True if every step is affine (then the transform is one exact 3x3 matrix)."""
        return not self._non_affine_ops()

    def matrix(self, forward: bool = False) -> np.ndarray:
        """The 3x3 matrix on homogeneous (row, col, 1) of an affine-only transform.

        Args:
            forward: bool. False (default): the pull-back, output pixel -> source pixel, i.e.
                ``grid()`` evaluated as a matrix. True: where source content ends up.

        Raises:
            ValueError: if the transform contains an elastic step.
        """
        self._require_affine("matrix")
        total = np.eye(3)
        for step in self.steps if forward else reversed(self.steps):
            total = _OPS[step["op"]].matrix(step, self.shape, forward) @ total
        return total

    def inverse(self) -> Transform:
        """The transform that undoes this one (affine only): steps reversed, each inverted.

        Raises:
            ValueError: if the transform contains an elastic step (no exact inverse), or a step
                whose op defines no ``inverse``.
        """
        self._require_affine("inverse")
        inverted = []
        for step in reversed(self.steps):
            undo = _OPS[step["op"]].inverse(step)
            if undo is None:
                raise ValueError(f"inverse needs an exact inverse of every step; {step['op']} has none. Received: {self!r}.")
            inverted.append(undo)
        return Transform(self.shape, inverted)

    def inverse_grid(self) -> np.ndarray:
        """Grid that undoes ``grid()``: ``warp(warp(x, t.grid()), t.inverse_grid()) ~ x`` where
        the content stayed inside the image, for every op.

        Exact for affine steps (flips, translations, rotations, shears, scales; an affine-only
        transform gives ``t.inverse().grid()``); numerical for displacement fields (elastic):
        a relaxed fixed-point iteration finds q with q + d(q) = p. Check it with
        :meth:`round_trip_error`.

        Returns:
            (H, W, 2) float32 source coordinates in the warped frame for every original pixel.

        Example:
            >>> import augment
            >>> t = augment.strong().sample((64, 64), seed=7)
            >>> err = t.round_trip_error()
            >>> bool(err[augment.valid_mask(t.inverse_grid())].mean() < 0.05)
            True
        """
        return inverse_grids([self])[0]

    def round_trip_error(self, inverse: np.ndarray | None = None) -> np.ndarray:
        """Per-pixel ``|T(T^-1(p)) - p|`` in pixels: the grid evaluated at the inverse grid's points.

        About 1e-5 px (float32 rounding) for affine transforms and invertible fields; large
        where an elastic field folds (no inverse exists there).

        Args:
            inverse: (H, W, 2) float32 inverse grid of this transform. Defaults to
                :meth:`inverse_grid` (computed here).

        Returns:
            (H, W) float32.
        """
        inverse = self.inverse_grid() if inverse is None else check_grid(inverse, "inverse")[0]
        if inverse.shape[:2] != self.shape:
            raise ValueError(f"inverse must have shape {self.shape + (2,)}. Received: inverse.shape={inverse.shape}.")
        there = _run_chains(self.shape, [_pullback_records(self)], start=inverse[None])[0]
        return np.sqrt(((there.astype(np.float64) - identity_grid(self.shape)) ** 2).sum(-1)).astype(np.float32)

    def then(self, other: Transform) -> Transform:
        """This transform followed by ``other`` (same shape)."""
        return compose(self, other)

    # ---- records -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-friendly record: ``{"shape": [H, W], "steps": [...]}``."""
        return {"shape": list(self.shape), "steps": [dict(s) for s in self.steps]}

    @classmethod
    def from_dict(cls, record: dict) -> Transform:
        """Rebuild a transform from :meth:`to_dict` output (validated)."""
        if not isinstance(record, dict) or set(record) != {"shape", "steps"}:
            raise ValueError(f'record must be a dict with keys "shape" and "steps". Received: {record!r}.')
        return cls(tuple(record["shape"]), record["steps"])

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Transform:
        return cls.from_dict(json.loads(text))

    def __eq__(self, other) -> bool:
        return isinstance(other, Transform) and self.shape == other.shape and self.steps == other.steps

    __hash__ = None

    def __repr__(self) -> str:
        inner = ", ".join(
            s["op"] + "(" + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in s.items() if k != "op") + ")"
            for s in self.steps
        )
        return f"Transform(shape={self.shape}, steps=[{inner}])"

    def _non_affine_ops(self) -> list[str]:
        return sorted({s["op"] for s in self.steps if _OPS[s["op"]].affine(s, self.shape) is None})

    def _require_affine(self, what: str) -> None:
        others = self._non_affine_ops()
        if others:
            raise ValueError(
                f"{what} needs an affine transform, but this one has an elastic step ({', '.join(others)}), which has "
                f"no exact inverse. Received: {self!r}. Sample from a policy without {others[0]}, or keep the forward grid."
            )


def compose(*transforms: Transform) -> Transform:
    """One transform applying ``transforms`` in order (first applied first); shapes must match.

    Example:
        >>> import augment
        >>> a, b = augment.weak().sample((32, 32), seed=1), augment.weak().sample((32, 32), seed=2)
        >>> len(augment.compose(a, b).steps) == len(a.steps) + len(b.steps)
        True
    """
    if not transforms:
        raise ValueError("compose needs at least one Transform. Received: none.")
    for t in transforms:
        if not isinstance(t, Transform):
            raise TypeError(f"compose takes Transform objects. Received: {type(t).__name__}.")
    shapes = {t.shape for t in transforms}
    if len(shapes) != 1:
        raise ValueError(f"compose needs transforms of one shape. Received shapes: {sorted(shapes)}.")
    return Transform(transforms[0].shape, [s for t in transforms for s in t.steps])


def _compose_rows(second: Rows, first: Rows) -> Rows:
    """Rows of ``second @ first`` (apply ``first``, then ``second``)."""
    b00, b01, b02, b10, b11, b12 = second
    a00, a01, a02, a10, a11, a12 = first
    return (
        b00 * a00 + b01 * a10,
        b00 * a01 + b01 * a11,
        b00 * a02 + b01 * a12 + b02,
        b10 * a00 + b11 * a10,
        b10 * a01 + b11 * a11,
        b10 * a02 + b11 * a12 + b12,
    )


class _Inverted:
    """A displacement step to be inverted numerically in a chain (see ``INVERSE_*``)."""

    __slots__ = ("step",)

    def __init__(self, step: dict):
        self.step = step


def _merge_affine(shape: tuple[int, int], pulls: Iterable) -> list:
    """A pull-back chain in application order: consecutive affine rows merged into one; step
    dicts (displacement pulls) and ``_Inverted`` records kept as they are."""
    records: list = []
    pending = None
    for rec in pulls:
        if not isinstance(rec, tuple):
            if pending is not None:
                records.append(pending)
                pending = None
            records.append(rec)
        else:
            pending = rec if pending is None else _compose_rows(rec, pending)
    if pending is not None and pending != IDENTITY_ROWS:
        records.append(pending)
    return records


def _pull(step: dict, shape: tuple[int, int]):
    """A step's pull-back: its affine rows, or the step itself (a displacement pull)."""
    rows = _OPS[step["op"]].affine(step, shape)
    return step if rows is None else rows


def _pullback_records(t: Transform) -> list:
    """Pull-back chain of the grid: the last step first."""
    return _merge_affine(t.shape, (_pull(step, t.shape) for step in reversed(t.steps)))


def _undo(step: dict, shape: tuple[int, int]):
    """The pull-back of a step's inverse: the exact inverse step's pull when the op has one,
    else the step's forward affine map, else a numerical inversion of its field."""
    op = _OPS[step["op"]]
    exact = op.inverse(step)
    if exact is not None:
        return _pull(exact, shape)
    rows = op.affine(step, shape, forward=True)
    return _Inverted(step) if rows is None else rows


def _inverse_records(t: Transform) -> list:
    """Pull-back chain of the inverse grid: the first step's inverse first (the chain of
    ``t.inverse()`` when every step has an exact inverse, so those grids are the same bytes)."""
    return _merge_affine(t.shape, (_undo(step, t.shape) for step in t.steps))


def _check_transforms(transforms) -> tuple[list[Transform], tuple[int, int]]:
    transforms = list(transforms)
    if not transforms or not all(isinstance(t, Transform) for t in transforms):
        raise ValueError(f"transforms must be a non-empty sequence of Transform. Received: {transforms!r:.200}.")
    shape = transforms[0].shape
    if any(t.shape != shape for t in transforms):
        raise ValueError(f"all transforms must share one shape. Received shapes: {sorted({t.shape for t in transforms})}.")
    return transforms, shape


def grids(transforms: Sequence[Transform]) -> np.ndarray:
    """(B, H, W, 2) float32 grids of several transforms of one shape, computed in parallel.

    Example:
        >>> import augment
        >>> ts = [augment.strong().sample((32, 32), seed=s) for s in range(4)]
        >>> augment.grids(ts).shape
        (4, 32, 32, 2)
    """
    transforms, shape = _check_transforms(transforms)
    return _run_chains(shape, [_pullback_records(t) for t in transforms])


def inverse_grids(transforms: Sequence[Transform]) -> np.ndarray:
    """(B, H, W, 2) float32 inverse grids (see :meth:`Transform.inverse_grid`), in parallel.

    Example:
        >>> import augment
        >>> t = augment.weak().sample((32, 32), seed=5)
        >>> bool((augment.inverse_grids([t, t])[1] == t.inverse_grid()).all())
        True
    """
    transforms, shape = _check_transforms(transforms)
    return _run_chains(shape, [_inverse_records(t) for t in transforms])


def _run_chains(shape: tuple[int, int], chains: list[list], start: np.ndarray | None = None) -> np.ndarray:
    """Evaluate pull-back chains (one per output grid) with the grid kernel, from the pixel
    centres or from ``start`` (B, H, W, 2) points."""
    n = len(chains)
    steps = np.zeros((n, max(1, max(len(c) for c in chains)), _kernels.STEP_WIDTH), dtype=np.float64)
    n_steps = np.array([len(c) for c in chains], dtype=np.int64)
    by_op: dict[type, list] = {}  # non-affine steps, per op class: [(b, s, step, inverted), ...]
    for b, chain in enumerate(chains):
        for s, rec in enumerate(chain):
            if isinstance(rec, tuple):
                steps[b, s, 0] = _kernels.STEP_AFFINE
                steps[b, s, 1:7] = rec
            else:
                step = rec.step if isinstance(rec, _Inverted) else rec
                by_op.setdefault(_OPS[step["op"]], []).append((b, s, step, isinstance(rec, _Inverted)))
    parts, offset = [], 0
    for op, members in by_op.items():
        for (b, s, _, inverted), (field, stride) in zip(members, op.displacement(shape, [m[2] for m in members])):
            _, hc, wc = field.shape
            if inverted:
                steps[b, s] = (_kernels.STEP_INVERSE_FIELD, offset, hc, wc, stride, INVERSE_ITERATIONS, INVERSE_RELAX,
                               INVERSE_TOLERANCE)
            else:
                steps[b, s, :5] = (_kernels.STEP_ELASTIC, offset, hc, wc, stride)
            parts.append(np.ascontiguousarray(field, dtype=np.float32).reshape(-1))
            offset += field.size
    flat = np.concatenate(parts) if parts else np.zeros(1, dtype=np.float32)
    start = np.zeros((0, 1, 1, 2), np.float32) if start is None else np.ascontiguousarray(start, dtype=np.float32)
    out = np.empty((n, shape[0], shape[1], 2), dtype=np.float32)
    _kernels.pick(_kernels.grid_kernel)(steps, n_steps, flat, start, out)
    return out
