"""Click options made from an options dataclass (``kequireg.options.option`` fields).

One declaration, in the library, gives the flag, its type, choices, range, default and help;
the CLI never retypes them. Used by every command whose options form one object.

Example:
    @click.command()
    @click_options(InferenceOptions, into="options")
    def predict(options): ...
"""

from __future__ import annotations

import dataclasses
import functools

import click

from kequireg.options import option_fields


def flag_names(field: dataclasses.Field) -> tuple[str, ...]:
    """The command-line spellings of a field (``--field-name`` unless declared)."""
    return field.metadata["flags"] or (f"--{field.name.rstrip('_').replace('_', '-')}",)


def _click_type(meta: dict):
    kind = meta["kind"]
    if meta["choices"] is not None:
        return click.Choice([str(c) for c in meta["choices"]])
    ranged = meta["low"] is not None or meta["high"] is not None
    if kind is int:
        if not ranged:
            return int
        return click.IntRange(meta["low"], meta["high"], min_open=meta["low_open"], max_open=meta["high_open"])
    if kind is float:
        if not ranged:
            return float
        return click.FloatRange(meta["low"], meta["high"], min_open=meta["low_open"], max_open=meta["high_open"])
    return str


def click_option(field: dataclasses.Field, **overrides):
    """The ``click.option`` decorator of one field (``overrides`` replace any keyword)."""
    meta = field.metadata
    help_text = meta["help"]
    if field.default is None and meta["default_text"]:
        help_text = f"{help_text} Default: {meta['default_text']}"
    names = flag_names(field)
    if meta["kind"] is bool:  # an on/off switch, so a command line can also turn off what a default turned on
        long = names[0]
        decls = [f"{long}/--no-{long[2:]}", field.name]
        kwargs = dict(default=field.default, show_default=True, help=help_text)
    else:
        decls = [*names, field.name]
        kwargs = dict(type=_click_type(meta), default=field.default, show_default=field.default is not None,
                      help=help_text)
    kwargs.update(overrides)
    return click.option(*decls, **kwargs)


def click_options(cls, names=None, *, exclude=(), into: str | None = None, extra=None, overrides=None):
    """A decorator adding one click option per field of ``cls`` (in field order).

    Args:
        cls: an options dataclass whose fields were made with ``kequireg.options.option``.
        names: iterable of str or None. The fields to offer; None = every field with ``cli=True``.
        exclude: field names to leave out.
        into: str or None. If set, the command receives ``into=cls(**values)`` instead of one
            argument per field; a ``ValueError`` from ``cls`` becomes a ``click.UsageError``.
        extra: dict or None. Fixed values passed to ``cls`` besides the options (with ``into``).
        overrides: dict of field name -> dict of ``click.option`` keywords to replace.
    """
    fields = [f for f in option_fields(cls) if f.metadata["cli"] and f.name not in exclude]
    if names is not None:
        by_name = {f.name: f for f in fields}
        fields = [by_name[n] for n in names]
    overrides = overrides or {}

    def decorator(func):
        if into is None:
            wrapper = func
        else:
            @functools.wraps(func)
            def wrapper(*args, **kwargs):
                values = {f.name: kwargs.pop(f.name) for f in fields}
                try:
                    kwargs[into] = cls(**values, **(extra or {}))
                except ValueError as err:
                    raise click.UsageError(str(err)) from err
                return func(*args, **kwargs)

        for field in reversed(fields):
            wrapper = click_option(field, **overrides.get(field.name, {}))(wrapper)
        return wrapper

    return decorator
