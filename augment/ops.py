"""Augmentation ops: each samples its parameters into a plain-dict *step*.

An op holds ranges; ``op.sample(rng, shape)`` draws one step such as
``{"op": "Rotate", "degrees": 12.5}``. Steps are JSON-friendly and carry everything needed
to rebuild the geometry (:func:`affine_matrix`), so a :class:`augment.Transform` can be
stored and replayed without the op objects.

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

from augment.elastic import MODES

Range = float | tuple[float, float]


def _as_range(name: str, value, low: float | None = None, high: float | None = None) -> tuple[float, float]:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        lo = hi = float(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value
    ):
        lo, hi = float(value[0]), float(value[1])
    else:
        raise ValueError(f"{name} must be a number or a (low, high) pair. Received: {name}={value!r}.")
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"{name} must be finite with low <= high. Received: {name}={value!r}.")
    if (low is not None and lo < low) or (high is not None and hi > high):
        raise ValueError(f"{name} must lie within [{low}, {high}]. Received: {name}={value!r}.")
    return lo, hi


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return lo if lo == hi else float(rng.uniform(lo, hi))


def _range_repr(bounds: tuple[float, float]) -> Any:
    return bounds[0] if bounds[0] == bounds[1] else bounds


class Op:
    """Base class: holds parameter ranges, samples steps."""

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Op]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.name = cls.__name__
        if not cls.__name__.startswith("_"):
            Op.registry[cls.__name__] = cls

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


class _Flip(Op):
    def __init__(self, p: float = 0.5):
        (self.p, _) = _as_range("p", p, 0.0, 1.0)

    def sample(self, rng, shape):
        return {"op": self.name, "flip": bool(rng.random() < self.p)}

    def get_config(self):
        return {"p": self.p}


class FlipLR(_Flip):
    """Mirror left-right with probability ``p``.

    Example:
        >>> import numpy as np, augment
        >>> augment.FlipLR(p=1.0).sample(np.random.default_rng(0), (4, 4))
        {'op': 'FlipLR', 'flip': True}
    """


class FlipUD(_Flip):
    """Mirror up-down with probability ``p``."""


class Translate(Op):
    """Shift by fractions of the image size: ``x`` of the width, ``y`` of the height.

    Args:
        x: float or (low, high). Horizontal shift as a fraction of W (positive = right). Defaults to 0.
        y: float or (low, high). Vertical shift as a fraction of H (positive = down). Defaults to 0.
    """

    def __init__(self, x: Range = 0.0, y: Range = 0.0):
        self.x = _as_range("x", x)
        self.y = _as_range("y", y)

    def sample(self, rng, shape):
        return {"op": self.name, "x": _uniform(rng, self.x), "y": _uniform(rng, self.y)}

    def get_config(self):
        return {"x": _range_repr(self.x), "y": _range_repr(self.y)}


class Rotate(Op):
    """Rotate about the image centre by ``degrees`` (positive = counter-clockwise on screen)."""

    def __init__(self, degrees: Range = (-20.0, 20.0)):
        self.degrees = _as_range("degrees", degrees)

    def sample(self, rng, shape):
        return {"op": self.name, "degrees": _uniform(rng, self.degrees)}

    def get_config(self):
        return {"degrees": _range_repr(self.degrees)}


class Shear(Op):
    """Shear about the image centre by an angle in degrees, along ``axis`` "x" or "y".

    ``Shear(degrees=(-11.31, 11.31))`` is imgaug's ``shear=(-11.31, 11.31)``: columns move by
    ``tan(angle) * (row - centre_row)``.
    """

    def __init__(self, degrees: Range = (-11.31, 11.31), axis: str = "x"):
        self.degrees = _as_range("degrees", degrees, -89.0, 89.0)
        if axis not in ("x", "y"):
            raise ValueError(f'axis must be "x" or "y". Received: axis={axis!r}.')
        self.axis = axis

    def sample(self, rng, shape):
        return {"op": self.name, "degrees": _uniform(rng, self.degrees), "axis": self.axis}

    def get_config(self):
        return {"degrees": _range_repr(self.degrees), "axis": self.axis}


class Scale(Op):
    """Zoom about the image centre by ``factor`` (> 1 enlarges the content).

    Args:
        factor: float or (low, high), > 0. Defaults to (0.9, 1.1).
        per_axis: bool. Draw rows and columns independently. Defaults to False (isotropic).
    """

    def __init__(self, factor: Range = (0.9, 1.1), per_axis: bool = False):
        self.factor = _as_range("factor", factor, 1e-3, 1e3)
        self.per_axis = bool(per_axis)

    def sample(self, rng, shape):
        fy = _uniform(rng, self.factor)
        fx = _uniform(rng, self.factor) if self.per_axis else fy
        return {"op": self.name, "y": fy, "x": fx}

    def get_config(self):
        return {"factor": _range_repr(self.factor), "per_axis": self.per_axis}


class Elastic(Op):
    """Smooth random displacement with imgaug 0.4.0's ``alpha`` and ``sigma`` (pixels).

    Args:
        alpha: float or (low, high), >= 0. Strength. Defaults to 720.
        sigma: float or (low, high), > 0. Smoothness in pixels. Defaults to 24.
        mode: "thesis" (imgaug's truncated kernel, the default) or "gaussian" (true Gaussian).
    """

    def __init__(self, alpha: Range = 720.0, sigma: Range = 24.0, mode: str = "thesis"):
        self.alpha = _as_range("alpha", alpha, 0.0, None)
        self.sigma = _as_range("sigma", sigma, 0.5, 1e4)
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


def affine_matrix(step: dict, shape: tuple[int, int], forward: bool = False) -> np.ndarray | None:
    """3x3 matrix on homogeneous (row, col, 1) for an affine step, or None for elastic.

    The default is the *pull-back* (output pixel -> source pixel); ``forward=True`` gives the
    map that moves content (source -> output), its exact inverse.
    """
    a = affine_rows(step, shape, forward)
    if a is None:
        return None
    return np.array([a[0:3], a[3:6], (0.0, 0.0, 1.0)])


def affine_rows(step: dict, shape: tuple[int, int], forward: bool = False) -> tuple | None:
    """The top two rows ``(a00, a01, a02, a10, a11, a12)`` of :func:`affine_matrix` as floats
    (plain Python: cheaper than tiny NumPy arrays when composing a few steps per sample)."""
    h, w = shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    op = step["op"]
    sign = 1.0 if forward else -1.0
    if op == "FlipLR":
        return (1.0, 0.0, 0.0, 0.0, -1.0, w - 1.0) if step["flip"] else (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    if op == "FlipUD":
        return (-1.0, 0.0, h - 1.0, 0.0, 1.0, 0.0) if step["flip"] else (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    if op == "Translate":
        return (1.0, 0.0, sign * step["y"] * h, 0.0, 1.0, sign * step["x"] * w)
    if op == "Elastic":
        return None
    if op == "Rotate":
        # forward (content, CCW on screen): r' - cy = cos t (r - cy) - sin t (c - cx), c' - cx = sin t (r - cy) + cos t (c - cx)
        t = math.radians(step["degrees"])
        cos, sin = math.cos(t), sign * math.sin(t)
        a00, a01, a10, a11 = cos, -sin, sin, cos
    elif op == "Shear":
        tan = sign * math.tan(math.radians(step["degrees"]))
        a00, a01, a10, a11 = (1.0, 0.0, tan, 1.0) if step["axis"] == "x" else (1.0, tan, 0.0, 1.0)
    elif op == "Scale":
        fy, fx = (step["y"], step["x"]) if forward else (1.0 / step["y"], 1.0 / step["x"])
        a00, a01, a10, a11 = fy, 0.0, 0.0, fx
    else:
        raise ValueError(f"unknown op {op!r} in step {step!r}. Known ops: {sorted(Op.registry)}.")
    # about the centre: x -> A (x - ctr) + ctr
    return (a00, a01, cy - (a00 * cy + a01 * cx), a10, a11, cx - (a10 * cy + a11 * cx))


def compose_rows(second: tuple, first: tuple) -> tuple:
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


IDENTITY_ROWS = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def check_step(step, shape) -> dict:
    """Validate one step dict (as produced by ``Op.sample``); returns a clean copy."""
    if not isinstance(step, dict) or "op" not in step:
        raise ValueError(f'a step must be a dict with key "op". Received: {step!r}.')
    op = step["op"]
    expected = {
        "FlipLR": {"flip"},
        "FlipUD": {"flip"},
        "Translate": {"x", "y"},
        "Rotate": {"degrees"},
        "Shear": {"degrees", "axis"},
        "Scale": {"x", "y"},
        "Elastic": {"alpha", "sigma", "mode", "seed"},
    }
    if op not in expected:
        raise ValueError(f"unknown op {op!r} in step {step!r}. Known ops: {sorted(expected)}.")
    keys = set(step) - {"op"}
    if keys != expected[op]:
        raise ValueError(f"step {step!r} must have exactly the keys {sorted(expected[op])} besides 'op'.")
    clean = dict(step)
    for key in keys - {"axis", "mode", "flip", "seed"}:
        value = step[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
            raise ValueError(f"step {step!r}: {key} must be a finite number. Received: {key}={value!r}.")
        clean[key] = float(value)
    if op in ("FlipLR", "FlipUD"):
        clean["flip"] = bool(step["flip"])
    if op == "Scale" and min(clean["x"], clean["y"]) <= 0:
        raise ValueError(f"step {step!r}: scale factors must be > 0.")
    if op == "Shear" and (step["axis"] not in ("x", "y") or abs(clean["degrees"]) >= 89.9):
        raise ValueError(f'step {step!r}: axis must be "x" or "y" and |degrees| < 89.9.')
    if op == "Elastic":
        if step["mode"] not in MODES or clean["sigma"] < 0.5 or clean["alpha"] < 0:
            raise ValueError(f"step {step!r}: mode must be one of {MODES}, sigma >= 0.5 and alpha >= 0.")
        if isinstance(step["seed"], bool) or not isinstance(step["seed"], (int, np.integer)) or step["seed"] < 0:
            raise ValueError(f"step {step!r}: seed must be a non-negative int.")
        clean["seed"] = int(step["seed"])
    return clean
