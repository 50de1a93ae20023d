"""The training and validation PyDatasets over a slice store."""

import numpy as np
import pytest

import augment
from kequireg.data.splits import labeled_subset, load_splits, splits_path
from kequireg.data.store import SliceStore

_OPEN: dict = {}


def _data(path):
    """One open Dataset per store for the whole module (the pipelines never open the store)."""
    from kequireg.data.dataset import open_dataset

    if path not in _OPEN:
        _OPEN[path] = open_dataset(path)
    return _OPEN[path]


def _datasets(small_store, epoch=0, **kwargs):
    from kequireg.training.options import PipelineOptions
    from kequireg.training.pipeline import EquiRegBatches

    splits = load_splits(splits_path(small_store))
    labeled = labeled_subset(splits["train"], 0.5, 0)
    unlabeled = splits["train"] + splits["unlabeled"]
    args = dict(labeled_batch=2, unlabeled_batch=3, steps_per_epoch=4, seed=11)
    args.update(kwargs)
    return EquiRegBatches(_data(small_store), labeled, unlabeled, PipelineOptions(**args), epoch=epoch), splits, labeled


def test_batch_contents_follow_the_grids(small_store):
    ds, splits, labeled = _datasets(small_store)
    batch = ds[1]
    assert batch["labeled"].shape == (2, 32, 32, 4) and batch["labeled"].dtype == np.float32
    assert batch["labels"].shape == (2, 32, 32) and batch["labels"].dtype == np.int32
    assert batch["unlabeled"].shape == batch["strong"].shape == (3, 32, 32, 4)
    assert batch["grid"].shape == (3, 32, 32, 2)
    np.testing.assert_array_equal(augment.warp_image(batch["unlabeled"], batch["grid"]), batch["strong"])
    assert set(np.unique(batch["labels"])) <= {0, 1, 2, 3}
    # labeled slices come only from the labeled subset: their labels are consistent with an unwarped slice
    with SliceStore(small_store) as store:
        rows = store.slice_indices(labeled)
        originals = store.read_images(rows)
    sums = originals.sum(axis=(1, 2, 3))
    # weak augmentation only flips and shifts by <= 10%: the mass of the image is mostly kept
    assert any(np.isclose(batch["labeled"][0].sum(), s, rtol=0.35) for s in sums)


def test_batches_depend_only_on_seed_epoch_index(small_store):
    a, _, _ = _datasets(small_store, workers=1)
    b, _, _ = _datasets(small_store, workers=3)
    for key in ("labeled", "labels", "strong", "grid"):
        np.testing.assert_array_equal(a[2][key], b[2][key])
    assert not np.array_equal(a[0]["strong"], a[1]["strong"])
    first = a[0]["labeled"]
    a.set_epoch(1)
    assert a.epoch == 1 and not np.array_equal(a[0]["labeled"], first)
    np.testing.assert_array_equal(a.batch(0, 0)["labeled"], first)
    c, _, _ = _datasets(small_store, epoch=1)
    np.testing.assert_array_equal(c[0]["labeled"], a[0]["labeled"])


