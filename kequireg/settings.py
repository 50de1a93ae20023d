"""Every enumeration and default of kequireg, in one keras-free module.

The CLI builds its ``click.Choice`` lists and defaults from these constants, ``TrainConfig``
validates against them and the docs quote them, so a choice is added in one place. Importing
this module imports neither keras nor numpy-heavy code (``kequireg --help`` stays instant).

Example:
    >>> from kequireg import settings
    >>> settings.METHODS
    ('equireg', 'baseline', 'mean-teacher', 'fixmatch', 'unimatch-lite')
    >>> settings.METHOD_PRESETS["fixmatch"]["consistency"], settings.METHOD_PRESETS["fixmatch"]["confidence"]
    ('pseudo-ce', 0.95)
    >>> settings.DEFAULT_EVAL_SPLIT
    'test'
"""

from __future__ import annotations

from kequireg.models.presets import TIRAMISU_PRESETS

# ---- backends and devices ----------------------------------------------------------------------
BACKENDS = ("tensorflow", "jax", "torch")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
JIT_MODES = ("auto", "on", "off")

# ---- training ----------------------------------------------------------------------------------
METHODS = ("equireg", "baseline", "mean-teacher", "fixmatch", "unimatch-lite")
SUPERVISED_METHODS = ("baseline",)  # no unlabeled part; every other method needs unlabeled slices
MODEL_PRESETS = tuple(TIRAMISU_PRESETS)
THESIS_MODEL = "fc-densenet103"
DEMO_MODEL = "tiny"
TEACHER_MODES = ("train", "inference")
RAMP_SHAPES = ("linear", "sigmoid")
MASK_MODES = ("thesis", "valid", "none")
# Thesis settings (docs/architecture.md) on real data, small ones on the demo data set. The demo budget is
# 600 steps: EquiReg at 300 steps was still far from converged (docs/benchmarks.md, teacher-mode study).
THESIS_DEFAULTS = {"steps_per_epoch": 500, "patience": 10, "max_steps": 50_000, "val_slices": None}
DEMO_DEFAULTS = {"steps_per_epoch": 50, "patience": 4, "max_steps": 600, "val_slices": 64}


def training_defaults(demo: bool) -> dict:
    """The training defaults of unset fields: ``DEMO_DEFAULTS`` on the demo data, else ``THESIS_DEFAULTS``."""
    return DEMO_DEFAULTS if demo else THESIS_DEFAULTS


# (labeled, unlabeled) slices per batch: every semi-supervised method gets the thesis's 2 + 6.
BATCH_DEFAULTS = {"equireg": (2, 6), "baseline": (4, 0), "mean-teacher": (2, 6), "fixmatch": (2, 6),
                  "unimatch-lite": (2, 6)}

# ---- semi-supervised methods as parts (docs/architecture.md) ------------------------------------------------
TEACHERS = ("self", "ema")  # self: the network itself, gradients stopped (thesis); ema: a mean teacher
CONSISTENCY_LOSSES = ("kl", "pseudo-ce", "mse")
MIX_MODES = ("none", "cutmix")
SUP_LOSSES = ("ce", "dice", "ce+dice")
# The network's output: one softmax over the classes (the thesis), or one sigmoid per region (nnU-Net's BraTS way).
OUTPUTS = ("softmax", "regions")
EVAL_WEIGHTS = ("student", "ema")  # the weights validated, evaluated and saved as best.keras
EMA_DECAY = 0.99
MIX_PROB = 0.5  # UniMatch's CutMix probability
# The parts a named method sets; TrainConfig fields left None take them from here (docs/training.md
# names the paper each follows). Everything else (λ, ramp, optimizer, budget) is shared by all.
METHOD_PARTS = ("teacher", "consistency", "confidence", "mix", "sup_loss", "eval_weights")
_THESIS_PARTS = {"teacher": "self", "consistency": "kl", "confidence": 0.0, "mix": "none", "sup_loss": "ce",
                 "eval_weights": "student"}
METHOD_PRESETS = {
    "baseline": dict(_THESIS_PARTS),
    "equireg": dict(_THESIS_PARTS),
    "mean-teacher": {**_THESIS_PARTS, "teacher": "ema", "consistency": "mse", "eval_weights": "ema"},
    "fixmatch": {**_THESIS_PARTS, "consistency": "pseudo-ce", "confidence": 0.95},
    "unimatch-lite": {**_THESIS_PARTS, "consistency": "pseudo-ce", "confidence": 0.95, "mix": "cutmix"},
}
METHOD_SUMMARIES = {
    "baseline": "supervised only",
    "equireg": "self teacher, KL to its warped probabilities (the thesis)",
    "mean-teacher": "EMA teacher, MSE of probabilities, EMA weights evaluated (Tarvainen & Valpola 2017)",
    "fixmatch": "self teacher, CE to its warped hard labels where confidence >= 0.95 (Sohn et al. 2020)",
    "unimatch-lite": "fixmatch + CutMix of the strong views (Yang et al. 2023, one stream)",
}

