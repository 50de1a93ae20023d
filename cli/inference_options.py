"""The options ``kequireg predict`` and ``kequireg evaluate`` share: TTA, uncertainty, post-processing."""

from __future__ import annotations

import click

def inference_options(save_probabilities: bool = False):
    """Test-time augmentation, uncertainty and post-processing options of predict and evaluate,
    handed to the command as one ``options: InferenceOptions`` argument.

    Args:
        save_probabilities: bool. Also offer ``--save-probabilities`` (predict). Defaults to False.
    """
    import functools

    from kequireg.settings import DEFAULT_TTA_POLICY, ET_MIN_VOLUME, MIN_COMPONENT_VOLUME, TTA_POLICIES
    from kequireg.settings import POSTPROCESS_MODES as POSTPROCESS

    names = ["tta", "tta_policy", "tta_seed", "uncertainty", "postprocess", "et_min_volume", "min_component_volume"]
    decorators = [
        click.option("--tta", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Test-time augmentation views: N = the plain slice and N-1 transforms, pulled back exactly and "
                          "averaged where valid (0 = plain prediction)."),
        click.option("--tta-policy", type=click.Choice(TTA_POLICIES), default=DEFAULT_TTA_POLICY, show_default=True,
                     help="TTA transforms: flips (left-right, up-down, both), or seeded weak / strong augmentations."),
        click.option("--tta-seed", type=int, default=0, show_default=True, help="Seed of the TTA transforms."),
        click.option("--uncertainty", is_flag=True,
                     help="Per-voxel entropy and equivariance disagreement, per-case QC scores (needs --tta 2 or more)."),
        click.option("--postprocess", type=click.Choice(POSTPROCESS), default="none", show_default=True,
                     help="brats: remove small tumour components, relabel a small enhancing tumour as necrosis."),
        click.option("--et-min-volume", type=click.FloatRange(min=0), default=ET_MIN_VOLUME, show_default=True,
                     help="--postprocess brats: enhancing tumour below this volume (mm³) becomes necrosis."),
        click.option("--min-component-volume", type=click.FloatRange(min=0), default=MIN_COMPONENT_VOLUME,
                     show_default=True, help="--postprocess brats: tumour components below this volume (mm³) are removed."),
    ]
    if save_probabilities:
        names.append("save_probabilities")
        decorators.append(click.option("--save-probabilities", is_flag=True,
                                       help="Also write the (TTA-mean) class probabilities, float16 npz, per case."))

    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            from kequireg.inference.options import InferenceOptions

            try:
                kwargs["options"] = InferenceOptions(**{name: kwargs.pop(name) for name in names})
            except ValueError as err:
                raise click.UsageError(str(err)) from err
            return func(*args, **kwargs)

        for option in reversed(decorators):
            wrapper = option(wrapper)
        return wrapper

    return decorator
