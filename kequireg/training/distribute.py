"""Data-parallel training: one run over several devices (and hosts) with ``keras.distribution``.

Keras 3.15 distributes training on the JAX backend only (its TensorFlow ``distribution_lib`` is
marked "DO NOT USE" and torch has none), so ``--devices N`` and ``--distributed`` need
``KERAS_BACKEND=jax``; other backends get a clear error naming the way.

``DataParallel`` replicates the variables and splits every leaf of the batch dict along axis 0:
the labeled part (B_l) and the unlabeled part (B_u) are each split over the devices, so each
must divide by the device count. The jitted step keeps global semantics (means over the global
batch, BatchNorm statistics over the global batch): N devices compute the same step as one
device with the same global batch. The device warp gathers per sample
(``device_warp._bilinear``), so the teacher probabilities stay on their shard.

Multi-host (``distributed``): ``keras.distribution.initialize()`` (``jax.distributed``; it reads
SLURM / Open MPI variables), ``DataParallel(auto_shard_dataset=False)``, and every process
feeds its own slice of the deterministic global batch (``Share``); process 0 alone writes.

Example:
    >>> plan = plan_devices(TrainConfig(devices=2).resolve(demo=True))     # doctest: +SKIP
    >>> with plan.scope():
    ...     model = build_training_model(config, image_shape)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Share:
    """This process's slice of every global batch: ``[index * n // count, (index + 1) * n // count)``."""

    index: int = 0
    count: int = 1

    def slice(self, n: int) -> slice:
        if n % self.count:
            raise ValueError(f"a batch of {n} does not divide over {self.count} processes")
        step = n // self.count
        return slice(self.index * step, (self.index + 1) * step)


@dataclass
class DevicePlan:
    """Where one run trains: a Keras distribution (or None: one device) and this process's share."""

    distribution: object | None
    devices: tuple[str, ...]
    share: Share = Share()

    @property
    def count(self) -> int:
        return max(1, len(self.devices))

    @property
    def is_writer(self) -> bool:
        """Only process 0 writes the run's files."""
        return self.share.index == 0

    def scope(self):
        """Build, compile and fit inside this scope."""
        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()

    def describe(self) -> str:
        if self.distribution is None:
            return ""
        hosts = f" on {self.share.count} processes" if self.share.count > 1 else ""
        return f"data parallel over {self.count} devices{hosts} ({', '.join(self.devices[:8])}" + (
            ", ..." if self.count > 8 else "") + ")"


def _fail_backend(backend: str, what: str) -> None:
    hint = {
        "tensorflow": "Keras 3.15 distributes training on the JAX backend only (its TensorFlow distribution_lib is "
                      "not for use, and tf.distribute strategies would scale the learning rate with our own loss means)",
        "torch": "Keras 3.15 has no data parallelism on the torch backend",
    }.get(backend, f"backend {backend!r} has no Keras distribution")
    raise ValueError(f"{what} needs the JAX backend: {hint}. Run with --backend jax (pip install 'kequireg[jax]').")


def plan_devices(config) -> DevicePlan:
    """The DevicePlan of a resolved TrainConfig (``devices``, ``distributed``, batch sizes).

    Raises:
        ValueError: a backend without distribution, more devices than there are, or batches
            that do not divide over the devices (naming the options that fix it).
    """
    import keras

    if config.devices == 1 and not config.distributed:
        return DevicePlan(None, ())
    backend = keras.backend.backend()
    what = "--distributed" if config.distributed else f"--devices {config.devices}"
    if backend != "jax":
        _fail_backend(backend, what)
    import jax
    from keras import distribution

    share = Share()
    if config.distributed:
        distribution.initialize()  # jax.distributed.initialize from SLURM / Open MPI / JAX_COORDINATOR_ADDRESS
        share = Share(jax.process_index(), jax.process_count())
    available = jax.devices()  # every process's devices when distributed, the local ones otherwise
    n = len(available) if config.devices == "all" or config.distributed else int(config.devices)
    if n > len(available):
        names = ", ".join(str(d) for d in available)
        raise ValueError(f"--devices {n}: JAX sees {len(available)} device(s) ({names}); use --devices "
                         f"{len(available)} or --devices all.")
    labeled, unlabeled = config.labeled_batch, config.unlabeled_batch
    if labeled % n or unlabeled % n:
        fits = [d for d in range(n, 0, -1) if labeled % d == 0 and unlabeled % d == 0][0]
        raise ValueError(
            f"the {labeled} labeled + {unlabeled} unlabeled batch does not divide over {n} devices; use "
            f"--labeled-batch/--unlabeled-batch (multiples of {n}) or --devices {fits}."
        )
    devices = tuple(str(d) for d in available[:n])
    mesh = distribution.DeviceMesh(shape=(n,), axis_names=["batch"], devices=available[:n])
    plan = distribution.DataParallel(device_mesh=mesh, auto_shard_dataset=not config.distributed)
    return DevicePlan(plan, devices, share)
