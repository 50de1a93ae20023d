"""Semi-supervised methods as parts: EMA teacher, pseudo-CE / MSE consistency, CutMix, Dice, optimizers, presets.

Every loss is checked against NumPy written by hand, inside the real train step where it matters.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from training_helpers import backend_gradients, conv_net, equireg_batch, flip_grid, np_softmax, np_warp_probs
from training_helpers import sgd_model as _model
from training_helpers import to_numpy as _np

from kequireg import settings

backend = pytest.mark.backend


def _float_values(network):
    return [_np(v).copy() for v in network.variables if "float" in str(v.dtype)]


# ---- NumPy references ----------------------------------------------------------------------------


def np_valid_mask(grid, h, w):
    rows, cols = grid[..., 0], grid[..., 1]
    return ((rows >= 0) & (rows <= h - 1) & (cols >= 0) & (cols <= w - 1)).astype("float64")


def np_consistency(kind, target, student_logits):
    s = np_softmax(student_logits.astype("float64"))
    if kind == "kl":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(target > 0, target * (np.log(target) - np.log(s)), 0.0).sum(-1)
    if kind == "mse":
        return ((s - target) ** 2).mean(-1)
    labels = target.argmax(-1)
    return -np.log(np.take_along_axis(s, labels[..., None], -1)[..., 0])


def np_masked_mean(values, mask, weight):
    return ((values * mask * weight).sum((1, 2)) / np.maximum(mask.sum((1, 2)), 1)).mean()


def np_soft_dice_loss(labels, logits, smooth=1e-5):
    p = np_softmax(logits.astype("float64"))
    dice = []
    for k in range(1, p.shape[-1]):
        y = (labels == k).astype("float64")
        dice.append((2 * (p[..., k] * y).sum() + smooth) / (p[..., k].sum() + y.sum() + smooth))
    return 1 - np.mean(dice)


def np_cutmix(values, index, boxes):
    out = values.copy()
    for b, (r0, r1, c0, c1) in enumerate(boxes):
        out[b, r0:r1, c0:c1] = values[index[b], r0:r1, c0:c1]
    return out


# ---- EMA teacher ---------------------------------------------------------------------------------


@backend
def test_ema_update_equals_numpy_reference_and_resume_continues_it(tmp_path):
    from kequireg.training.run_dir import load_checkpoint, save_checkpoint

    decay = 0.6  # the warm-up min(1 - 1/n, decay) shows in the first steps
    batches = [equireg_batch(seed=s) for s in range(6)]

    def build(seed):
        return _model(conv_net(batchnorm=True, seed=seed), lr=0.3, teacher="ema", ema_decay=decay,
                      teacher_mode="inference", eval_weights="ema")

    model = build(0)
    assert not any(w.trainable for w in model.ema_weights)
    assert not {id(w) for w in model.ema_weights} & {id(v) for v in model.trainable_variables}
    ema = _float_values(model.network)  # the EMA starts as a copy of the network
    for n, batch in enumerate(batches[:4], start=1):
        model.train_on_batch(batch)
        d = np.float32(min(1 - 1 / n, decay))
        ema = [d * e + (np.float32(1) - d) * s for e, s in zip(ema, _float_values(model.network))]
        for got, want in zip(model.ema_weights, ema):
            np.testing.assert_allclose(_np(got), want, rtol=1e-6, atol=1e-7)
        if n == 2:
            save_checkpoint(tmp_path / "ckpt.npz", model, {"epoch": 0})
    # the teacher runs with the EMA weights (moving statistics included), and so does eval_network()
    targets, _ = model.teacher_targets(batches[0])
    exported = model.eval_network()
    assert exported is not model.network
    expected = np_warp_probs(np_softmax(_np(exported(batches[0]["unlabeled"], training=False)).astype("float64")),
                             batches[0]["grid"])
    np.testing.assert_allclose(_np(targets), expected, atol=1e-5)
    # a fresh model restored from the step-2 checkpoint continues the EMA exactly
    resumed = build(5)
    resumed.optimizer.build(resumed.trainable_variables)
    load_checkpoint(tmp_path / "ckpt.npz", resumed)
    for batch in batches[2:4]:
        resumed.train_on_batch(batch)
    for got, want in zip(resumed.ema_weights, model.ema_weights):
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-6, atol=1e-7)
    assert int(_np(resumed.optimizer.iterations)) == int(_np(model.optimizer.iterations)) == 4


@backend
def test_eval_weights_ema_validates_an_ema_also_for_a_self_teacher():
    from kequireg.training.device_warp import warp_probs

    model = _model(conv_net(seed=6), lr=0.5, eval_weights="ema", ema_decay=0.5)
    batches = [equireg_batch(seed=s) for s in (6, 7)]
    ema = _float_values(model.network)
    for n, batch in enumerate(batches, start=1):
        model.train_on_batch(batch)
        d = np.float32(min(1 - 1 / n, 0.5))
        ema = [d * e + (np.float32(1) - d) * s for e, s in zip(ema, _float_values(model.network))]
    for got, want in zip(_float_values(model.eval_network()), ema, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    batch = batches[0]
    targets, _ = model.teacher_targets(batch)  # the teacher is still the network itself
    want = warp_probs(np_softmax(_np(model.network(batch["unlabeled"])).astype("float64")), batch["grid"])
    np.testing.assert_allclose(_np(targets), _np(want), atol=1e-5)
    logits = _np(model.eval_network()(batch["labeled"])).astype("float64")  # validation uses the EMA
    ce = -np.log(np.take_along_axis(np_softmax(logits), batch["labels"][..., None], -1)).mean()
    assert model.evaluate(batch["labeled"], batch["labels"], verbose=0, return_dict=True)["loss"] == pytest.approx(ce, rel=1e-5)


@backend
def test_ema_model_saves_and_loads_in_safe_mode(tmp_path):
    import keras

    from kequireg.training import EquiRegModel

    model = _model(conv_net(batchnorm=True, dropout=0.2, seed=2), lr=0.1, teacher="ema", consistency="mse",
                   sup_loss="ce+dice", eval_weights="ema", ema_decay=0.9)
    for seed in range(2):
        model.train_on_batch(equireg_batch(seed=seed))
    config = EquiRegModel.from_config(model.get_config()).get_config()
    assert {k: config[k] for k in ("teacher", "ema_decay", "consistency", "sup_loss", "eval_weights")} == {
        "teacher": "ema", "ema_decay": 0.9, "consistency": "mse", "sup_loss": "ce+dice", "eval_weights": "ema"}
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    for got, want in zip(loaded.ema_weights, model.ema_weights):
        np.testing.assert_array_equal(_np(got), _np(want))
    model.eval_network().save(tmp_path / "best.keras")
    best = keras.saving.load_model(tmp_path / "best.keras", safe_mode=True)
    for got, want in zip(_float_values(best), model.ema_weights, strict=True):
        np.testing.assert_array_equal(got, _np(want))


# ---- consistency and supervised losses -----------------------------------------------------------


@backend
@pytest.mark.parametrize("consistency", ["pseudo-ce", "mse"])
def test_pseudo_ce_and_mse_equal_numpy_references(consistency):
    network = conv_net(seed=1)
    batch = equireg_batch(seed=1)
    h, w = batch["grid"].shape[1:3]
    teacher_logits = _np(network(batch["unlabeled"])).astype("float64")
    student = _np(network(np.concatenate([batch["labeled"], batch["strong"]]))).astype("float64")
    target = np_warp_probs(np_softmax(teacher_logits), batch["grid"])
    threshold = float(np.median(target.max(-1)))  # half the pixels pass
    mask = np_valid_mask(batch["grid"], h, w)
    values = np_consistency(consistency, target, student[2:])
    for confidence, weight in ((0.0, np.ones_like(mask)), (threshold, (target.max(-1) >= threshold).astype("float64"))):
        model = _model(network, consistency=consistency, confidence=confidence, mask="valid", lambda_=0.5)
        loss, sup, er, lam = (float(_np(v)) for v in model.student_losses(batch, model.teacher_targets(batch)))
        want = np_masked_mean(values, mask, weight)
        assert er == pytest.approx(want, rel=1e-5)
        assert loss == pytest.approx(sup + 0.5 * want, rel=1e-5)
    assert 0 < weight.mean() < 1


@backend
def test_soft_dice_equals_numpy_reference_and_is_the_supervised_term():
    from kequireg.training import losses

    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (2, 6, 5, 4)).astype("float32")
    labels = rng.integers(0, 3, (2, 6, 5))  # class 3 absent: the empty-class convention
    want = np_soft_dice_loss(labels, logits)
    assert float(_np(losses.soft_dice_loss(labels, logits))) == pytest.approx(want, rel=1e-5)
    perfect = np.where(np.eye(4, dtype=bool)[labels], 30.0, -30.0).astype("float32")
    assert float(_np(losses.soft_dice_loss(labels, perfect))) == pytest.approx(0.0, abs=1e-5)  # empty class 3 -> D = 1
    batch = equireg_batch(seed=2)
    supervised = {"labeled": batch["labeled"], "labels": batch["labels"]}
    network = conv_net(seed=2)
    logits = _np(network(batch["labeled"]))
    ce = -np.log(np.take_along_axis(np_softmax(logits.astype("float64")), batch["labels"][..., None], -1)).mean()
    for kind, want in (("dice", np_soft_dice_loss(batch["labels"], logits)),
                       ("ce+dice", ce + np_soft_dice_loss(batch["labels"], logits))):
        logs = _model(network, lr=0.0, sup_loss=kind).train_on_batch(supervised, return_dict=True)
        assert logs["sup_loss"] == pytest.approx(want, rel=1e-5)


@backend
@pytest.mark.parametrize("consistency", ["kl", "pseudo-ce"])
def test_temperature_and_confidence_inside_a_train_step(consistency):
    network = conv_net(seed=3)
    batch = equireg_batch(seed=3)
    teacher_logits = _np(network(batch["unlabeled"])).astype("float64")
    student = _np(network(np.concatenate([batch["labeled"], batch["strong"]]))).astype("float64")
    target = np_warp_probs(np_softmax(teacher_logits / 0.5), batch["grid"])  # sharpened, then warped
    threshold = float(np.quantile(target.max(-1), 0.3))
    weight = (target.max(-1) >= threshold).astype("float64")
    mask = (batch["strong"] != 0).any(-1).astype("float64")  # thesis mask
    er = np_masked_mean(np_consistency(consistency, target, student[2:]), mask, weight)
    logp = np.log(np_softmax(student[:2]))
    ce = -np.take_along_axis(logp, batch["labels"][..., None], -1).mean()
    model = _model(network, temperature=0.5, confidence=threshold, consistency=consistency, lambda_=0.7)
    logs = model.train_on_batch(batch, return_dict=True)
    assert logs["er_loss"] == pytest.approx(er, rel=1e-5)
    assert logs["loss"] == pytest.approx(ce + 0.7 * er, rel=1e-5)
    unsharpened = np_warp_probs(np_softmax(teacher_logits), batch["grid"])  # T = 1 gives another loss
    plain = np_masked_mean(np_consistency(consistency, unsharpened, student[2:]), mask,
                           (unsharpened.max(-1) >= threshold).astype("float64"))
    assert plain != pytest.approx(er, rel=1e-3)


@backend
@pytest.mark.parametrize("teacher, consistency, teacher_mode", [
    ("self", "kl", "train"), ("self", "mse", "inference"), ("self", "pseudo-ce", "train"),
    ("ema", "kl", "inference"), ("ema", "mse", "train"), ("ema", "pseudo-ce", "train"),
])
def test_gradients_do_not_flow_into_the_teacher(teacher, consistency, teacher_mode):
    batch = equireg_batch(seed=4)
    model = _model(conv_net(batchnorm=True, seed=4), teacher=teacher, consistency=consistency,
                   teacher_mode=teacher_mode, mask="none", ema_decay=0.5)
    if teacher == "ema":
        model.train_on_batch(equireg_batch(seed=9))  # the EMA now differs from the network
        model.train_on_batch(equireg_batch(seed=10))
    w0 = [_np(v).copy() for v in model.trainable_variables]
    targets, mask = (_np(t).copy() for t in model.teacher_targets(batch))  # fed back in as NumPy constants
    state = [_np(v).copy() for v in model.non_trainable_variables]
    expected = backend_gradients(model, lambda: model.student_losses(batch, (targets, mask))[0])
    for variable, value in zip(model.non_trainable_variables, state):  # undo that pass's BatchNorm updates
        variable.assign(value)
    model.train_on_batch(batch)  # SGD, lr = 1: w1 = w0 - grad
    for before, variable, want in zip(w0, model.trainable_variables, expected):
        np.testing.assert_allclose(before - _np(variable), want, rtol=1e-4, atol=1e-6)


# ---- CutMix --------------------------------------------------------------------------------------


def _cutmix_batch(seed=0):
    from kequireg.training import cutmix

    batch = equireg_batch(n_unlabeled=4, zero_border=0, seed=seed)
    batch["grid"] = flip_grid(4, 16, 16)
    batch["strong"] = batch["unlabeled"][:, :, ::-1].copy()
    batch["mix_index"], batch["mix_box"] = cutmix.sample_boxes(np.random.default_rng(seed), 4, 16, 16, prob=1.0)
    return batch


@backend
def test_cutmix_targets_equal_a_numpy_mix_of_the_warped_teacher_maps():
    batch = _cutmix_batch(seed=1)
    batch["strong"][:, :3] = 0  # zero rows: the thesis mask differs between slices
    network = conv_net(seed=1)
    warped = np_warp_probs(np_softmax(_np(network(batch["unlabeled"])).astype("float64")), batch["grid"])
    index, boxes = batch["mix_index"], batch["mix_box"]
    assert (boxes[:, 1] > boxes[:, 0]).all() and (index != np.arange(4)).all()
    for mask_mode, want_mask in (("valid", np_valid_mask(batch["grid"], 16, 16)),
                                 ("thesis", (batch["strong"] != 0).any(-1).astype("float64"))):
        model = _model(network, mask=mask_mode)
        targets, mask = model.teacher_targets(batch)
        np.testing.assert_allclose(_np(targets), np_cutmix(warped, index, boxes), atol=1e-5)
        np.testing.assert_array_equal(_np(mask), np_cutmix(want_mask, index, boxes))
        np.testing.assert_array_equal(_np(model.student_view(batch)), np_cutmix(batch["strong"], index, boxes))


@backend
def test_cutmix_keeps_the_consistency_of_an_equivariant_network_at_its_floor():
    network = conv_net(kernel=1)  # 1x1 convs: pointwise, so they commute with flips and box pastes
    batch = _cutmix_batch(seed=2)
    for consistency in ("kl", "mse"):
        logs = _model(network, lr=0.0, mask="none", consistency=consistency).train_on_batch(batch, return_dict=True)
        assert abs(logs["er_loss"]) < 1e-6 and logs["sup_loss"] > 0.1
    # pseudo-CE: the pseudo-labels are the student's own argmax, so the loss is its own floor
    mixed = np_cutmix(batch["strong"], batch["mix_index"], batch["mix_box"])
    own = np_softmax(_np(network(mixed)).astype("float64"))
    logs = _model(network, lr=0.0, mask="none", consistency="pseudo-ce").train_on_batch(batch, return_dict=True)
    assert logs["er_loss"] == pytest.approx(-np.log(own.max(-1)).mean(), rel=1e-5)
    # a 3x3 network is not equivariant: the term is really measured
    logs = _model(conv_net(), lr=0.0, mask="none").train_on_batch(batch, return_dict=True)
    assert logs["er_loss"] > 1e-4


def test_cutmix_boxes_come_from_the_batch_seed(small_store):
    from kequireg.data.dataset import open_dataset
    from kequireg.training.options import PipelineOptions
    from kequireg.training.pipeline import EquiRegBatches

    with open_dataset(small_store) as dataset:
        ids = (dataset.labeled_ids(0.5, 0), dataset.unlabeled_ids)

        def batches(mix, workers=1, prob=0.5):
            options = PipelineOptions(labeled_batch=2, unlabeled_batch=5, steps_per_epoch=4, seed=3, workers=workers,
                                      mix=mix, mix_prob=prob)
            ds = EquiRegBatches(dataset, *ids, options)
            return [ds.batch(1, i) for i in range(4)]

        plain, mixed, threaded = batches("none"), batches("cutmix"), batches("cutmix", workers=2)
        never = batches("cutmix", prob=0.0)
    for a, b, c, d in zip(plain, mixed, threaded, never):
        assert set(b) == set(a) | {"mix_index", "mix_box"}
        for key in a:  # the boxes are drawn after everything else: the other arrays are unchanged
            np.testing.assert_array_equal(a[key], b[key])
        for key in b:
            np.testing.assert_array_equal(b[key], c[key])
        assert sorted(b["mix_index"]) == list(range(5)) and (b["mix_index"] != np.arange(5)).all()
        r0, r1, c0, c1 = b["mix_box"].T
        assert (0 <= r0).all() and (r0 <= r1).all() and (r1 <= 32).all() and (c0 <= c1).all() and (c1 <= 32).all()
        assert not d["mix_box"].any()
    areas = np.concatenate([(b["mix_box"][:, 1] - b["mix_box"][:, 0]) * (b["mix_box"][:, 3] - b["mix_box"][:, 2])
                            for b in mixed])
    assert 0 < (areas > 0).mean() < 1 and areas.max() <= 0.4 * 32 * 32


# ---- optimizer and schedules ---------------------------------------------------------------------


@backend
def test_lr_schedules_equal_their_formulas():
    from kequireg.training.optim import WarmupDecay

    steps = np.arange(0, 120, 7)
    total, warmup, peak = 100, 10, 0.01
    t = np.clip((steps - warmup) / (total - warmup), 0, 1)
    shapes = {"constant": np.full(t.shape, peak), "cosine": peak * 0.5 * (1 + np.cos(np.pi * t)),
              "poly": peak * (1 - t) ** 0.9}
    for shape, after in shapes.items():
        want = np.where(steps < warmup, peak * (steps + 1) / warmup, after)
        got = [float(_np(WarmupDecay(peak, total, warmup, shape)(int(s)))) for s in steps]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)


def test_optimizers_of_configs():
    import keras

    from kequireg.training.config import TrainConfig
    from kequireg.training.optim import WarmupDecay, build_optimizer

    thesis = build_optimizer(TrainConfig().resolve(demo=True))
    assert type(thesis) is keras.optimizers.Adam and not thesis.weight_decay
    assert float(_np(thesis.learning_rate)) == pytest.approx(1e-3)
    adamw = build_optimizer(TrainConfig(optimizer="adamw", lr_schedule="cosine", warmup_steps=5).resolve(demo=True))
    assert type(adamw) is keras.optimizers.AdamW and adamw.weight_decay == pytest.approx(0.01)
    assert isinstance(adamw._learning_rate, WarmupDecay) and adamw._learning_rate.total_steps == 600
    sgd = build_optimizer(TrainConfig(optimizer="sgd", learning_rate=0.01, weight_decay=1e-4).resolve(demo=True))
    assert type(sgd) is keras.optimizers.SGD and sgd.momentum == 0.9 and sgd.weight_decay == pytest.approx(1e-4)


# ---- TrainConfig and the named methods ------------------------------------------------------------


def test_named_methods_fill_their_parts_and_any_part_can_be_overridden(tmp_path):
    from kequireg.training.config import TrainConfig
    from kequireg.training.run_dir import RunDir

    for method in settings.METHODS:
        cfg = TrainConfig(method=method).resolve(demo=True)
        assert {k: getattr(cfg, k) for k in settings.METHOD_PARTS} == settings.METHOD_PRESETS[method]
        assert (cfg.labeled_batch, cfg.unlabeled_batch) == settings.BATCH_DEFAULTS[method]
    assert TrainConfig(method="fixmatch").resolve(demo=True).confidence == 0.95
    mine = TrainConfig(method="unimatch-lite", confidence=0.8, mix="none", teacher="ema").resolve(demo=True)
    assert (mine.confidence, mine.mix, mine.teacher, mine.consistency) == (0.8, "none", "ema", "pseudo-ce")
    # an unresolved template keeps None parts, so a grid can swap its method
    assert TrainConfig().teacher is None and TrainConfig().confidence is None
    for bad, message in ((dict(eval_weights="average"), "eval_weights must be one of"),
                         (dict(method="fixmatch", unlabeled_batch=0), "unlabeled_batch must be > 0 for fixmatch"),
                         (dict(consistency="l2"), "consistency must be one of"),
                         (dict(mix="mixup"), "mix must be one of"), (dict(optimizer="lamb"), "optimizer must be one of"),
                         (dict(warmup_steps=600), "warmup_steps")):
        with pytest.raises(ValueError, match=message):
            TrainConfig(**bad).resolve(demo=True)
    # a run from before the method parts existed loads as the thesis's method
    old = TrainConfig().resolve(demo=True).to_dict()
    for key in ("teacher", "eval_weights", "consistency", "mix", "mix_prob", "sup_loss", "ema_decay", "optimizer",
                "weight_decay", "lr_schedule", "warmup_steps"):
        old.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(old))
    loaded = RunDir(tmp_path).load_config()
    assert {k: getattr(loaded, k) for k in settings.METHOD_PARTS} == settings.METHOD_PRESETS["equireg"]


def test_train_help_lists_every_method_and_lr_alias(monkeypatch):
    from cli.main import main

    out = CliRunner().invoke(main, ["train", "--help"], terminal_width=200).output
    for method in settings.METHODS:
        assert method in out
    for option in ("--teacher", "--ema-decay", "--eval-weights", "--consistency", "--confidence", "--temperature",
                   "--mix", "--mix-prob", "--sup-loss", "--rampup", "--optimizer", "--lr", "--learning-rate",
                   "--weight-decay", "--lr-schedule", "--warmup-steps"):
        assert option in out
    seen = []

    def record(config, **kwargs):
        seen.append(config)
        raise ValueError("recorded")

    monkeypatch.setattr("kequireg.training.run.train", record)
    for flag in ("--lr", "--learning-rate"):
        CliRunner().invoke(main, ["train", flag, "0.02", "--method", "mean-teacher", "--sup-loss", "dice"])
    got = [(c.learning_rate, c.method, c.sup_loss, c.teacher) for c in seen]
    assert got == [(0.02, "mean-teacher", "dice", None)] * 2


@backend
@pytest.mark.parametrize("method", settings.METHODS)
def test_each_named_method_trains_10_steps_from_the_cli(small_store, tmp_path, method):
    from cli.main import main

    run_dir = tmp_path / "run"
    batch = ["--labeled-batch", "2"] + ([] if method == "baseline" else ["--unlabeled-batch", "2"])
    args = ["train", "--data", str(small_store), "--method", method, "--labeled", "0.5", "--model", "tiny",
            "--max-steps", "10", "--steps-per-epoch", "10", "--patience", "0", "--val-slices", "4", "--workers", "1",
            *batch, "--run-dir", str(run_dir), "--no-progress"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    config = json.loads((run_dir / "config.json").read_text())
    assert {k: config[k] for k in settings.METHOD_PARTS} == settings.METHOD_PRESETS[method]
    (row,) = [line.split(",") for line in (run_dir / "history.csv").read_text().splitlines()[1:]]
    header = (run_dir / "history.csv").read_text().splitlines()[0].split(",")
    row = dict(zip(header, map(float, row)))
    assert row["step"] == 10 and np.isfinite(row["loss"]) and np.isfinite(row["val_loss"])
    assert (row["er_loss"] > 0) == (method != "baseline")
    if method == "mean-teacher":  # best.keras holds the EMA weights (safe mode), as the checkpoint has them
        import keras

        best = keras.saving.load_model(run_dir / "best.keras", safe_mode=True)
        with np.load(run_dir / "checkpoint.npz") as archive:
            paths = json.loads(archive["meta"].tobytes().decode())["paths"]
            ema = [archive[f"v{i:05d}"] for i, p in enumerate(paths) if p.split("/")[-1].startswith("ema_")]
        assert len(ema) == len(_float_values(best))
        for got, want in zip(_float_values(best), ema):
            np.testing.assert_array_equal(got, want)


def test_bench_train_step_reports_each_method_against_the_supervised_step():
    from cli.main import main

    args = ["bench", "train-step", "--model", "tiny", "--size", "32", "--steps", "1", "--repeats", "1",
            "--methods", "equireg,equireg-ema"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for line in ("supervised step (8):", "equireg step (2+6):", "equireg-ema step (2+6):",
                 "EMA teacher: equireg-ema/equireg"):
        assert line in result.stdout
    result = CliRunner().invoke(main, ["bench", "train-step", "--methods", "baseline"])
    assert result.exit_code != 0 and "train-step methods must be among" in result.output
