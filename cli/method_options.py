"""``kequireg train`` options of the method parts and the optimizer (choices from ``kequireg.settings``).

A part left unset (None) takes the value of ``--method``'s preset (``settings.METHOD_PRESETS``).
"""

from __future__ import annotations

import click

from kequireg import settings as defaults

FROM_METHOD = "Default: from --method."


def method_help() -> str:
    """``--method``'s help: every named method and what it sets."""
    parts = "; ".join(f"{name}: {summary}" for name, summary in defaults.METHOD_SUMMARIES.items())
    return f"Named method ({parts}). Each sets --teacher, --consistency, --confidence, --mix, --sup-loss and " \
           "--eval-weights where they are not given."


def method_options(func):
    """Decorate a command with the method-part, ramp and optimizer options (``TrainConfig`` field names)."""
    unit = click.FloatRange(0, 1)
    options = [
        click.option("--teacher", type=click.Choice(defaults.TEACHERS), default=None,
                     help=f"self: the network itself, gradients stopped (thesis); ema: a mean teacher. {FROM_METHOD}"),
        click.option("--ema-decay", type=click.FloatRange(0, 1, max_open=True), default=defaults.EMA_DECAY,
                     show_default=True, help="EMA teacher decay, warmed up as min(1 - 1/step, decay)."),
        click.option("--eval-weights", type=click.Choice(defaults.EVAL_WEIGHTS), default=None,
                     help=f"Weights validated and saved as best.keras (ema: an EMA of the student's). {FROM_METHOD}"),
        click.option("--consistency", type=click.Choice(defaults.CONSISTENCY_LOSSES), default=None,
                     help="KL to the warped teacher (thesis), CE to its hard labels (pseudo-ce, FixMatch) or MSE "
                     f"of probabilities (Mean Teacher). {FROM_METHOD}"),
        click.option("--confidence", type=unit, default=None,
                     help="Pixels whose teacher confidence is below this add 0 to the consistency (0 = off). "
                     f"{FROM_METHOD}"),
        click.option("--temperature", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
                     help="Teacher sharpening softmax(z / T) (UDA); 1 = off."),
        click.option("--mix", type=click.Choice(defaults.MIX_MODES), default=None,
                     help=f"CutMix the strong views (teacher targets and masks with the same boxes). {FROM_METHOD}"),
        click.option("--mix-prob", type=unit, default=defaults.MIX_PROB, show_default=True,
                     help="Probability that an unlabeled slice is CutMixed."),
        click.option("--sup-loss", type=click.Choice(defaults.SUP_LOSSES), default=None,
                     help=f"Supervised loss: cross-entropy (thesis), soft Dice, or both. {FROM_METHOD}"),
        click.option("--rampup", type=click.Choice(defaults.RAMP_SHAPES), default="linear", show_default=True,
                     help="Shape of the lambda ramp-up (--rampup-steps)."),
        click.option("--optimizer", type=click.Choice(defaults.OPTIMIZERS), default="adam", show_default=True,
                     help=f"SGD has momentum {defaults.SGD_MOMENTUM}."),
        click.option("--lr", "--learning-rate", "learning_rate", type=click.FloatRange(min=0, min_open=True),
                     default=defaults.LEARNING_RATE, show_default=True, help="Peak learning rate."),
        click.option("--weight-decay", type=click.FloatRange(min=0), default=None,
                     help="Decoupled weight decay. Default: 0.01 for adamw, else 0."),
        click.option("--lr-schedule", type=click.Choice(defaults.LR_SCHEDULES), default="constant", show_default=True,
                     help=f"Decay to 0 at --max-steps: cosine, or poly (power {defaults.POLY_POWER})."),
        click.option("--warmup-steps", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Linear learning-rate warm-up steps."),
    ]
    for option in reversed(options):
        func = option(func)
    return func