# ---- optimizer ---------------------------------------------------------------------------------
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine", "poly")
LEARNING_RATE = 1e-3
# --weight-decay left unset: AdamW gets PyTorch's default, the others none (Keras decouples the decay).
WEIGHT_DECAY_DEFAULTS = {"adam": 0.0, "adamw": 0.01, "sgd": 0.0}
SGD_MOMENTUM = 0.9
POLY_POWER = 0.9

# ---- data and splits ---------------------------------------------------------------------------
SPLITS = ("train", "val", "test")
EVAL_SPLITS = ("val", "test")
# Evaluate on patients that neither training nor early stopping saw.
DEFAULT_EVAL_SPLIT = "test"
# What `kequireg evaluate` scores: per-case Dice/HD95/... ("case"), plus the BraTS 2023+ lesion-wise
# Dice/HD95 ("lesion-wise"), with the lesion rules of one challenge (kequireg.evaluation.lesionwise.CHALLENGE_RULES).
EVAL_METRIC_SETS = ("case", "lesion-wise")
DEFAULT_EVAL_METRICS = "case"
LESION_RULE_SETS = ("gli", "ssa", "men", "ped", "met")  # BraTS-GLI, -SSA, -MEN, -PED, -MET
DEFAULT_LESION_RULES = "gli"
# Shares of the labeled patients: 20% test, 20% validation, 60% training by default. The
# thesis used 80/20 train/val and reported on its validation patients (``--thesis-split``).
DEFAULT_VAL_SHARE = 0.2
DEFAULT_TEST_SHARE = 0.2
THESIS_SPLIT = {"val": 0.2, "test": 0.0}
SPLIT_SEED = 0

# ---- data layouts --------------------------------------------------------------------------------
# --labels of BraTS folders: auto (from the folder naming) or a BraTS schema of kequireg.vocabulary.BRATS_SCHEMAS.
LABEL_CONVENTIONS = ("auto", "brats2019", "brats2023", "brats2024-post")
SYNTH_LAYOUTS = ("brats2019", "brats2023", "nnunet")  # kequireg synth --layout (kequireg.data.synth_layouts)
# kequireg synth --preset (kequireg.data.synth); glioma*: the variable cohort of kequireg.data.phantom
SYNTH_PRESETS = ("demo", "brats", "cardiac", "glioma", "glioma96", "glioma-brats")
PHANTOM_SYNTH_PRESETS = {"glioma": "demo", "glioma96": "demo96", "glioma-brats": "brats"}  # synth name -> phantom preset

# ---- the study grid ----------------------------------------------------------------------------
THESIS_FRACTIONS = (0.01, 0.05, 0.1, 1.0)
THESIS_LABEL_SEEDS = (0, 1, 2)
THESIS_REPEATS = 3
REPEAT_SEED_STRIDE = 1000  # training seed = base + 1000 * repeat + label seed
EXECUTORS = ("sequential", "local", "slurm")  # how the grid's runs are scheduled (kequireg.experiments.executors)
BUDGETS = ("steps", "labeled-exposure", "converge")  # the step-budget rule of a comparison (experiments.budgets)
# The rule of an unset --budget: the thesis's on real data; on the demo data the one `kequireg demo` uses, as both
# methods then see as many labeled slices (at one step cap EquiReg sees half the baseline's: issue 12).
DEFAULT_BUDGET = {"real": "converge", "demo": "labeled-exposure"}

# ---- inference ---------------------------------------------------------------------------------
TTA_POLICIES = ("flips", "weak", "strong")
DEFAULT_TTA_POLICY = "flips"
POSTPROCESS_MODES = ("none", "brats")
ET_MIN_VOLUME = 500.0  # mm³: enhancing tumour below this becomes necrosis (Isensee et al. 2018: 500 voxels of 1 mm³)
MIN_COMPONENT_VOLUME = 200.0  # mm³: whole-tumour components smaller than this are removed
EXPORT_FORMATS = {"savedmodel": "tf_saved_model", "onnx": "onnx"}  # kequireg name -> Keras model.export format
