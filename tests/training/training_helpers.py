"""Small networks, batches and NumPy references shared by the training tests."""

from __future__ import annotations

import numpy as np


def conv_net(shape=(16, 16, 4), classes=4, width=8, batchnorm=False, dropout=0.0, kernel=3, seed=0):
    """A small fully convolutional network (3x3 or 1x1 convs) giving float32 logits."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(width, kernel, padding="same")(inputs)
    if batchnorm:
        x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Conv2D(width, kernel, padding="same", activation="tanh")(x)
    outputs = keras.layers.Conv2D(classes, 1, dtype="float32")(x)
    return keras.Model(inputs, outputs, name="test_net")


def shifted_grid(batch, height, width, drow, dcol, seed=0, jitter=0.0):
    """Source grid (B, H, W, 2) = identity + a per-image shift (+ optional random jitter)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    grid = np.stack([rows, cols], -1).astype("float64")[None].repeat(batch, 0)
    grid[..., 0] += np.asarray(drow, "float64").reshape(-1, 1, 1)
    grid[..., 1] += np.asarray(dcol, "float64").reshape(-1, 1, 1)
    if jitter:
        grid += rng.uniform(-jitter, jitter, grid.shape)
    return grid.astype("float32")


def flip_grid(batch, height, width):
    """Left-right flip grid: output (i, j) reads source (i, W-1-j)."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([rows, width - 1 - cols], -1).astype("float32")[None].repeat(batch, 0)


def np_warp_image(images, grid):
    """Per-tap bilinear warp with fill 0 (the reference: obviously right, slow)."""
    b, h, w, c = images.shape
    out = np.zeros(grid.shape[:3] + (c,), "float64")
    for n in range(b):
        for i in range(grid.shape[1]):
            for j in range(grid.shape[2]):
                r, q = float(grid[n, i, j, 0]), float(grid[n, i, j, 1])
                r0, q0 = int(np.floor(r)), int(np.floor(q))
                for rr, wr in ((r0, 1 - (r - r0)), (r0 + 1, r - r0)):
                    for cc, wc in ((q0, 1 - (q - q0)), (q0 + 1, q - q0)):
                        if 0 <= rr < h and 0 <= cc < w:
                            out[n, i, j] += wr * wc * images[n, rr, cc]
    return out


def np_warp_probs(probs, grid, background=0):
    """Bilinear warp where out-of-image taps read one-hot(background)."""
    k = probs.shape[-1]
    shifted = probs.astype("float64").copy()
    shifted[..., background] -= 1.0  # warp (p - onehot) with fill 0, then add onehot back
    out = np_warp_image(shifted, grid)
    out[..., background] += 1.0
    return out


def np_softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def np_equireg_loss(labeled_logits, labels, teacher_logits, student_logits, grid, strong, lam, mask="thesis"):
    """EquiReg loss by hand: mean pixel CE + λ · mean over images of masked-mean KL."""
    logp = np.log(np_softmax(labeled_logits.astype("float64")))
    ce = -np.take_along_axis(logp, labels[..., None].astype(int), -1)[..., 0].mean()
    target = np_warp_probs(np_softmax(teacher_logits.astype("float64")), grid)
    logs = np.log(np_softmax(student_logits.astype("float64")))
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(target > 0, target * (np.log(target) - logs), 0.0).sum(-1)
    h, w = grid.shape[1:3]
    if mask == "thesis":
        m = (strong != 0).any(-1).astype("float64")
    elif mask == "valid":
        m = ((grid[..., 0] >= 0) & (grid[..., 0] <= h - 1) & (grid[..., 1] >= 0) & (grid[..., 1] <= w - 1)).astype("float64")
    else:
        m = np.ones(kl.shape)
    er = ((kl * m).sum((1, 2)) / np.maximum(m.sum((1, 2)), 1)).mean()
    return ce + lam * er, ce, er


def equireg_batch(n_labeled=2, n_unlabeled=3, shape=(16, 16, 4), classes=4, seed=0, zero_border=2):
    """A fixed random EquiReg batch; images are zero on a border (like skull-stripped MRI)."""
    rng = np.random.default_rng(seed)
    h, w, c = shape

    def images(n):
        x = rng.uniform(0, 1, (n, h, w, c)).astype("float32")
        if zero_border:
            x[:, :zero_border] = 0
            x[:, :, -zero_border:] = 0
        return x

    labeled = images(n_labeled)
    labels = rng.integers(0, classes, (n_labeled, h, w)).astype("int32")
    unlabeled = images(n_unlabeled)
    grid = shifted_grid(n_unlabeled, h, w, rng.uniform(-3, 3, n_unlabeled), rng.uniform(-3, 3, n_unlabeled), seed=seed, jitter=0.4)
    strong = np_warp_image(unlabeled, grid).astype("float32")
    return {"labeled": labeled, "labels": labels, "unlabeled": unlabeled, "strong": strong, "grid": grid}


def backend_gradients(model, loss_fn):
    """d loss_fn() / d trainable variables, with the backend's own autodiff (test-only)."""
    import keras

    backend = keras.backend.backend()
    variables = model.trainable_variables
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn()
        return [np.asarray(g) for g in tape.gradient(loss, variables)]
    if backend == "torch":
        model.zero_grad()
        loss_fn().backward()
        return [v.value.grad.detach().cpu().numpy().copy() for v in variables]
    import jax

    fixed = [(v, v.value) for v in model.non_trainable_variables]

    def pure(values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values)) + fixed):
            return loss_fn()

    return [np.asarray(g) for g in jax.grad(pure)([v.value for v in variables])]


def to_numpy(x):
    """A backend tensor (or variable) as a NumPy array."""
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x))


def sgd_model(network, lr=1.0, **kwargs):
    """``EquiRegModel(network, StepOptions(**kwargs))`` compiled with plain SGD (lr = 1: a step subtracts the gradient)."""
    import keras

    from kequireg.training import EquiRegModel, StepOptions

    model = EquiRegModel(network, StepOptions(**kwargs))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr))
    return model
