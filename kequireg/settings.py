"""Every enumeration and default of kequireg, in one keras-free module.

The CLI builds its ``click.Choice`` lists and defaults from these constants, ``TrainConfig``
validates against them and the docs quote them, so a choice is added in one place. Importing
this module imports neither keras nor numpy-heavy code (``kequireg --help`` stays instant).

Example:
    >>> from kequireg import settings
    >>> settings.METHODS
    ('equireg', 'baseline')
    >>> settings.DEFAULT_EVAL_SPLIT
    'test'
"""

from __future__ import annotations

from kequireg.models.presets import PRESETS

# ---- backends and devices ----------------------------------------------------------------------
BACKENDS = ("tensorflow", "jax", "torch")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
JIT_MODES = ("auto", "on", "off")

# ---- training ----------------------------------------------------------------------------------
METHODS = ("equireg", "baseline")
MODEL_PRESETS = tuple(PRESETS)
THESIS_MODEL = "fc-densenet103"
DEMO_MODEL = "tiny"
TEACHER_MODES = ("train", "inference")
RAMP_SHAPES = ("linear", "sigmoid")
MASK_MODES = ("thesis", "valid", "none")
# Thesis settings (DESIGN.md) on real data, small ones on the demo data set. The demo budget is
# 600 steps: EquiReg at 300 steps was still far from converged (docs/training.md).
THESIS_DEFAULTS = {"steps_per_epoch": 500, "patience": 10, "max_steps": 50_000, "val_slices": None}
DEMO_DEFAULTS = {"steps_per_epoch": 50, "patience": 4, "max_steps": 600, "val_slices": 64}
# (labeled, unlabeled) slices per batch.
BATCH_DEFAULTS = {"equireg": (2, 6), "baseline": (4, 0)}
LEARNING_RATE = 1e-3

# ---- data and splits ---------------------------------------------------------------------------
SPLITS = ("train", "val", "test")
EVAL_SPLITS = ("val", "test")
# Evaluate on patients that neither training nor early stopping saw.
DEFAULT_EVAL_SPLIT = "test"
# Shares of the labeled patients: 20% test, 20% validation, 60% training by default. The
# thesis used 80/20 train/val and reported on its validation patients (``--thesis-split``).
DEFAULT_VAL_SHARE = 0.2
DEFAULT_TEST_SHARE = 0.2
THESIS_SPLIT = {"val": 0.2, "test": 0.0}
SPLIT_SEED = 0

# ---- the study grid ----------------------------------------------------------------------------
THESIS_FRACTIONS = (0.01, 0.05, 0.1, 1.0)
THESIS_LABEL_SEEDS = (0, 1, 2)
THESIS_REPEATS = 3
REPEAT_SEED_STRIDE = 1000  # training seed = base + 1000 * repeat + label seed
