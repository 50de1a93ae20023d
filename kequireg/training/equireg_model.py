"""``EquiRegModel``: a Keras model wrapping any segmentation network with the EquiReg train step.

A training batch is a dict of arrays::

    labeled    (B_l, H, W, C) float   weakly augmented labeled slices
    labels     (B_l, H, W)    int     their labels, warped with the same weak grid
    unlabeled  (B_u, H, W, C) float   weakly augmented unlabeled slices (teacher input)
    strong     (B_u, H, W, C) float   ``unlabeled`` warped by one strong transform (student input)
    grid       (B_u, H, W, 2) float   that strong transform's grid

The step runs the teacher (the same network, by default in training mode: BatchNorm statistics
of the unlabeled batch) on ``unlabeled`` with no gradient tape, warps its probabilities on the device with
``grid``, then runs the student once on ``concat(labeled, strong)`` with gradients and minimises

    loss = CE(labels, student(labeled)) + λ · masked-mean KL(warp(teacher) ‖ student(strong)).

A batch without the unlabeled keys is the supervised baseline (``loss = CE``). A batch with
``mix_index`` / ``mix_box`` (``kequireg.training.cutmix``) pastes each slice's box from its
partner into the student's strong input, the warped teacher probabilities and the mask alike.

The other method parts (docs/architecture.md, "Semi-supervised methods as parts"): ``teacher="ema"`` runs
the teacher with EMA weights of the network (non-trainable variables of this model, so they are
in every checkpoint), updated after each optimizer step; ``consistency`` replaces the KL by
pseudo-label CE or MSE; ``sup_loss`` the CE by soft Dice or CE + Dice. The loss math
lives here and in ``losses.py`` (``keras.ops`` only); ``backend_step.py`` holds the per-backend
gradient plumbing. Validation batches are ``(images, labels)`` tuples and log ``loss`` (the
mean pixel cross-entropy over annotated pixels, the early-stopping signal) and slice-level Dice
per region of the label schema (BraTS: WT / TC / ET). Ignored pixels (``IGNORE_INDEX``) count
in no supervised loss and no validation metric.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from kequireg.label_schema import LabelSchema
from kequireg.training import backend_step, cutmix, losses
from kequireg.training.device_warp import valid_mask
from kequireg.training.outputs import BACKGROUND, output_head
from kequireg.training.options import StepOptions
from kequireg.vocabulary import BRATS_2019, schema_of

UNLABELED_KEYS = ("unlabeled", "strong", "grid")


@keras.saving.register_keras_serializable(package="kequireg")
class EquiRegModel(keras.Model):
    """Train a segmentation network with Equivariance Regularization (or supervised only).

    Args:
        network: keras.Model mapping (B, H, W, C) images to (B, H, W, K) logits.
        options: StepOptions or None. The step's options (``kequireg.training.options``; resolved:
            no None). λ lives in the non-trainable variable ``er_lambda`` (saved in checkpoints;
            change it with ``model.er_lambda.assign(v)``), ramped up from 0 over ``rampup_steps``
            optimizer steps. ``teacher_mode="train"`` runs the teacher with ``training=True``
            (BatchNorm statistics of the unlabeled batch, which also update the moving statistics,
            as the student pass does; dropout on), ``"inference"`` with ``training=False``; either
            way no gradient flows through it. ``teacher="ema"`` runs the network with
            :attr:`ema_weights`, an exponential moving average of every float variable of the
            network (weights and BatchNorm moving statistics, as timm's ``ModelEmaV2``); its own
            forward changes no weight or statistic (only the dropout seed advances). After optimizer
            step n = 1, 2, … every EMA weight becomes ``d · ema + (1 − d) · student`` with
            ``d = min(1 − 1/n, ema_decay)``. ``eval_weights="ema"`` keeps EMA weights also for a
            self teacher and uses them for validation and :meth:`eval_network` (the saved best
            model). Validation always logs the CE (the early-stopping signal). Defaults to
            ``StepOptions()`` (the thesis).
        schema: the data's LabelSchema: the validation Dice per region, the ignored value.
            Defaults to BraTS 2019.
        **kwargs: passed to ``keras.Model`` (``name``, ...).

    Raises:
        ValueError: ``network`` is not a keras.Model, or ``options`` is not a ``StepOptions``.

    Building the model has no process-wide effect. On the torch backend, call
    ``kequireg.models.torch_fast.accelerate(network)`` first for fused Conv2D /
    BatchNormalization / Dropout / MaxPooling2D paths (``train`` and the run loaders do).

    Example:
        >>> model = EquiRegModel(network, StepOptions(lambda_=0.5, rampup_steps=1000))
        >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> model.fit(train_dataset, steps_per_epoch=500, validation_data=val_dataset)
    """

    def __init__(self, network: keras.Model, options: StepOptions | None = None, schema: LabelSchema | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(network, keras.Model):
            raise ValueError(f"network must be a keras.Model. Received: network={type(network).__name__}")
        options = StepOptions() if options is None else options
        if not isinstance(options, StepOptions):
            raise ValueError("options must be a kequireg.training.options.StepOptions (method parts resolved: "
                             "TrainConfig.step_options()). Received: "
                             f"options={type(options).__name__}")
        # Layers and state.
        self.network = network
        self.options = options
        self.er_lambda = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(options.lambda_), trainable=False,
            name="er_lambda", dtype="float32",
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.sup_loss_tracker = keras.metrics.Mean(name="sup_loss")
        self.er_loss_tracker = keras.metrics.Mean(name="er_loss")
        self.schema = BRATS_2019 if schema is None else schema
        self.head = output_head(options.output, self.schema)  # softmax over classes or sigmoid per region
        self.dice_metrics = self.head.dice_metrics()
        # EMA teacher: one non-trainable float variable per float variable of the network. The
        # pairing lives in a plain object, so Keras does not track the network's variables twice.
        self._ema = _EmaPairs(network if options.uses_ema else None, self)
        self.built = network.built

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    # ---- the loss, written once (keras.ops) -------------------------------------------------

    def lambda_value(self):
        """Effective λ now: ``er_lambda`` times the ramp-up factor at the optimizer's step."""
        step = self.optimizer.iterations if self.optimizer is not None else 0
        return self.er_lambda * losses.ramp_weight(step, self.options.rampup_steps, self.options.rampup)

    @property
    def ema_weights(self) -> list:
        """The EMA variables, one per float variable of the network, in its order ([] without EMA)."""
        return [shadow for _, shadow in self._ema.pairs]

    def ema_forward(self, images, training):
        """The network's logits with the EMA weights; the forward's own variable updates are dropped
        (BatchNorm statistics), except the dropout seed states, which advance."""
        mapping = [(source, shadow.value) for source, shadow in self._ema.pairs]
        mapping += [(v, v.value) for v in self._ema.others]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logits = self.network(images, training=training)
        for variable in self._ema.others:
            new = scope.get_current_value(variable)
            if new is not None:
                variable.assign(new)
        return logits

    def update_ema(self):
        """After an optimizer step: move the EMA weights toward the network's (no-op without EMA weights)."""
        if not self._ema.pairs:
            return
        steps = ops.cast(self.optimizer.iterations, "float32")
        decay = ops.minimum(1.0 - 1.0 / ops.maximum(steps, 1.0), self.options.ema_decay)
        for source, shadow in self._ema.pairs:
            shadow.assign(decay * shadow.value + (1.0 - decay) * source.value)

    def eval_network(self) -> keras.Model:
        """The network with the ``eval_weights``: the network itself, or a copy holding the EMA weights."""
        if self.options.eval_weights == "student":
            return self.network
        copy = keras.models.clone_model(self.network)
        shadows = {id(source): shadow for source, shadow in self._ema.pairs}
        for source, target in zip(self.network.variables, copy.variables):
            target.assign(ops.convert_to_numpy(shadows.get(id(source), source).value))  # copies (JAX donates)
        return copy

    def student_view(self, data):
        """The student's unlabeled input: ``strong``, CutMixed when the batch carries boxes."""
        strong = ops.cast(data["strong"], "float32")
        if not cutmix.has_mix(data):
            return strong
        return cutmix.mix(strong, data["mix_index"], self._mix_masks(data))

    def _mix_masks(self, data):
        grid = data["grid"]
        return cutmix.box_masks(data["mix_box"], int(grid.shape[1]), int(grid.shape[2]))

    def teacher_targets(self, data):
        """Warped (and CutMixed) teacher probabilities and the consistency mask; constants (no gradient).

        Returns:
            ``(targets (B_u, H, W, K), mask (B_u, H, W))``, or None for a supervised batch.
        """
        if not has_unlabeled(data):
            return None
        training = self.options.teacher_mode == "train"
        if self.options.teacher == "ema":
            logits = self.ema_forward(data["unlabeled"], training)
        else:
            logits = self.network(data["unlabeled"], training=training)
        probs = self.head.teacher_probs(logits, self.options.temperature)
        grid = ops.cast(data["grid"], "float32")
        targets = self.head.warp(probs, grid)
        boxes = self._mix_masks(data) if cutmix.has_mix(data) else None
        if boxes is not None:
            targets = cutmix.mix(targets, data["mix_index"], boxes)
        targets = ops.stop_gradient(targets)
        height, width = int(grid.shape[1]), int(grid.shape[2])
        if self.options.mask == "thesis":
            mask = losses.nonzero_input_mask(self.student_view(data))
        elif self.options.mask == "valid":
            mask = ops.cast(valid_mask(grid, height, width), "float32")
            if boxes is not None:
                mask = cutmix.mix(mask, data["mix_index"], boxes)
        else:
            mask = ops.ones(ops.shape(grid)[:3], "float32")
        return targets, ops.stop_gradient(mask)

    def student_losses(self, data, teacher):
        """Student forward (training mode): ``(loss, sup_loss, er_loss, λ used)``, float32 scalars.

        ``er_loss`` is the per-image masked mean of the consistency term, pixels below the
        confidence threshold adding 0 (``losses.masked_image_mean``'s ``weight``).
        """
        labeled, labels = data["labeled"], data["labels"]
        if teacher is None:
            logits = self.network(labeled, training=True)
            sup = self.head.supervised(self.options.sup_loss, labels, logits)
            return sup, sup, ops.zeros((), "float32"), ops.zeros((), "float32")
        targets, mask = teacher
        n_labeled = ops.shape(labeled)[0]
        inputs = ops.concatenate([ops.cast(labeled, "float32"), self.student_view(data)], axis=0)
        logits = self.network(inputs, training=True)
        sup = self.head.supervised(self.options.sup_loss, labels, logits[:n_labeled])
        weight = self.head.confidence(targets, self.options.confidence) if self.options.confidence > 0 else None
        consistency = self.head.consistency(self.options.consistency, targets, logits[n_labeled:])
        er = losses.masked_image_mean(consistency, mask, weight)
        lam = ops.cast(self.lambda_value(), "float32")
        return sup + lam * er, sup, er, lam

    def update_train_metrics(self, loss, sup, er, lam):
        self.loss_tracker.update_state(loss)
        self.sup_loss_tracker.update_state(sup)
        self.er_loss_tracker.update_state(er)
        return {
            "loss": self.loss_tracker.result(),
            "sup_loss": self.sup_loss_tracker.result(),
            "er_loss": self.er_loss_tracker.result(),
            "lambda": lam,
        }

    def evaluate_batch(self, data):
        """Validation on ``(images, labels)``: updates the mean CE and the Dice metrics."""
        images, labels = unpack_validation(data)
        if self.options.eval_weights == "ema":
            logits = self.ema_forward(images, training=False)
        else:
            logits = self.network(images, training=False)
        # weight = the batch's annotated pixels in images' worth (= its size when nothing is ignored)
        weight = ops.cast(ops.shape(labels)[0], "float32") * ops.mean(losses.annotated_mask(labels))
        self.loss_tracker.update_state(self.head.validation_loss(labels, logits), sample_weight=weight)
        logs = {"loss": self.loss_tracker.result()}
        for metric in self.dice_metrics:
            metric.update_state(labels, logits)
            logs[metric.name] = metric.result()
        logs["dice_mean"] = sum(logs[m.name] for m in self.dice_metrics) / len(self.dice_metrics)
        return logs

    # ---- Keras hooks ------------------------------------------------------------------------

    @property
    def metrics(self):
        return [self.loss_tracker, self.sup_loss_tracker, self.er_loss_tracker, *self.dice_metrics]

    def train_step(self, *args):
        # TensorFlow and torch call train_step(data); JAX calls train_step(state, data).
        return backend_step.train_step(self, *args)

    def test_step(self, *args):
        return backend_step.test_step(self, *args)

    def get_config(self):
        return {**super().get_config(), "network": keras.saving.serialize_keras_object(self.network),
                "label_schema": self.schema.to_dict(), **dataclasses.asdict(self.options)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        # Models saved before StepOptions also hold "background" (always 0, the out-of-image class).
        background = config.pop("background", BACKGROUND)
        if background != BACKGROUND:
            raise ValueError(f"background must be {BACKGROUND} (the class out-of-image taps read). "
                             f"Received: background={background!r}")
        names = [f.name for f in dataclasses.fields(StepOptions)]
        options = StepOptions(**{name: config.pop(name) for name in names if name in config})
        schema = schema_of(config.pop("label_schema", None))  # models saved before schemas: BraTS 2019
        return cls(network, options, schema, **config)


class _EmaPairs:
    """The (network variable, EMA variable) pairs of an EMA teacher, and the network's other variables.

    Not a list attribute of the model, so Keras's tracking does not count the network's variables
    a second time. Empty when neither the teacher nor the evaluation uses EMA weights.
    """

    def __init__(self, network, model):
        self.pairs, self.others = [], []
        if network is None:
            return
        for variable in network.variables:
            if "float" not in str(variable.dtype):  # dropout seed states: the network's own
                self.others.append(variable)
                continue
            shadow = model.add_weight(shape=variable.shape, dtype=variable.dtype, initializer="zeros",
                                      trainable=False, name="ema_" + variable.path.replace("/", "_"))
            shadow.assign(ops.convert_to_numpy(variable.value))  # a copy: JAX must not see one buffer twice
            self.pairs.append((variable, shadow))


def has_unlabeled(data) -> bool:
    """Whether a training batch dict carries the unlabeled part (EquiReg) or not (baseline)."""
    if not isinstance(data, dict):
        raise ValueError(
            "EquiRegModel training batches must be dicts with keys 'labeled', 'labels' and optionally "
            f"{UNLABELED_KEYS}. Received: {type(data).__name__}"
        )
    present = [k for k in UNLABELED_KEYS if data.get(k) is not None]
    if present and len(present) != len(UNLABELED_KEYS):
        raise ValueError(
            f"an EquiReg batch needs all of {UNLABELED_KEYS}. Received keys: {sorted(k for k in data if data[k] is not None)}"
        )
    return bool(present)


def unpack_validation(data):
    """``(images, labels)`` from a validation batch given as a tuple/list or a dict."""
    if isinstance(data, dict):
        return data["labeled"], data["labels"]
    if isinstance(data, (tuple, list)) and len(data) >= 2:
        return data[0], data[1]
    raise ValueError(f"validation batches must be (images, labels). Received: {type(data).__name__}")
