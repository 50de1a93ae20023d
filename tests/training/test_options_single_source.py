"""A training-step option is declared once (``StepOptions``): the CLI, TrainConfig, EquiRegModel's config
and the saved config.json all derive from that declaration."""

import dataclasses

import click
import pytest
from click.testing import CliRunner

from cli.dataclass_options import click_options, flag_names
from kequireg.label_schema import per_class_schema
from kequireg import settings
from kequireg.options import option, option_fields
from kequireg.training.config import TrainConfig
from kequireg.training.options import PipelineOptions, StepOptions, include_options

# TrainConfig fields that `kequireg train` deliberately does not offer (declared with cli=False).
NOT_ON_THE_COMMAND_LINE = {"val_batch", "label_schema"}  # label_schema: copied from the store

# A value other than the default for every StepOptions field (a new field must be added here: the
# test fails until it is, so its round trips are proven too).
OTHER_STEP_VALUES = {"lambda_": 0.25, "rampup_steps": 7, "rampup": "sigmoid", "mask": "valid", "temperature": 0.5,
                     "confidence": 0.8, "teacher_mode": "inference", "teacher": "ema", "ema_decay": 0.9,
                     "eval_weights": "ema", "consistency": "mse", "sup_loss": "ce+dice", "output": "regions"}


def _train_help() -> str:
    from cli.train import train

    result = CliRunner().invoke(train, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_step_and_config_field_is_a_flag_of_train():
    text = _train_help()
    for field in dataclasses.fields(StepOptions):
        config_field = {f.name: f for f in dataclasses.fields(TrainConfig)}[field.name]
        for flag in flag_names(config_field):
            assert flag in text, f"StepOptions.{field.name}: {flag} missing from `kequireg train --help`"
        assert " ".join(field.metadata["help"].split()[:4]) in " ".join(text.split())
    for field in dataclasses.fields(TrainConfig):
        assert "help" in field.metadata, f"TrainConfig.{field.name} is not declared with kequireg.options.option"
        if field.name in NOT_ON_THE_COMMAND_LINE:
            assert not field.metadata["cli"]
            continue
        for flag in flag_names(field):
            assert flag in text, f"TrainConfig.{field.name}: {flag} missing from `kequireg train --help`"


def test_trainconfig_holds_every_step_option_with_the_same_rule():
    config_fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for field in dataclasses.fields(StepOptions):
        copy = config_fields[field.name]
        assert copy.metadata["help"] == field.metadata["help"]
        assert copy.metadata["choices"] == field.metadata["choices"]
        if field.name in settings.METHOD_PARTS:  # "from --method" at the config level, resolved in step_options()
            assert copy.default is None and copy.metadata["nullable"]
        else:
            assert copy.default == field.default
    assert set(OTHER_STEP_VALUES) == {f.name for f in dataclasses.fields(StepOptions)}
    config = TrainConfig(data="x.h5", **OTHER_STEP_VALUES).resolve(demo=False)
    assert config.step_options() == StepOptions(**OTHER_STEP_VALUES)
    assert TrainConfig(method="fixmatch").step_options().confidence == 0.95  # method parts resolved


def test_every_step_option_is_in_the_model_config_and_round_trips():
    from training_helpers import conv_net

    from kequireg.training import EquiRegModel

    options = StepOptions(**OTHER_STEP_VALUES)
    model = EquiRegModel(conv_net(), options)
    config = model.get_config()
    for field in dataclasses.fields(StepOptions):
        assert config[field.name] == getattr(options, field.name)
    assert EquiRegModel.from_config(config).options == options
    assert EquiRegModel(conv_net()).options == StepOptions()  # the thesis's step


def test_model_configs_saved_before_step_options_still_load():
    """EquiRegModel configs written by main b6eadae hold every option flat, plus ``background`` (always 0)."""
    from training_helpers import conv_net

    from kequireg.training import EquiRegModel

    model = EquiRegModel(conv_net())
    assert EquiRegModel.from_config({**model.get_config(), "background": 0}).options == StepOptions()
    with pytest.raises(ValueError, match="background must be 0"):  # (from_config consumes the network's config)
        EquiRegModel.from_config({**model.get_config(), "background": 2})
    with pytest.raises(ValueError, match="options must be a kequireg.training.options.StepOptions"):
        EquiRegModel(conv_net(), {"lambda_": 1.0})


def test_every_config_field_round_trips_through_config_json(tmp_path):
    values = dict(data="a.h5", method="fixmatch", fraction=0.05, seed=3, label_seed=2, fold=1, model="fc-densenet56",
                  mix="cutmix", mix_prob=0.25, jit_compile="off", steps_per_epoch=10, patience=3, max_steps=40,
                  labeled_batch=3, unlabeled_batch=5, optimizer="adamw", learning_rate=0.01, weight_decay=0.1,
                  lr_schedule="cosine", warmup_steps=4, precision="mixed_bfloat16", val_slices=8, val_batch=4,
                  init_from="runs/brats", init_partial=True, freeze_encoder=True,
                  workers=1, devices="all", distributed=True, run_dir="somewhere", **OTHER_STEP_VALUES)
    values.update(tensorboard=True, label_schema=per_class_schema("x", ("background", "LV"), (0, 1)).to_dict())
    assert set(values) == {f.name for f in dataclasses.fields(TrainConfig)}, "give the new field a value here"
    config = TrainConfig(**values)
    config.validate()
    path = config.save(tmp_path / "config.json")
    assert TrainConfig.load(path) == config
    for name, value in values.items():
        assert getattr(TrainConfig.load(path), name) == value, name


def test_old_config_json_files_still_load():
    legacy = TrainConfig.load("tests/legacy/main-b6eadae/run/config.json")
    assert legacy.step_options() == StepOptions()
    assert legacy.pipeline_options() == PipelineOptions(labeled_batch=1, unlabeled_batch=1, steps_per_epoch=2, seed=0,
                                                        workers=2)


def test_a_field_added_to_the_step_options_reaches_the_config_and_the_cli(tmp_path):
    """The mechanism ``TrainConfig`` uses (``include_options``) with a StepOptions that has one more field."""

    @dataclasses.dataclass(frozen=True)
    class MoreStepOptions(StepOptions):
        new_knob: float = option(0.5, "A new step option.", low=0, high=1)

    @dataclasses.dataclass
    class Config:
        method: str = "equireg"
        include_options(locals(), MoreStepOptions, nullable=settings.METHOD_PARTS)

    assert Config().new_knob == 0.5 and Config().teacher is None
    assert "new_knob" in dataclasses.asdict(Config(new_knob=0.25))
    assert [f.name for f in option_fields(Config)][-1] == "new_knob"

    @click.command()
    @click_options(Config)
    def command(**values):
        click.echo(repr(Config(**values).new_knob))

    result = CliRunner().invoke(command, ["--new-knob", "0.75"])
    assert result.exit_code == 0 and result.output.strip() == "0.75"
    assert "A new step option." in CliRunner().invoke(command, ["--help"]).output
