"""The only per-backend code of kequireg's training: gradient plumbing for ``EquiRegModel``.

Keras 3 lets a model override ``train_step`` but the gradient machinery differs per backend
(TensorFlow: ``tf.GradientTape``; JAX: a pure function of the state under ``jax.value_and_grad``;
torch: ``loss.backward()``). Each function below does only that plumbing; the losses themselves
are ``EquiRegModel.teacher_targets`` / ``student_losses`` / ``evaluate_batch`` in ``keras.ops``.

In every backend the teacher pass runs outside the differentiated computation (outside the
tape, under ``torch.no_grad()``, outside ``value_and_grad``), so it does no backward work, and
its output is a constant of the student's loss. An EMA teacher's weights are updated after the
optimizer step (``EquiRegModel.update_ema``), outside the gradient computation too.
"""

from __future__ import annotations

import keras


def train_step(model, *args):
    """One optimizer step on an EquiReg (or supervised) batch; returns the logs (and JAX state)."""
    backend = keras.backend.backend()
    args = (*args[:-1], _batch_dict(args[-1]))
    if backend == "tensorflow":
        return _tf_train_step(model, *args)
    if backend == "jax":
        return _jax_train_step(model, *args)
    if backend == "torch":
        return _torch_train_step(model, *args)
    raise NotImplementedError(f"EquiRegModel supports tensorflow, jax and torch. Received backend: {backend!r}")


def test_step(model, *args):
    """One validation batch; returns the logs (and the JAX state)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_test_step(model, *args)
    if backend == "torch":
        import torch

        with torch.no_grad():
            return model.evaluate_batch(*args)
    return model.evaluate_batch(*args)


def _batch_dict(data):
    """The batch dict, also when Keras hands it over packed as ``(x,)`` or ``(x, None, None)``."""
    if isinstance(data, (tuple, list)) and data and isinstance(data[0], dict):
        return data[0]
    return data


# ---- TensorFlow -----------------------------------------------------------------------------


def _tf_train_step(model, data):
    import tensorflow as tf

    teacher = model.teacher_targets(data)  # outside the tape: no backward
    with tf.GradientTape() as tape:
        loss, sup, er, lam = model.student_losses(data, teacher)
        scaled = model.optimizer.scale_loss(loss)
    variables = model.trainable_variables
    grads = tape.gradient(scaled, variables)
    model.optimizer.apply(grads, variables)
    model.update_ema()
    return model.update_train_metrics(loss, sup, er, lam)


# ---- torch ----------------------------------------------------------------------------------


def _torch_train_step(model, data):
    import torch

    with torch.no_grad():
        teacher = model.teacher_targets(data)
    model.zero_grad()
    loss, sup, er, lam = model.student_losses(data, teacher)
    model.optimizer.scale_loss(loss).backward()
    variables = model.trainable_variables
    grads = [v.value.grad for v in variables]
    with torch.no_grad():
        model.optimizer.apply(grads, variables)
        model.update_ema()
    return model.update_train_metrics(loss.detach(), sup.detach(), er.detach(), lam.detach())


# ---- JAX ------------------------------------------------------------------------------------


def _jax_scope(model, trainable, non_trainable, optimizer_vars=None, metrics_vars=None):
    """A StatelessScope mapping the model's variables to the given state values."""
    mapping = list(zip(model.trainable_variables, trainable))
    mapping += list(zip(model.non_trainable_variables, non_trainable))
    if optimizer_vars is not None:
        mapping += list(zip(model.optimizer.variables, optimizer_vars))
    if metrics_vars is not None:
        mapping += list(zip(model.metrics_variables, metrics_vars))
    return keras.StatelessScope(state_mapping=mapping)


def _collect(scope, variables, previous):
    """The values of ``variables`` after a scope: the assigned ones, else the previous state."""
    out = []
    for ref, old in zip(variables, previous):
        new = scope.get_current_value(ref)
        out.append(old if new is None else new)
    return out


def _jax_train_step(model, state, data):
    import jax

    trainable, non_trainable, optimizer_vars, metrics_vars = state
    with _jax_scope(model, trainable, non_trainable, optimizer_vars) as scope:
        teacher = model.teacher_targets(data)  # not inside value_and_grad: no backward
    # a training-mode teacher updates BatchNorm moving statistics, as it does eagerly on tensorflow/torch
    non_trainable = _collect(scope, model.non_trainable_variables, non_trainable)
    if teacher is not None:
        teacher = jax.lax.stop_gradient(teacher)

    def loss_fn(trainable_values):
        with _jax_scope(model, trainable_values, non_trainable, optimizer_vars) as scope:
            loss, sup, er, lam = model.student_losses(data, teacher)
            scaled = model.optimizer.scale_loss(loss)
        new_non_trainable = _collect(scope, model.non_trainable_variables, non_trainable)
        return scaled, (loss, sup, er, lam, new_non_trainable)

    (_, (loss, sup, er, lam, non_trainable)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    trainable, optimizer_vars = model.optimizer.stateless_apply(optimizer_vars, grads, trainable)
    if model.ema_weights:
        with _jax_scope(model, trainable, non_trainable, optimizer_vars) as scope:
            model.update_ema()
        non_trainable = _collect(scope, model.non_trainable_variables, non_trainable)
    with _jax_scope(model, trainable, non_trainable, optimizer_vars, metrics_vars) as scope:
        logs = model.update_train_metrics(loss, sup, er, lam)
    metrics_vars = _collect(scope, model.metrics_variables, metrics_vars)
    return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)


def _jax_test_step(model, state, data):
    trainable, non_trainable, metrics_vars = state
    with _jax_scope(model, trainable, non_trainable, metrics_vars=metrics_vars) as scope:
        logs = model.evaluate_batch(data)
    metrics_vars = _collect(scope, model.metrics_variables, metrics_vars)
    return logs, (trainable, non_trainable, metrics_vars)
