"""kequireg: semi-supervised brain-tumour segmentation with Equivariance Regularization.

Stages follow the data flow: ``kequireg.data`` (BraTS ingest, preprocessing, slice store,
splits, synthetic data), ``kequireg.models`` (Tiramisu FC-DenseNet), ``kequireg.training``
(EquiRegModel, device warp, input pipeline), ``kequireg.evaluation`` (metrics, export) and
``kequireg.experiments`` (study grid, statistics, figures).

Importing ``kequireg`` does not import keras; submodules that need it import it themselves.
"""

__version__ = "0.1.0"
