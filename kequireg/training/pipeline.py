"""Input pipeline: ``keras.utils.PyDataset`` s over the HDF5 slice store, augmented by ``augment``.

``EquiRegBatches`` yields the training batch dict of ``EquiRegModel``::

    labeled (B_l,H,W,C) float32, labels (B_l,H,W) int32      weak warp (image bilinear, labels nearest)
    unlabeled (B_u,H,W,C), strong (B_u,H,W,C), grid (B_u,H,W,2)   weak warp, then a strong warp of it
    mix_index (B_u,) int32, mix_box (B_u,4) int32                with mix="cutmix": partners and boxes
                                                                 (``kequireg.training.cutmix``), mixed on the device

Batch ``i`` of epoch ``e`` depends only on ``(seed, e, i)`` (a ``numpy.random.SeedSequence``):
which slices, and the seeds of their weak and strong transforms. So a run gives the same
batches whatever the number of worker threads, and a resumed run continues the sequence
exactly. The epoch is Keras's own: ``epoch_callback()`` sets it when each epoch begins (before
the workers start), so train with ``fit(..., shuffle=False, callbacks=[ds.epoch_callback(), ...])``
(``kequireg.training.train`` does). The two batches TensorFlow reads to learn the input
signature before the first epoch are kept and served again as that epoch's first batches,
so no batch is built twice. Workers are threads (``use_multiprocessing=False``): the warp
kernels release the GIL; every reader shares the caller's one open ``SliceStore``.

Each worker runs the ``augment`` kernels on one thread (``kernel_threads=1``): the workers
already give the parallelism, and nested OpenMP teams on a small CPU spin-wait against the
training step's own threads (measured on 2 cores under load: 30-55 ms CPU per 2+6 batch at
64x64 with Numba's default thread count, 3.6 ms with one thread). Kernel results do not depend
on the thread count, so neither do the batches.

Example:
    >>> dataset = open_dataset("brats.h5")
    >>> options = PipelineOptions(labeled_batch=2, unlabeled_batch=6, steps_per_epoch=500, seed=0)
    >>> ds = EquiRegBatches(dataset, dataset.labeled_ids(0.1, 0), dataset.unlabeled_ids, options)
    >>> batch = ds[0]; batch["strong"].shape
    (6, 224, 224, 4)
"""

from __future__ import annotations

import contextlib
import threading

import keras
import numba
import numpy as np

import augment
from kequireg.data.pools import annotated_slices, slice_pools
from kequireg.data.store import SliceStore
from kequireg.training import cutmix
from kequireg.training.options import DEFAULT_CACHE_BYTES, PipelineOptions


def _store_of(data) -> SliceStore:
    """The open ``SliceStore`` of a ``Dataset`` (or the store itself)."""
    store = getattr(data, "store", data)
    if not isinstance(store, SliceStore):
        raise TypeError(
            "data must be a kequireg Dataset (kequireg.data.dataset.open_dataset) or an open SliceStore. "
            f"Received: {type(data).__name__}"
        )
    return store

# Batches kept from looks before the first epoch (Keras's TensorFlow adapter reads two to learn
# the input signature).
_PEEK_LIMIT = 2


@contextlib.contextmanager
def kernel_threads(n: int):
    """Run Numba's parallel kernels on ``n`` threads inside the block (Numba's count is per thread)."""
    previous = numba.get_num_threads()
    numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _contiguous_runs(rows: np.ndarray):
    """(start, stop) of each run of consecutive values in sorted ``rows``."""
    if rows.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [rows.size]])
    return [(int(rows[a]), int(rows[b - 1]) + 1) for a, b in zip(starts, stops)]


class _SliceSource:
    """Image/label rows of a slice store, from memory when they fit ``cache_bytes``, else read per batch.

    The cache keeps images at the store's dtype (half the memory of float32 for float16
    stores) and converts the few slices of a batch on read. ``cache_bytes=0`` turns it off.
    """

    def __init__(self, store: SliceStore, rows: np.ndarray, with_labels: bool, cache_bytes: int):
        self.store = store
        self.rows = np.asarray(rows, np.int64)
        self._lock = threading.Lock()
        h, w, c = self.store.image_shape
        dtype = self.store.image_dtype
        self.images = self.labels = None
        self.nbytes = self.rows.size * h * w * (c * dtype.itemsize + (1 if with_labels else 0))
        if self.rows.size and self.nbytes <= cache_bytes and np.all(np.diff(self.rows) > 0):
            self.images = np.empty((self.rows.size, h, w, c), dtype)
            self.labels = np.empty((self.rows.size, h, w), np.uint8) if with_labels else None
            done = 0
            for start, stop in _contiguous_runs(self.rows):  # whole-case slabs: one HDF5 read each
                images, labels = self.store.read_slab(start, stop, labels=with_labels)
                self.images[done:done + stop - start] = images
                if with_labels:
                    self.labels[done:done + stop - start] = labels
                done += stop - start
        else:
            self.nbytes = 0

    def read(self, positions: np.ndarray, with_labels: bool):
        """Images (n,H,W,C) float32 and labels (n,H,W) int32 (or None) at ``positions`` into ``rows``."""
        if self.images is not None:
            images = self.images[positions].astype(np.float32, copy=False)
            labels = self.labels[positions] if with_labels else None
        else:
            with self._lock:  # h5py serialises anyway; the lock keeps read order simple
                images = self.store.read_images(self.rows[positions])
                labels = self.store.read_labels(self.rows[positions]) if with_labels else None
        return np.ascontiguousarray(images, np.float32), None if labels is None else labels.astype(np.int32)


