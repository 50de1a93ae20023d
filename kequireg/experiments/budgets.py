"""Budget rules: how long each method of a grid trains, so that a comparison is fair to both.

- ``steps``: every method gets the same optimizer-step cap, the template's ``max_steps`` (every
  grid's rule before budgets existed). At the thesis's batches EquiReg sees 2 labeled slices per
  step and the baseline 4, so EquiReg sees half as many labels.
- ``labeled-exposure``: every method sees as many labeled slices as the baseline: a method's
  ``max_steps`` is the baseline's × baseline labeled batch / its labeled batch, rounded up
  (EquiReg's 2 + 6 against the baseline's 4: twice the steps). The demo's rule: ``kequireg demo``
  uses it, and so does ``kequireg experiment`` on the demo data unless ``--budget`` says otherwise.
- ``converge``: every run trains to early-stopping convergence (``patience`` validations without
  a better validation CE: the thesis's 10 validations of 500 steps on real data, 4 of 50 on the
  demo data) under a generous cap: the template's ``max_steps`` if given, else
  ``CONVERGE_MAX_STEPS`` (100 000 steps on real data, 3 000 on the demo data). The default on real
  data, as the thesis trained.

Early stopping applies under every rule as ``patience`` says (0 = off); under ``steps`` and
``labeled-exposure`` the budget is a cap, so pass ``--patience 0`` to spend it to the last step.
Whether the runs train on the demo data is decided by the Dataset (``Dataset.is_demo``, through
``ExperimentSettings.resolve``) and passed in as ``demo``; the unset defaults it selects are
``kequireg.settings.training_defaults(demo)``, the ones ``TrainConfig.resolve(demo)`` fills. Keras-free.

Example:
    >>> from kequireg.training.config import TrainConfig
    >>> budget_overrides("labeled-exposure", TrainConfig(data="brats.h5", max_steps=600), "equireg", demo=False)
    {'max_steps': 1200}
    >>> budget_overrides("converge", TrainConfig(data=None), "baseline", demo=True)
    {'max_steps': 3000, 'patience': 4}
"""

from __future__ import annotations

import math

from kequireg.settings import BATCH_DEFAULTS, BUDGETS, DEFAULT_BUDGET, training_defaults  # BUDGETS re-exported

# The cap of a converging run when the template sets no max_steps (200 validations of 500 steps
# on real data; 60 of 50 on the demo data).
CONVERGE_MAX_STEPS = {"real": 100_000, "demo": 3_000}
REFERENCE_METHOD = "baseline"  # labeled-exposure matches every method's labeled slices to this one's


def default_budget(demo: bool) -> str:
    """The rule of an unset budget (``settings.DEFAULT_BUDGET``): ``converge`` on real data (as the thesis),
    ``labeled-exposure`` on the demo data (the demo's rule).

    Example:
        >>> default_budget(demo=False), default_budget(demo=True)
        ('converge', 'labeled-exposure')
    """
    return DEFAULT_BUDGET["demo" if demo else "real"]


def labeled_batch(template, method: str) -> int:
    """Labeled slices per step of ``method``'s runs: the template's, else the method's default."""
    return template.labeled_batch if template.labeled_batch is not None else BATCH_DEFAULTS[method][0]


def check_budget(budget: str, template) -> None:
    """Raise a ``ValueError`` when ``budget`` is unknown or cannot apply to ``template``."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}. Received: budget={budget!r}")
    if budget == "converge" and template.patience == 0:
        raise ValueError("budget 'converge' trains every run to early stopping, so patience must be >= 1. "
                         "Received: patience=0 (use --budget steps or labeled-exposure for fixed budgets)")


def budget_overrides(budget: str, template, method: str, demo: bool) -> dict:
    """The TrainConfig fields ``budget`` sets for ``method``'s runs (``max_steps``, ``patience``).

    Args:
        budget: one of ``BUDGETS``.
        template: TrainConfig. The grid's shared settings.
        method: the run's method.
        demo: bool. The runs train on the demo data (``Dataset.is_demo``): its defaults apply.

    Returns:
        dict of TrainConfig fields to replace (empty for ``steps``).
    """
    check_budget(budget, template)
    defaults = training_defaults(demo)
    if budget == "steps":
        return {}
    if budget == "labeled-exposure":
        base = template.max_steps or defaults["max_steps"]
        ratio = labeled_batch(template, REFERENCE_METHOD) / labeled_batch(template, method)
        return {"max_steps": math.ceil(base * ratio)}
    cap = template.max_steps or CONVERGE_MAX_STEPS["demo" if demo else "real"]
    return {"max_steps": cap, "patience": template.patience if template.patience is not None else defaults["patience"]}


def describe_budget(budget: str, template, methods, demo: bool) -> str:
    """One line naming the rule and its numbers, printed under the results table.

    Example:
        >>> from kequireg.training.config import TrainConfig
        >>> describe_budget("labeled-exposure", TrainConfig(data=None), ("baseline", "equireg"), demo=True)
        'Budget: labeled-exposure — every method sees up to 2400 labeled slices (baseline 600 steps × 4, equireg 1200 steps × 2); early stopping after 4 validations without a better validation CE.'
    """
    defaults = training_defaults(demo)
    patience = template.patience if template.patience is not None else defaults["patience"]
    steps_per_epoch = template.steps_per_epoch or defaults["steps_per_epoch"]
    validations = f"{patience} validation{'s' if patience != 1 else ''}"
    stopping = f"early stopping after {validations} without a better validation CE" if patience else "no early stopping"
    if budget == "converge":
        cap = budget_overrides(budget, template, methods[0], demo)["max_steps"]
        return (f"Budget: converge — every run trains to early stopping ({validations} of {steps_per_epoch} steps "
                f"without a better validation CE), capped at {cap} steps.")
    steps = {m: budget_overrides(budget, template, m, demo).get("max_steps", template.max_steps or defaults["max_steps"])
             for m in methods}
    if budget == "steps":
        per = sorted(set(steps.values()))
        return f"Budget: steps — every method trains for up to {per[0]} optimizer steps; {stopping}."
    exposure = {m: steps[m] * labeled_batch(template, m) for m in methods}
    each = ", ".join(f"{m} {steps[m]} steps × {labeled_batch(template, m)}" for m in methods)
    return (f"Budget: labeled-exposure — every method sees up to {max(exposure.values())} labeled slices ({each}); "
            f"{stopping}.")
