"""Segment BraTS-layout case folders into BraTS-format NIfTI files.

Each case folder (``<case>/<case>_{flair,t1,t1ce,t2}.nii.gz`` or, BraTS 2023-2025,
``<case>/<case>-{t2f,t1n,t1c,t2w}.nii.gz``, with or without a seg file) is preprocessed exactly
as the training store was (its stored parameters), predicted slice by slice, restored to the
source geometry and written as ``OUT_DIR/<case>.nii.gz`` in the input release's labels ({0, 1, 2,
4} or {0, 1, 2, 3}), uint8, with the source affine and header. Cases whose output already exists are
skipped unless ``overwrite`` is set, so an interrupted run resumes where it stopped.
``InferenceOptions`` add test-time augmentation, post-processing, uncertainty maps with
``qc.csv`` and probabilities (:mod:`kequireg.inference.uncertainty`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from kequireg.data.dataset import open_dataset
from kequireg.data.discovery import find_cases
from kequireg.data.preprocess import PreprocessParams, preprocess_case
from kequireg.inference import uncertainty
from kequireg.inference.ensemble import load_model, model_paths
from kequireg.inference.nifti import export_case, output_filename
from kequireg.inference.options import InferenceOptions
from kequireg.inference.outputs import network_output
from kequireg.inference.progress import progress_bar
from kequireg.inference.runs import open_run
from kequireg.label_schema import check_same_schema
from kequireg.vocabulary import BRATS_2019, schema_of


def predict_cases(model, cases: Iterable, out_dir: str | os.PathLike, *, options: InferenceOptions | None = None,
                  layout=None, schema=None) -> list[Path]:
    """Predict preprocessed cases and write one BraTS NIfTI per case.

    Args:
        model: keras.Model returning logits.
        cases: iterable of ``PreprocessedCase`` (labels not needed; wrap it in
            :func:`~kequireg.inference.progress.progress_bar` for a progress bar).
        out_dir: output folder (created if missing).
        options: ``InferenceOptions``: batch size, test-time augmentation, post-processing, and
            the extra outputs of :mod:`kequireg.inference.uncertainty` (uncertainty maps and
            ``qc.csv``, probabilities). Defaults to plain prediction (labels only).
        layout: the nnU-Net dataset the cases came from (``CaseFiles.dataset``): its file naming
            and label values. Defaults to None (BraTS).
        schema: the LabelSchema of the input data: the label values written (its
            ``file_values``) and the regions of the QC volumes. Defaults to the layout's, else
            BraTS 2019.

    Returns:
        Paths of the written label files.
    """
    options = options or InferenceOptions()
    schema = schema if schema is not None else layout.schema if layout is not None else BRATS_2019
    options.check_schema(schema)
    predictor = options.predictor(model, schema=schema)
    written, qc_rows = [], []
    for case in cases:
        if not len(case.images):
            written.append(export_case(np.zeros((0, 1, 1), np.uint8), case, out_dir, layout=layout, schema=schema))
            continue
        result = predictor(case.images)
        labels = options.postprocess_slices(result.labels, case)
        written.append(export_case(labels, case, out_dir, layout=layout, schema=schema))
        if options.uncertainty:
            uncertainty.write_uncertainty(result, case, out_dir)
            qc_rows.append({"case_id": case.case_id, **uncertainty.qc_row(result, labels, case.geometry.stored_spacing, schema)})
        if options.save_probabilities:
            uncertainty.write_probabilities(result.probs, case, out_dir)
    if qc_rows:
        uncertainty.write_qc_csv(qc_rows, out_dir)
    return written


def preprocess_params(params: dict | None):
    """``PreprocessParams`` from a store's ``params`` dict (unknown keys, e.g. descriptions, ignored)."""
    known = {f.name for f in dataclasses.fields(PreprocessParams)}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in (params or {}).items() if k in known}
    return PreprocessParams(**kwargs)


