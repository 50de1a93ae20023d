"""``kequireg suggest``: the pool ranked least trusted first, overlays of the top --n, clean reruns.

The run and pool are the legacy folder's (tests/legacy/main-b6eadae: a tiny 32x32 run and its 5
raw cases, one of them unlabeled); every command runs from inside a copy of it, since the run's
config names ``store.h5`` relative to that folder. One suggest run (2 TTA views) is made per
module; tests that rerun it work on a copy of that result.
"""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from kequireg.evaluation.suggest import rank_rows
from kequireg.io import read_json

LEGACY = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae"
CASES = [f"BraTS19_SYN_000{k}_1" for k in range(1, 6)]
OUT = Path("next")


def invoke(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, ["suggest", *args, "--no-progress"])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def read_rows(folder: Path) -> list[dict]:
    with open(folder / "suggestions.csv", newline="") as f:
        return list(csv.DictReader(f))


def label_times(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((folder / "predictions").glob("*.nii.gz"))}


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """(legacy copy, CliRunner result) of ``suggest run raw --out next --n 2 --tta 2``."""
    root = tmp_path_factory.mktemp("suggest") / "legacy"
    shutil.copytree(LEGACY, root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = invoke("run", "raw", "--out", str(OUT), "--n", "2", "--tta", "2")
    return root, result


@pytest.fixture
def again(first, tmp_path, monkeypatch):
    """A writable copy of the first result, as the working directory."""
    root = tmp_path / "legacy"
    shutil.copytree(first[0], root)
    monkeypatch.chdir(root)
    return root


def test_every_case_is_ranked_least_trusted_first(first):
    root, result = first
    rows = read_rows(root / OUT)
    assert sorted(r["case_id"] for r in rows) == CASES
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4, 5]
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores)  # the primary score, equivariance Dice: higher = trust more = annotate later
    assert all(r["score"] == r["qc_equivariance_dice"] for r in rows)
    assert all(float(r["volume_wt_ml"]) >= float(r["volume_tc_ml"]) >= 0 for r in rows)
    assert {r["case_id"]: r["labeled"] for r in rows}["BraTS19_SYN_0005_1"] == "False"  # the one without _seg
    printed = [line.split()[1] for line in result.stdout.splitlines()[1:]]
    assert printed == [r["case_id"] for r in rows]
    settings = read_json(root / OUT / "suggest.json")
    assert settings["inference"]["tta"] == 2 and settings["score"] == "qc_equivariance_dice"


