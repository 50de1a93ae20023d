"""Run under KERAS_BACKEND=jax with XLA_FLAGS=--xla_force_host_platform_device_count=2 (tests/training/test_data_parallel.py).

One EquiReg step and one baseline step on 2 devices against 1 device with the same global batch,
and the compiled device warp's collectives. Prints one JSON line.
"""

import json
import sys

import numpy as np


# the checked runs: name -> TrainConfig method and overrides. "ema-cutmix" adds the parts the
# thesis lacks: an EMA teacher (non-trainable state updated after the optimizer) and CutMix boxes.
RUNS = {"equireg": ("equireg", {}), "baseline": ("baseline", {}),
        "ema-cutmix": ("unimatch-lite", {"teacher": "ema", "mix_prob": 1.0})}


def batch(n_l, n_u, size=32, seed=0):
    import augment

    rng = np.random.default_rng(seed)
    out = {"labeled": rng.uniform(0, 1, (n_l, size, size, 4)).astype("float32"),
           "labels": rng.integers(0, 4, (n_l, size, size)).astype("int32")}
    if n_u:
        unlabeled = rng.uniform(0, 1, (n_u, size, size, 4)).astype("float32")
        grid = augment.strong().sample_grids((size, size), list(range(1, n_u + 1)))
        out.update(unlabeled=unlabeled, strong=augment.warp_image(unlabeled, grid), grid=grid)
    return out


def step(name, devices):
    import keras

    from kequireg.training.config import TrainConfig
    from kequireg.training.distribute import plan_devices
    from kequireg.training.run import build_training_model

    method, overrides = RUNS[name]
    semi = method != "baseline"
    config = TrainConfig(method=method, model="tiny", devices=devices, labeled_batch=2 if semi else 4,
                         unlabeled_batch=2 if semi else 0, jit_compile="on", **overrides).resolve(demo=True)
    plan = plan_devices(config)
    with plan.scope():
        model = build_training_model(config, (32, 32, 4))
        data = batch(config.labeled_batch, config.unlabeled_batch)
        for _ in range(2):  # the second step runs the EMA update from a non-copy state
            logs = model.train_on_batch(data, return_dict=True)
        # every variable of the training model: the network's and, for an EMA teacher, its averages
        weights = [np.asarray(keras.ops.convert_to_numpy(v.value)) for v in model.variables
                   if "float" in str(v.dtype)]
        n_network = sum("float" in str(v.dtype) for v in model.network.variables)
    return {k: float(v) for k, v in logs.items()}, weights, plan.describe(), n_network


def warp_collectives():
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from kequireg.training.device_warp import warp_probs

    mesh = Mesh(np.array(jax.devices()[:2]), ("batch",))
    sharding = NamedSharding(mesh, PartitionSpec("batch"))
    probs = jax.device_put(np.full((4, 16, 16, 4), 0.25, "float32"), sharding)
    grid = jax.device_put(batch(2, 2)["grid"].repeat(2, axis=0)[:, :16, :16], sharding)
    text = jax.jit(lambda p, g: warp_probs(p, g)).lower(probs, grid).compile().as_text()
    return [op for op in ("all-gather", "all-to-all", "collective-permute", "all-reduce") if op in text]


def errors():
    from kequireg.training.config import TrainConfig
    from kequireg.training.distribute import plan_devices

    out = []
    for devices, labeled, unlabeled in ((2, 2, 3), (4, 2, 6)):
        try:
            plan_devices(TrainConfig(devices=devices, labeled_batch=labeled, unlabeled_batch=unlabeled).resolve(demo=True))
            out.append(None)
        except ValueError as err:
            out.append(str(err))
    return out


def main():
    result = {"errors": errors()}
    for name in RUNS:
        logs1, weights1, _, n_network = step(name, 1)
        logs2, weights2, described, _ = step(name, 2)
        result[name] = {
            "logs": [logs1, logs2],
            "n_variables": len(weights1),
            "n_network": n_network,
            "max_weight_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(weights1, weights2)),
            "described": described,
        }
    result["warp_collectives"] = warp_collectives()
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