def preprocess_case_files(case, params, size: tuple[int, int]):
    """Preprocess one raw case exactly as the store was and cut the store's (H, W) window.

    :func:`kequireg.data.preprocess.preprocess_case` (the same per-case step and window rule as
    ``kequireg preprocess``); a ``_seg`` file only widens the bounding box as it does there, and
    its labels are dropped.

    Args:
        case: ``kequireg.data.case_files.CaseFiles``.
        params: ``PreprocessParams``.
        size: (H, W) of the model's input (the training store's window).

    Returns:
        PreprocessedCase whose ``images`` are (S, H, W, C), ``labels`` None.
    """
    return dataclasses.replace(preprocess_case(case, params, size), labels=None)


def predict_folder(model, in_dir: str | os.PathLike, out_dir: str | os.PathLike, *, params: dict | None = None,
                   overwrite: bool = False, options: InferenceOptions | None = None, progress: bool = False,
                   labels: str = "auto") -> list[Path]:
    """Preprocess, predict and export every BraTS case folder under ``in_dir``.

    Predictions are written in the input's label convention and naming: BraTS 2017-2021 folders
    (``NAME_flair`` ...) get ``<case>.nii.gz`` with ET = 4, BraTS 2023-2025 folders (``NAME-t2f``
    ...) ``<case>.nii.gz`` with ET = 3 (the challenges' submission names, e.g.
    ``BraTS-GLI-00000-000.nii.gz``), nnU-Net input its dataset's names and values.

    Args:
        model: keras.Model returning logits (its input shape fixes the slice window).
        in_dir: folder of BraTS case folders (or one case folder), or an nnU-Net raw dataset
            (``DatasetXXX_Name/`` or its ``imagesTs/``; channels matched by name through its
            ``dataset.json``); label files are ignored.
        out_dir: output folder; files are named ``<case>.nii.gz`` (nnU-Net input: ``<case>`` +
            the dataset's ``file_ending``, labels in its own values).
        labels: the label convention of BraTS input folders (``--labels``). ``"auto"``: from the
            naming, except that 2023-named folders take the training store's schema when it is
            one of their releases' (a run trained on ``brats2024-post`` writes the resection
            cavity as 4); a BraTS schema name: that one. Defaults to ``"auto"``.
        params: preprocessing parameters: the training store's (``Dataset.params``); None = the
            thesis defaults (``PreprocessParams()``).
        overwrite: bool. Redo cases whose output exists. Defaults to False (skip them; a
            skipped case gets no new uncertainty or probability files either).
        options: ``InferenceOptions``; see :func:`predict_cases`. Defaults to plain prediction.
        progress: bool. Defaults to False.

    Returns:
        Paths of all label outputs (written now or found from an earlier run).

    Raises:
        ValueError: if a case misses a modality (naming it), or no case folder is found.
    """
    settings = preprocess_params(params)
    cases = find_cases(in_dir, settings.channels, labels=labels, prefer=schema_of(params))
    incomplete = [c for c in cases if c.missing]
    if incomplete:
        c = incomplete[0]
        raise ValueError(f"case {c.case_id!r} in {str(c.folder)!r} has no {', '.join(map(c.expected_file, c.missing))}; every case needs {settings.channels}.")
    shape = getattr(model, "input_shape", None)
    if not (isinstance(shape, tuple) and len(shape) == 4 and shape[1] and shape[2]):
        raise ValueError(f"the model must have a fixed input shape (None, H, W, C). Received: input_shape={shape}")
    out_dir = Path(out_dir)
    layout = cases[0].dataset  # an nnU-Net dataset (its naming and label values) or None (BraTS)
    schema = cases[0].label_schema  # predictions are written in the input's label convention
    check_same_schema(schema_of(params), schema, store=f"the training store (preprocessing {'given' if params else 'defaults'})")
    channels = getattr(model, "output_shape", (None,))[-1]
    regions = network_output(model) == "regions"
    expected = len(schema.regions) if regions else schema.num_classes
    if channels is not None and channels != expected:
        what = f"{expected} regions {schema.region_names}" if regions else \
            f"{expected} classes ({schema.name}: {schema.describe_labels()})"
        raise ValueError(f"the model has {channels} output channels; the cases in {str(in_dir)!r} need {what}. Use a model "
                         "trained on this kind of data (a region-output model: pass its run folder, not the .keras file)"
                         + (", or choose the input's labels with --labels." if cases[0].naming is not None else "."))
    todo = [c for c in cases if overwrite or not (out_dir / output_filename(c.case_id, layout)).is_file()]
    stream = (preprocess_case_files(c, settings, (shape[1], shape[2])) for c in todo)
    predict_cases(model, progress_bar(stream, progress, "predicting", length=len(todo)), out_dir, options=options,
                  layout=layout, schema=schema)
    return [out_dir / output_filename(c.case_id, layout) for c in cases]


