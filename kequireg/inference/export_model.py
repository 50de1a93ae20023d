"""Export a trained network for deployment: a TensorFlow SavedModel or an ONNX file.

The exported model takes float32 slices ``(None, H, W, C)`` (the training store's window and
channels, preprocessed as ``kequireg preprocess`` does) and returns float32 softmax
probabilities ``(None, H, W, 4)`` over the internal classes (0 background, 1 necrosis /
non-enhancing core, 2 edema, 3 enhancing). It is the run's logits network inside a small Keras
model that adds a float32 softmax, written by Keras's own ``model.export``.

What each backend can export (Keras 3):

=============  =================================  ==========================================
backend        ``savedmodel``                     ``onnx``
=============  =================================  ==========================================
tensorflow     yes                                with ``tf2onnx`` and ``onnx`` installed
jax            yes (jax2tf; needs tensorflow)     with ``jax2onnx`` installed
torch          no: use ``--backend tensorflow``   with ``onnx`` installed (torch.onnx)
=============  =================================  ==========================================

The ``.keras`` weights load on every backend, so any run exports from the tensorflow backend.
Importing this module imports neither keras nor tensorflow.

Example:
    >>> path = export_run("runs/equireg-0.1-s0", "model.onnx", "onnx")          # doctest: +SKIP
    >>> import onnxruntime                                                       # doctest: +SKIP
    >>> session = onnxruntime.InferenceSession(str(path))                        # doctest: +SKIP
    >>> probs = session.run(None, {session.get_inputs()[0].name: slices})[0]     # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from kequireg.inference.runs import open_run
from kequireg.io import atomic_dir, atomic_path
from kequireg.settings import EXPORT_FORMATS  # kequireg's format name -> Keras's model.export(format=...); re-exported

# (backend, format) -> Python packages the export needs
_NEEDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("tensorflow", "savedmodel"): ("tensorflow",),
    ("jax", "savedmodel"): ("tensorflow",),
    ("tensorflow", "onnx"): ("tf2onnx", "onnx"),
    ("jax", "onnx"): ("jax2onnx", "onnx"),
    ("torch", "onnx"): ("onnx",),
}


def check_export(format: str, backend: str | None = None) -> None:
    """Raise a clear error when ``backend`` cannot export ``format`` here.

    Args:
        format: ``"savedmodel"`` or ``"onnx"``.
        backend: a Keras backend name. Defaults to the current one.

    Raises:
        ValueError: unknown format, a format the backend cannot export, or a missing package
            (the message says what to install or which backend to use).

    Example:
        >>> try:
        ...     check_export("savedmodel", "torch")
        ... except ValueError as err:
        ...     print(str(err).split(";")[0])
        Keras cannot export format='savedmodel' from the torch backend
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {sorted(EXPORT_FORMATS)}. Received: format={format!r}")
    if backend is None:
        import keras

        backend = keras.backend.backend()
    needs = _NEEDS.get((backend, format))
    if needs is None:
        able = sorted(b for b, f in _NEEDS if f == format)
        raise ValueError(f"Keras cannot export format={format!r} from the {backend} backend; rerun with --backend "
                         f"{' or '.join(able)} (KERAS_BACKEND=...): the run's .keras weights load on every backend.")
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if missing:
        hint = "pip install 'kequireg[onnx]'" if format == "onnx" and backend == "tensorflow" else f"pip install {' '.join(missing)}"
        raise ValueError(f"exporting format={format!r} on the {backend} backend needs {', '.join(missing)}, which is not "
                         f"installed: {hint}.")


def probability_model(network):
    """The logits ``network`` with a float32 softmax on top: ``(None, H, W, C)`` -> probabilities.

    Args:
        network: keras.Model mapping images (B, H, W, C) to logits (B, H, W, K), with a fixed
            (H, W, C) input shape.

    Returns:
        keras.Model with input ``images`` and output ``probabilities`` (float32, sums to 1 over K).

    Raises:
        ValueError: if the network's input shape is not (None, H, W, C) with H, W, C known.
    """
    import keras

    shape = tuple(getattr(network, "input_shape", ()) or ())
    if len(shape) != 4 or not all(shape[1:]):
        raise ValueError(f"the network must take inputs of shape (None, H, W, C) with H, W, C fixed. Received: input_shape={shape}")
    inputs = keras.Input(shape[1:], dtype="float32", name="images")
    probabilities = keras.layers.Softmax(axis=-1, dtype="float32", name="probabilities")(network(inputs))
    return keras.Model(inputs, probabilities, name=f"{network.name}_probabilities")


def export_model(network, out: str | os.PathLike, format: str = "savedmodel", *, overwrite: bool = False,
                 verbose: bool = False) -> Path:
    """Export a logits network as softmax probabilities through ``model.export``.

    Written beside ``out`` first and renamed into place (``kequireg.io.atomic_dir`` for a
    SavedModel folder, ``atomic_path`` for an ONNX file), so ``out`` is never half-written.

    Args:
        network: keras.Model returning logits (see :func:`probability_model`).
        out: a folder for ``"savedmodel"``, a file (``.onnx``) for ``"onnx"``.
        format: ``"savedmodel"`` or ``"onnx"``. Defaults to ``"savedmodel"``.
        overwrite: replace an existing ``out``. Defaults to False.
        verbose: let Keras print its export messages. Defaults to False.

    Returns:
        The path written.

    Raises:
        ValueError: see :func:`check_export` and :func:`probability_model`.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
    """
    import keras

    check_export(format)
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{str(out)!r} already exists; pass overwrite=True (--overwrite) to replace it.")
    model = probability_model(network)
    signature = [keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="float32", name="images")]
    if format == "savedmodel":
        with atomic_dir(out, replace=overwrite) as tmp:
            model.export(str(tmp), format=EXPORT_FORMATS[format], input_signature=signature, verbose=verbose)
        return out
    if out.is_dir() and not out.is_symlink():  # --overwrite of a folder by a file: os.replace cannot
        shutil.rmtree(out)
    with atomic_path(out, stable=True) as tmp:
        model.export(str(tmp), format=EXPORT_FORMATS[format], input_signature=signature, verbose=verbose)
    return out


def export_run(run: str | os.PathLike, out: str | os.PathLike, format: str = "savedmodel", *,
               overwrite: bool = False, verbose: bool = False) -> Path:
    """``kequireg export``: a run's best network as a SavedModel or an ONNX file of probabilities.

    Args:
        run: a run folder from ``kequireg train`` (its ``best.keras``).
        out, format, overwrite, verbose: see :func:`export_model`.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: ``run`` is not a run folder or has no best model yet.
        ValueError / FileExistsError: see :func:`export_model`.
    """
    check_export(format)  # before loading a large network
    run = open_run(run)
    return export_model(run.load_network(accelerate=False), out, format, overwrite=overwrite, verbose=verbose)

