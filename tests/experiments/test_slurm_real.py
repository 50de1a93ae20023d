"""`kequireg experiment --executor slurm` against a real SLURM (``slurm_cluster.LocalSlurm``, no accounting).

Four tiny grids (the 32x32 legacy store, tiny model, 2 epochs of 2 steps) are submitted at once
as job arrays on a one-node cluster of 4 CPUs, one CPU per task:

- ``grid``: baseline and EquiReg, 2 tasks: they train at the same time reading one store, finish,
  and the next command aggregates them (without figures: submitted with ``--no-figures``);
- ``requeued``: the same EquiReg run, paused after its first checkpoint (``KEQUIREG_PAUSE_AT``):
  ``--status`` shows it running with its task's error log; ``scontrol requeue`` kills it, and the
  requeued task resumes from the checkpoint and ends with the uninterrupted run's history;
- ``cancelled``: held back (``--begin``), then ``scancel``-ed while pending: seen ended (no sacct
  here, squeue no longer lists it) and submitted again by the next command;
- ``no_store``: its store is deleted before the task starts: the task records ``failed.json``
  and ``--status`` reports the FileNotFoundError with the log that holds the traceback.
"""

import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from kequireg.experiments import claims
from kequireg.experiments.executors import read_submissions

pytest.importorskip("submitit", reason="submitit (pip install 'kequireg[cluster]') is not installed")
pytestmark = pytest.mark.slow  # about 3 minutes on 2 cores (docs/benchmarks.md)

LEGACY = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae"
GRID = ["--fractions", "0.5", "--label-seeds", "0", "--repeats", "1", "--model", "tiny", "--steps-per-epoch", "2",
        "--max-steps", "4", "--patience", "0", "--budget", "steps", "--no-figures", "--no-progress",
        "--executor", "slurm", "--slurm-time", "10", "--gpus-per-run", "0"]
EQUIREG = "equireg-f0.5-l0-r0"
LATER = ("--slurm-option", "begin=now+1hour")  # held back until the test releases or cancels it
TIMEOUT_S = 300


