"""``kequireg bench train-step`` and ``kequireg bench pipeline`` (DESIGN.md, "Performance workloads").

train-step: the EquiReg step (2 labeled + 6 unlabeled: 14 forwards, 8 backwards) against a
supervised step of 8 labeled slices (8 + 8), same network preset, backend and process.
Ideal compute ratio ≈ 1.25; target ≤ 1.35.

pipeline: ``fit`` throughput with the real PyDataset (slice store → weak/strong warps in worker
threads) against the same batches precomputed in memory (served by a PyDataset doing no work);
target ≥ 0.95.

Both time whole ``fit`` calls after a warm-up fit (compilation excluded), alternating the two
contenders; the ratio is the median over ``--repeats`` rounds of each round's ratio (with the
range), which holds up better than a ratio of medians when the machine's load drifts.
"""

from __future__ import annotations

import statistics
import sys
import time

import click
import numpy as np

from cli.options import backend_option


def _say(message: str) -> None:
    print(f"kequireg bench: {message}", file=sys.stderr, flush=True)


def _fixed_batches(batches, workers=1):
    """A PyDataset serving precomputed batches (no work per batch: the in-memory contender).

    With ``workers`` > 1 it goes through the same Keras thread enqueuer as the real dataset, so
    the comparison isolates the cost of reading and augmenting.
    """
    import keras

    class Fixed(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=workers, use_multiprocessing=False)

        @property
        def num_batches(self):
            return len(batches)

        def __getitem__(self, i):
            return batches[i]

    return Fixed()


def _model(preset, shape, seed):
    import keras

    from kequireg.models import build_model
    from kequireg.training import EquiRegModel

    keras.utils.set_random_seed(seed)
    model = EquiRegModel(build_model(preset, input_shape=shape, num_classes=4))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def _time_fit(model, dataset, steps):
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.perf_counter() - start


def _alternate(contenders: dict, repeats: int) -> dict:
    """Seconds per contender and round over ``repeats`` rounds, after one warm-up round each.

    The contenders alternate within a round, so a round's ratio compares runs seconds apart:
    on a shared machine the load drifts between rounds far more than within one.
    """
    times = {name: [] for name in contenders}
    for name, run in contenders.items():
        run(warmup=True)
    for _ in range(repeats):
        for name, run in contenders.items():
            times[name].append(run(warmup=False))
    return times


def _median_ratio(numerator: list, denominator: list) -> tuple[float, float, float]:
    """(median, min, max) of the per-round ratios ``numerator[i] / denominator[i]``."""
    ratios = [a / b for a, b in zip(numerator, denominator)]
    return statistics.median(ratios), min(ratios), max(ratios)


def _random_batches(n, labeled, unlabeled, shape, seed):
    import augment

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
        out.append(batch)
    return out


@click.command("train-step")
@backend_option
@click.option("--model", "preset", default="fc-densenet56", show_default=True, help="Network preset.")
@click.option("--size", type=click.IntRange(min=32), default=64, show_default=True, help="Image height = width.")
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True, help="Steps per timed fit.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
def train_step(backend, preset, size, steps, repeats):
    """EquiReg step (2 labeled + 6 unlabeled) vs a supervised step of 8 labeled slices."""
    import keras

    from kequireg.training.run import describe_device

    shape = (size, size, 4)
    _say(f"{describe_device()}; model {preset} at {size}x{size}x4, {steps} steps x {repeats} repeats")
    data = {
        "equireg": _fixed_batches(_random_batches(steps, 2, 6, shape, 1)),
        "supervised": _fixed_batches(_random_batches(steps, 8, 0, shape, 2)),
    }
    models = {name: _model(preset, shape, 0) for name in data}

    def runner(name):
        return lambda warmup: _time_fit(models[name], data[name], 2 if warmup else steps)

    times = _alternate({name: runner(name) for name in data}, repeats)
    ms = {name: 1000 * statistics.median(t) / steps for name, t in times.items()}
    ratio, low, high = _median_ratio(times["equireg"], times["supervised"])
    click.echo(f"backend {keras.backend.backend()}  model {preset}  image {size}x{size}x4")
    click.echo(f"equireg step (2+6):   {ms['equireg']:8.1f} ms (median)")
    click.echo(f"supervised step (8):  {ms['supervised']:8.1f} ms (median)")
    click.echo(f"ratio equireg/supervised: {ratio:.3f}  (median of {repeats} rounds, range {low:.3f}-{high:.3f}; "
               "target <= 1.35, ideal ~1.25)")


@click.command("pipeline")
@backend_option
@click.option("--data", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Slice store. Default: the demo data set (64x64).")
@click.option("--model", "preset", default="fc-densenet56", show_default=True, help="Network preset.")
@click.option("--steps", type=click.IntRange(min=1), default=20, show_default=True, help="Steps per timed fit.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="PyDataset threads.")
def pipeline(backend, data, preset, steps, repeats, workers):
    """fit throughput: the real PyDataset (store + augment in threads) vs the same batches in memory."""
    import keras

    from kequireg.data.splits import labeled_subset, load_splits, splits_path
    from kequireg.training.pipeline import EquiRegBatches
    from kequireg.training.run import describe_device

    if data is None:
        from kequireg.data.demo import ensure_demo_store

        data = ensure_demo_store(progress=True)
    splits = load_splits(splits_path(data))
    labeled = labeled_subset(splits["train"], 0.1, 0)
    unlabeled = sorted(set(splits["train"]) | set(splits["unlabeled"]))
    real = EquiRegBatches(data, labeled, unlabeled, 2, 6, steps_per_epoch=steps, seed=0, workers=workers)
    shape = real.image_shape
    _say(f"{describe_device()}; model {preset} at {shape}, store {data}, {steps} steps x {repeats} repeats, "
         f"{workers} worker threads")
    memory = _fixed_batches([real.batch(0, i) for i in range(steps)], workers=workers)
    models = {"pipeline": _model(preset, shape, 0), "memory": _model(preset, shape, 0)}
    sets = {"pipeline": real, "memory": memory}

    def runner(name):
        return lambda warmup: _time_fit(models[name], sets[name], 2 if warmup else steps)

    try:
        times = _alternate({name: runner(name) for name in sets}, repeats)
    finally:
        real.close()
    rate = {name: steps / statistics.median(t) for name, t in times.items()}
    ratio, low, high = _median_ratio(times["memory"], times["pipeline"])  # throughput ratio = inverse time ratio
    click.echo(f"backend {keras.backend.backend()}  model {preset}  image {shape[0]}x{shape[1]}x{shape[2]}  batch 2+6")
    click.echo(f"in-memory arrays:  {rate['memory']:7.2f} steps/s (median)")
    click.echo(f"real PyDataset:    {rate['pipeline']:7.2f} steps/s (median)")
    click.echo(f"ratio pipeline/memory: {ratio:.3f}  (median of {repeats} rounds, range {low:.3f}-{high:.3f}; "
               "target >= 0.95)")
