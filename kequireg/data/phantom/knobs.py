"""The phantom's difficulty knobs: a few numbers that calibration (on the supervised baseline only) sets.

Each knob scales one documented source of variation (docs/phantom.md); 1.0 (or the default) is the
generator as documented there. They are kept apart from the anatomy, tumour and site parameters so
that a calibration changes these and nothing else.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Difficulty:
    """How hard the cohort is.

    Args:
        contrast_overlap: 0..1. How far each tumour class's mean intensity moves toward the normal
            tissue it is confused with in real scans (edema and non-enhancing tumour toward grey
            matter, necrosis toward CSF, enhancing tumour toward vessels / choroid plexus). Defaults to 0.3.
        noise: multiplier of every site's noise level. Defaults to 1.0.
        artefact_rate: multiplier of every site's ghosting and motion rates (capped at 1). Defaults to 1.0.
        size_spread: multiplier of the log-normal spread of the tumour volume. Defaults to 1.0.
        site_spread: multiplier of the between-site contrast differences (0: every site has the
            reference contrasts; noise, blur and artefacts still differ). Defaults to 1.0.
        sites: number of acquisition sites the cases are spread over. Defaults to 4.
        mass_effect: multiplier of the tissue displacement around tumours (0: none). Defaults to 1.0.
    """

    contrast_overlap: float = 0.3
    noise: float = 1.0
    artefact_rate: float = 1.0
    size_spread: float = 1.0
    site_spread: float = 1.0
    sites: int = 4
    mass_effect: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.contrast_overlap <= 1.0:
            raise ValueError(f"contrast_overlap must be in [0, 1]. Received: contrast_overlap={self.contrast_overlap}")
        for name in ("noise", "artefact_rate", "size_spread", "site_spread", "mass_effect"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0. Received: {name}={getattr(self, name)}")
        if int(self.sites) < 1 or int(self.sites) != self.sites:
            raise ValueError(f"sites must be an integer >= 1. Received: sites={self.sites}")
