"""Config files: a run's or a study's settings in a TOML file (or a run folder's ``config.json``).

``kequireg train --config run.toml`` reads any ``TrainConfig`` field from the file (the names of
``config.json``; ``lambda`` is accepted for ``lambda_``); options given on the command line
override it. A run folder's ``config.json`` (or the folder itself) is read the same way, so
``kequireg train --config runs/X/config.json --run-dir runs/Y`` trains the same run again.
``kequireg train --print-config`` writes the resolved config back as TOML (:func:`train_toml`).

``kequireg experiment --config study.toml`` reads a ``[training]`` table (the ``TrainConfig``
template of every run) and a ``[grid]`` table (``ExperimentSettings``' axes: methods, fractions,
label_seeds, repeats, equireg_full, split, equivariance_seed, budget).

Why TOML: it is in the standard library from Python 3.11 (``tomllib``; ``tomli`` before), typed
(numbers, booleans and strings stay what they are, unlike YAML's ``no`` or ``1e-3``-as-string
surprises), has comments, and is what Python projects already write (pyproject.toml). TOML has
no null: a field left out means its default (in a written file, unset fields are comments).

Paths in a file (``data``, ``run_dir``) are read as on the command line: relative to the current
folder. Keras-free (the CLI reads files before ``--backend`` takes effect).

Example:
    >>> config = train_config_from_text('optimizer = "sgd"\\nlambda = 0.5\\n', overrides={"seed": 3})
    >>> config.optimizer, config.lambda_, config.seed
    ('sgd', 0.5, 3)
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import textwrap
from pathlib import Path

import tomli_w

from kequireg.experiments.experiment_settings import PER_RUN_FIELDS, ExperimentSettings
from kequireg.options import check_options, option_fields
from kequireg.training.config import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ALIASES = {"lambda": "lambda_"}  # TOML key -> TrainConfig field (a bare ``lambda`` reads naturally in TOML)
CONFIG_JSON = "config.json"
# ExperimentSettings fields a study file's [grid] table may set, with the type of each value.
GRID_FIELDS = {"methods": (str,), "fractions": (int, float), "label_seeds": (int,), "repeats": int,
               "equireg_full": bool, "split": str, "equivariance_seed": int, "budget": str,
               "folds": "all or fold indices"}
STUDY_TABLES = ("training", "grid")


class ConfigFileError(ValueError):
    """A config file that cannot be used; the message names the file, the key and the fix."""


def config_path(path: str | os.PathLike) -> Path:
    """The file to read: ``path``, or ``path/config.json`` for a run folder.

    Raises:
        FileNotFoundError: ``path`` does not exist, or is a folder without config.json.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_JSON
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist; give a .toml file, a run folder's "
                                f"{CONFIG_JSON} or the run folder")
    return path


def read_table(path: str | os.PathLike) -> dict:
    """The key/value table of a TOML file (``.toml``) or a JSON file (``.json``, e.g. config.json).

    Raises:
        FileNotFoundError: no such file.
        ConfigFileError: not valid TOML / JSON, not a table, or another suffix.
    """
    path = config_path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            table = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigFileError(f"config file {str(path)!r} is not valid JSON ({err})") from err
        if not isinstance(table, dict):
            raise ConfigFileError(f"config file {str(path)!r} must hold a JSON object of settings")
        return table
    if path.suffix != ".toml":
        raise ConfigFileError(f"config file {str(path)!r}: expected a .toml file or a run's {CONFIG_JSON}. "
                              f"Received suffix {path.suffix!r}")
    return _parse_toml(text, str(path))


def _parse_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigFileError(f"config file {where!r} is not valid TOML ({err})") from err


