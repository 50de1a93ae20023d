"""A synthetic glioma cohort with real variability, built from composable parts.

- :mod:`~kequireg.data.phantom.anatomy`: healthy anatomy varying between patients, partial volume,
  and the tumour's mass effect (a smooth displacement field).
- :mod:`~kequireg.data.phantom.tumour`: gliomas as they vary (sizes matched to BraTS, edema along
  white matter, necrosis, open enhancing rims, small or absent ET, LGG-like and multifocal cases).
- :mod:`~kequireg.data.phantom.site`: acquisition sites with their own contrast, noise, bias field,
  slice thickness and artefacts; tissue fractions -> int16 images.
- :mod:`~kequireg.data.phantom.compose`: the three in order, :func:`generate_case`, the presets.
- :mod:`~kequireg.data.phantom.knobs`: the difficulty knobs calibration sets.

The parts only meet in ``compose``: another anatomy (a non-brain task) can reuse the tumour-free
path and the site model, which renders any dict of tissue fractions with a contrast table.
docs/phantom.md lists every source of variation with the real-data statistic it imitates.

Example:
    >>> from kequireg.data.phantom import PHANTOM_PRESETS, generate_case
    >>> case = generate_case(PHANTOM_PRESETS["demo"], seed=3)
    >>> sorted(case.images), case.labels.dtype.name
    (['flair', 't1', 't1ce', 't2'], 'uint8')
"""

from kequireg.data.phantom.compose import PHANTOM_PRESETS, PhantomCase, PhantomPreset, generate_case
from kequireg.data.phantom.knobs import Difficulty

__all__ = ["PHANTOM_PRESETS", "Difficulty", "PhantomCase", "PhantomPreset", "generate_case"]
