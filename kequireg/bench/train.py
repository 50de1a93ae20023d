"""Train-step and input-pipeline benchmarks (docs/architecture.md, "Performance workloads").

train-step: the EquiReg step (2 labeled + 6 unlabeled: 14 forwards, 8 backwards) against a
supervised step of 8 labeled slices (8 + 8), same network preset, backend and process.
Ideal compute ratio ≈ 1.25; target ≤ 1.35. The other named methods' steps (by default
mean-teacher and fixmatch; unimatch-lite too, with CutMix boxes in its batches) are timed
against the same supervised step, and ``equireg-ema`` (EquiReg with ``--teacher ema``) against
the EquiReg step gives the cost of the EMA teacher's update (target ≤ 5%).

pipeline: ``fit`` throughput with the real PyDataset (slice store → weak/strong warps in worker
threads) against the same batches precomputed in memory (served by a PyDataset doing no work);
target ≥ 0.95.

Both time whole ``fit`` calls after a warm-up fit (compilation excluded), alternating the two
contenders; the ratio is the median over ``repeats`` rounds of each round's ratio (with the
range), which holds up better than a ratio of medians when the machine's load drifts.

The models are ``kequireg.training.run.build_training_model``'s (with the torch fast paths, as
``kequireg train`` runs them) under Keras's own ``jit_compile="auto"`` (XLA on jax, and on
tensorflow only with an accelerator), which is what these benchmarks have always measured.
``kequireg bench train-step`` / ``pipeline`` and ``benchmarks/bench_train.py`` call
:func:`run_train_step` and :func:`run_pipeline`. Keras is imported inside the functions, so
``--backend`` can be set before it loads.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from kequireg import settings
from kequireg.bench.timing import alternate, median_ratio, stderr_log
from kequireg.data.dataset import open_dataset
from kequireg.training.config import TrainConfig
from kequireg.training.options import PipelineOptions

_log = stderr_log("kequireg bench: ")


def fixed_batches(batches: list, workers: int = 1):
    """A PyDataset serving precomputed batches (no work per batch: the in-memory contender).

    With ``workers`` > 1 it goes through the same Keras thread enqueuer as the real dataset, so
    the comparison isolates the cost of reading and augmenting.
    """
    import keras

    class FixedBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=workers, use_multiprocessing=False)

        @property
        def num_batches(self):
            return len(batches)

        def __getitem__(self, i):
            return batches[i]

    return FixedBatches()


def random_batches(n: int, labeled: int, unlabeled: int, shape: tuple[int, int, int], seed: int,
                   mix: bool = False) -> list[dict]:
    """``n`` batch dicts of ``EquiRegModel`` with random images (strong warps of the unlabeled part;
    ``mix``: CutMix partners and boxes too)."""
    import augment
    from kequireg.training import cutmix  # lazy: imports keras, which loads after --backend (import time)

    rng = np.random.default_rng(seed)
    h, w, c = shape
    out = []
    for i in range(n):
        batch = {
            "labeled": rng.uniform(0, 1, (labeled, h, w, c)).astype("float32"),
            "labels": rng.integers(0, 4, (labeled, h, w)).astype("int32"),
        }
        if unlabeled:
            x = rng.uniform(0, 1, (unlabeled, h, w, c)).astype("float32")
            grid = augment.strong().sample_grids((h, w), [seed * 1000 + i * 10 + k for k in range(unlabeled)])
            batch.update(unlabeled=x, strong=augment.warp_image(x, grid), grid=grid)
            if mix:
                batch["mix_index"], batch["mix_box"] = cutmix.sample_boxes(rng, unlabeled, h, w, prob=0.5)
        out.append(batch)
    return out


def _keras_auto_jit(backend: str) -> str:
    """``TrainConfig.jit_compile`` equal to Keras's ``compile(jit_compile="auto")`` on this machine."""
    if backend == "jax":
        return "on"
    if backend == "tensorflow":
        import tensorflow as tf

        return "on" if any(d.device_type != "CPU" for d in tf.config.list_physical_devices()) else "off"
    return "off"


def build_model(preset: str, shape: tuple[int, int, int], seed: int = 0, **overrides):
    """The compiled ``EquiRegModel`` of ``preset`` (float32, Adam 1e-3) that the contenders train.

    ``overrides``: ``TrainConfig`` fields (``method``, ``teacher``, ...); default EquiReg.
    """
    import keras

    # lazy: these import keras, which loads after --backend (import time)
    from kequireg.models import torch_fast
    from kequireg.training.run import build_training_model  # lazy: (as above)

    config = TrainConfig(model=preset, seed=seed, jit_compile=_keras_auto_jit(keras.backend.backend()), **overrides)
    config.validate()
    model = build_training_model(config, shape)
    torch_fast.accelerate(model.network, tune_allocator=True)  # as `kequireg train` does
    return model