def test_threaded_epoch_yields_the_same_batches(small_store):
    """Keras' thread enqueuer delivers the batches in order, identical to direct indexing."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    ds, _, _ = _datasets(small_store, workers=3)
    adapter = PyDatasetAdapter(ds, shuffle=False)
    adapter.on_epoch_begin()
    got = [batch["strong"] for batch in adapter.get_numpy_iterator()]
    adapter.on_epoch_end()
    assert len(got) == 4
    for i, strong in enumerate(got):
        np.testing.assert_array_equal(strong, ds.batch(0, i)["strong"])
    assert ds.epoch == 0  # the epoch is Keras's, handed over by epoch_callback, never counted here


def test_baseline_batches_and_validation(small_store):
    from kequireg.training.pipeline import ValidationBatches

    ds, splits, _ = _datasets(small_store, labeled_batch=4, unlabeled_batch=0)
    assert set(ds[0]) == {"labeled", "labels"}
    val = ValidationBatches(_data(small_store), splits["val"], batch_size=5)
    with SliceStore(small_store) as store:
        n = store.slice_indices(splits["val"]).size
        images, labels = val[0]
        np.testing.assert_array_equal(images, store.read_images(store.slice_indices(splits["val"])[:5]))
    assert val.num_batches == -(-n // 5)
    assert len(val[val.num_batches - 1][0]) == n - 5 * (val.num_batches - 1)
    sub = ValidationBatches(_data(small_store), splits["val"], batch_size=4, max_slices=5)
    assert sub.source.rows.size == 5


def test_bad_inputs_are_named(small_store):
    from kequireg.training.options import PipelineOptions
    from kequireg.training.pipeline import EquiRegBatches

    splits = load_splits(splits_path(small_store))
    options = PipelineOptions(labeled_batch=2, unlabeled_batch=0, steps_per_epoch=4, seed=0)
    with pytest.raises(ValueError, match="labeled_ids holds cases without labels"):
        EquiRegBatches(_data(small_store), splits["unlabeled"], [], options)
    with pytest.raises(ValueError, match="unlabeled_batch must be an integer >= 0"):
        PipelineOptions(labeled_batch=2, unlabeled_batch=-1, steps_per_epoch=4, seed=0)
    with pytest.raises(ValueError, match="options must be a kequireg.training.options.PipelineOptions"):
        EquiRegBatches(_data(small_store), splits["train"], [], {"labeled_batch": 2})
    ds, _, _ = _datasets(small_store)
    with pytest.raises(IndexError, match="batch index"):
        ds[4]


def test_cache_off_and_kernel_threads_give_the_same_batches(small_store):
    """The in-memory cache (store dtype) and per-worker kernel threads change speed, never bytes."""
    import numba

    cached, _, _ = _datasets(small_store, workers=2)
    assert cached.labeled.images is not None and cached.unlabeled.images is not None
    uncached, _, _ = _datasets(small_store, cache_bytes=0, kernel_threads=2)
    assert uncached.labeled.images is None and uncached.unlabeled.images is None
    # a budget that holds the labeled slices but not the unlabeled pool as well: shared, labeled first
    partial, _, _ = _datasets(small_store, cache_bytes=cached.labeled.nbytes)
    assert partial.labeled.images is not None and partial.unlabeled.images is None
    before = numba.get_num_threads()
    for index in range(4):
        expected = uncached.batch(0, index)
        for ds in (cached, partial):
            got = ds.batch(0, index)
            for key in expected:
                np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
                assert got[key].dtype == expected[key].dtype
    assert numba.get_num_threads() == before  # the caller's Numba thread count is restored
    with SliceStore(small_store) as store:
        np.testing.assert_array_equal(cached.labeled.read(np.array([3, 0]), True)[0],
                                      store.read_images(cached.labeled.rows[[3, 0]]))


def test_bad_cache_and_thread_arguments_are_named(small_store):
    with pytest.raises(ValueError, match="kernel_threads must be an integer >= 1"):
        _datasets(small_store, kernel_threads=0)
    with pytest.raises(ValueError, match="cache_bytes must be an integer >= 0"):
        _datasets(small_store, cache_bytes=-1)


def test_epoch_comes_from_keras_and_no_batch_is_built_twice(small_store):
    """fit(shuffle=False) with epoch_callback: epoch e serves batches (seed, e, 0..n-1), each built once."""
    import keras

    from kequireg.training.equireg_model import EquiRegModel
    from kequireg.models import build_model

    ds, _, _ = _datasets(small_store, workers=2, epoch=1)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append((ds.epoch, batch))

    keras.utils.set_random_seed(0)
    model = EquiRegModel(build_model("tiny", input_shape=(32, 32, 4), num_classes=4))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    model.fit(ds, epochs=3, initial_epoch=1, steps_per_epoch=4, shuffle=False, verbose=0,
              callbacks=[ds.epoch_callback(), Record()])
    assert [e for e, _ in seen] == [1] * 4 + [2] * 4
    assert ds.built_batches == 8  # no extra batches for TensorFlow's input signature
