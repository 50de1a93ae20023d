"""Time ``import augment`` and the kernels' first calls in this fresh process.

Run by ``kequireg.bench.augment.compile_times`` (twice: with an empty ``NUMBA_CACHE_DIR``, then
with it filled). Prints one JSON line: import_s, first_call_s.
"""

import json
import time

t0 = time.perf_counter()
import numpy as np  # noqa: E402

import augment  # noqa: E402

t1 = time.perf_counter()
rng = np.random.default_rng(0)
grid = augment.strong().sample((224, 224), 1).grid()
augment.warp_image(rng.random((224, 224, 4), dtype=np.float32), grid)
augment.warp_probs(np.full((224, 224, 4), 0.25, np.float32), grid)
augment.warp_labels(np.zeros((224, 224), np.uint8), grid)
augment.warp(grid, image=np.zeros((224, 224, 4), np.float32), labels=np.zeros((224, 224), np.uint8),
             probs=np.full((224, 224, 4), 0.25, np.float32))
augment.valid_mask(grid)
print(json.dumps({"import_s": t1 - t0, "first_call_s": time.perf_counter() - t1}))
