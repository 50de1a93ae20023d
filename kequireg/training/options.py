"""The options objects of a training run's stages: ``StepOptions`` (the EquiReg step) and ``PipelineOptions``.

Both are frozen dataclasses of :func:`kequireg.options.option` fields, validated when made.
``StepOptions`` is declared once and read by everything that names a step option:
``EquiRegModel`` takes it whole (``get_config`` is its dict), ``TrainConfig`` copies its fields
(:func:`include_options`, so config.json holds them flat) and ``kequireg train`` offers them
as flags. Adding a training-step option means adding one field here (and reading it in the step).

Method parts (``settings.METHOD_PARTS``) hold the thesis's values here, never None: a
``StepOptions`` is always resolved. ``TrainConfig`` declares them nullable ("from --method")
and resolves them with ``settings.METHOD_PRESETS`` in ``TrainConfig.step_options()``.

Keras-free, so the CLI can read it before ``--backend`` sets the Keras backend.

Example:
    >>> StepOptions(lambda_=2).lambda_
    2.0
    >>> StepOptions(mask="inside")
    Traceback (most recent call last):
    ...
    ValueError: mask must be one of ('thesis', 'valid', 'none'). Received: mask='inside'
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from kequireg import settings
from kequireg.options import check_options, coerce_floats, option

if TYPE_CHECKING:  # annotations only: the policies are built where the batches are
    import augment

FROM_METHOD = "from --method."
_THESIS = settings.METHOD_PRESETS["equireg"]
# Keep the slices a dataset needs in memory when they fit in this many bytes (at the store's
# image dtype: float16 for `kequireg preprocess` stores, so full BraTS training needs ~5 GB).
DEFAULT_CACHE_BYTES = 2 * 1024**3


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """Options of the EquiReg train step (``EquiRegModel``); see docs/architecture.md, "Semi-supervised methods as parts".

    Fields (help texts below): ``lambda_`` (weight λ of the consistency term; the model keeps it in the
    non-trainable variable ``er_lambda``), ``rampup_steps`` / ``rampup`` (λ ramp-up), ``mask``,
    ``temperature``, ``confidence``, ``teacher_mode`` (``"train"``: BatchNorm statistics of the
    unlabeled batch, dropout on; ``"inference"``: moving statistics; docs/training.md), ``teacher``
    (``"self"`` or ``"ema"``), ``ema_decay`` (after optimizer step n the EMA weights move by
    ``d = min(1 − 1/n, ema_decay)``), ``eval_weights``, ``consistency``, ``sup_loss``, ``output`` (``"softmax"`` or ``"regions"``:
    :mod:`kequireg.training.region_losses`).

    Raises:
        ValueError: naming the first bad field, its value and the allowed values.
    """

    lambda_: float = option(1.0, "Weight of the equivariance term.", low=0)
    rampup_steps: int = option(0, "Ramp-up of lambda over this many steps (0 = none; shape: --rampup).", low=0)
    rampup: str = option("linear", "Shape of the lambda ramp-up (--rampup-steps).", choices=settings.RAMP_SHAPES)
    mask: str = option("thesis", "Consistency mask: strong input non-zero (thesis), source inside the image "
                       "(valid), or every pixel.", choices=settings.MASK_MODES)
    temperature: float = option(1.0, "Teacher sharpening softmax(z / T) (UDA); 1 = off.", low=0, low_open=True)
    confidence: float = option(_THESIS["confidence"], "Pixels whose teacher confidence is below this add 0 to the "
                               "consistency (0 = off).", low=0, high=1)
    teacher_mode: str = option("train", "Teacher forward with the unlabeled batch's BatchNorm statistics (train) or "
                               "the moving statistics (inference; they lag early in training and pulled EquiReg to "
                               "background).", choices=settings.TEACHER_MODES)
    teacher: str = option(_THESIS["teacher"], "self: the network itself, gradients stopped (thesis); ema: a mean "
                          "teacher.", choices=settings.TEACHERS)
    ema_decay: float = option(settings.EMA_DECAY, "EMA teacher decay, warmed up as min(1 - 1/step, decay).",
                              low=0, high=1, high_open=True)
    eval_weights: str = option(_THESIS["eval_weights"], "Weights validated and saved as best.keras (ema: an EMA of "
                               "the student's).", choices=settings.EVAL_WEIGHTS)
    consistency: str = option(_THESIS["consistency"], "KL to the warped teacher (thesis), CE to its hard labels "
                              "(pseudo-ce, FixMatch) or MSE of probabilities (Mean Teacher).",
                              choices=settings.CONSISTENCY_LOSSES)
    sup_loss: str = option(_THESIS["sup_loss"], "Supervised loss: cross-entropy (thesis), soft Dice, or both.",
                           choices=settings.SUP_LOSSES)
    output: str = option("softmax", "Network output: a softmax over the classes (thesis), or one sigmoid per region of "
                         "the label schema (regions: BCE / Dice per region, the consistency per region, labels painted "
                         "back in the schema's regions_class_order).", choices=settings.OUTPUTS)

    def __post_init__(self):
        coerce_floats(self)
        check_options(self)

    @property
    def uses_ema(self) -> bool:
        """Whether the model keeps EMA weights (an EMA teacher or EMA evaluation weights)."""
        return "ema" in (self.teacher, self.eval_weights)


def include_options(namespace: dict, cls, nullable=()) -> None:
    """Declare the fields of options dataclass ``cls`` again in a class body being defined (flat copies).

    ``TrainConfig`` calls it with its own namespace (``include_options(locals(), StepOptions, ...)``),
    so a field added to ``StepOptions`` is a ``TrainConfig`` field, a config.json key and a flag of
    ``kequireg train`` without another edit.

    Args:
        namespace: the class body's namespace (``locals()`` inside a class statement).
        cls: an options dataclass whose fields were made with ``kequireg.options.option``.
        nullable: field names that default to None ("from --method") in the copy.
    """
    annotations = namespace.setdefault("__annotations__", {})
    for field in dataclasses.fields(cls):
        metadata = dict(field.metadata)
        default = field.default
        if field.name in nullable:
            default = None
            metadata.update(nullable=True, default_text=FROM_METHOD)
        annotations[field.name] = f"{field.type} | None" if field.name in nullable else field.type
        namespace[field.name] = dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """Options of the training batches (``kequireg.training.pipeline.EquiRegBatches``).

    Batch ``i`` of epoch ``e`` depends only on ``(seed, e, i)``; ``workers``, ``kernel_threads``,
    ``cache_bytes`` and ``max_queue_size`` change the speed, never the batches.

    Raises:
        ValueError: naming the first bad field, its value and the allowed values.
    """

    labeled_batch: int = option(2, "Labeled slices per batch (thesis 2; baseline 4).", low=1)
    unlabeled_batch: int = option(6, "Unlabeled slices per batch (thesis 6; baseline 0).", low=0)
    steps_per_epoch: int = option(500, "Batches per epoch.", low=1)
    seed: int = option(0, "Run seed: which slices and the seeds of their transforms.")
    workers: int = option(1, "Threads preparing batches ahead of the training step.", low=1)
    mix: str = option("none", "CutMix partners and boxes shipped with each batch (drawn after everything else, "
                      "so the other arrays do not change).", choices=settings.MIX_MODES)
    mix_prob: float = option(settings.MIX_PROB, "Probability that an unlabeled slice is CutMixed.", low=0, high=1)
    cache_bytes: int = option(DEFAULT_CACHE_BYTES, "Keep the needed slices in memory if they fit this many bytes "
                              "(labeled slices first; 0 = read every batch from the store).", low=0)
    kernel_threads: int = option(1, "Threads of each worker's warp kernels (the workers are the parallelism).",
                                 low=1)
    max_queue_size: int | None = option(None, "Batches prepared ahead.", kind=int, low=1,
                                        default_text="2 * workers + 2.")
    weak: augment.Policy | None = dataclasses.field(default=None)  # None = augment.weak()
    strong: augment.Policy | None = dataclasses.field(default=None)  # None = augment.strong()

    def __post_init__(self):
        coerce_floats(self)
        check_options(self)

    @property
    def queue_size(self) -> int:
        """``max_queue_size``, or ``2 * workers + 2`` when None."""
        return self.max_queue_size or 2 * self.workers + 2
