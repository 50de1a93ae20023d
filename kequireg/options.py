"""Declare an option once: a dataclass field that carries its default, help, choices and range.

Every options object of kequireg (training step, pipeline, inference, executor, …) is a frozen
dataclass whose fields are made with :func:`option`. From that one declaration come

- the object's validation (:func:`check_options`, called in ``__post_init__``): a ``ValueError``
  naming the field, the received value and the rule;
- the command-line option (``cli.dataclass_options.click_options``): flag name, type, choices,
  range, default and help text, so the CLI never retypes a default;
- the saved form (``dataclasses.asdict``), e.g. a run's ``config.json`` and Keras ``get_config``.

Keras-free, so the CLI can read it before ``--backend`` sets the Keras backend.

Example:
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Example:
    ...     rate: float = option(0.5, "A rate.", low=0, high=1)
    ...     def __post_init__(self):
    ...         check_options(self)
    >>> Example(rate=2.0)
    Traceback (most recent call last):
    ...
    ValueError: rate must be in [0, 1]. Received: rate=2.0
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any


def option(default: Any, help: str, *, choices: tuple | None = None, low: float | None = None,
           high: float | None = None, low_open: bool = False, high_open: bool = False, kind: type | None = None,
           nullable: bool | None = None, flags: tuple[str, ...] | None = None, default_text: str | None = None,
           cli: bool = True) -> Any:
    """A dataclass field with the metadata that validation and the CLI read.

    Args:
        default: the default value (a tuple for sequences: fields are frozen).
        help: str. One or two sentences for ``--help`` and the docs.
        choices: tuple or None. Allowed values.
        low, high: float or None. Allowed range (closed unless ``low_open`` / ``high_open``).
        kind: type or None. ``int``, ``float``, ``str`` or ``bool``; None = the default's type
            (``str`` for a None default with ``choices``).
        nullable: bool or None. None is allowed (it means "decided elsewhere", e.g. by the method
            preset or the data); None = whether the default is None.
        flags: tuple of str or None. Command-line spellings; None = ``--field-name``.
        default_text: str or None. What ``--help`` says the default is when it is None.
        cli: bool. Offer the field on the command line. Defaults to True.
    """
    if kind is None:
        kind = str if default is None and choices else type(default) if default is not None else None
    metadata = {"help": help, "choices": tuple(choices) if choices is not None else None, "low": low, "high": high,
                "low_open": low_open, "high_open": high_open, "kind": kind,
                "nullable": default is None if nullable is None else nullable, "flags": flags,
                "default_text": default_text, "cli": cli}
    return dataclasses.field(default=default, metadata=metadata)


def option_fields(cls_or_obj) -> list[dataclasses.Field]:
    """The fields of an options dataclass that were declared with :func:`option`."""
    return [f for f in dataclasses.fields(cls_or_obj) if "help" in f.metadata]


def describe_rule(meta: dict) -> str:
    """The rule a field's value must follow, in words (for error messages and docs)."""
    if meta["choices"] is not None:
        return f"one of {meta['choices']}"
    kind = meta["kind"]
    if meta["low"] is not None or meta["high"] is not None:
        left = "(" if meta["low_open"] else "["
        right = ")" if meta["high_open"] else "]"
        low = "-inf" if meta["low"] is None else f"{meta['low']:g}"
        if meta["high"] is None:
            rule = f"{'>' if meta['low_open'] else '>='} {low}"
            return f"an integer {rule}" if kind is int else rule
        rule = f"in {left}{low}, {meta['high']:g}{right}"
        return f"an integer {rule}" if kind is int else rule
    return {int: "an integer", float: "a number", bool: "True or False", str: "a string"}.get(kind, "valid")


def _value_error(field: dataclasses.Field, value) -> str | None:
    meta = field.metadata
    if value is None:
        return None if meta["nullable"] else describe_rule(meta)
    kind = meta["kind"]
    if meta["choices"] is not None:
        return None if value in meta["choices"] else describe_rule(meta)
    if kind is bool and not isinstance(value, bool):
        return describe_rule(meta)
    if kind is int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        return describe_rule(meta)
    if kind is float and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        return describe_rule(meta)
    if kind is str and not isinstance(value, str):
        return describe_rule(meta)
    low, high = meta["low"], meta["high"]
    if value != value:  # NaN passes every comparison below
        return describe_rule(meta)
    if low is not None and (value <= low if meta["low_open"] else value < low):
        return describe_rule(meta)
    if high is not None and (value >= high if meta["high_open"] else value > high):
        return describe_rule(meta)
    return None


def check_options(obj) -> None:
    """Validate every :func:`option` field of ``obj``; the first bad one raises.

    Raises:
        ValueError: ``"<name> must be <rule>. Received: <name>=<value>"``.
    """
    for field in option_fields(obj):
        value = getattr(obj, field.name)
        rule = _value_error(field, value)
        if rule is not None:
            extra = " or None" if field.metadata["nullable"] else ""
            raise ValueError(f"{field.name} must be {rule}{extra}. Received: {field.name}={value!r}")


def coerce_floats(obj) -> None:
    """Turn ints given for float fields into floats in place (a frozen dataclass's ``__post_init__``)."""
    for field in option_fields(obj):
        value = getattr(obj, field.name)
        if field.metadata["kind"] is float and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            object.__setattr__(obj, field.name, float(value))


def defaults_of(cls) -> dict:
    """Field name -> default of an options dataclass (for code that must name a default)."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
