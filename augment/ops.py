"""Augmentation ops: each op is one class that samples *steps* and owns their geometry.

An op holds ranges; ``op.sample(rng, shape)`` draws one step, a JSON-friendly dict such as
``{"op": "Rotate", "degrees": 12.5}``. The step's class (found by its "op" name in
``Op.registry``, see :func:`step_op`) validates it and gives its geometry: an affine map (and
its exact inverse) or a displacement field. So a :class:`augment.Transform` can be stored and
replayed without the op objects.

Geometry (pixel centres at integers, rows down, centre ``((H-1)/2, (W-1)/2)``):
    FlipLR / FlipUD   mirror columns / rows (exact integer grids).
    Translate(x, y)   shift content by x*W columns and y*H rows (fractions of the size).
    Rotate(degrees)   rotate content about the centre, positive = counter-clockwise on screen.
    Shear(degrees)    shear along x (columns move by tan(angle) * (row - centre)), or y.
    Scale(factor)     zoom content about the centre (factor > 1 enlarges).
    Elastic(alpha, sigma)   smooth random displacement, imgaug 0.4.0 parameters.

A range is a ``(low, high)`` tuple sampled uniformly; a single number is used as is.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from augment._checks import check_range
from augment.elastic import MODES, field_layout, lattice_fields

Range = float | tuple[float, float]
Rows = tuple[float, float, float, float, float, float]

IDENTITY_ROWS: Rows = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return lo if lo == hi else float(rng.uniform(lo, hi))


def _range_repr(bounds: tuple[float, float]) -> Any:
    return bounds[0] if bounds[0] == bounds[1] else bounds


def _about_centre(shape: tuple[int, int], a00: float, a01: float, a10: float, a11: float) -> Rows:
    """Rows of ``x -> A (x - centre) + centre`` for the 2x2 matrix A."""
    cy, cx = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    return (a00, a01, cy - (a00 * cy + a01 * cx), a10, a11, cx - (a10 * cy + a11 * cx))


def _clean_value(step: dict, key: str, kind) -> Any:
    """One step parameter coerced to its declared kind (see ``Op.params``)."""
    value = step[key]
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
            raise ValueError(f"step {step!r}: {key} must be a finite number. Received: {key}={value!r}.")
        return float(value)
    if kind is bool:
        return bool(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"step {step!r}: {key} must be a non-negative int. Received: {key}={value!r}.")
        return int(value)
    if value not in kind:  # a tuple of allowed values
        raise ValueError(f"step {step!r}: {key} must be one of {kind}. Received: {key}={value!r}.")
    return value


class Op:
    """Base class of the ops. Instances hold parameter ranges and sample steps; the class
    methods validate a step and give its geometry.

    A new op is one subclass; it registers itself in ``Op.registry`` under its class name,
    which is the "op" of its steps (classes named ``_...`` are bases and stay out). It declares:

    * ``params``: the step's keys besides "op" and their kinds: ``float`` (finite), ``bool``,
      ``int`` (non-negative) or a tuple of allowed values.
    * ``__init__``, ``get_config`` and ``sample``: its ranges and how a step is drawn.
    * ``affine`` (and ``inverse`` where exact) for an affine op, or ``displacement`` for one
      that moves pixels by a field (``Transform.inverse_grid`` inverts a field numerically,
      unless ``inverse`` gives an exact inverse step); ``check`` for constraints beyond the kinds.

    Transform validation, composition, ``matrix``/``inverse``, grids and inverse grids, and
    ``Policy.from_config``, find the class through the registry; nothing else needs an edit.
    ``tests/augment/test_ops.py`` defines an affine op and a displacement op this way.
    """

    name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    registry: ClassVar[dict[str, type[Op]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.name = cls.__name__
        if cls.__name__.startswith("_"):
            return
        known = Op.registry.get(cls.name)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(
                f"an op named {cls.name!r} is already registered ({known.__module__}.{known.__qualname__}). Rename the class."
            )
        Op.registry[cls.name] = cls

    # ---- ranges and sampling (instances) ----------------------------------------------------
    def sample(self, rng: np.random.Generator, shape: tuple[int, int]) -> dict:
        """Draw one step (a dict with key "op") for an image of ``shape``."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """Constructor arguments; ``type(op)(**op.get_config())`` rebuilds the op."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{self.name}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = None

    # ---- steps and their geometry (class methods) -------------------------------------------
    @classmethod
    def check_step(cls, step: dict) -> dict:
        """Validate a step of this op (its keys and their kinds, then ``check``); returns a clean copy."""
        if set(step) - {"op"} != set(cls.params):
            raise ValueError(f"step {step!r} must have exactly the keys {sorted(cls.params)} besides 'op'.")
        clean = dict(step)
        for key, kind in cls.params.items():
            clean[key] = _clean_value(step, key, kind)
        cls.check(clean)
        return clean

    @classmethod
    def check(cls, step: dict) -> None:
        """Constraints beyond the kinds of ``params`` on a cleaned step; raises ValueError."""

    @classmethod
    def affine(cls, step: dict, shape: tuple[int, int], forward: bool = False) -> Rows | None:
        """The top two rows ``(a00, a01, a02, a10, a11, a12)`` of the step's 3x3 matrix on
        homogeneous (row, col, 1), or None for a non-affine op.

        The default is the *pull-back* (output pixel -> source pixel); ``forward=True`` gives
        the map that moves content (source -> output), its exact inverse. Plain floats: cheaper
        than tiny NumPy arrays when composing a few steps per sample.
        """
        return None

    @classmethod
    def matrix(cls, step: dict, shape: tuple[int, int], forward: bool = False) -> np.ndarray | None:
        """:meth:`affine` as a 3x3 NumPy array, or None for a non-affine op."""
        a = cls.affine(step, shape, forward)
        if a is None:
            return None
        return np.array([a[0:3], a[3:6], (0.0, 0.0, 1.0)])

    @classmethod
    def inverse(cls, step: dict) -> dict | None:
        """The step that undoes ``step`` exactly, or None if there is none."""
        return None

    @classmethod
    def displacement(cls, shape: tuple[int, int], steps: list[dict]) -> list[tuple[np.ndarray, int]]:
        """Displacement fields of a non-affine op's steps (all at once, so they can share work).

        Returns, per step, a C-contiguous float32 (2, hc, wc) lattice of (row, col)
        displacements and its spacing ``stride`` in pixels: lattice point (y, x) sits at pixel
        (y * stride, x * stride). A step pulls ``p -> p + d(p)`` with ``d`` read bilinearly from
        the lattice, clamped to its edge.
        """
        raise NotImplementedError(f"{cls.name} is neither affine nor a displacement field.")


