"""SLURM job states without a cluster: sacct's "CANCELLED by 0", jobs squeue no longer lists, tasks that
die before their run, the attempts' seconds, the granted CPUs, the recorded --no-figures, the store
read while another process holds an HDF5 lock. The same behaviours against a real SLURM:
test_slurm_real.py."""

import fcntl
import shutil
import time
from pathlib import Path

from kequireg.data.store import SliceStore
from kequireg.experiments import claims
from kequireg.experiments.experiment_settings import ExperimentSettings, load_or_save_settings
from kequireg.experiments.plan import plan_grid
from kequireg.experiments.status import describe_states, run_states, slurm_task_log
from kequireg.experiments.study import figures_choice
from kequireg.experiments.worker import ATTEMPT_SECONDS, attempt_clock
from kequireg.training.config import TrainConfig
from kequireg.training.run import describe_cpus
from kequireg.training.run_dir import RunDir, fault

LEGACY_STORE = Path(__file__).resolve().parents[1] / "legacy" / "main-b6eadae" / "store.h5"


def _fake_slurm(squeue=(0, ""), sacct=(1, "", "Slurm accounting storage is disabled")):
    calls = []

    def run(argv):
        calls.append(argv[0])
        code, out, *err = squeue if argv[0] == "squeue" else sacct
        return code, out, err[0] if err else ""
    return run, calls


def test_sacct_state_is_the_first_word_of_its_state_column():
    assert claims.parse_sacct("12_0|CANCELLED by 0\n12_1|PENDING\n12_1|COMPLETED\n") == {
        "12_0": "CANCELLED", "12_1": "COMPLETED"}  # a requeued job's last row wins
    run, _ = _fake_slurm(squeue=(0, ""), sacct=(0, "12_0|CANCELLED by 0\n"))
    assert claims.SlurmJobs(run).finished("12_0") is True


def test_jobs_squeue_lists_run_until_final_and_vanished_jobs_have_ended():
    run, calls = _fake_slurm(squeue=(0, "5_0|RUNNING\n5_1|PENDING\n5_2|CANCELLED\n6|COMPLETING\n"))
    jobs = claims.SlurmJobs(run)
    assert [jobs.finished(j) for j in ("5_0", "5_1", "5_2", "6")] == [False, False, True, False]
    assert calls == ["squeue"]  # one squeue for every job
    # no longer listed (a pending array task cancelled alone, or purged), no accounting: ended
    assert jobs.finished("5_3") is True and jobs.state("5_3") == "GONE"
    # the controller cannot be reached: nothing can be told
    run, _ = _fake_slurm(squeue=(1, "", "slurm_load_jobs error: Unable to contact slurm controller"))
    assert claims.SlurmJobs(run).finished("5_0") is None


def _settings(tmp_path):
    template = TrainConfig(data="store.h5", model="tiny", steps_per_epoch=2, max_steps=4, patience=1)
    settings = ExperimentSettings(template=template, methods=("baseline",), fractions=(0.5, 1.0), label_seeds=(0,),
                                  repeats=1, split="test", budget="steps").resolved(demo=False)
    return load_or_save_settings(tmp_path, settings)


def test_submitted_run_whose_task_ended_first_is_pending_with_the_tasks_error_log(tmp_path):
    settings = _settings(tmp_path)
    cancelled, died = plan_grid(settings)
    queued = {cancelled.name: "9_0", died.name: "9_1"}
    log = slurm_task_log(tmp_path, "9_1")
    log.parent.mkdir(parents=True)
    log.write_text("Traceback ...\nMemoryError\n")
    states = run_states(tmp_path, settings, queued, job_finished=lambda job: True)
    assert [s.status for s in states] == ["pending", "pending"]
    assert "SLURM job 9_0 ended without starting" in states[0].detail and states[0].log is None
    assert "SLURM job 9_1 failed before starting the run" in states[1].detail and states[1].log == str(log)
    assert log.name == "9_1_0_log.err" and f"(log: {log})" in "\n".join(describe_states(states))


def test_task_failing_before_its_claim_records_the_failure_with_its_log(tmp_path):
    from kequireg.experiments.tasks import _record_early_failure

    settings = _settings(tmp_path)
    spec = plan_grid(settings)[0]
    owner = claims.Owner.current(label="SLURM task", log="jobs/slurm/9_0_0_log.err")
    _record_early_failure(str(tmp_path), settings, spec.name, owner, FileNotFoundError("slice store 'x.h5' does not exist"))
    state = run_states(tmp_path, settings, {spec.name: "9_0"}, job_finished=lambda job: True)[0]
    assert state.status == "failed" and state.log == "jobs/slurm/9_0_0_log.err"
    assert state.detail == "FileNotFoundError: slice store 'x.h5' does not exist"


def test_figures_choice_of_the_submission_holds_for_status(tmp_path):
    assert figures_choice(tmp_path, None, status_only=True) is True  # nothing recorded (older folders)
    assert figures_choice(tmp_path, False, status_only=False) is False  # submitted with --no-figures
    assert figures_choice(tmp_path, None, status_only=True) is False
    assert figures_choice(tmp_path, True, status_only=True) is True  # asked for explicitly, not recorded
    assert figures_choice(tmp_path, None, status_only=True) is False


def test_attempt_seconds_count_every_attempt_even_a_killed_one(tmp_path):
    run = RunDir(tmp_path)
    with attempt_clock(run, period_s=0.05):
        time.sleep(0.3)
        killed = (tmp_path / ATTEMPT_SECONDS).read_text()  # as a kill here would leave it
    (tmp_path / ATTEMPT_SECONDS).write_text(killed)
    with attempt_clock(run, period_s=0.05) as seconds:
        time.sleep(0.1)
    first, second = seconds()
    assert 0.1 <= first <= 0.4 and second >= 0.1


def test_cpu_line_names_the_cpus_slurm_granted(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert describe_cpus().startswith("1 CPU(s) granted by SLURM") and describe_cpus().endswith(", 1 thread(s)")
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "3")
    assert describe_cpus().startswith("3 CPU(s) granted by SLURM")


def test_store_opens_while_another_process_holds_an_hdf5_lock(tmp_path):
    store = tmp_path / "store.h5"
    shutil.copy(LEGACY_STORE, store)
    shutil.copy(LEGACY_STORE.with_name("store.splits.json"), tmp_path / "store.splits.json")
    with open(store, "rb+") as held:  # as HDF5 would lock it for a writer (or fail to, on NFS)
        fcntl.flock(held, fcntl.LOCK_EX)
        with SliceStore(store) as opened:
            assert opened.n_slices > 0


def test_pause_point_sleeps_there(monkeypatch):
    monkeypatch.setenv("KEQUIREG_PAUSE_AT", "after-checkpoint@0")
    monkeypatch.setenv("KEQUIREG_PAUSE_S", "0.2")
    start = time.time()
    fault("after-checkpoint", 1)
    assert time.time() - start < 0.2
    fault("after-checkpoint", 0)
    assert time.time() - start >= 0.2
