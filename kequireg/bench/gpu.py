"""GPU readiness check: FC-DenseNet103 at 224×224 steps, memory and input pipeline on one accelerator.

Run by ``benchmarks/gpu_check.sh`` (one call of ≤ 8 minutes on a lent GPU machine) once per
backend in its own process: ``python -m kequireg.bench.gpu --backend jax --out DIR``. For each
precision (float32, mixed_bfloat16) it times the EquiReg step (2 labeled + 6 unlabeled) and the
supervised step (8 labeled) with ``train_on_batch`` after warm-up steps (compilation excluded),
and reports slices/s, the step ratio and the peak device memory; then the real PyDataset vs
in-memory ``fit`` ratio (``kequireg.bench.train.measure_pipeline``) on a store of random
224×224×4 slices written on the spot (no NIfTI, N4 or downloads needed). Everything lands in
``DIR/gpu-<backend>.json`` and is printed.

It also runs on a CPU with small settings (``--model tiny --size 32``), which is how it is
tested here; the real numbers need a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from kequireg.bench.train import measure_pipeline, random_batches
from kequireg.data.geometry import CaseGeometry
from kequireg.data.splits import make_splits, save_splits, splits_path
from kequireg.data.store import PreprocessedCase
from kequireg.data.store_writer import write_store
from kequireg.io import atomic_write_json
from kequireg.training.config import TrainConfig


def _peak_memory_bytes() -> int | None:
    """Peak device memory of this process so far (None on a CPU or when the backend cannot say)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return stats.get("peak_bytes_in_use")
        if backend == "torch":
            import torch

            return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            return tf.config.experimental.get_memory_info(gpus[0].name)["peak"] if gpus else None
    except Exception:  # a memory query must never stop the check
        return None
    return None


def _reset_peak_memory() -> None:
    import keras

    if keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()


def time_steps(preset: str, size: int, precision: str, steps: int, warmup: int = 3) -> dict:
    """Median seconds per EquiReg (2+6) and supervised (8) step under ``precision``, and peak memory."""
    import keras

    # lazy: these import keras, which loads after main() sets KERAS_BACKEND (import time)
    from kequireg.models import torch_fast
    from kequireg.training.run import build_training_model  # lazy: (as above)

    shape = (size, size, 4)
    out = {}
    for name, (labeled, unlabeled) in (("equireg", (2, 6)), ("supervised", (8, 0))):
        _reset_peak_memory()
        method = "equireg" if unlabeled else "baseline"
        config = TrainConfig(model=preset, method=method, precision=precision, labeled_batch=labeled,
                             unlabeled_batch=unlabeled).resolve(demo=False)
        model = build_training_model(config, shape)
        torch_fast.accelerate(model.network, tune_allocator=True)
        batches = random_batches(warmup + steps, labeled, unlabeled, shape, seed=1)
        times = []
        for i, batch in enumerate(batches):
            start = time.perf_counter()
            logs = model.train_on_batch(batch, return_dict=True)
            float(keras.ops.convert_to_numpy(logs["loss"]))  # wait for the device
            if i >= warmup:
                times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        out[name] = {"ms": 1000 * seconds, "slices_per_s": (labeled + unlabeled) / seconds,
                     "peak_memory_gib": None if (peak := _peak_memory_bytes()) is None else peak / 2**30}
        del model
    out["ratio"] = out["equireg"]["ms"] / out["supervised"]["ms"]
    return out


def write_random_store(path: Path, cases: int, size: int, slices: int = 40, seed: int = 0) -> Path:
    """A slice store (and splits) of random slices: the pipeline's cost does not depend on content."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def case(i):
        return PreprocessedCase(
            case_id=f"GPU_{i:03d}", images=rng.uniform(0, 1, (slices, size, size, 4)).astype("float16"),
            labels=rng.integers(0, 4, (slices, size, size)).astype("uint8"),
            geometry=CaseGeometry(z=np.arange(slices), crop_origin=(0, 0), original_shape=(size, size, slices),
                                  affine=np.eye(4), spacing=np.ones(3)))

    write_store(path, (case(i) for i in range(cases)))
    ids = [f"GPU_{i:03d}" for i in range(cases)]
    save_splits(splits_path(path), make_splits(ids, ids))
    return path


def run(out_dir: str, preset: str = "fc-densenet103", size: int = 224, steps: int = 10, pipeline_steps: int = 20,
        workers: int = 8, precisions=("float32", "mixed_bfloat16")) -> dict:
    """Every measurement of one backend; written to ``out_dir/gpu-<backend>.json`` and returned."""
    import keras

    from kequireg.training.run import describe_device  # lazy: imports keras, after main() sets KERAS_BACKEND

    out = Path(out_dir)
    result = {"backend": keras.backend.backend(), "device": describe_device(), "preset": preset, "size": size,
              "steps": steps}
    for precision in precisions:
        result[precision] = time_steps(preset, size, precision, steps)
        print(json.dumps({precision: result[precision]}), flush=True)
    store = write_random_store(out / f"random-{size}.h5", cases=10, size=size)
    result["pipeline"] = measure_pipeline(str(store), preset=preset, steps=pipeline_steps, repeats=2, workers=workers)
    print(json.dumps({"pipeline": result["pipeline"]}), flush=True)
    atomic_write_json(out / f"gpu-{result['backend']}.json", result)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("jax", "torch", "tensorflow"), required=True)
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu-check"))
    parser.add_argument("--model", default="fc-densenet103")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--pipeline-steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # before keras loads
    Path(args.out).mkdir(parents=True, exist_ok=True)
    run(args.out, args.model, args.size, args.steps, args.pipeline_steps, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
