"""Config files for `kequireg train`: TOML or a run's config.json, command-line options on top,
`--print-config`, and a run's config.json training the same run again (kequireg.config_files)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from kequireg.config_files import (ConfigFileError, read_train_file, tomllib, train_config, train_config_from_text,
                                   train_toml)
from kequireg.training.config import TrainConfig

LEGACY = Path(__file__).resolve().parent.parent / "legacy" / "main-b6eadae"
TINY_RUN = ["--model", "tiny", "--labeled", "0.5", "--max-steps", "2", "--steps-per-epoch", "1", "--labeled-batch", "1",
            "--unlabeled-batch", "1", "--val-slices", "4", "--workers", "1", "--no-progress"]


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    """The legacy tiny store (32x32, 5 cases) copied into the working directory."""
    for name in ("store.h5", "store.splits.json"):
        shutil.copy(LEGACY / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_every_field_round_trips_through_the_written_toml():
    config = TrainConfig(data="a.h5", method="fixmatch", fraction=0.05, seed=3, model="fc-densenet56", lambda_=0.25,
                         teacher="ema", sup_loss="ce+dice", mix="cutmix", optimizer="sgd", learning_rate=0.01,
                         lr_schedule="cosine", warmup_steps=4, max_steps=40, precision="mixed_bfloat16", devices="all",
                         distributed=True, val_batch=4, run_dir="somewhere")
    text = train_toml(config, title="a title")
    assert text.startswith("# a title\n") and "# weight_decay = ...  (unset: 0.01 for adamw, else 0)" in text
    assert train_config_from_text(text) == config
    assert train_config_from_text(train_toml(TrainConfig())) == TrainConfig()  # None fields: left out = default


def test_lambda_and_lambda_underscore_are_both_read_and_overrides_win():
    assert train_config_from_text("lambda = 0.5").lambda_ == 0.5
    assert train_config_from_text("lambda_ = 0.25").lambda_ == 0.25
    config = train_config_from_text('optimizer = "sgd"\nseed = 4\n', overrides={"seed": 9})
    assert (config.optimizer, config.seed) == ("sgd", 9)
    with pytest.raises(ConfigFileError, match="given twice"):
        train_config_from_text("lambda = 0.5\nlambda_ = 0.5\n")


def test_bad_files_name_the_file_the_key_and_the_fix(tmp_path):
    bad = tmp_path / "run.toml"
    bad.write_text('optimiser = "sgd"\n')
    with pytest.raises(ConfigFileError, match=r"run.toml.*unknown key 'optimiser'.*Known keys: .*optimizer"):
        read_train_file(bad)
    bad.write_text("fraction = 2.0\n")
    with pytest.raises(ConfigFileError, match=r"run.toml.*fraction must be in \(0, 1\]. Received: fraction=2.0"):
        read_train_file(bad)
    bad.write_text("fraction = \n")
    with pytest.raises(ConfigFileError, match="run.toml' is not valid TOML"):
        read_train_file(bad)
    (tmp_path / "run.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigFileError, match="expected a .toml file"):
        read_train_file(tmp_path / "run.yaml")
    with pytest.raises(FileNotFoundError, match="config.json"):
        read_train_file(tmp_path)  # a folder without config.json


def test_a_run_folder_or_its_config_json_reads_as_the_saved_config():
    saved = TrainConfig.load(LEGACY / "run" / "config.json")
    assert train_config(LEGACY / "run") == saved
    assert train_config(LEGACY / "run" / "config.json", {"seed": 2}) == dataclasses.replace(saved, seed=2)


def test_cli_config_file_with_explicit_options_on_top_and_print_config(store_dir):
    (store_dir / "run.toml").write_text('data = "store.h5"\noptimizer = "sgd"\nlambda = 0.5\nseed = 5\nmodel = "tiny"\n'
                                        'sup_loss = "dice"\n')
    result = invoke("train", "--config", "run.toml", "--seed", "7", "--print-config")
    printed = tomllib.loads(result.stdout)
    assert (printed["optimizer"], printed["lambda_"], printed["sup_loss"], printed["model"]) == ("sgd", 0.5, "dice", "tiny")
    assert printed["seed"] == 7  # given on the command line: overrides the file
    assert printed["steps_per_epoch"] == 500 and printed["labeled_batch"] == 2  # resolved as on a real store
    assert printed["teacher"] == "self" and "weight_decay" not in printed  # method part filled; None left out
    # the printed file is a config file that resolves to itself
    (store_dir / "resolved.toml").write_text(result.stdout)
    assert tomllib.loads(invoke("train", "--config", "resolved.toml", "--print-config").stdout) == printed

    bad = invoke("train", "--config", "resolved.toml", "--method", "baseline", ok=False)  # the rules between fields
    assert bad.exit_code == 2 and "unlabeled_batch must be 0 for the baseline" in bad.output
    bad = invoke("train", "--config", "run.toml", "--resume", "--run-dir", "x", ok=False)
    assert bad.exit_code == 2 and "drop --config" in bad.output
    (store_dir / "wrong.toml").write_text("learning_rat = 0.1\n")
    bad = invoke("train", "--config", "wrong.toml", ok=False)
    assert bad.exit_code == 2 and "'wrong.toml': unknown key 'learning_rat'" in bad.output


@pytest.fixture
def exact_tensorflow():
    """TensorFlow without its arithmetic graph rewrite, which was measured to make two uncompiled runs on a loaded
    machine differ by 1-2 ulps in the training loss (tests/training/test_resume.py); other backends untouched."""
    import keras

    if keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
    yield
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": before.get("arithmetic_optimization", True)})


@pytest.mark.backend
def test_a_run_config_json_trains_the_same_run_again(store_dir, exact_tensorflow):
    invoke("train", "--data", "store.h5", *TINY_RUN, "--optimizer", "sgd", "--run-dir", "first")
    invoke("train", "--config", "first/config.json", "--run-dir", "second", "--no-progress")
    first, second = (TrainConfig.load(store_dir / name / "config.json") for name in ("first", "second"))
    assert dataclasses.replace(second, run_dir="first") == first
    assert (store_dir / "second" / "history.csv").read_bytes() == (store_dir / "first" / "history.csv").read_bytes()
    # the folder already holds a run: a clear error, not a silent overwrite
    again = invoke("train", "--config", "first", "--no-progress", ok=False)
    assert again.exit_code == 1 and "already holds a run" in again.output