def train_values(table: dict, where: str, allowed: set[str] | None = None) -> dict:
    """``TrainConfig`` field values of one table: aliases mapped, keys and each value's rule checked.

    Args:
        table: dict. Keys and values as read from the file (None values = default, dropped).
        where: str. The file (and table) named in errors.
        allowed: set of str or None. The fields the table may set; None = every TrainConfig field.

    Returns:
        dict of field name -> value.

    Raises:
        ConfigFileError: an unknown key (named, with the known keys), a key given twice under
            two spellings, or a value breaking its field's rule.
    """
    known = {f.name for f in dataclasses.fields(TrainConfig)} if allowed is None else set(allowed)
    values = {}
    for key, value in table.items():
        name = ALIASES.get(key, key)
        if name not in known:
            hint = _misplaced_hint(name)
            raise ConfigFileError(f"config file {where}: unknown key {key!r}{hint}. Known keys: "
                                  f"{', '.join(sorted(known))} (and 'lambda' for lambda_)")
        if name in values:
            raise ConfigFileError(f"config file {where}: {name!r} is given twice (as 'lambda' and 'lambda_'); keep one")
        if value is not None:
            values[name] = value
    try:
        check_options(TrainConfig(**values))  # each field's own rule; the rules between fields come later
    except ValueError as err:
        raise ConfigFileError(f"config file {where}: {err}") from None
    return values


def _misplaced_hint(name: str) -> str:
    if name in PER_RUN_FIELDS and name != "seed":
        return f" (set per run by the grid: use {name}s = [...] in [grid])" if name != "run_dir" else \
            " (each run's folder is made by the experiment)"
    if name in GRID_FIELDS:
        return " (a grid axis: put it in the [grid] table)"
    return ""


def read_train_file(path: str | os.PathLike) -> dict:
    """The ``TrainConfig`` values of a TOML file or a run's config.json (see :func:`train_values`)."""
    path = config_path(path)
    return train_values(read_table(path), repr(str(path)))


def train_config(path: str | os.PathLike, overrides: dict | None = None) -> TrainConfig:
    """The ``TrainConfig`` of a config file, ``overrides`` (the options given on the command line) on top.

    Fields in neither keep their defaults (None ones are filled when training resolves the
    config). Not validated across fields: call ``validate()`` (training does).

    Raises:
        FileNotFoundError, ConfigFileError: see :func:`read_table` and :func:`train_values`.
    """
    return TrainConfig(**{**read_train_file(path), **(overrides or {})})


def train_config_from_text(text: str, overrides: dict | None = None, where: str = "<text>") -> TrainConfig:
    """:func:`train_config` of TOML text instead of a file."""
    return TrainConfig(**{**train_values(_parse_toml(text, where), repr(where)), **(overrides or {})})


def resolve_train_config(config: TrainConfig, progress: bool = True) -> TrainConfig:
    """``config`` with every default filled as training would fill it (demo or store settings).

    The demo-or-store decision is ``open_dataset``'s (the store is opened and closed; without
    ``data`` the demo store is built first if it is not in the cache yet).

    Raises:
        FileNotFoundError: the store or its splits file is missing.
        ValueError: a bad value.
    """
    # lazy: import time: h5py (the store) only when a config is resolved, not when a file is read
    from kequireg.data.dataset import open_dataset

    config.validate()
    with open_dataset(config.data, progress=progress) as dataset:
        return config.resolve(demo=dataset.is_demo)


def train_toml(config: TrainConfig, title: str | None = None, table: str | None = None,
               skip: tuple[str, ...] = ()) -> str:
    """``config`` as commented TOML: each field's help, then ``name = value`` (unset fields commented out).

    Reading the text back (:func:`train_config_from_text`) gives ``config`` again.

    Args:
        config: TrainConfig.
        title: str or None. A comment line at the top.
        table: str or None. A ``[table]`` header to write the fields under (a study's ``training``).
        skip: field names to leave out.
    """
    lines = [f"# {title}"] if title else []
    if table:
        lines += [f"[{table}]"]
    for field in option_fields(config):
        if field.name in skip:
            continue
        help_text = field.metadata["help"]
        lines += textwrap.wrap(help_text, 98, initial_indent="# ", subsequent_indent="# ")
        value = getattr(config, field.name)
        if value is None:
            unset = field.metadata["default_text"] or "decided when training"
            lines.append(f"# {field.name} = ...  (unset: {unset.rstrip('.')})")
        else:
            lines.append(tomli_w.dumps({field.name: value}).rstrip("\n"))
    return "\n".join(lines) + "\n"


