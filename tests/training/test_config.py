"""TrainConfig: defaults per data kind, validation messages, JSON round trip."""

import pytest

from kequireg.training.config import DEMO_DEFAULTS, THESIS_DEFAULTS, TrainConfig


def test_resolve_fills_thesis_or_demo_defaults():
    real = TrainConfig(data="x.h5").resolve(demo=False)
    assert (real.model, real.labeled_batch, real.unlabeled_batch) == ("fc-densenet103", 2, 6)
    assert (real.steps_per_epoch, real.patience, real.max_steps) == tuple(THESIS_DEFAULTS[k] for k in ("steps_per_epoch", "patience", "max_steps"))
    demo = TrainConfig(method="baseline", steps_per_epoch=7).resolve(demo=True)
    assert (demo.model, demo.labeled_batch, demo.unlabeled_batch, demo.steps_per_epoch) == ("tiny", 4, 0, 7)
    assert demo.max_steps == DEMO_DEFAULTS["max_steps"]
    assert TrainConfig(steps_per_epoch=500, max_steps=1001).resolve(demo=False).epochs == 3


@pytest.mark.parametrize(
    "field, value, message",
    [("fraction", 0.0, "fraction must be in"), ("method", "mixmatch", "method must be one of"),
     ("mask", "inside", "mask must be one of"), ("precision", "float16", "precision must be one of"),
     ("steps_per_epoch", 0, "steps_per_epoch must be an integer >= 1"),
     ("unlabeled_batch", 0, "unlabeled_batch must be > 0 for equireg")],
)
def test_bad_values_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message) as err:
        TrainConfig(**{field: value}).resolve(demo=True)
    assert repr(value) in str(err.value)


def test_json_round_trip(tmp_path):
    cfg = TrainConfig(data="a.h5", fraction=0.05, seed=3, lambda_=0.5, mask="valid").resolve(demo=False)
    path = cfg.save(tmp_path / "config.json")
    assert TrainConfig.load(path) == cfg
    assert not (tmp_path / "config.json.tmp").exists()
    (tmp_path / "bad.json").write_text('{"fraction": 0.1, "lr": 1}')
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="is this a kequireg run dir"):
        TrainConfig.load(tmp_path / "missing.json")