def predict(model_path: str | os.PathLike | Sequence[str | os.PathLike], in_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
            data: str | os.PathLike | None = None, overwrite: bool = False, options: InferenceOptions | None = None,
            progress: bool = False, log=None, labels: str = "auto") -> list[Path]:
    """``kequireg predict``: segment every case folder under ``in_dir`` with a run's or a file's network.

    The preprocessing is the training store's: ``data``'s if given, else the run's own data set
    (``RunDir.load_config().data``; the demo data set when that is None), else, for a bare
    ``.keras`` file, the thesis defaults. Several models are an ensemble
    (:func:`~kequireg.inference.ensemble.load_model`): their softmax probabilities are averaged
    (after test-time augmentation when ``options`` ask for it), and without ``data`` their
    stores' preprocessing must agree (:func:`training_params`).

    Args:
        model_path: a run folder (``RunDir``) or a ``.keras`` model file, or a sequence of them
            (an ensemble; a sequence of one is that single model).
        in_dir, out_dir, overwrite, options, progress, labels: see :func:`predict_folder`.
        data: slice store whose preprocessing parameters to apply. Defaults to the run's own.
        log: optional callable taking a status line (the model and the preprocessing used).

    Returns:
        Paths of all outputs.

    Raises:
        FileNotFoundError: no model at ``model_path``, or the store is gone.
        ValueError: see :func:`predict_folder`; ensemble members that do not fit together.

    Example:
        >>> predict("runs/equireg-0.1-s0", "MICCAI_BraTS_2019_Data_Validation/", "predictions/")  # doctest: +SKIP
    """
    paths = model_paths(model_path)
    model = load_model(paths)
    params = training_params(paths, data, progress=progress)
    if log is not None:
        what = f"model {paths[0]}" if len(paths) == 1 else f"ensemble of {len(paths)} models ({', '.join(map(str, paths))})"
        log(f"{what} ({model.count_params():,} parameters); preprocessing {params or 'defaults'}")
    return predict_folder(model, in_dir, out_dir, params=params, overwrite=overwrite, options=options, progress=progress,
                          labels=labels)


def training_params(model_path: str | os.PathLike | Sequence[str | os.PathLike], data: str | os.PathLike | None = None,
                    *, progress: bool = False) -> dict | None:
    """The preprocessing parameters a network (or an ensemble) was trained with: its store's ``Dataset.params``.

    Args:
        model_path: a run folder or a ``.keras`` file, or a sequence of them (ensemble members).
        data: the store to read them from. None = each run's own data set (the demo data set when
            its config says None); for a bare ``.keras`` file nothing records a store: None.

    Returns:
        The store's params dict (the first member's), or None (= the thesis defaults).

    Raises:
        ValueError: without ``data``, ensemble members whose stores were preprocessed differently
            (naming both and the differing parameters).
    """
    paths = model_paths(model_path)
    if data is not None:
        with open_dataset(data, progress=progress) as dataset:
            return dataset.params
    by_store: dict = {}
    found = []
    for path in paths:
        store = open_run(path).load_config().data if path.is_dir() else False  # False: a bare file, no store
        if store not in by_store:
            if store is False:
                by_store[store] = None
            else:
                with open_dataset(store, progress=progress) as dataset:
                    by_store[store] = dataset.params
        found.append(by_store[store])
    first = preprocess_params(found[0])
    for path, params in zip(paths[1:], found[1:]):
        if preprocess_params(params) != first:
            ours, theirs = first.to_dict(), preprocess_params(params).to_dict()
            differ = {k: (ours.get(k), theirs.get(k)) for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)}
            raise ValueError(
                f"ensemble members were trained on differently preprocessed stores: {str(paths[0])!r} and {str(path)!r} "
                f"differ in {differ}; ensemble runs of one store, or pass --data STORE to apply one store's preprocessing.")
    return found[0]
