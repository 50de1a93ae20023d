"""Fused PyTorch paths for a network's standard Keras layers (torch backend only; a no-op elsewhere).

Why: profiled on the 2-core CPU (fc-densenet56, 64×64, Keras 3.15, torch 2.13), Keras's torch
backend spent most of a Tiramisu step outside the arithmetic:

- ``Conv2D`` copies its NHWC input twice per call (``permute(...).contiguous()`` to NCHW, then
  back to channels-last memory for oneDNN): 46% of a forward pass was ``aten::copy_``;
- ``BatchNormalization`` computes its moments and the normalisation in about ten elementwise
  passes, each with its own backward;
- ``MaxPooling2D`` copies its input to NCHW;
- ``Dropout`` draws one float per element from torch's Mersenne twister (about 7 ns each);
- glibc returned each freed activation buffer to the OS, so every new one page-faulted again
  (a third of a no-grad forward pass).

`accelerate(model)` gives the model's own ``Conv2D``, ``BatchNormalization``, ``Dropout`` and
``MaxPooling2D`` instances a ``call`` doing the same math in one torch op each (the NHWC tensor viewed as NCHW
with channels-last strides, no copy; ``native_batch_norm``; a dropout mask from 16 random bits
per element). Layer classes, configs and saved ``.keras`` files stay plain Keras, so saved models
load anywhere without kequireg. `tune_cpu_allocator()` keeps freed buffers in the process.
Equality with the Keras layers (outputs, gradients, moving statistics) is tested on every
backend; the step benchmark in docs/benchmarks.md shows the effect.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import types

import keras

_MARK = "_kequireg_torch_fast"
_allocator_tuned = False
_BITS = 65536  # dropout keeps an element when its 16 random bits reach rate·2^16 (rate resolution 1/65536)

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit systems


def accelerate(model: keras.Model, tune_allocator: bool = False) -> int:
    """Route ``model``'s eligible standard layers through fused torch ops (torch backend only).

    Eligible: exact ``keras.layers.Conv2D`` (channels_last, one group, "valid" padding or "same"
    with stride 1 and odd kernels), ``keras.layers.BatchNormalization`` (no renorm, not synchronized), ``keras.layers.Dropout`` (no seed, no noise shape) and
    ``keras.layers.MaxPooling2D`` (channels_last, "valid" padding). Subclasses and other
    layers are left alone. Idempotent; nested models are walked.

    Args:
        model: keras.Model (or layer) whose sublayers to accelerate.
        tune_allocator: bool. Also run `tune_cpu_allocator` (process-wide, once per process)
            when a fused path was installed. Defaults to False: the entry points that own the
            process (``train``, ``RunDir.load_network``, the evaluation loader) opt in.

    Set the environment variable ``KEQUIREG_TORCH_FAST=0`` to keep Keras's own torch paths and
    allocator (for comparison, or to rule them out when chasing a problem).

    Returns:
        int. Number of layers given a fused path now (0 on tensorflow and jax, and when off).
    """
    if keras.backend.backend() != "torch" or _turned_off():
        return 0
    count = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if getattr(layer, _MARK, False):
            continue
        fast = _fast_call_for(layer)
        if fast is None:
            continue
        object.__setattr__(layer, "call", types.MethodType(fast, layer))
        object.__setattr__(layer, _MARK, True)
        count += 1
    global _allocator_tuned
    if tune_allocator and any(is_accelerated(layer) for layer in model._flatten_layers()) and not _allocator_tuned:
        _allocator_tuned = True
        tune_cpu_allocator()  # a third of a no-grad CPU forward pass was page faults on fresh buffers
    return count


def is_accelerated(layer) -> bool:
    """Whether `accelerate` gave ``layer`` a fused torch path."""
    return bool(getattr(layer, _MARK, False))


def tune_cpu_allocator() -> bool:
    """Keep freed host buffers in the process instead of returning them to the OS (glibc only).

    Raises glibc's mmap threshold to its ceiling (32 MB) and stops heap trimming, so the
    activations freed by one forward pass are reused by the next without page faults. The
    process keeps its peak heap. Returns True when glibc accepted both settings (False off
    Linux, or with ``KEQUIREG_TORCH_FAST=0``).
    """
    if not sys.platform.startswith("linux") or _turned_off():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    return mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1 and ok


def _turned_off() -> bool:
    return os.environ.get("KEQUIREG_TORCH_FAST", "1").strip() == "0"


# ---- which layers --------------------------------------------------------------------------


def _fast_call_for(layer):
    layers = keras.layers
    if type(layer) is layers.Conv2D and _conv_eligible(layer):
        return _conv2d_call
    if type(layer) is layers.BatchNormalization and _bn_eligible(layer):
        return _batch_norm_call
    if type(layer) is layers.Dropout and layer.seed is None and layer.noise_shape is None:
        return _dropout_call
    if type(layer) is layers.MaxPooling2D and layer.data_format == "channels_last" and layer.padding == "valid":
        return _max_pool2d_call
    return None


def _conv_eligible(layer) -> bool:
    if layer.data_format != "channels_last" or layer.groups != 1:
        return False
    if getattr(layer, "quantization_mode", None) is not None:
        return False
    if not layer.built:
        return False
    if layer.padding == "valid":
        return True
    return (
        layer.padding == "same"
        and all(s == 1 for s in layer.strides)
        and all(k % 2 == 1 for k in layer.kernel_size)
    )


def _bn_eligible(layer) -> bool:
    return layer.built and not layer.renorm and not getattr(layer, "synchronized", False)


def _symbolic(inputs) -> bool:
    """Keras traces shapes with meta-device tensors; those take the plain Keras path."""
    import torch

    return not isinstance(inputs, torch.Tensor) or inputs.device.type == "meta"


# ---- fused calls (bound to layer instances) -------------------------------------------------


def _conv2d_call(self, inputs):
    import torch

    if _symbolic(inputs):
        return type(self).call(self, inputs)
    # (B, H, W, C) contiguous seen as (B, C, H, W) is channels-last memory: oneDNN's own layout.
    x = inputs.permute(0, 3, 1, 2)
    kernel = _tensor(self.kernel).permute(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
    bias = _tensor(self.bias) if self.use_bias else None
    if self.padding == "same":
        padding = tuple(d * (k - 1) // 2 for k, d in zip(self.kernel_size, self.dilation_rate))
    else:
        padding = 0
    out = torch.nn.functional.conv2d(
        x, kernel, bias, stride=self.strides, padding=padding, dilation=self.dilation_rate
    )
    out = out.permute(0, 2, 3, 1)
    return self.activation(out) if self.activation is not None else out


def _batch_norm_call(self, inputs, training=None, mask=None):
    import torch

    if mask is not None or _symbolic(inputs):
        return type(self).call(self, inputs, training=training, mask=mask)
    # float32 statistics under mixed precision, as Keras's layer does.
    x = inputs.float() if inputs.dtype in (torch.float16, torch.bfloat16) else inputs
    axis = self.axis % x.ndim
    x = x.movedim(axis, 1)
    gamma = self.gamma.value.to(x.dtype) if self.scale else None
    beta = self.beta.value.to(x.dtype) if self.center else None
    if training and self.trainable:
        out, mean, invstd = torch.native_batch_norm(x, gamma, beta, None, None, True, 0.0, self.epsilon)
        with torch.no_grad():
            variance = invstd.double().pow(-2).sub(self.epsilon).clamp_min(0).to(mean.dtype)  # biased, as Keras
            m = self.momentum
            self.moving_mean.assign(self.moving_mean.value * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance.value * m + variance * (1.0 - m))
    else:
        out = torch.nn.functional.batch_norm(
            x, self.moving_mean.value.to(x.dtype), self.moving_variance.value.to(x.dtype), gamma, beta,
            training=False, eps=self.epsilon,
        )
    return keras.ops.cast(out.movedim(1, axis), self.compute_dtype)


def _max_pool2d_call(self, inputs):
    import torch

    if _symbolic(inputs):
        return type(self).call(self, inputs)
    out = torch.nn.functional.max_pool2d(inputs.permute(0, 3, 1, 2), self.pool_size, self.strides)
    return out.permute(0, 2, 3, 1)


def _dropout_call(self, inputs, training=False):
    import torch

    if not training or not 0 < self.rate < 1 or _symbolic(inputs):
        return type(self).call(self, inputs, training=training)
    n = inputs.numel()
    # 64 random bits give four 16-bit draws: a quarter of the generator calls of torch's dropout.
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=inputs.device).random_(-(2**63), 2**63 - 1)
    draws = words.view(torch.int16)[:n].view(inputs.shape)
    keep = draws >= (round(self.rate * _BITS) - _BITS // 2)
    scale = keep.to(inputs.dtype).mul_(1.0 / (1.0 - self.rate))
    return inputs * scale


def _tensor(value):
    """A variable's current value (autocast and stateless scopes applied), or a tensor as is."""
    return value.value if isinstance(value, keras.Variable) else value


__all__ = ["accelerate", "is_accelerated", "tune_cpu_allocator"]