def test_overlays_are_drawn_for_the_top_n_only(first):
    root, _ = first
    rows = read_rows(root / OUT)
    overlays = sorted(p.name for p in (root / OUT / "overlays").iterdir())
    assert overlays == [f"1_{rows[0]['case_id']}.png", f"2_{rows[1]['case_id']}.png"]
    assert [r["overlay"] for r in rows] == [f"overlays/{name}" for name in overlays] + ["", "", ""]
    assert all((root / OUT / r["prediction"]).is_file() for r in rows)
    assert (root / OUT / "overlays" / overlays[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_with_another_score_keeps_the_predictions_and_redraws(first, again):
    before, times = read_rows(again / OUT), label_times(again / OUT)
    invoke("run", "raw", "--out", str(OUT), "--n", "1", "--tta", "2", "--score", "qc_uncertainty")
    rows = read_rows(again / OUT)
    assert label_times(again / OUT) == times  # nothing predicted again
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)  # entropy: higher = trust less = annotate first
    assert {r["case_id"]: r["qc_uncertainty"] for r in rows} == {r["case_id"]: r["qc_uncertainty"] for r in before}
    assert [p.name for p in (again / OUT / "overlays").iterdir()] == [f"1_{rows[0]['case_id']}.png"]


def test_an_interrupted_run_predicts_the_unscored_cases_again(first, again):
    qc = again / OUT / "predictions" / "qc.csv"
    lines = qc.read_text().splitlines(keepends=True)
    dropped = lines[1].split(",")[0]  # a label file written, the run killed before its qc row
    qc.write_text("".join([lines[0], *lines[2:]]))
    times = label_times(again / OUT)
    invoke("run", "raw", "--out", str(OUT), "--n", "0", "--tta", "2")
    after = label_times(again / OUT)
    assert [name for name in times if after[name] != times[name]] == [f"{dropped}.nii.gz"]
    assert sorted(r["case_id"] for r in read_rows(again / OUT)) == CASES
    assert not any((again / OUT / "overlays").iterdir())  # --n 0: none drawn, the earlier ones gone


def test_other_settings_need_overwrite(first, again):
    result = invoke("run", "raw", "--out", str(OUT), "--tta", "3", ok=False)
    assert result.exit_code != 0
    assert "suggest.json" in result.output and "--overwrite" in result.output and "'tta': 3" in result.output
    times = label_times(again / OUT)
    invoke("run", "raw", "--out", str(OUT), "--n", "1", "--tta", "3", "--overwrite")
    assert read_json(again / OUT / "suggest.json")["inference"]["tta"] == 3
    assert all(label_times(again / OUT)[name] != t for name, t in times.items())
    assert sorted(r["case_id"] for r in read_rows(again / OUT)) == CASES


def test_a_pool_without_cases_is_an_error_naming_it(first, again):
    (again / "empty").mkdir()
    result = invoke("run", "empty", "--out", "nothing", ok=False)
    assert result.exit_code != 0 and "no case folder found under 'empty'" in result.output
    assert not (again / "nothing").exists()


def test_uncertainty_needs_two_views():
    result = CliRunner().invoke(main, ["suggest", str(LEGACY / "run"), str(LEGACY / "raw"), "--tta", "1"])
    assert result.exit_code == 2 and "--tta 4" in result.output


def test_ranks_follow_each_scores_direction_and_unscored_cases_come_first():
    rows = [{"case_id": "b", "qc_uncertainty": 0.2, "qc_equivariance_dice": 0.9},
            {"case_id": "a", "qc_uncertainty": 0.2, "qc_equivariance_dice": 0.5},
            {"case_id": "c", "qc_uncertainty": 0.7, "qc_equivariance_dice": float("nan")},
            {"case_id": "d"}]
    assert [r["case_id"] for r in rank_rows(rows, "qc_uncertainty")] == ["d", "c", "a", "b"]  # tie a/b: case-id order
    ranked = rank_rows(rows, "qc_equivariance_dice")
    assert [r["case_id"] for r in ranked] == ["c", "d", "a", "b"]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4] and math.isnan(ranked[0]["score"]) and ranked[2]["score"] == 0.5
    with pytest.raises(ValueError, match="score must be one of"):
        rank_rows(rows, "dice")


def test_an_nnunet_pool_is_ranked_with_its_naming_and_label_values(first, again):
    import json

    from kequireg.data import nnunet
    from kequireg.data.discovery import find_cases
    from kequireg.evaluation.suggest_figure import internal_labels

    pool = again / "Dataset900_Pool"
    (pool / "imagesTs").mkdir(parents=True)
    channels = {"0": "T1", "1": "T1ce", "2": "T2", "3": "Flair"}
    for case in find_cases(again / "raw")[:2]:
        for index, name in channels.items():
            shutil.copyfile(case.modalities[name.lower()], pool / "imagesTs" / f"{case.case_id}_{int(index):04d}.nii.gz")
    labels = {"background": 0, "edema": 1, "non-enhancing tumor": 2, "enhancing tumour": 3}
    (pool / "dataset.json").write_text(json.dumps({"channel_names": channels, "labels": labels, "numTraining": 0,
                                                   "file_ending": ".nii.gz"}))
    invoke("run", str(pool), "--out", "nn", "--n", "1", "--tta", "2")
    rows = read_rows(again / "nn")
    assert sorted(r["case_id"] for r in rows) == CASES[:2]
    assert [r["prediction"] for r in rows] == [f"predictions/{r['case_id']}.nii.gz" for r in rows]
    assert [p.name for p in (again / "nn" / "overlays").iterdir()] == [f"1_{rows[0]['case_id']}.png"]
    layout = nnunet.read_dataset(pool)  # file 1 edema, 2 necrosis, 3 enhancing -> internal 2, 1, 3
    assert internal_labels([0, 1, 2, 3], layout).tolist() == [0, 2, 1, 3]
