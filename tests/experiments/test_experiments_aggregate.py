"""Grid planning, settings resume checks and aggregation on known per-patient scores."""

import json

import numpy as np
import pytest

from kequireg.experiments.aggregate import aggregate
from kequireg.experiments.experiment_settings import ExperimentSettings, load_or_save_settings, load_settings
from kequireg.experiments.plan import RunSpec, plan_grid


def test_thesis_grid_size_and_order():
    specs = plan_grid(ExperimentSettings())
    assert len(specs) == 2 * (3 * 3 + 1) * 3
    assert specs[0] == RunSpec("baseline", 0.01, 0, 0)
    full = [s for s in specs if s.fraction == 1.0]
    assert {s.label_seed for s in full} == {0} and {s.method for s in full} == {"baseline", "equireg"}
    demo = plan_grid(ExperimentSettings(fractions=(0.1, 1.0), label_seeds=(0, 1), repeats=1, equireg_full=False))
    assert [s.name for s in demo] == ["baseline-f0.1-l0-r0", "equireg-f0.1-l0-r0", "baseline-f0.1-l1-r0",
                                      "equireg-f0.1-l1-r0", "baseline-f1-l0-r0"]


def test_settings_validate_and_resume_refuses_changes(tmp_path):
    with pytest.raises(ValueError, match="fractions"):
        ExperimentSettings(fractions=(0.0,))
    with pytest.raises(ValueError, match="methods"):
        ExperimentSettings(methods=("mixmatch",))
    settings = ExperimentSettings(fractions=(0.1,), repeats=1).resolved(demo=False, split="test")
    with pytest.raises(ValueError, match="not resolved"):
        load_or_save_settings(tmp_path, ExperimentSettings(fractions=(0.1,), repeats=1))
    load_or_save_settings(tmp_path, settings)
    again = ExperimentSettings(fractions=(0.1,), repeats=1).resolved(demo=False, split="test")
    assert load_or_save_settings(tmp_path, again) == settings
    with pytest.raises(ValueError, match="repeats: saved 1, now 2"):
        load_or_save_settings(tmp_path, ExperimentSettings(fractions=(0.1,), repeats=2).resolved(demo=False, split="test"))


def test_aggregate_means_and_bridging_on_known_numbers(tmp_path, write_fake_results):
    settings = ExperimentSettings(fractions=(0.1, 1.0), label_seeds=(0, 1), repeats=1, equireg_full=False)
    level = {("baseline", 0.1): 0.5, ("equireg", 0.1): 0.6, ("baseline", 1.0): 0.9}
    shift = [0.0, 0.02, -0.03, 0.01]  # per-patient offsets shared by all runs: cancel in bridging
    write_fake_results(tmp_path, settings, lambda s, p: level[(s.method, s.fraction)] + shift[p])
    summary = aggregate(tmp_path, seed=0)
    cells = {(c["method"], c["fraction"]): c for c in summary["cells"]}
    assert cells[("baseline", 0.1)]["runs"] == 2 and cells[("baseline", 1.0)]["runs"] == 1
    assert cells[("equireg", 0.1)]["dice"]["mean"] == pytest.approx(0.6 + np.mean(shift))
    assert cells[("equireg", 0.1)]["hd95_wt"]["mean"] == pytest.approx(10 * (0.4 - np.mean(shift)))
    (bridge,) = summary["bridging"]
    assert bridge["fraction"] == 0.1
    for key in ("dice", "dice_wt", "dice_tc", "dice_et"):
        assert bridge[key]["mean"] == pytest.approx(0.25)
        assert (bridge[key]["ci_low"], bridge[key]["ci_high"]) == pytest.approx((0.25, 0.25))
    (diff,) = summary["differences"]  # only where both methods ran
    assert diff["dice"]["mean"] == pytest.approx(0.1)
    assert (diff["dice"]["ci_low"], diff["dice"]["ci_high"]) == pytest.approx((0.1, 0.1))
    assert bridge["dice"]["gap"]["mean"] == pytest.approx(0.4)
    table = (tmp_path / "results.md").read_text()
    assert "| 10% | +0.100 [+0.100, +0.100]" in table
    assert "| equireg | 10% | 2 | 4 |" in table and "0.25 [0.25, 0.25]" in table
    for name in ("per_patient.csv", "runs.csv", "summary.csv", "bridging.csv", "summary.json"):
        assert (tmp_path / name).is_file()
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


