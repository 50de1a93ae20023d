"""Region-based training (--output regions): the losses against NumPy, an equivariant network's zero consistency,
nnU-Net's regions -> labels rule, and a region run trained, evaluated and predicted end to end."""

import json

import numpy as np
import pytest
from training_helpers import conv_net, equireg_batch, flip_grid
from training_helpers import to_numpy as _np

from kequireg.label_schema import IGNORE_INDEX
from kequireg.training import region_losses
from kequireg.vocabulary import BRATS_2019, BRATS_2023

backend = pytest.mark.backend
REGIONS = tuple(r.classes for r in BRATS_2019.regions)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


def _np_targets(labels):
    return np.stack([np.isin(labels, classes) for classes in REGIONS], -1).astype(np.float64)


def _np_bce(t, z):
    s = _sigmoid(z)
    return -(t * np.log(s) + (1 - t) * np.log(1 - s))


@backend
def test_bce_and_region_dice_equal_numpy_references_dropping_ignored_pixels():
    rng = np.random.default_rng(0)
    for case in range(20):
        labels = rng.integers(0, 4, (2, 6, 5))
        labels[rng.random(labels.shape) < 0.2] = IGNORE_INDEX
        logits = rng.normal(0, 3, (2, 6, 5, 3)).astype("float32")
        keep = labels != IGNORE_INDEX
        t = _np_targets(labels)
        ref_bce = _np_bce(t, logits).mean(-1)[keep].mean()
        p = _sigmoid(logits) * keep[..., None]
        tt = t * keep[..., None]
        ref_dice = 1 - np.mean((2 * (p * tt).sum((0, 1, 2)) + 1e-5) / (p.sum((0, 1, 2)) + tt.sum((0, 1, 2)) + 1e-5))
        for kind, want in (("ce", ref_bce), ("dice", ref_dice), ("ce+dice", ref_bce + ref_dice)):
            got = float(_np(region_losses.region_supervised_loss(kind, labels.astype("int32"), logits, REGIONS)))
            assert got == pytest.approx(want, rel=1e-4, abs=1e-6), (case, kind)
    nothing = np.full((1, 3, 3), IGNORE_INDEX, "int32")  # no annotated pixel: 0, not nan
    assert float(_np(region_losses.bce_loss(*region_losses.region_targets(nothing, REGIONS)[:1],
                                            np.zeros((1, 3, 3, 3), "float32"),
                                            region_losses.region_targets(nothing, REGIONS)[1]))) == 0.0