def step_op(step) -> type[Op]:
    """The op class of a step dict, by its "op" name; raises ValueError for anything else."""
    if not isinstance(step, dict) or "op" not in step:
        raise ValueError(f'a step must be a dict with key "op". Received: {step!r}.')
    op = step["op"]
    if not isinstance(op, str) or op not in Op.registry:
        raise ValueError(f"unknown op {op!r} in {step!r}. Known ops: {sorted(Op.registry)}.")
    return Op.registry[op]


class _Flip(Op):
    params = {"flip": bool}

    def __init__(self, p: float = 0.5):
        (self.p, _) = check_range("p", p, 0.0, 1.0)

    def sample(self, rng, shape):
        return {"op": self.name, "flip": bool(rng.random() < self.p)}

    def get_config(self):
        return {"p": self.p}

    @classmethod
    def inverse(cls, step):
        return dict(step)


class FlipLR(_Flip):
    """Mirror left-right with probability ``p``.

    Example:
        >>> import numpy as np, augment
        >>> augment.FlipLR(p=1.0).sample(np.random.default_rng(0), (4, 4))
        {'op': 'FlipLR', 'flip': True}
    """

    @classmethod
    def affine(cls, step, shape, forward=False):
        return (1.0, 0.0, 0.0, 0.0, -1.0, shape[1] - 1.0) if step["flip"] else IDENTITY_ROWS


