"""kequireg.options + cli.dataclass_options: one field declaration gives validation and the CLI option."""

from __future__ import annotations

import dataclasses

import click
import pytest
from click.testing import CliRunner

from cli.dataclass_options import click_options
from kequireg.options import check_options, coerce_floats, option


@dataclasses.dataclass(frozen=True)
class Opts:
    mode: str = option("a", "The mode.", choices=("a", "b"))
    rate: float = option(0.5, "A rate.", low=0, high=1, high_open=True)
    count: int = option(2, "A count.", low=1)
    part: str | None = option(None, "A part.", choices=("x", "y"), default_text="from the mode.")
    on: bool = option(False, "Switch on.")
    kept: bool = option(True, "Keep it.")

    def __post_init__(self):
        coerce_floats(self)
        check_options(self)


@pytest.mark.parametrize("bad, message", [
    ({"mode": "c"}, "mode must be one of ('a', 'b'). Received: mode='c'"),
    ({"rate": 1.0}, "rate must be in [0, 1). Received: rate=1.0"),
    ({"rate": float("nan")}, "rate must be in [0, 1). Received: rate=nan"),
    ({"count": 0}, "count must be an integer >= 1. Received: count=0"),
    ({"count": 1.5}, "count must be an integer >= 1. Received: count=1.5"),
    ({"part": "z"}, "part must be one of ('x', 'y') or None. Received: part='z'"),
    ({"on": 1}, "on must be True or False. Received: on=1"),
])
def test_bad_values_name_the_field_the_rule_and_the_value(bad, message):
    with pytest.raises(ValueError) as err:
        Opts(**bad)
    assert str(err.value) == message


def test_ints_for_float_fields_become_floats():
    assert Opts(rate=0).rate == 0.0 and isinstance(Opts(rate=0).rate, float)


def test_cli_options_come_from_the_fields():
    seen = {}

    @click.command()
    @click_options(Opts, into="opts")
    def cmd(opts):
        seen["opts"] = opts

    runner = CliRunner()
    help_text = runner.invoke(cmd, ["--help"]).output
    for flag in ("--mode", "--rate", "--count", "--part", "--on", "--kept / --no-kept"):
        assert flag in help_text
    assert "Default: from the mode." in help_text
    assert runner.invoke(cmd, []).exit_code == 0 and seen["opts"] == Opts()
    result = runner.invoke(cmd, ["--mode", "b", "--rate", "0.25", "--on", "--no-kept", "--part", "y"])
    assert result.exit_code == 0, result.output
    assert seen["opts"] == Opts(mode="b", rate=0.25, on=True, kept=False, part="y")
    assert runner.invoke(cmd, ["--rate", "1"]).exit_code == 2
