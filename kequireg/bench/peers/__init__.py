"""Programs the benchmarks run in an interpreter of their own, by file path (not imported).

* ``imgaug_strong.py``: the strong workload in imgaug 0.4.0 (which needs numpy < 2), run by the
  interpreter given as ``--imgaug-python``.
* ``augment_compile.py``: ``import augment`` and the kernels' first calls, timed in a fresh
  process with the Numba cache folder the caller chose.
"""
