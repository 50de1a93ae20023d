"""Executors and claims: local workers give the sequential results, kills resume, no run trains twice, SLURM submits.

The trained grids are 4 tiny runs (tiny model, 4 steps, a 5-case store); the slow ones run
`kequireg experiment` in subprocesses, since TensorFlow fixes its thread counts at start.
"""

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from grid_helpers import ENV, RUNS, experiment_command, grid_store, histories, run_experiment_command  # noqa: F401

from kequireg.experiments import claims, executors
from kequireg.experiments.experiment_settings import ExperimentSettings, load_or_save_settings
from kequireg.experiments.plan import eval_csv, plan_grid, run_folder
from kequireg.experiments.status import describe_states, run_states
from kequireg.experiments.worker_env import cpu_count
from kequireg.training.config import TrainConfig

needs_submitit = pytest.mark.skipif(importlib.util.find_spec("submitit") is None,
                                    reason="submitit (pip install 'kequireg[cluster]') is not installed")
# each local worker's CPU share, which the sequential reference must match for equal floats
THREADS = max(1, cpu_count() // 2)


def _settings(**template):
    template = TrainConfig(**{"data": "store.h5", "model": "tiny", "steps_per_epoch": 2, "max_steps": 4, "patience": 1,
                              **template})
    return ExperimentSettings(template=template, fractions=(0.5, 1.0), label_seeds=(0,), repeats=1, split="test",
                              budget="steps").resolved(demo=False)


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# ---- claims ------------------------------------------------------------------------------------------


def test_claim_is_exclusive_and_released_only_by_its_owner(tmp_path):
    first, second = claims.Owner.current(label="a"), claims.Owner.current(label="b")
    assert claims.claim(tmp_path, first)
    assert not claims.claim(tmp_path, second)  # a live process on this host holds it
    claims.release(tmp_path, second)  # not the owner: nothing happens
    assert claims.read_claim(tmp_path).label == "a"
    claims.release(tmp_path, first)
    assert claims.read_claim(tmp_path) is None and claims.claim(tmp_path, second)
    assert [a["label"] for a in claims.attempts(tmp_path)] == ["a", "b"]


def test_stale_claim_of_a_dead_process_is_taken_over_by_one_worker_only(tmp_path):
    dead = dataclasses.replace(claims.Owner.current(label="dead"), pid=_dead_pid(), pid_start=None)
    assert claims.claim(tmp_path, dead)
    racers = [claims.Owner.current(label=f"r{i}") for i in range(3)]
    assert [claims.claim(tmp_path, r) for r in racers] == [True, False, False]
    assert claims.read_claim(tmp_path).label == "r0"
    assert len(claims.attempts(tmp_path)) == 2


def test_requeued_slurm_task_retakes_its_own_claim_and_others_wait_for_sacct(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    before = dataclasses.replace(claims.Owner.current(), host="node-a", pid=12)  # the task before its requeue
    assert claims.claim(tmp_path, before)
    requeued = dataclasses.replace(claims.Owner.current(), host="node-b")
    assert (requeued.job_kind, requeued.job_id) == ("slurm", "77_3")
    assert claims.claim(tmp_path, requeued)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "4")
    other = claims.Owner.current()
    assert not claims.claim(tmp_path, other, job_finished=lambda job: None)  # unknown: node-b may still run it
    assert not claims.claim(tmp_path, other, job_finished=lambda job: False)
    assert claims.claim(tmp_path, other, job_finished=lambda job: job == "77_3")  # sacct: 77_3 ended


def test_run_states_name_running_failed_queued_and_pending_runs_with_their_logs(tmp_path):
    settings = load_or_save_settings(tmp_path, _settings())
    done, running, failed, queued = plan_grid(settings)
    eval_csv(tmp_path, done, "test").parent.mkdir(parents=True)
    eval_csv(tmp_path, done, "test").write_text("case_id\n")
    claims.claim(run_folder(tmp_path, running), claims.Owner.current(label="worker 2", log="jobs/w2.out"))
    worker = claims.Owner.current(log="jobs/w1.out")
    claims.record_failure(run_folder(tmp_path, failed), worker, ValueError("batch does not divide"))
    states = run_states(tmp_path, settings, queued={queued.name: "77_3"}, job_finished=lambda job: False)
    assert [s.status for s in states] == ["done", "running", "failed", "queued"]
    text = "\n".join(describe_states(states))
    assert "4 runs: 1 done, 1 running, 1 failed, 1 queued" in text
    assert "worker 2 on" in text and "(log: jobs/w2.out)" in text
    assert "ValueError: batch does not divide (log: jobs/w1.out)" in text and "SLURM job 77_3" in text
    after = run_states(tmp_path, settings, queued={queued.name: "77_3"}, job_finished=lambda job: True)
    assert after[3].status == "pending"  # its job ended without finishing the run: submit it again


def test_missing_submitit_names_the_cluster_extra(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from cli.main import main

    monkeypatch.setitem(sys.modules, "submitit", None)
    with pytest.raises(ImportError, match=r"pip install 'kequireg\[cluster\]'"):
        executors.require_submitit()
    result = CliRunner().invoke(main, ["experiment", str(tmp_path / "exp"), "--executor", "local", "--no-progress"])
    assert result.exit_code == 1 and "pip install 'kequireg[cluster]'" in result.output, result.output
    assert not (tmp_path / "exp").exists()  # refused before any work


@needs_submitit
def test_slurm_submission_writes_one_job_array_with_our_sbatch_parameters(tmp_path, monkeypatch):
    """The real SlurmExecutor up to `sbatch`, which is replaced by an echo of its usual answer."""
    from submitit.slurm.slurm import SlurmExecutor

    from kequireg.experiments.tasks import RunTask

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # no srun on this machine
    monkeypatch.setattr(SlurmExecutor, "_make_submission_command",
                        lambda self, path: ["echo", "Submitted batch job 4242"])
    settings = load_or_save_settings(tmp_path, _settings())
    options = executors.ExecutorOptions(kind="slurm", slurm_partition="gpu", slurm_time="1:30:00", gpus_per_run=1,
                                        slurm_array_parallelism=2, slurm_options=(("account", "lab"), ("qos", "high")))
    lines = []
    jobs = executors.submit_slurm(tmp_path, settings, options, log=lines.append)
    assert [job.job_id for job in jobs] == [f"4242_{i}" for i in range(4)]
    sbatch = jobs[0].paths.submission_file.read_text()
    for flag in ("--partition=gpu", "--time=90", "--gpus-per-node=1", "--array=0-3%2", "--account=lab",
                 "--qos=high", "--job-name=kequireg-", "--signal=USR2@90", "--open-mode=append"):
        assert f"#SBATCH {flag}" in sbatch, (flag, sbatch)
    assert "submitit.core._submit" in sbatch
    # each task is the Checkpointable RunTask of one run; its checkpoint resubmits the same call
    submitted = [job.submission() for job in jobs]
    assert [s.args for s in submitted] == [(name,) for name in RUNS]
    assert isinstance(submitted[0].function, RunTask)
    again = submitted[0].function.checkpoint(*submitted[0].args)
    assert again.function is submitted[0].function and again.args == (RUNS[0],)
    assert json.loads((tmp_path / "jobs" / "submissions.json").read_text())[RUNS[2]] == "4242_2"
    # the next call finds them queued
    states = run_states(tmp_path, settings, executors.read_submissions(tmp_path), job_finished=lambda job: False)
    assert {s.status for s in states} == {"queued"}


# ---- trained grids -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sequential(grid_store, tmp_path_factory):
    """The grid by two sequential `kequireg experiment` commands at once on one folder, at a local
    worker's thread count: the reference of the local executor too. (folder, [(code, stdout, stderr)])."""
    folder = tmp_path_factory.mktemp("sequential") / "exp"
    command = experiment_command(folder, grid_store, "--threads-per-run", str(THREADS))
    processes = [subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in processes]
    return folder, [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


@pytest.mark.slow
def test_two_experiment_commands_on_one_folder_never_train_the_same_run(sequential):
    folder, outputs = sequential
    assert [code for code, _, _ in outputs] == [0, 0], [err[-2000:] for _, _, err in outputs]
    trained = [{n for n in RUNS if f"{n}: training" in err} for _, _, err in outputs]
    assert not trained[0] & trained[1] and trained[0] | trained[1] == set(RUNS)
    for name in RUNS:
        assert len(claims.attempts(folder / "runs" / name)) == 1
        assert claims.read_claim(folder / "runs" / name) is None
    assert any("Budget: steps" in out for _, out, _ in outputs)  # whichever finished last aggregated


@needs_submitit
@pytest.mark.slow
def test_local_executor_killed_midway_resumes_and_matches_sequential(sequential, grid_store, tmp_path):
    reference, outputs = sequential
    folder = tmp_path / "exp"
    process = subprocess.Popen(experiment_command(folder, grid_store, "--executor", "local", "--parallel", "2"),
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not any((folder / "runs" / n / "eval-test" / "per_patient.csv").is_file() for n in RUNS):
        assert process.poll() is None and time.time() < deadline, "the local grid ended before any run finished"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the command and both workers, mid-grid
    process.wait()
    finished = {n: (folder / "runs" / n / "trained.json").read_bytes() for n in RUNS
                if (folder / "runs" / n / "eval-test" / "per_patient.csv").is_file()}
    assert 0 < len(finished) < len(RUNS)

    result = run_experiment_command(folder, grid_store, "--executor", "local", "--parallel", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    for name, marker in finished.items():  # not trained again
        assert (folder / "runs" / name / "trained.json").read_bytes() == marker
        assert len(claims.attempts(folder / "runs" / name)) == 1
    assert histories(folder) == histories(reference)
    assert (folder / "summary.csv").read_bytes() == (reference / "summary.csv").read_bytes()
    assert result.stdout in [out for _, out, _ in outputs] and "Budget: steps" in result.stdout


@needs_submitit
@pytest.mark.slow
def test_slurm_task_trains_its_run_through_submitits_debug_cluster(grid_store, tmp_path):
    settings = load_or_save_settings(tmp_path, _settings(data=str(grid_store), jit_compile="off", val_slices=8))
    options = executors.ExecutorOptions(kind="slurm", cluster="debug", slurm_time="10")
    jobs = executors.submit_slurm(tmp_path, settings, options, progress=False, log=lambda line: None)
    assert len(jobs) == 4
    assert jobs[1].result() == "done"  # the task of the second run, run in this process
    states = run_states(tmp_path, settings, job_finished=lambda job: None)
    assert [s.status for s in states] == ["pending", "done", "pending", "pending"]
    assert len(claims.attempts(run_folder(tmp_path, plan_grid(settings)[1]))) == 1
