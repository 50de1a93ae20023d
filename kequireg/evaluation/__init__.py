"""kequireg.evaluation: scores of predictions against ground truth, and their statistics.

One module per job: ``metrics`` / ``hausdorff`` / ``lesionwise`` / ``equivariance`` (numbers of
one patient, arguments ``(target, predicted)``; ``lesionwise``: the BraTS 2023+ lesion-wise Dice
and HD95), ``scoring`` (``ScoringOptions``: split, HD95, equivariance Dice, lesion-wise metrics),
``score_store`` (a network on an open store's patients), ``score_folders`` (NIfTI predictions
vs ground truth), ``run`` (``evaluate_run``: a RunDir on a Dataset), ``stats``
(bootstrap intervals, bridging), ``summary`` (means, intervals, the printed table), ``results``
(``per_patient.csv``, ``summary.json``), ``qc`` (does a QC score rank cases by their Dice) and
``qc_figure`` (its figure). How a network is applied (prediction, TTA, uncertainty maps,
post-processing, NIfTI writing, model export) is :mod:`kequireg.inference`. Nothing here imports
``kequireg.experiments``.
"""