def read_study_file(path: str | os.PathLike) -> tuple[dict, dict]:
    """The ``[training]`` template values and the ``[grid]`` values of a study's TOML file.

    Returns:
        (training, grid): TrainConfig field values (checked one by one) and ExperimentSettings
        field values (checked for their types; sequences as tuples).

    Raises:
        FileNotFoundError: no such file.
        ConfigFileError: not TOML, an unknown table or key (named, with the known ones), a per-run
            field in [training], or a value of the wrong type.
    """
    path = config_path(path)
    table = read_table(path)
    where = repr(str(path))
    unknown = sorted(set(table) - set(STUDY_TABLES))
    if unknown:
        raise ConfigFileError(f"config file {where}: unknown key or table {unknown[0]!r}; a study file holds the "
                              f"tables {', '.join(f'[{t}]' for t in STUDY_TABLES)}")
    for name in STUDY_TABLES:
        if not isinstance(table.get(name, {}), dict):
            raise ConfigFileError(f"config file {where}: {name!r} must be a table ([{name}]). "
                                  f"Received: {table[name]!r}")
    template_fields = {f.name for f in dataclasses.fields(TrainConfig)} - (set(PER_RUN_FIELDS) - {"seed"})
    training = train_values(table.get("training", {}), f"{where} [training]", allowed=template_fields)
    grid = {key: _grid_value(key, value, f"{where} [grid]") for key, value in table.get("grid", {}).items()}
    return training, grid


def _grid_value(key: str, value, where: str):
    if key not in GRID_FIELDS:
        raise ConfigFileError(f"config file {where}: unknown key {key!r}. Known keys: {', '.join(GRID_FIELDS)}")
    kind = GRID_FIELDS[key]
    if key == "folds":  # "all" or a list of fold indices (a store made with --folds K)
        items = value if isinstance(value, list) else [value]
        if value == "all":
            return value
        if not items or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in items):
            raise ConfigFileError(f"config file {where}: folds must be \"all\" or a list of fold indices like "
                                  f"[0, 1, 2]. Received: folds={value!r}")
        return tuple(items)
    if isinstance(kind, tuple):  # a sequence axis; one value is a list of one
        items = value if isinstance(value, list) else [value]
        if not items or any(not isinstance(v, kind) or isinstance(v, bool) for v in items):
            names = " or ".join(k.__name__ for k in kind)
            raise ConfigFileError(f"config file {where}: {key} must be a non-empty list of {names}. "
                                  f"Received: {key}={value!r}")
        return tuple(items)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigFileError(f"config file {where}: {key} must be {kind.__name__}. Received: {key}={value!r}")
    return value


def experiment_settings(path: str | os.PathLike | None, training: dict | None = None,
                        grid: dict | None = None) -> ExperimentSettings:
    """The ``ExperimentSettings`` of a study file, with the command line's ``training`` and ``grid`` on top.

    Args:
        path: a study TOML file, or None (the command line alone).
        training: dict. TrainConfig template values given on the command line (override [training]).
        grid: dict. ExperimentSettings values given on the command line (override [grid]).

    Raises:
        FileNotFoundError, ConfigFileError: see :func:`read_study_file`.
        ValueError: the merged settings break a rule (named, with the value).
    """
    file_training, file_grid = read_study_file(path) if path is not None else ({}, {})
    template = TrainConfig(**{**file_training, **(training or {})})
    return ExperimentSettings(template=template, **{**file_grid, **(grid or {})})


def study_toml(settings: ExperimentSettings, title: str | None = None) -> str:
    """``settings`` as a study TOML file ([grid], then [training] with every template field)."""
    grid = [f"{key} = {_inline(value)}" for key in GRID_FIELDS if (value := getattr(settings, key)) is not None]
    head = [f"# {title}"] if title else []
    body = train_toml(settings.template, table="training", skip=tuple(n for n in PER_RUN_FIELDS if n != "seed"))
    return "\n".join(head + ["[grid]", *grid, "", body.rstrip("\n")]) + "\n"


def _inline(value) -> str:
    """A TOML value on one line (tomli-w writes arrays over several)."""
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).partition("=")[2].strip()