@backend
def test_region_consistency_terms_equal_numpy_references():
    rng = np.random.default_rng(1)
    t = rng.uniform(0, 1, (2, 4, 5, 3)).astype("float32")
    t[0, 0, 0] = [0.0, 1.0, 0.5]  # exact 0 and 1: 0 log 0 = 0
    z = rng.normal(0, 2, (2, 4, 5, 3)).astype("float32")
    s = _sigmoid(z)
    tt = t.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(tt > 0, tt * np.log(tt / s), 0) + np.where(tt < 1, (1 - tt) * np.log((1 - tt) / (1 - s)), 0)
    np.testing.assert_allclose(_np(region_losses.region_kl_map(t, z)), kl.mean(-1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(region_losses.region_mse_map(t, z)), ((s - tt) ** 2).mean(-1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(_np(region_losses.region_pseudo_label_map(t, z)), _np_bce(tt > 0.5, z).mean(-1),
                               rtol=1e-4, atol=1e-5)
    confident = np.minimum.reduce(np.maximum(tt, 1 - tt), axis=-1) >= 0.8
    np.testing.assert_array_equal(_np(region_losses.region_confidence_mask(t, 0.8)), confident)
    # the student equal to the target: KL 0
    same = _sigmoid(z).astype("float32")
    np.testing.assert_allclose(_np(region_losses.region_kl_map(same, z)), 0, atol=2e-6)


@backend
def test_region_consistency_is_zero_for_an_exactly_equivariant_network():
    from kequireg.training import EquiRegModel, StepOptions
    import keras

    network = conv_net(classes=3, kernel=1)  # 1x1 convs commute with a flip: exactly equivariant
    batch = equireg_batch(n_unlabeled=3, zero_border=0, seed=3)
    batch["grid"] = flip_grid(3, 16, 16)
    batch["strong"] = batch["unlabeled"][:, :, ::-1].copy()
    for consistency in ("kl", "mse"):
        model = EquiRegModel(network, StepOptions(output="regions", consistency=consistency, mask="none"), BRATS_2019)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
        logs = model.train_on_batch(batch, return_dict=True)
        assert abs(logs["er_loss"]) < 1e-6 and logs["sup_loss"] > 0.1, consistency
    model = EquiRegModel(conv_net(classes=3), StepOptions(output="regions", mask="none"), BRATS_2019)  # 3x3: not
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    assert model.train_on_batch(batch, return_dict=True)["er_loss"] > 1e-4


def _nnunet_paint(region_probs, order):
    """nnU-Net's convert_probabilities / regions_class_order rule, written out: later regions paint over."""
    seg = np.zeros(region_probs.shape[:-1], np.uint8)
    for i, c in enumerate(order):
        seg[region_probs[..., i] > 0.5] = c
    return seg


def test_regions_to_labels_is_nnunets_rule_on_hand_made_cases():
    # WT TC ET -> label (classes: 1 necrosis, 2 edema, 3 enhancing; order paints WT=2, TC=1, ET=3)
    cases = {(0, 0, 0): 0, (1, 0, 0): 2, (1, 1, 0): 1, (1, 1, 1): 3, (0, 1, 0): 1, (0, 0, 1): 3, (1, 0, 1): 3}
    probs = np.array([[0.9 if v else 0.1 for v in key] for key in cases], np.float32)
    assert BRATS_2019.regions_to_classes(probs).tolist() == list(cases.values())
    rng = np.random.default_rng(0)
    random = rng.uniform(0, 1, (50, 7, 3))
    np.testing.assert_array_equal(BRATS_2019.regions_to_classes(random), _nnunet_paint(random, (2, 1, 3)))
    assert BRATS_2023.regions_class_order == BRATS_2019.regions_class_order
    from kequireg.label_schema import per_class_schema

    with pytest.raises(ValueError, match="regions_class_order"):
        per_class_schema("x", ("background", "a"), (0, 1)).regions_to_classes(random[..., :1])


def test_region_output_needs_a_painting_order():
    from kequireg.label_schema import per_class_schema
    from kequireg.training.outputs import output_head

    with pytest.raises(ValueError, match="--output softmax"):
        output_head("regions", per_class_schema("x", ("background", "a"), (0, 1)))


@pytest.mark.slow
def test_a_region_run_trains_evaluates_and_predicts(small_store, tmp_path):
    """--output regions from the CLI: 3 sigmoid channels, per-region validation Dice, labels painted back."""
    from click.testing import CliRunner

    from cli.main import main
    from kequireg.data.store import SliceStore
    from kequireg.inference.outputs import network_output
    from kequireg.inference.predictor import predict_labels
    from kequireg.training.run_dir import RunDir

    run_dir = tmp_path / "regions"
    args = ["train", "--data", str(small_store), "--labeled", "0.5", "--model", "tiny", "--output", "regions",
            "--steps-per-epoch", "2", "--max-steps", "4", "--patience", "1", "--val-slices", "8",
            "--run-dir", str(run_dir), "--no-progress"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "config.json").read_text())["output"] == "regions"
    network = RunDir(run_dir).load_network()
    assert network.output_shape[-1] == 3 and network_output(network) == "regions"
    with SliceStore(small_store) as store:
        images, _, _ = store.case_arrays(store.labeled_case_ids[0])
    labels = predict_labels(network, images)
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1, 2, 3}
    result = CliRunner().invoke(main, ["evaluate", str(run_dir), "--no-progress", "--tta", "2", "--uncertainty"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "dice_wt" in result.output
