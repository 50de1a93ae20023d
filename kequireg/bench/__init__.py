"""Throughput benchmarks of docs/architecture.md's "Performance workloads", as a library.

Each workload module measures, returns a JSON-friendly dict, formats it and has one entry
point that the ``kequireg bench`` commands and the ``benchmarks/*.py`` scripts both call:

* ``kequireg.bench.augment``: strong augmentation, bare warp and parallel scaling of ``augment``
  against its installed peers (albumentations, scipy.ndimage, imgaug 0.4.0, cv2.remap);
  entry point ``run``; the peers' contenders are in ``kequireg.bench.augment_peers``.
* ``kequireg.bench.preprocess``: N4 + equalization time per brats-preset case, store size,
  slice reads; entry point ``run``.
* ``kequireg.bench.train``: the EquiReg (2+6) train step against a supervised step of 8, and
  ``fit`` throughput of the real pipeline against in-memory batches; entry points
  ``run_train_step`` and ``run_pipeline``.
* ``kequireg.bench.timing``: the shared timing helpers (best-of-rounds rates, best times,
  alternating contenders, paired ratios); standard library only.
* ``kequireg.bench.peers``: programs run in an interpreter of their own (imgaug 0.4.0 needs
  numpy < 2; the compile-time probe needs an empty Numba cache).

Importing this package imports neither keras nor numba.
"""