def _copy_store(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("store.h5", "store.splits.json"):
        shutil.copy(LEGACY / name, folder / name)
    return folder / "store.h5"


def _kequireg(cluster, *args, env=None):
    result = CliRunner().invoke(main, list(map(str, args)), env={**cluster_env(cluster), **(env or {})})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def cluster_env(cluster):
    return {"SLURM_CONF": str(cluster.conf), "KEQUIREG_JIT_COMPILE": "off", "KERAS_BACKEND": "tensorflow"}


def _job(folder: Path, run: str) -> str:
    return read_submissions(folder)[run]


def _wait(what: str, ready, timeout: float = TIMEOUT_S, logs=()):
    deadline = time.time() + timeout
    while not ready():
        if time.time() > deadline:
            tails = "\n".join(f"--- {p}:\n{Path(p).read_text()[-3000:]}" for p in logs if Path(p).is_file())
            pytest.fail(f"{what}: not after {timeout} s\n{tails}")
        time.sleep(0.5)


def _logs(folder: Path) -> list[Path]:
    return sorted((folder / "jobs" / "slurm").glob("*_log.*"))


@pytest.fixture(scope="module")
def grids(slurm_cluster, tmp_path_factory):
    """The four grids, submitted: ({name: experiment folder}, the store)."""
    root = tmp_path_factory.mktemp("slurm-grids")
    store = _copy_store(root / "store")
    gone = _copy_store(root / "gone")
    folders = {name: root / name for name in ("grid", "requeued", "cancelled", "no_store")}
    submissions = [
        ("grid", store, ["--methods", "baseline,equireg"], {}),
        ("requeued", store, ["--methods", "equireg"], {"KEQUIREG_PAUSE_AT": "after-checkpoint@0"}),
        ("cancelled", store, ["--methods", "baseline", *LATER], {}),
        ("no_store", gone, ["--methods", "baseline", *LATER], {}),
    ]
    for name, data, extra, env in submissions:
        result = _kequireg(slurm_cluster, "experiment", folders[name], "--data", data, *GRID, *extra, env=env)
        assert result.exit_code == 0 and "submitted" in result.output, result.output
    shutil.rmtree(gone.parent)  # the store moves away before the task starts
    slurm_cluster.run("scontrol", "update", f"JobId={_job(folders['no_store'], 'baseline-f0.5-l0-r0')}",
                      "StartTime=now")
    yield folders, store
    slurm_cluster.run("scancel", "--user=root", check=False)  # a task a failed test left paused or held


def _paused(folder: Path) -> bool:
    run = folder / "runs" / EQUIREG
    return (run / "checkpoint.npz").is_file() and claims.read_claim(run) is not None and len(claims.attempts(run)) == 1


def test_status_while_a_task_runs_names_its_task_and_the_log_with_its_errors(grids, slurm_cluster):
    folders, _ = grids
    folder = folders["requeued"]
    _wait("the paused task's first checkpoint", lambda: _paused(folder), logs=_logs(folder))
    result = _kequireg(slurm_cluster, "experiment", folder, "--status")
    assert result.exit_code == 0, result.output
    job = _job(folder, EQUIREG)
    assert "1 runs: 1 running" in result.output and "SLURM task on" in result.output, result.output
    assert f"job slurm:{job}" in result.output, result.output
    log = Path(result.output.split("(log: ")[1].split(")")[0])
    assert log.name == f"{job}_0_log.err" and log.is_file(), result.output
    text = log.read_text()
    assert "CPU(s) granted by SLURM" in text and "1 thread(s)" in text, text[-2000:]  # one CPU per task


def test_requeued_task_resumes_from_its_checkpoint_with_an_uninterrupted_runs_history(grids, slurm_cluster):
    folders, _ = grids
    folder, reference = folders["requeued"], folders["grid"]
    _wait("the paused task's first checkpoint", lambda: _paused(folder), logs=_logs(folder))
    job = _job(folder, EQUIREG)
    slurm_cluster.run("scontrol", "requeue", job)
    state = lambda: slurm_cluster.run("squeue", "-h", "-j", job, "-o", "%T", check=False).strip()  # noqa: E731
    _wait("the requeued task pending again", lambda: state() == "PENDING", timeout=60)
    slurm_cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now")  # SLURM holds requeued jobs 2 min
    run, uninterrupted = folder / "runs" / EQUIREG, reference / "runs" / EQUIREG
    _wait("the requeued run evaluated", lambda: (run / "eval-test" / "per_patient.csv").is_file(), logs=_logs(folder))
    _wait("the uninterrupted run evaluated", lambda: (uninterrupted / "eval-test" / "per_patient.csv").is_file(),
          logs=_logs(reference))
    assert [a["job_id"] for a in claims.attempts(run)] == [job, job]  # the requeued task retook its own claim
    assert "resumed from epoch 1" in Path(claims.attempts(run)[1]["log"]).read_text()
    assert (run / "history.csv").read_bytes() == (uninterrupted / "history.csv").read_bytes()
    trained = json.loads((run / "trained.json").read_text())
    assert trained["attempts"] == 2 and trained["seconds"] >= 2.0, trained  # both attempts counted


def test_two_run_grid_trains_at_once_on_one_store_and_aggregates(grids, slurm_cluster):
    folders, _ = grids
    folder = folders["grid"]
    names = ["baseline-f0.5-l0-r0", EQUIREG]
    _wait("both runs evaluated", lambda: all((folder / "runs" / n / "eval-test" / "per_patient.csv").is_file()
                                             for n in names), logs=_logs(folder))
    result = _kequireg(slurm_cluster, "experiment", folder, "--status")
    assert result.exit_code == 0 and "Budget: steps" in result.output, result.output
    assert (folder / "summary.csv").is_file() and not (folder / "figures").exists()  # submitted with --no-figures
    # the two tasks trained at the same time, each reading the store
    spans = []
    for name in names:
        run = folder / "runs" / name
        spans.append((claims.attempts(run)[0]["since"], (run / "trained.json").stat().st_mtime))
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans


def test_cancelled_pending_task_is_seen_ended_and_submitted_again(grids, slurm_cluster):
    folders, store = grids
    folder = folders["cancelled"]
    before = _kequireg(slurm_cluster, "experiment", folder, "--status")
    assert "1 queued" in before.output, before.output
    job = _job(folder, "baseline-f0.5-l0-r0")
    slurm_cluster.run("scancel", job)
    after = _kequireg(slurm_cluster, "experiment", folder, "--status")
    assert "1 pending" in after.output and f"SLURM job {job} ended without starting" in after.output, after.output
    again = _kequireg(slurm_cluster, "experiment", folder, "--data", store, *GRID, "--methods",
                      "baseline", *LATER)
    assert "submitted 1 run(s)" in again.output, again.output
    assert _job(folder, "baseline-f0.5-l0-r0") != job
    slurm_cluster.run("scancel", _job(folder, "baseline-f0.5-l0-r0"))


def test_task_that_fails_before_claiming_its_run_is_reported_failed_with_its_log(grids, slurm_cluster):
    folders, _ = grids
    folder = folders["no_store"]
    run = folder / "runs" / "baseline-f0.5-l0-r0"
    _wait("the task's failure record", lambda: claims.read_failure(run) is not None, logs=_logs(folder))
    _copy_store(Path(json.loads((folder / "experiment.json").read_text())["template"]["data"]).parent)  # fixed
    result = _kequireg(slurm_cluster, "experiment", folder, "--status")
    assert result.exit_code == 1 and "1 failed" in result.output, result.output
    assert "FileNotFoundError" in result.output and "_log.err)" in result.output, result.output
    log = Path(claims.read_failure(run)["log"])
    assert log.name.endswith("_0_log.err") and "FileNotFoundError" in log.read_text()