def test_bridging_without_a_gap_is_reported_as_not_defined(tmp_path, write_fake_results):
    from kequireg.experiments.report import verdict

    settings = ExperimentSettings(fractions=(0.1, 1.0), label_seeds=(0,), repeats=1, equireg_full=False)
    level = {("baseline", 0.1): 0.7, ("equireg", 0.1): 0.6, ("baseline", 1.0): 0.65}
    write_fake_results(tmp_path, settings, lambda s, p: level[(s.method, s.fraction)] + 0.01 * p)
    summary = aggregate(tmp_path)
    assert "n/a (gap -0.050)" in (tmp_path / "results.md").read_text()
    text = verdict(summary)
    assert "EquiReg did worse than the baseline" in text and "Bridging at 10%: not defined" in text


def test_aggregate_without_results_says_so(tmp_path):
    load_or_save_settings(tmp_path, ExperimentSettings(fractions=(0.1,), repeats=1).resolved(demo=False, split="test"))
    with pytest.raises(FileNotFoundError, match="kequireg experiment"):
        aggregate(tmp_path)


def test_every_method_is_compared_with_the_baseline(tmp_path, write_fake_results):
    """--methods baseline,equireg,fixmatch: a paired-difference and a bridging table per method."""
    from kequireg.experiments.aggregate import aggregate, markdown_tables
    from kequireg.io import read_csv_rows

    settings = ExperimentSettings(methods=("baseline", "equireg", "fixmatch"), fractions=(0.1, 1.0), label_seeds=(0,),
                                  repeats=1, equireg_full=False)
    level = {("baseline", 0.1): 0.5, ("equireg", 0.1): 0.6, ("fixmatch", 0.1): 0.55, ("baseline", 1.0): 0.8}
    write_fake_results(tmp_path, settings, lambda s, p: level[(s.method, s.fraction)] + 0.01 * p)
    summary = aggregate(tmp_path)
    by_method = {d["method"]: d["dice"]["mean"] for d in summary["differences"]}
    assert by_method == pytest.approx({"equireg": 0.1, "fixmatch": 0.05})
    bridging = {b["method"]: b["dice"]["mean"] for b in summary["bridging"]}
    assert bridging == pytest.approx({"equireg": 0.1 / 0.3, "fixmatch": 0.05 / 0.3})
    text = markdown_tables(summary)
    assert "EquiReg − baseline (paired by patient):" in text and "fixmatch − baseline (paired by patient):" in text
    assert "(fixmatch_p − Baseline_p)" in text
    assert {r["method"] for r in read_csv_rows(tmp_path / "bridging.csv")} == {"equireg", "fixmatch"}


def test_scope_note_states_patients_runs_budget_and_interval_widths(tmp_path, write_fake_results):
    """The demo's plain statement of what its table can show: counts, budget rule, how wide, how many include 0."""
    from kequireg.experiments.report import scope_note

    settings = ExperimentSettings(methods=("baseline", "equireg", "fixmatch"), fractions=(0.1, 1.0), label_seeds=(0, 1),
                                  repeats=1, equireg_full=False)
    level = {("baseline", 0.1): 0.5, ("equireg", 0.1): 0.6, ("fixmatch", 0.1): 0.5, ("baseline", 1.0): 0.8}
    noise = {0: 0.0, 1: 0.05}
    write_fake_results(tmp_path, settings, lambda s, p: level[(s.method, s.fraction)] + 0.01 * p + noise[s.label_seed])
    summary = aggregate(tmp_path)
    text = scope_note(summary)
    patients = summary["cells"][0]["patients"]
    assert f"Scope: {patients} held-out patients" in text and "runs per cell" in text
    widths = [d["dice"]["ci_high"] - d["dice"]["ci_low"] for d in summary["differences"]]
    span = f"{min(widths):.3f}" if max(widths) - min(widths) < 5e-4 else f"{min(widths):.3f} to {max(widths):.3f}"
    assert f"collective Dice: {span} wide" in text
    crossing = sum(d["dice"]["ci_low"] <= 0 <= d["dice"]["ci_high"] for d in summary["differences"])
    assert f"{crossing} of 2 include 0" in text
    assert "step cap" not in text and "step cap" not in scope_note(summary, (6, 6))
    assert "2 of 6 runs ended at their step cap" in scope_note(summary, (4, 6))
    assert scope_note({"cells": []}) == ""


def test_training_ends_counts_runs_stopped_early(tmp_path, write_fake_results):
    from kequireg.experiments.plan import plan_grid, run_folder
    from kequireg.experiments.report import training_ends
    from kequireg.training.run_dir import RunDir

    settings = ExperimentSettings(methods=("baseline", "equireg"), fractions=(0.1,), label_seeds=(0, 1), repeats=1,
                                  equireg_full=False)
    write_fake_results(tmp_path, settings, lambda s, p: 0.5)
    settings = load_settings(tmp_path)
    for k, spec in enumerate(plan_grid(settings)[:3]):
        RunDir(run_folder(tmp_path, spec)).mark_trained({"steps": 10, "stopped_early": k != 1})
    assert training_ends(tmp_path, settings) == (2, 3)
