"""Named Tiramisu configurations (arguments of `build_tiramisu` except input shape and classes)."""

from __future__ import annotations

TIRAMISU_PRESETS: dict[str, dict] = {
    # Jégou et al. 2017 / the thesis's Table 1: 9,423,796 parameters, 9,320,724 trainable (4 channels, 4 classes).
    "fc-densenet103": dict(
        stem_filters=48, growth_rate=16, down_blocks=(4, 5, 7, 10, 12), bottleneck_layers=15, up_blocks=None, dropout=0.2
    ),
    # The thesis's own code: up blocks 15,12,10,7,5 and no dropout.
    "fc-densenet103-thesis-code": dict(
        stem_filters=48,
        growth_rate=16,
        down_blocks=(4, 5, 7, 10, 12),
        bottleneck_layers=15,
        up_blocks=(15, 12, 10, 7, 5),
        dropout=0.0,
    ),
    "fc-densenet67": dict(
        stem_filters=48, growth_rate=16, down_blocks=(5, 5, 5, 5, 5), bottleneck_layers=5, up_blocks=None, dropout=0.2
    ),
    "fc-densenet56": dict(
        stem_filters=48, growth_rate=12, down_blocks=(4, 4, 4, 4, 4), bottleneck_layers=4, up_blocks=None, dropout=0.2
    ),
    # CPU demos at 64×64 (3 poolings: H, W multiples of 8).
    "small": dict(stem_filters=16, growth_rate=8, down_blocks=(3, 3, 3), bottleneck_layers=3, up_blocks=None, dropout=0.2),
    # Tests: a few thousand parameters, 2 poolings (H, W multiples of 4). No dropout, so that
    # forward passes are deterministic in training mode.
    "tiny": dict(stem_filters=8, growth_rate=4, down_blocks=(2, 2), bottleneck_layers=2, up_blocks=None, dropout=0.0),
}