class FlipUD(_Flip):
    """Mirror up-down with probability ``p``."""

    @classmethod
    def affine(cls, step, shape, forward=False):
        return (-1.0, 0.0, shape[0] - 1.0, 0.0, 1.0, 0.0) if step["flip"] else IDENTITY_ROWS


class Translate(Op):
    """Shift by fractions of the image size: ``x`` of the width, ``y`` of the height.

    Args:
        x: float or (low, high). Horizontal shift as a fraction of W (positive = right). Defaults to 0.
        y: float or (low, high). Vertical shift as a fraction of H (positive = down). Defaults to 0.
    """

    params = {"x": float, "y": float}

    def __init__(self, x: Range = 0.0, y: Range = 0.0):
        self.x = check_range("x", x)
        self.y = check_range("y", y)

    def sample(self, rng, shape):
        return {"op": self.name, "x": _uniform(rng, self.x), "y": _uniform(rng, self.y)}

    def get_config(self):
        return {"x": _range_repr(self.x), "y": _range_repr(self.y)}

    @classmethod
    def affine(cls, step, shape, forward=False):
        sign = 1.0 if forward else -1.0
        return (1.0, 0.0, sign * step["y"] * shape[0], 0.0, 1.0, sign * step["x"] * shape[1])

    @classmethod
    def inverse(cls, step):
        return {**step, "x": -step["x"], "y": -step["y"]}


class _Angle(Op):
    """An op whose step turns by ``degrees`` (inverse: the opposite angle)."""

    @classmethod
    def inverse(cls, step):
        return {**step, "degrees": -step["degrees"]}


class Rotate(_Angle):
    """Rotate about the image centre by ``degrees`` (positive = counter-clockwise on screen)."""

    params = {"degrees": float}

    def __init__(self, degrees: Range = (-20.0, 20.0)):
        self.degrees = check_range("degrees", degrees)

    def sample(self, rng, shape):
        return {"op": self.name, "degrees": _uniform(rng, self.degrees)}

    def get_config(self):
        return {"degrees": _range_repr(self.degrees)}

    @classmethod
    def affine(cls, step, shape, forward=False):
        # forward (content, CCW on screen): r' - cy = cos t (r - cy) - sin t (c - cx), c' - cx = sin t (r - cy) + cos t (c - cx)
        t = math.radians(step["degrees"])
        cos, sin = math.cos(t), (1.0 if forward else -1.0) * math.sin(t)
        return _about_centre(shape, cos, -sin, sin, cos)


class Shear(_Angle):
    """Shear about the image centre by an angle in degrees, along ``axis`` "x" or "y".

    ``Shear(degrees=(-11.31, 11.31))`` is imgaug's ``shear=(-11.31, 11.31)``: columns move by
    ``tan(angle) * (row - centre_row)``.
    """

    params = {"degrees": float, "axis": ("x", "y")}

    def __init__(self, degrees: Range = (-11.31, 11.31), axis: str = "x"):
        self.degrees = check_range("degrees", degrees, -89.0, 89.0)
        if axis not in ("x", "y"):
            raise ValueError(f'axis must be "x" or "y". Received: axis={axis!r}.')
        self.axis = axis

    def sample(self, rng, shape):
        return {"op": self.name, "degrees": _uniform(rng, self.degrees), "axis": self.axis}

    def get_config(self):
        return {"degrees": _range_repr(self.degrees), "axis": self.axis}

    @classmethod
    def check(cls, step):
        if abs(step["degrees"]) >= 89.9:
            raise ValueError(f"step {step!r}: |degrees| must be < 89.9.")

    @classmethod
    def affine(cls, step, shape, forward=False):
        tan = (1.0 if forward else -1.0) * math.tan(math.radians(step["degrees"]))
        return _about_centre(shape, *((1.0, 0.0, tan, 1.0) if step["axis"] == "x" else (1.0, tan, 0.0, 1.0)))


