"""The demo compares under a fair budget: both methods see the same number of labeled slices."""

from kequireg.experiments.demo import DEMO_BASELINE_STEPS, demo_settings
from kequireg.experiments.plan import plan_grid, train_config
from kequireg.settings import BATCH_DEFAULTS


def test_demo_gives_every_method_the_same_labeled_exposure():
    settings = demo_settings().resolved(demo=True)  # as run_demo resolves them on the embedded store
    assert settings.budget == "labeled-exposure"
    seen = {}
    for spec in plan_grid(settings):
        config = train_config(settings, spec, "demo")
        seen.setdefault(spec.method, set()).add(config.max_steps * BATCH_DEFAULTS[spec.method][0])
    assert seen == {"baseline": {DEMO_BASELINE_STEPS * 4}, "equireg": {DEMO_BASELINE_STEPS * 4}}
    assert "1200 labeled slices" in settings.describe_budget()
