"""`kequireg experiment --config study.toml`: a [training] template with any train option and a [grid]
table, command-line options on top (kequireg.config_files)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from kequireg.config_files import ConfigFileError, experiment_settings, read_study_file, study_toml, tomllib

LEGACY = Path(__file__).resolve().parent.parent / "legacy" / "main-b6eadae"

STUDY = """\
[grid]
methods = ["equireg"]
fractions = [0.5]
label_seeds = [0]
repeats = 2            # the command line's --repeats 1 wins
equireg_full = false
budget = "steps"

[training]
data = "store.h5"
model = "tiny"
optimizer = "sgd"
sup_loss = "dice"
steps_per_epoch = 2
max_steps = 2
labeled_batch = 1
unlabeled_batch = 1
val_slices = 4
workers = 1
"""


@pytest.mark.slow
def test_a_study_file_runs_a_grid_with_a_non_default_optimizer_and_loss(tmp_path, monkeypatch):
    for name in ("store.h5", "store.splits.json"):
        shutil.copy(LEGACY / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study.toml").write_text(STUDY)
    result = CliRunner().invoke(main, ["experiment", "study", "--config", "study.toml", "--repeats", "1",
                                       "--no-figures", "--no-progress"])
    assert result.exit_code == 0, result.output
    configs = sorted((tmp_path / "study" / "runs").glob("*/config.json"))
    assert [p.parent.name for p in configs] == ["equireg-f0.5-l0-r0"]
    for path in configs:
        config = json.loads(path.read_text())
        assert (config["optimizer"], config["sup_loss"], config["model"]) == ("sgd", "dice", "tiny")
    saved = json.loads((tmp_path / "study" / "experiment.json").read_text())
    assert saved["repeats"] == 1 and saved["template"]["optimizer"] == "sgd"


def test_study_file_values_command_line_on_top_and_written_back(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(STUDY)
    training, grid = read_study_file(path)
    assert training["optimizer"] == "sgd" and grid["fractions"] == (0.5,) and grid["repeats"] == 2
    settings = experiment_settings(path, training={"seed": 3}, grid={"repeats": 1})
    assert (settings.template.seed, settings.repeats, settings.template.sup_loss) == (3, 1, "dice")
    text = study_toml(settings, title="written back")
    assert tomllib.loads(text)["grid"]["methods"] == ["equireg"]
    path.write_text(text)
    assert experiment_settings(path) == settings


@pytest.mark.parametrize("text, message", [
    ('[training]\nmethod = "fixmatch"\n', r"\[training\]: unknown key 'method' \(set per run by the grid: use methods"),
    ("[training]\nfractions = [0.1]\n", r"unknown key 'fractions' \(a grid axis: put it in the \[grid\] table\)"),
    ("[grid]\nfraction = [0.1]\n", r"\[grid\]: unknown key 'fraction'. Known keys: methods, fractions"),
    ('[grid]\nrepeats = "2"\n', r"repeats must be int. Received: repeats='2'"),
    ('[grid]\nmethods = [1]\n', r"methods must be a non-empty list of str"),
    ("seed = 1\n", r"unknown key or table 'seed'; a study file holds the tables \[training\], \[grid\]"),
    ('[training]\noptimizer = "rmsprop"\n', r"\[training\]: optimizer must be one of"),
])
def test_bad_study_files_name_the_file_the_key_and_the_fix(tmp_path, text, message):
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(ConfigFileError, match=r"study.toml'.*" + message):
        read_study_file(path)
