"""kequireg.evaluation: per-patient metrics, bootstrap statistics, inference, scoring and BraTS export.

One module per job: ``metrics`` / ``hausdorff`` / ``regions`` / ``equivariance`` (numbers of one
patient, arguments ``(target, predicted)``), ``stats`` (bootstrap intervals, bridging),
``inference`` (probabilities; loading a network), ``score_store`` (a network on an open store's
patients), ``score_folders`` (NIfTI predictions vs ground truth), ``summary`` (means, intervals,
the printed table), ``results`` (``per_patient.csv``, ``summary.json``), ``run``
(``evaluate_run``: a RunDir on a Dataset), ``export`` and ``predict`` (BraTS NIfTI files),
``options`` (``InferenceOptions``: how a network is applied), ``tta`` (test-time augmentation with
exact pull-backs, per-voxel uncertainty), ``uncertainty`` (uncertainty maps, probabilities, QC
rows), ``qc`` (does a QC score rank cases by their Dice), ``postprocess`` (BraTS post-processing).
Nothing here imports ``kequireg.experiments``.
"""
