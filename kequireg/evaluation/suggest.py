"""Which cases to annotate next: rank a pool of unlabeled cases by a run's per-case QC score.

MONAI Label's active-learning loop, with the QC scores kequireg already computes: every case of
the pool goes through ``kequireg predict`` with test-time augmentation and uncertainty
(:func:`kequireg.inference.predict.predict_folder`, ``InferenceOptions(tta=N, uncertainty=True)``),
and its ``qc.csv`` row (:mod:`kequireg.inference.uncertainty`) ranks it, least trusted first.
Each score's direction comes from :data:`kequireg.evaluation.qc.QC_SCORES` (entropy and
disagreement: higher = trust less; equivariance Dice: higher = trust more). A case without a
value (no predicted tumour: no disagreement inside it) counts as the least trusted, as
``qc_uncertainty`` already does for it (log K): there is nothing there to trust.

The output folder::

    OUT/suggestions.csv            rank, case_id, score, every QC column, volumes, labeled, files
    OUT/overlays/NN_<case>.png     the top --n cases: image, predicted labels, entropy map
    OUT/predictions/               what `kequireg predict --tta N --uncertainty` writes
                                   (labels to start annotating from, uncertainty maps, qc.csv)
    OUT/suggest.json               the model (its sha256) and the inference settings used

A rerun resumes: cases predicted earlier (with a ``qc.csv`` row) are kept, new pool cases are
predicted, and the ranking and overlays are redone from all rows. If the model file or the
settings that change predictions differ from ``suggest.json``, the rerun stops and says to pass
``overwrite`` (which predicts every case again).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

from kequireg.data.discovery import find_cases
from kequireg.evaluation.qc import PRIMARY_QC, QC_SCORES
from kequireg.inference import uncertainty
from kequireg.inference.nifti import output_filename
from kequireg.inference.options import InferenceOptions
from kequireg.inference.tta import FLIP_VIEWS
from kequireg.inference.predict import predict_folder, preprocess_params, training_params
from kequireg.inference.runs import load_network, open_run
from kequireg.io import atomic_dir, atomic_write_json, read_json, write_csv_rows
from kequireg.options import check_options, option

# The TTA views of `kequireg suggest` unless --tta says otherwise (uncertainty needs >= 2): every view of the
# default flips policy, each once. Flips rather than a weak policy: their pull-backs are exact and leave no pixel
# out of a view, so every voxel's entropy and disagreement average the same 4 predictions, the ranking is the
# same on every rerun whatever --tta-seed says, and a case costs 4 forward passes. (It was 8, which cycled the
# 3 flips with uneven weights.)
SUGGEST_TTA = FLIP_VIEWS
SUGGESTIONS_CSV = "suggestions.csv"
SETTINGS_JSON = "suggest.json"
PREDICTIONS_DIR = "predictions"
OVERLAYS_DIR = "overlays"


@dataclass(frozen=True)
class SuggestOptions:
    """How ``kequireg suggest`` ranks the pool and how many overlays it draws.

    Args:
        n: int >= 0. Overlays of the ``n`` least trusted cases (0 = none). Defaults to 10.
        score: one of ``QC_SCORES``. The QC score to rank by. Defaults to ``PRIMARY_QC``.

    Example:
        >>> SuggestOptions(score="qc_equivariance_dice").direction
        -1.0
    """

    n: int = option(10, "Draw overlays of the N least trusted cases (0 = none); the CSV ranks every case.", low=0)
    score: str = option(PRIMARY_QC, "QC score to rank by: the equivariance Dice of the TTA views (higher = more "
                                    "trusted; it ranked held-out cases by their true Dice best, docs/evaluation.md), "
                                    "or the mean TTA entropy or equivariance disagreement inside the predicted "
                                    "tumour (higher = less trusted).", choices=tuple(QC_SCORES))

    def __post_init__(self):
        check_options(self)

    @property
    def direction(self) -> float:
        """+1 when a higher score means trust the case less, -1 when it means trust it more."""
        return QC_SCORES[self.score]


def rank_rows(rows: list[dict], score: str = PRIMARY_QC) -> list[dict]:
    """Rows sorted least trusted first, each with ``rank`` (1 = annotate first) and ``score``.

    Args:
        rows: dicts with ``case_id`` and the ``score`` column (float or a numeric string).
        score: a key of ``QC_SCORES``. Defaults to ``PRIMARY_QC``.

    Returns:
        New dicts: ``rank``, ``case_id``, ``score`` first, then the row's other keys. A missing or
        NaN score ranks first (least trusted); ties keep case-id order.

    Raises:
        ValueError: ``score`` is not a QC score.

    Example:
        >>> [r["case_id"] for r in rank_rows([{"case_id": "a", "qc_uncertainty": 0.1},
        ...                                   {"case_id": "b", "qc_uncertainty": 0.5}], "qc_uncertainty")]
        ['b', 'a']
        >>> [r["case_id"] for r in rank_rows([{"case_id": "a", "qc_equivariance_dice": 0.9},
        ...                                   {"case_id": "b", "qc_equivariance_dice": 0.5}], "qc_equivariance_dice")]
        ['b', 'a']
    """
    if score not in QC_SCORES:
        raise ValueError(f"score must be one of {tuple(QC_SCORES)}. Received: score={score!r}")

    def distrust(row: dict) -> float:
        value = _float(row.get(score))
        return math.inf if math.isnan(value) else QC_SCORES[score] * value

    ordered = sorted(rows, key=lambda row: (-distrust(row), str(row["case_id"])))
    return [{"rank": k, "case_id": row["case_id"], "score": _float(row.get(score)),
             **{key: value for key, value in row.items() if key != "case_id"}} for k, row in enumerate(ordered, 1)]


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def model_file(model_path: str | os.PathLike) -> Path:
    """The ``.keras`` file a run folder or a model path stands for (what ``load_network`` reads).

    Raises:
        FileNotFoundError: neither a run folder nor a ``.keras`` file is at ``model_path``.
    """
    path = Path(model_path)
    if path.is_dir():
        path = open_run(path).best_path
    if not (path.is_file() and path.suffix == ".keras"):
        raise FileNotFoundError(f"no run folder with a best.keras, or .keras model, at {str(model_path)!r}; pass a "
                                "trained run folder or a .keras file.")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_settings(out_dir: Path, settings: dict, overwrite: bool) -> None:
    """Stop a rerun whose model or prediction settings differ from the folder's ``suggest.json``.

    Raises:
        ValueError: naming ``suggest.json``, the differing entries and the fix (``--overwrite``).
    """
    path = out_dir / SETTINGS_JSON
    if overwrite or not path.is_file():
        return
    earlier = read_json(path, "suggest settings", f"remove {str(out_dir)!r} or pass --overwrite")
    keys = ("model_sha256", "inference", "data")
    changed = [k for k in keys if earlier.get(k) != settings[k]]
    if changed:
        details = "; ".join(f"{k}: {earlier.get(k)!r} then, {settings[k]!r} now" for k in changed)
        raise ValueError(f"{str(path)!r} was made with another model or other prediction settings ({details}); pass "
                         "--overwrite to predict every case again, or choose another output folder.")


_QC_PREFIXES = ("qc_", "volume_")  # the columns of uncertainty.qc_columns(schema)


def read_qc_rows(predictions: Path, case_ids: list[str]) -> dict[str, dict]:
    """The ``qc.csv`` rows of ``case_ids`` under ``predictions`` (case ids kept as strings)."""
    path = predictions / uncertainty.QC_CSV
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        rows = {row["case_id"]: row for row in csv.DictReader(f)}
    # the QC scores and the volumes of whichever regions the run's label schema has
    return {c: {"case_id": c, **{k: _float(v) for k, v in rows[c].items() if k.startswith(_QC_PREFIXES)}}
            for c in case_ids if c in rows}


def drop_unscored(predictions: Path, cases: list, layout) -> None:
    """Remove label files of cases without a ``qc.csv`` row (an interrupted run), so they are predicted again."""
    scored = read_qc_rows(predictions, [c.case_id for c in cases])
    for case in cases:
        label = predictions / output_filename(case.case_id, layout)
        if case.case_id not in scored and label.is_file():
            label.unlink()


def default_out_dir(model_path: str | os.PathLike, pool: str | os.PathLike) -> Path:
    """``RUN/suggest-<pool folder name>`` (beside a ``.keras`` file: ``<stem>-suggest-<pool folder name>``).

    Example:
        >>> default_out_dir("models/net.keras", "data/unlabeled/").as_posix()
        'models/net-suggest-unlabeled'
    """
    model_path, name = Path(model_path), Path(pool).resolve().name or "pool"
    if model_path.is_dir():
        return model_path / f"suggest-{name}"
    return model_path.parent / f"{model_path.stem}-suggest-{name}"


def format_suggestions(rows: list[dict], score: str, limit: int | None = None) -> str:
    """The ranked list as a plain-text table (rank, case, score, predicted whole-tumour volume).

    Args:
        rows: from :func:`suggest` (or :func:`rank_rows`).
        score: the QC score's name (the score column's header).
        limit: int or None. Show only the first ``limit`` rows. Defaults to every row.

    Returns:
        str, one line per case after a header.
    """
    width = max([len("case_id"), *(len(str(r["case_id"])) for r in rows)])
    lines = [f"{'rank':>4}  {'case_id':<{width}}  {score:>20}  {'WT mL':>8}  labeled"]
    for row in rows[:limit]:
        lines.append(f"{row['rank']:>4}  {str(row['case_id']):<{width}}  {row['score']:>20.4g}  "
                     f"{_float(row.get('volume_wt_ml')):>8.2f}  {'yes' if row.get('labeled') else 'no'}")
    return "\n".join(lines)


def suggest(model_path: str | os.PathLike, pool: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
            options: SuggestOptions | None = None, inference: InferenceOptions | None = None,
            data: str | os.PathLike | None = None, overwrite: bool = False, progress: bool = False,
            log=None) -> list[dict]:
    """``kequireg suggest``: rank the cases of ``pool`` for annotation, least trusted first.

    Args:
        model_path: a run folder or a ``.keras`` model file (as for ``kequireg predict``).
        pool: BraTS case folders or an nnU-Net raw dataset (``find_cases``); cases with a
            segmentation file are ranked too (``labeled`` column).
        out_dir: output folder (see the module docstring for its files). None =
            :func:`default_out_dir`.
        options: ``SuggestOptions`` (overlay count, score). Defaults to ``SuggestOptions()``.
        inference: ``InferenceOptions``; ``uncertainty`` is switched on. Defaults to
            ``SUGGEST_TTA`` flip views.
        data: slice store whose preprocessing to apply. Defaults to the run's own.
        overwrite: bool. Predict every case again. Defaults to False (resume).
        progress: bool. Progress bar on stderr. Defaults to False.
        log: optional callable taking a status line.

    Returns:
        The ranked rows, as written to ``suggestions.csv``.

    Raises:
        FileNotFoundError: no model at ``model_path``, or ``pool`` does not exist.
        ValueError: no case in ``pool`` (naming it), a case missing a modality, fewer than 2
            TTA views, or a rerun with another model or settings without ``overwrite``.

    Example:
        >>> rows = suggest("runs/equireg-0.1-s0", "unlabeled/", "next", options=SuggestOptions(n=10))  # doctest: +SKIP
        >>> rows[0]["case_id"], rows[0]["score"]  # doctest: +SKIP
    """
    from kequireg.evaluation.suggest_figure import suggestion_overlay  # lazy: matplotlib only when drawing

    options = options or SuggestOptions()
    inference = dataclasses.replace(inference or InferenceOptions(tta=SUGGEST_TTA), uncertainty=True)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(model_path, pool)
    predictions = out_dir / PREDICTIONS_DIR
    params = training_params(model_path, data, progress=progress)
    cases = find_cases(pool, preprocess_params(params).channels)
    layout = cases[0].dataset
    settings = {"model": str(model_path), "model_sha256": _sha256(model_file(model_path)), "pool": str(pool),
                "data": None if data is None else str(data), "inference": inference.describe(), "score": options.score}
    check_settings(out_dir, settings, overwrite)
    atomic_write_json(out_dir / SETTINGS_JSON, settings)
    drop_unscored(predictions, cases, layout)
    model = load_network(model_path)
    if log is not None:
        log(f"model {model_path} ({model.count_params():,} parameters); {len(cases)} case(s) in {pool}; "
            f"TTA {inference.tta} views ({inference.tta_policy})")
    predict_folder(model, pool, predictions, params=params, overwrite=overwrite, options=inference, progress=progress)
    scored = read_qc_rows(predictions, [c.case_id for c in cases])
    by_id = {c.case_id: c for c in cases}
    # a case with no slice in the model's window gets labels but no qc row: unscored, so least trusted
    ranked = rank_rows([{**scored.get(c.case_id, {"case_id": c.case_id}), "labeled": c.seg is not None} for c in cases],
                       options.score)
    with atomic_dir(out_dir / OVERLAYS_DIR, replace=True) as folder:
        for row in ranked[:options.n]:
            case = by_id[row["case_id"]]
            name = f"{row['rank']:0{len(str(len(ranked)))}d}_{case.case_id}.png"
            suggestion_overlay(case, predictions, row, options.score, folder / name)
            row["overlay"] = f"{OVERLAYS_DIR}/{name}"
    for row in ranked:
        row["prediction"] = f"{PREDICTIONS_DIR}/{output_filename(row['case_id'], layout)}"
        row.setdefault("overlay", "")
    qc = [k for k in ranked[0] if k.startswith(_QC_PREFIXES)] if ranked else list(uncertainty.QC_COLUMNS)
    columns = ("rank", "case_id", "score", *qc, "labeled", "prediction", "overlay")
    write_csv_rows(out_dir / SUGGESTIONS_CSV, ranked, columns)
    return ranked
