"""Budget rules: steps, labeled exposure and convergence set each method's runs; the rule is saved and printed."""

import dataclasses
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from grid_helpers import grid_store  # noqa: F401

from kequireg.experiments.budgets import CONVERGE_MAX_STEPS
from kequireg.experiments.demo import DEMO_BUDGET
from kequireg.experiments.experiment_settings import ExperimentSettings, load_or_save_settings, load_settings
from kequireg.experiments.plan import plan_grid, train_config
from kequireg.training.config import TrainConfig


def _dataset(is_demo):
    """What ``ExperimentSettings.resolve`` asks of an open Dataset."""
    return SimpleNamespace(is_demo=is_demo, eval_split=lambda split=None: split or "test")


def _configs(budget, methods=("baseline", "equireg", "fixmatch"), **template):
    settings = ExperimentSettings(template=TrainConfig(**template), methods=methods, fractions=(0.1,),
                                  label_seeds=(0,), repeats=1, budget=budget)
    settings = settings.resolve(_dataset(is_demo=template.get("data") is None))
    return {spec.method: train_config(settings, spec, "exp") for spec in plan_grid(settings)}


def test_labeled_exposure_gives_two_labeled_per_step_methods_twice_the_baseline_steps():
    demo = _configs("labeled-exposure")
    assert {m: c.max_steps for m, c in demo.items()} == {"baseline": 600, "equireg": 1200, "fixmatch": 1200}
    real = _configs("labeled-exposure", data="brats.h5", max_steps=1000)
    assert real["baseline"].max_steps * 4 == real["equireg"].max_steps * 2 == 4000
    same_batch = _configs("labeled-exposure", labeled_batch=2, max_steps=1000)  # every method's batch is 2
    assert {c.max_steps for c in same_batch.values()} == {1000}


def test_steps_keeps_the_template_and_converge_runs_to_early_stopping_under_a_cap():
    steps = _configs("steps", max_steps=700)
    assert {(c.max_steps, c.patience) for c in steps.values()} == {(700, None)}  # the trainer's defaults apply
    demo, real = _configs("converge"), _configs("converge", data="brats.h5")
    assert (demo["equireg"].max_steps, demo["equireg"].patience) == (CONVERGE_MAX_STEPS["demo"], 4)
    assert (real["baseline"].max_steps, real["baseline"].patience) == (CONVERGE_MAX_STEPS["real"], 10)
    chosen = _configs("converge", max_steps=800, patience=3)
    assert {(c.max_steps, c.patience) for c in chosen.values()} == {(800, 3)}
    with pytest.raises(ValueError, match="patience must be >= 1"):
        _configs("converge", patience=0)
    with pytest.raises(ValueError, match="budget must be one of"):
        _configs("epochs")


def test_budget_default_follows_the_dataset_and_is_saved_in_experiment_json(tmp_path):
    unresolved = ExperimentSettings(template=TrainConfig(data="brats.h5"))
    assert unresolved.budget is None and unresolved.demo is None  # decided once, by the open Dataset
    with pytest.raises(ValueError, match="not resolved"):
        train_config(unresolved, plan_grid(unresolved)[0], "exp")
    real = unresolved.resolve(_dataset(is_demo=False))
    assert (real.budget, real.demo, real.split) == ("converge", False, "test")
    demo = ExperimentSettings(template=TrainConfig(data=None)).resolve(_dataset(is_demo=True))
    assert (demo.budget, demo.demo) == ("labeled-exposure", True)  # the demo's rule (kequireg demo's DEMO_BUDGET)
    assert demo.budget == DEMO_BUDGET
    settings = ExperimentSettings(template=TrainConfig(data="brats.h5"), budget="labeled-exposure",
                                  split="test").resolve(_dataset(is_demo=False))
    load_or_save_settings(tmp_path, settings)
    assert load_settings(tmp_path).budget == "labeled-exposure"
    assert load_settings(tmp_path).demo is False  # the saved data names a store
    old = settings.to_json()
    del old["budget"]  # an experiment.json from before budget rules: it trained at a fixed step cap
    assert ExperimentSettings.from_json(old).budget == "steps"
    with pytest.raises(ValueError, match="budget: saved 'labeled-exposure', now 'converge'"):
        load_or_save_settings(tmp_path, dataclasses.replace(settings, budget="converge"))


def test_the_rule_is_printed_under_the_results_table(grid_store, tmp_path, write_fake_results):  # noqa: F811
    from cli.main import main

    settings = ExperimentSettings(template=TrainConfig(data=str(grid_store), max_steps=300), fractions=(0.1, 1.0),
                                  label_seeds=(0,), repeats=1, budget="labeled-exposure")
    write_fake_results(tmp_path, settings, lambda spec, p: 0.5 + 0.1 * (spec.method == "equireg"))
    result = CliRunner().invoke(main, ["experiment", str(tmp_path), "--status", "--no-figures", "--no-progress"])
    assert result.exit_code == 0, result.output
    table, budget = result.stdout.rstrip().rsplit("\n", 1)
    assert "| equireg | 10% |" in table
    assert budget == ("Budget: labeled-exposure — every method sees up to 1200 labeled slices (baseline 300 steps × 4, "
                      "equireg 600 steps × 2); early stopping after 10 validations without a better validation CE.")
    assert (tmp_path / "results.md").read_text().rstrip().endswith(budget)  # and in the results file
