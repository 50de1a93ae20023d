"""kequireg.inference: apply a trained network to slices, cases and folders, and export it.

One module per job: ``options`` (``InferenceOptions``: batch size, TTA, uncertainty,
post-processing; validated once, passed whole), ``predictor`` (slices -> softmax probabilities;
``Ensemble``: several networks' mean), ``ensemble`` (``load_model``: one network or a checked ensemble),
``tta`` (``Predictor``: test-time augmentation with exact pull-backs, per-voxel uncertainty),
``uncertainty`` (uncertainty maps, probabilities, the per-case QC row), ``postprocess`` (BraTS
post-processing), ``regions`` (label schemes, WT/TC/ET masks), ``nifti`` (prediction files:
BraTS / nnU-Net NIfTI labels), ``runs`` (``open_run``: the one "is this a run folder" check;
``load_network``), ``predict`` (``kequireg predict``: raw case folders -> NIfTI files),
``export_model`` (``kequireg export``: SavedModel / ONNX), ``progress`` (progress bars).
Imports point down to data, models and training only; ``kequireg.evaluation`` builds on this.
"""