def _fit_seconds(model, dataset, steps: int) -> float:
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.perf_counter() - start


def _race(models: dict, datasets: dict, steps: int, repeats: int) -> dict[str, list[float]]:
    """Seconds of ``steps``-step fits per contender and round (a 2-step warm-up fit each first)."""

    def runner(name):
        return lambda warmup: _fit_seconds(models[name], datasets[name], 2 if warmup else steps)

    return alternate({name: runner(name) for name in datasets}, repeats)


# Train-step contenders besides the named methods: EquiReg with an EMA teacher (the EMA update's cost).
STEP_VARIANTS = {"equireg-ema": {"method": "equireg", "teacher": "ema"}}
DEFAULT_STEP_METHODS = ("equireg", "mean-teacher", "fixmatch")


def step_contender(name: str) -> dict:
    """The ``TrainConfig`` overrides of a train-step contender: a semi-supervised method or a ``STEP_VARIANTS`` name."""
    if name in STEP_VARIANTS:
        return dict(STEP_VARIANTS[name])
    if name in settings.METHODS and name not in settings.SUPERVISED_METHODS:
        return {"method": name}
    choices = [m for m in settings.METHODS if m not in settings.SUPERVISED_METHODS] + list(STEP_VARIANTS)
    raise ValueError(f"train-step methods must be among {choices}. Received: {name!r}")


def measure_train_step(preset: str = "fc-densenet56", size: int = 64, steps: int = 10, repeats: int = 3,
                       log: Callable[[str], None] | None = None, methods=DEFAULT_STEP_METHODS) -> dict:
    """Time each method's step (2+6) and the supervised step (8) of ``preset`` at ``size`` x ``size`` x 4.

    Args:
        methods: semi-supervised method names and/or ``STEP_VARIANTS`` names (``"equireg-ema"``).

    Returns:
        dict: backend, preset, size, repeats, ``supervised_ms``; ``methods``: per contender
        ``ms`` (median step time), ``ratio`` (median of the rounds' method/supervised ratios),
        ``low``, ``high``; ``ema_overhead`` (equireg-ema/equireg: ratio, low, high) when both ran;
        and, when equireg ran, its ``equireg_ms`` / ``ratio`` / ``low`` / ``high`` at the top level.
    """
    import keras

    from kequireg.training.run import describe_device  # lazy: imports keras, which loads after --backend (import time)

    overrides = {name: step_contender(name) for name in methods}
    shape = (size, size, 4)
    (log or _log)(f"{describe_device()}; model {preset} at {size}x{size}x4, {steps} steps x {repeats} repeats; "
                  f"{', '.join(overrides)} vs supervised")
    data = {"supervised": fixed_batches(random_batches(steps, 8, 0, shape, 2))}
    models = {"supervised": build_model(preset, shape)}
    for name, fields in overrides.items():
        model = build_model(preset, shape, **fields)
        models[name] = model
        data[name] = fixed_batches(random_batches(steps, 2, 6, shape, 1, mix=fields.get("method") == "unimatch-lite"))
    times = _race(models, data, steps, repeats)
    result = {"backend": keras.backend.backend(), "preset": preset, "size": size, "repeats": repeats,
              "supervised_ms": 1000 * statistics.median(times["supervised"]) / steps, "methods": {}}
    for name in overrides:
        ratio, low, high = median_ratio(times[name], times["supervised"])
        result["methods"][name] = {"ms": 1000 * statistics.median(times[name]) / steps, "ratio": ratio, "low": low,
                                   "high": high}
    if "equireg" in overrides:
        result.update(equireg_ms=result["methods"]["equireg"]["ms"],
                      **{k: result["methods"]["equireg"][k] for k in ("ratio", "low", "high")})
        if "equireg-ema" in overrides:
            result["ema_overhead"] = median_ratio(times["equireg-ema"], times["equireg"])
    return result


