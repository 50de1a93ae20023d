"""Fine-tuning (``--init-from``, ``--init-partial``, ``--freeze-encoder``): weights matched by layer
name and shape from a run folder or a ``.keras`` file; the source is the legacy run (tiny model,
32x32 store) copied once per module."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from training_helpers import to_numpy

LEGACY = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae"
SHAPE = (32, 32, 4)
SMALL = dict(model="tiny", fraction=0.5, steps_per_epoch=2, max_steps=2, patience=0, labeled_batch=1,
             unlabeled_batch=1, val_slices=4, workers=1)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A copy of the legacy store and run folder (the source run), and a .keras file of other weights."""
    root = tmp_path_factory.mktemp("finetune")
    for name in ("store.h5", "store.splits.json"):
        shutil.copy(LEGACY / name, root / name)
    shutil.copytree(LEGACY / "run", root / "run")
    from kequireg.models import build_model

    build_model("tiny", SHAPE, num_classes=4, seed=7).save(root / "other.keras")
    build_model("tiny", SHAPE, num_classes=3, seed=7).save(root / "three.keras")
    return root


def _weights(network) -> dict:
    return {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in network.layers if layer.weights}


def _source_weights(path) -> dict:
    import keras

    return _weights(keras.saving.load_model(path, compile=False))


def _assert_same(ours, theirs, names):
    for name in names:
        for a, b in zip(ours[name], theirs[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)


def _config(source, **kw):
    from kequireg.training.config import TrainConfig

    return TrainConfig(data=str(source / "store.h5"), **{**SMALL, **kw}).resolve(demo=False)


@pytest.mark.backend
@pytest.mark.parametrize("kind", ["run", "file"])
def test_network_and_ema_teacher_start_from_the_source(source, kind):
    from kequireg.training.init_weights import read_source
    from kequireg.training.run import build_training_model

    path = source / "run" if kind == "run" else source / "other.keras"
    expected = _source_weights(source / "run" / "best.keras" if kind == "run" else path)
    model = build_training_model(_config(source, method="mean-teacher", init_from=str(path)), SHAPE, read_source(path))
    ours = _weights(model.network)
    assert set(ours) == set(expected)
    _assert_same(ours, expected, ours)
    float_variables = [v for v in model.network.variables if "float" in str(v.dtype)]
    for variable, shadow in zip(float_variables, model.ema_weights):  # the EMA teacher copied the loaded weights
        np.testing.assert_array_equal(to_numpy(shadow), to_numpy(variable))


@pytest.mark.backend
def test_another_class_count_is_an_error_listing_the_layer_unless_partial(source, tmp_path):
    from kequireg.training.config import TrainConfig
    from kequireg.training.init_weights import initialize_from
    from kequireg.training.run import build_training_model, train

    three = source / "three.keras"
    with pytest.raises(ValueError, match=r"1 layer\(s\).*classifier: weights \[\(1, 1, 32, 4\), \(4,\)\] here, "
                                         r"\[\(1, 1, 32, 3\), \(3,\)\] in the source.*--init-partial"):
        train(TrainConfig(data=str(source / "store.h5"), init_from=str(three), run_dir=str(tmp_path / "run"),
                          **SMALL), progress=False)
    assert not (tmp_path / "run").exists()  # checked before the run dir is written

    model = build_training_model(_config(source), SHAPE)
    fresh = _weights(model.network)
    report = initialize_from(model.network, three, partial=True)
    assert [m.split(":")[0] for m in report.mismatched] == ["classifier"] and report.unused == []
    ours, theirs = _weights(model.network), _source_weights(three)
    _assert_same(ours, theirs, [name for name in ours if name != "classifier"])
    _assert_same(ours, fresh, ["classifier"])
    assert not np.array_equal(ours["stem_conv"][0], fresh["stem_conv"][0])


@pytest.fixture(scope="module")
def finetuned(source, tmp_path_factory):
    """2 steps from the source run with the encoder frozen, and its resume after the source moved."""
    from kequireg.training.config import TrainConfig
    from kequireg.training.run import train

    run_dir = tmp_path_factory.mktemp("ft") / "run"
    copy = source / "copy-of-run"
    shutil.copytree(source / "run", copy)
    result = train(TrainConfig(data=str(source / "store.h5"), init_from=str(copy), freeze_encoder=True,
                               run_dir=str(run_dir), **SMALL), progress=False)
    shutil.rmtree(copy)  # a resume must not read the source again: the checkpoint wins
    resumed = train(TrainConfig(run_dir=str(run_dir)), resume=True, progress=False)
    return result, resumed


@pytest.mark.backend
def test_frozen_encoder_keeps_the_source_weights_while_the_decoder_trains(source, finetuned):
    from kequireg.models.tiramisu import is_encoder_layer

    result, resumed = finetuned
    assert result.steps == 2
    trained, start = _source_weights(result.best_model_path), _source_weights(source / "run" / "best.keras")
    encoder = [name for name in trained if is_encoder_layer(name)]
    decoder = [name for name in trained if not is_encoder_layer(name)]
    assert "stem_conv" in encoder and "bottleneck_layer2_bn" in encoder and "classifier" in decoder
    _assert_same(trained, start, encoder)  # kernels, BatchNorm scales and moving statistics
    assert all(not np.array_equal(trained[name][0], start[name][0]) for name in decoder)
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["init_from"].endswith("copy-of-run") and saved["freeze_encoder"] and not saved["init_partial"]
    assert resumed.history == result.history


def test_old_configs_load_without_fine_tuning_and_flags_need_init_from():
    from cli.main import main
    from kequireg.training.config import TrainConfig

    old = TrainConfig.load(LEGACY / "run" / "config.json")
    assert (old.init_from, old.init_partial, old.freeze_encoder) == (None, False, False)
    for flag in ("--init-partial", "--freeze-encoder"):
        result = CliRunner().invoke(main, ["train", flag, "--no-progress"])
        assert result.exit_code == 2 and f"{flag[2:].replace('-', '_')} must be False without init_from" in result.output