def _rows_of(store: SliceStore, case_ids, what: str) -> np.ndarray:
    rows = store.slice_indices(case_ids)
    if rows.size == 0:
        raise ValueError(f"{what} has no slices in {str(store.path)!r}. Received case ids: {list(case_ids)[:5]}")
    return rows


class EquiRegBatches(keras.utils.PyDataset):
    """Training batches (EquiReg or, with ``unlabeled_batch=0``, supervised) from a slice store.

    Args:
        data: Dataset (``kequireg.data.dataset.open_dataset``) or open SliceStore; not closed here.
        labeled_ids: case ids whose labels are used (all must be labeled in the store).
        unlabeled_ids: case ids of the unlabeled pool (labels never read); may be empty for the baseline.
        options: PipelineOptions (``kequireg.training.options``): batch composition, steps per epoch,
            run seed, worker threads, CutMix, cache. Defaults to ``PipelineOptions()`` (2 + 6, 500 steps).
        epoch: int. Epoch served until ``epoch_callback`` (or ``set_epoch``) says otherwise.
        share: ``kequireg.training.distribute.Share`` or None. Multi-host training: yield only
            this process's slice of every (deterministic) global batch. Defaults to None (all).

    The labeled slices are the labeled cases' slices with an annotated pixel; those without any
    join the unlabeled pool (``pools``, a :class:`kequireg.data.pools.SlicePools`, says how many).

    Raises:
        ValueError: empty id lists, unlabeled cases among ``labeled_ids``, no annotated slice.
    """

    def __init__(self, data, labeled_ids, unlabeled_ids, options: PipelineOptions | None = None, epoch: int = 0,
                 share=None):
        options = PipelineOptions() if options is None else options
        if not isinstance(options, PipelineOptions):
            raise ValueError("options must be a kequireg.training.options.PipelineOptions. Received: "
                             f"options={type(options).__name__}")
        super().__init__(workers=options.workers, use_multiprocessing=False, max_queue_size=options.queue_size)
        store = _store_of(data)
        unlabeled_in_store = sorted(set(labeled_ids) - set(store.labeled_case_ids))
        if unlabeled_in_store:
            raise ValueError(
                f"labeled_ids holds cases without labels in {str(store.path)!r}: {unlabeled_in_store[:5]}; "
                "take them from splits['train'] (cases with a segmentation)."
            )
        _rows_of(store, labeled_ids, "labeled_ids")
        unlabeled_batch = options.unlabeled_batch
        if unlabeled_batch:
            _rows_of(store, unlabeled_ids, "unlabeled_ids")
        # slices without any annotated pixel (sparse annotations) join the unlabeled pool (kequireg.data.pools)
        self.pools = slice_pools(store, labeled_ids, unlabeled_ids if unlabeled_batch else [])
        labeled_rows = self.pools.labeled
        if labeled_rows.size == 0:
            raise ValueError(f"labeled_ids has no annotated slice in {str(store.path)!r} (every pixel is the ignore "
                             f"label). Received case ids: {list(labeled_ids)[:5]}")
        unlabeled_rows = self.pools.unlabeled if unlabeled_batch else np.zeros(0, np.int64)
        self.options = options
        self.image_shape = store.image_shape
        self.labeled = _SliceSource(store, labeled_rows, True, options.cache_bytes)
        # One budget for both parts: the labeled slices (read every batch, few) are cached first.
        self.unlabeled = (
            _SliceSource(store, unlabeled_rows, False, options.cache_bytes - self.labeled.nbytes)
            if unlabeled_batch else None
        )
        self.epoch = int(epoch)
        self.weak = options.weak if options.weak is not None else augment.weak()
        self.strong = options.strong if options.strong is not None else augment.strong()
        self.share = share
        self._in_epoch = False
        self._peeked: dict[tuple[int, int], dict] = {}
        self.built_batches = 0  # batches computed (not served from the peek cache); for tests

    @property
    def num_batches(self) -> int:
        return self.options.steps_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Serve the batches of ``epoch`` from now on (call before the epoch's workers start)."""
        self.epoch = int(epoch)
        self._in_epoch = True
        self._peeked = {key: value for key, value in self._peeked.items() if key[0] == self.epoch}

    def epoch_callback(self) -> keras.callbacks.Callback:
        """A callback that hands Keras's epoch number to this dataset at each epoch's start."""
        return _EpochSetter(self)

    def batch(self, epoch: int, index: int) -> dict:
        """The batch ``index`` of ``epoch`` (deterministic in ``(seed, epoch, index)``; this process's share)."""
        with kernel_threads(self.options.kernel_threads):
            out = self._batch(epoch, index)
        if self.share is not None and self.share.count > 1:
            out = {key: value[self.share.slice(len(value))] for key, value in out.items()}
        return out

    def _batch(self, epoch: int, index: int) -> dict:
        rng = np.random.default_rng(np.random.SeedSequence([self.options.seed, int(epoch), int(index)]))
        h, w, _ = self.image_shape
        n_l, n_u = self.options.labeled_batch, self.options.unlabeled_batch
        picks = rng.choice(self.labeled.rows.size, n_l, replace=n_l > self.labeled.rows.size)
        seeds = rng.integers(0, 2**63 - 1, size=n_l + 2 * n_u).tolist()
        images, labels = self.labeled.read(picks, with_labels=True)
        grid = self.weak.sample_grids((h, w), seeds[:n_l])
        out = {"labeled": augment.warp_image(images, grid), "labels": augment.warp_labels(labels, grid).astype(np.int32)}
        if n_u:
            picks = rng.choice(self.unlabeled.rows.size, n_u, replace=n_u > self.unlabeled.rows.size)
            images, _ = self.unlabeled.read(picks, with_labels=False)
            weak_grid = self.weak.sample_grids((h, w), seeds[n_l:n_l + n_u])
            strong_grid = self.strong.sample_grids((h, w), seeds[n_l + n_u:])
            unlabeled = augment.warp_image(images, weak_grid)
            out.update(unlabeled=unlabeled, strong=augment.warp_image(unlabeled, strong_grid), grid=strong_grid)
            if self.options.mix == "cutmix":
                out["mix_index"], out["mix_box"] = cutmix.sample_boxes(rng, n_u, h, w, self.options.mix_prob)
        return out

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_batches:
            raise IndexError(f"batch index must be in [0, {self.num_batches}). Received: index={index}")
        key = (self.epoch, int(index))
        if key in self._peeked:
            return self._peeked.pop(key)
        self.built_batches += 1
        out = self.batch(self.epoch, index)
        if not self._in_epoch and len(self._peeked) < _PEEK_LIMIT:  # a look before training: keep it
            self._peeked[key] = out
        return out


class _EpochSetter(keras.callbacks.Callback):
    def __init__(self, dataset: EquiRegBatches):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.set_epoch(epoch)


class ValidationBatches(keras.utils.PyDataset):
    """``(images, labels)`` batches of validation slices, no augmentation, fixed order.

    Args:
        data: Dataset or open SliceStore; not closed here.
        case_ids: validation case ids (labeled); their slices without an annotated pixel are left out.
        batch_size: int. Slices per batch.
        max_slices: int or None. Use a fixed random subset of this many slices (seeded by
            ``seed``), for faster validation; None = every slice.
        seed: int. Seed of that subset. Defaults to 0.
        cache_bytes: int. Keep the slices in memory if they fit. Defaults to 2 GiB.
        devices: int. Data-parallel training: every batch must divide over this many devices, so
            batch sizes are rounded to multiples of it and the last ``n % devices`` slices are
            left out (a ``dropped`` count is kept). Defaults to 1.
        share: ``Share`` or None. Multi-host: yield only this process's slice of every batch.
    """

    def __init__(self, data, case_ids, batch_size: int = 16, max_slices: int | None = None, seed: int = 0,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, devices: int = 1, share=None):
        super().__init__(workers=1, use_multiprocessing=False)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size!r}")
        store = _store_of(data)
        missing = sorted(set(case_ids) - set(store.labeled_case_ids))
        if missing:
            raise ValueError(f"validation cases without labels in {str(store.path)!r}: {missing[:5]}")
        rows = _rows_of(store, case_ids, "validation case_ids")
        rows = rows[annotated_slices(store, rows)]  # slices without annotations have nothing to score
        if rows.size == 0:
            raise ValueError(f"the validation cases have no annotated slice in {str(store.path)!r}: {list(case_ids)[:5]}")
        if max_slices is not None and max_slices < rows.size:
            rows = np.sort(np.random.default_rng(seed).choice(rows, int(max_slices), replace=False))
        devices = int(devices)
        self.dropped = rows.size % devices
        rows = rows[: rows.size - self.dropped]
        self.source = _SliceSource(store, rows, True, cache_bytes)
        self.batch_size = max(devices, int(batch_size) // devices * devices)
        self.share = share

    @property
    def num_batches(self) -> int:
        return -(-self.source.rows.size // self.batch_size)

    def __getitem__(self, index: int):
        if not 0 <= index < self.num_batches:
            raise IndexError(f"batch index must be in [0, {self.num_batches}). Received: index={index}")
        positions = np.arange(index * self.batch_size, min((index + 1) * self.batch_size, self.source.rows.size))
        if self.share is not None and self.share.count > 1:
            positions = positions[self.share.slice(positions.size)]
        return self.source.read(positions, with_labels=True)