def train_step_text(r: dict) -> str:
    """The lines ``kequireg bench train-step`` prints."""
    lines = [f"backend {r['backend']}  model {r['preset']}  image {r['size']}x{r['size']}x4",
             f"supervised step (8):       {r['supervised_ms']:8.1f} ms (median)"]
    for name, m in r["methods"].items():
        target = "; target <= 1.35, ideal ~1.25" if name == "equireg" else ""
        lines.append(f"{name + ' step (2+6):':26s} {m['ms']:8.1f} ms  ratio to supervised {m['ratio']:.3f} "
                     f"(median of {r['repeats']} rounds, range {m['low']:.3f}-{m['high']:.3f}{target})")
    if "ema_overhead" in r:
        ratio, low, high = r["ema_overhead"]
        lines.append(f"EMA teacher: equireg-ema/equireg {ratio:.3f} (range {low:.3f}-{high:.3f}; target <= 1.05)")
    return "\n".join(lines)


def measure_pipeline(data: str | None = None, preset: str = "fc-densenet56", steps: int = 20, repeats: int = 3,
                     workers: int = 2, log: Callable[[str], None] | None = None) -> dict:
    """``fit`` throughput of the real ``EquiRegBatches`` (2+6) vs the same batches in memory.

    Args:
        data: slice store path, or None for the demo data set (64x64).
        preset: network preset. steps: steps per timed fit. repeats: timed rounds.
        workers: PyDataset threads (of both contenders).
        log: callable taking a status line. Defaults to stderr.

    Returns:
        dict: backend, preset, image_shape, repeats, ``memory_steps_per_s`` /
        ``pipeline_steps_per_s`` (medians), ``ratio`` (median of the rounds' pipeline/memory
        throughput ratios), ``low``, ``high``.
    """
    import keras

    # lazy: these import keras, which loads after --backend (import time)
    from kequireg.training.pipeline import EquiRegBatches
    from kequireg.training.run import describe_device  # lazy: (as above)

    with open_dataset(data) as dataset:
        options = PipelineOptions(labeled_batch=2, unlabeled_batch=6, steps_per_epoch=steps, seed=0, workers=workers)
        real = EquiRegBatches(dataset, dataset.labeled_ids(0.1, 0), dataset.unlabeled_ids, options)
        shape = real.image_shape
        (log or _log)(f"{describe_device()}; model {preset} at {shape}, store {dataset.path}, {steps} steps x "
                      f"{repeats} repeats, {workers} worker threads")
        memory = fixed_batches([real.batch(0, i) for i in range(steps)], workers=workers)
        models = {"pipeline": build_model(preset, shape), "memory": build_model(preset, shape)}
        times = _race(models, {"pipeline": real, "memory": memory}, steps, repeats)
    ratio, low, high = median_ratio(times["memory"], times["pipeline"])  # throughput ratio = inverse time ratio
    return {
        "backend": keras.backend.backend(), "preset": preset, "image_shape": list(shape), "repeats": repeats,
        **{f"{name}_steps_per_s": steps / statistics.median(t) for name, t in times.items()},
        "ratio": ratio, "low": low, "high": high,
    }


def pipeline_text(r: dict) -> str:
    """The lines ``kequireg bench pipeline`` prints."""
    h, w, c = r["image_shape"]
    return "\n".join([
        f"backend {r['backend']}  model {r['preset']}  image {h}x{w}x{c}  batch 2+6",
        f"in-memory arrays:  {r['memory_steps_per_s']:7.2f} steps/s (median)",
        f"real PyDataset:    {r['pipeline_steps_per_s']:7.2f} steps/s (median)",
        f"ratio pipeline/memory: {r['ratio']:.3f}  (median of {r['repeats']} rounds, range {r['low']:.3f}-{r['high']:.3f}; "
        "target >= 0.95)",
    ])


def run_train_step(preset: str = "fc-densenet56", size: int = 64, steps: int = 10, repeats: int = 3,
                   echo: Callable[[str], None] = print, log: Callable[[str], None] | None = None,
                   methods=DEFAULT_STEP_METHODS) -> dict:
    """``kequireg bench train-step``: :func:`measure_train_step`, its lines printed on ``echo``."""
    result = measure_train_step(preset, size, steps, repeats, log, methods)
    echo(train_step_text(result))
    return result


def run_pipeline(data: str | None = None, preset: str = "fc-densenet56", steps: int = 20, repeats: int = 3,
                 workers: int = 2, echo: Callable[[str], None] = print,
                 log: Callable[[str], None] | None = None) -> dict:
    """``kequireg bench pipeline``: :func:`measure_pipeline`, its lines printed on ``echo``."""
    result = measure_pipeline(data, preset, steps, repeats, workers, log)
    echo(pipeline_text(result))
    return result