class Scale(Op):
    """Zoom about the image centre by ``factor`` (> 1 enlarges the content).

    Args:
        factor: float or (low, high), > 0. Defaults to (0.9, 1.1).
        per_axis: bool. Draw rows and columns independently. Defaults to False (isotropic).
    """

    params = {"x": float, "y": float}

    def __init__(self, factor: Range = (0.9, 1.1), per_axis: bool = False):
        self.factor = check_range("factor", factor, 1e-3, 1e3)
        self.per_axis = bool(per_axis)

    def sample(self, rng, shape):
        fy = _uniform(rng, self.factor)
        fx = _uniform(rng, self.factor) if self.per_axis else fy
        return {"op": self.name, "y": fy, "x": fx}

    def get_config(self):
        return {"factor": _range_repr(self.factor), "per_axis": self.per_axis}

    @classmethod
    def check(cls, step):
        if min(step["x"], step["y"]) <= 0:
            raise ValueError(f"step {step!r}: scale factors must be > 0.")

    @classmethod
    def affine(cls, step, shape, forward=False):
        fy, fx = (step["y"], step["x"]) if forward else (1.0 / step["y"], 1.0 / step["x"])
        return _about_centre(shape, fy, 0.0, 0.0, fx)

    @classmethod
    def inverse(cls, step):
        return {**step, "x": 1.0 / step["x"], "y": 1.0 / step["y"]}


class Elastic(Op):
    """Smooth random displacement with imgaug 0.4.0's ``alpha`` and ``sigma`` (pixels).

    A step holds the sampled alpha and sigma and a noise ``seed``; its field is computed by
    :mod:`augment.elastic`. It has no exact inverse.

    Args:
        alpha: float or (low, high), >= 0. Strength. Defaults to 720.
        sigma: float or (low, high), > 0. Smoothness in pixels. Defaults to 24.
        mode: "thesis" (imgaug's truncated kernel, the default) or "gaussian" (true Gaussian).
    """

    params = {"alpha": float, "sigma": float, "mode": MODES, "seed": int}

    def __init__(self, alpha: Range = 720.0, sigma: Range = 24.0, mode: str = "thesis"):
        self.alpha = check_range("alpha", alpha, 0.0, None)
        self.sigma = check_range("sigma", sigma, 0.5, 1e4)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}.")
        self.mode = mode

    def sample(self, rng, shape):
        return {
            "op": self.name,
            "alpha": _uniform(rng, self.alpha),
            "sigma": _uniform(rng, self.sigma),
            "mode": self.mode,
            "seed": int(rng.integers(0, 2**63 - 1)),
        }

    def get_config(self):
        return {"alpha": _range_repr(self.alpha), "sigma": _range_repr(self.sigma), "mode": self.mode}

    @classmethod
    def check(cls, step):
        if step["sigma"] < 0.5 or step["alpha"] < 0:
            raise ValueError(f"step {step!r}: sigma must be >= 0.5 and alpha >= 0.")

    @classmethod
    def displacement(cls, shape, steps):
        """One lattice field per step; steps sharing (sigma, mode) share a layout and one kernel call."""
        groups: dict[tuple, list[int]] = {}
        for k, step in enumerate(steps):
            groups.setdefault((step["sigma"], step["mode"]), []).append(k)
        out: list = [None] * len(steps)
        for (sigma, mode), members in groups.items():
            stride = field_layout(shape, sigma, mode).stride
            alphas, seeds = [steps[k]["alpha"] for k in members], [steps[k]["seed"] for k in members]
            fields = lattice_fields(shape, sigma, mode, alphas, seeds)
            for k, field in zip(members, fields):
                out[k] = (field, stride)
        return out
