"""Atomic claims on a grid's runs, and the record of a run that failed.

A worker (the sequential executor, a local worker process, a SLURM array task) trains a run only
after claiming it: it creates ``RUN_DIR/claim.json`` with ``os.open(O_CREAT | O_EXCL)``, so of
two workers racing for a run exactly one wins, on one host or on several sharing the file system.
The claim names its owner: host, pid (and the pid's start time, so a reused pid is not mistaken
for the owner), job id, log file, time. A claim may be taken over when it is **stale**:

- its host is this host and its process is gone;
- its job id is this process's job id: a requeued SLURM task (same ``<array job>_<task>``) or a
  restarted local job retakes its own claim;
- its job is a SLURM job that has ended, wherever it ran (``SlurmJobs``: ``squeue``, then
  ``sacct`` where accounting is on).

Take-overs are serialised by an ``flock`` on ``RUN_DIR/claim.lock`` and re-check the claim under
the lock, so two workers that both find a stale claim never both take it. Every claim taken
appends one line to ``RUN_DIR/claims.log``: the number of attempts of a run can be counted.

A run whose training or evaluation raised is recorded in ``RUN_DIR/failed.json`` (error, the
traceback's tail, the log file) and skipped until a caller asks for it again (``--retry-failed``).
Keras-free.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> me = Owner.current(label="example")
    >>> claim(folder, me), claim(folder, Owner.current())   # the second owner finds it taken
    (True, False)
    >>> release(folder, me); read_claim(folder) is None
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time
import traceback
import uuid
from pathlib import Path

from kequireg.io import atomic_write_json

CLAIM = "claim.json"
LOCK = "claim.lock"
CLAIMS_LOG = "claims.log"
FAILED = "failed.json"
# An unreadable claim (its writer died between creating and filling it) younger than this is
# taken to be still being written.
UNREADABLE_GRACE_S = 30.0
# sacct states after which a SLURM job no longer runs (a requeued job shows PENDING/REQUEUED again).
SLURM_FINISHED = ("BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
                  "PREEMPTED", "TIMEOUT")


def _pid_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux ``/proc``), None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the command name may hold spaces


def _job() -> tuple[str | None, str | None]:
    """(kind, id) of the job this process runs in: a SLURM (array) task, a submitit local job, or none."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return "slurm", f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return "slurm", env["SLURM_JOB_ID"]
    if env.get("SUBMITIT_LOCAL_JOB_ID"):
        return "local", env["SUBMITIT_LOCAL_JOB_ID"]
    return None, None


@dataclasses.dataclass(frozen=True)
class Owner:
    """Who holds (or wants) a claim.

    Args:
        host, pid: the owning process.
        token: str. Unique per owner object; a claim is released only by its token.
        since: float. Time the claim was taken (``time.time()``).
        pid_start: str or None. The process's start time (``/proc``), so a reused pid is not the owner.
        job_kind, job_id: ``"slurm"`` / ``"local"`` and the job's id, or None outside a job.
        label: str. A name for people ("worker 1"). log: str or None. The owner's log file.
    """

    host: str
    pid: int
    token: str = ""
    since: float = 0.0
    pid_start: str | None = None
    job_kind: str | None = None
    job_id: str | None = None
    label: str | None = None
    log: str | None = None

    @classmethod
    def current(cls, label: str | None = None, log: str | os.PathLike | None = None) -> Owner:
        """This process, in its job (if any)."""
        kind, job_id = _job()
        return cls(host=socket.gethostname(), pid=os.getpid(), pid_start=_pid_start(os.getpid()), job_kind=kind,
                   job_id=job_id, label=label, log=None if log is None else str(log), token=uuid.uuid4().hex,
                   since=time.time())

    def describe(self) -> str:
        """``"worker 1 on host, pid 123, job local:456, since 07:01:02"``."""
        where = f"on {self.host}, pid {self.pid}" + (f", job {self.job_kind}:{self.job_id}" if self.job_id else "")
        when = time.strftime("%H:%M:%S", time.localtime(self.since))
        return f"{self.label + ' ' if self.label else ''}{where}, since {when}"


def parse_squeue(text: str) -> dict[str, str]:
    """{job id: state} from ``squeue -h -r --states=all -o %i|%T`` (one line per array task).

    Example:
        >>> parse_squeue("12_0|RUNNING\\n12_1|PENDING\\n13|COMPLETED\\n")
        {'12_0': 'RUNNING', '12_1': 'PENDING', '13': 'COMPLETED'}
    """
    rows = (line.split("|") for line in text.splitlines() if "|" in line)
    return {job.strip(): state.strip() for job, state, *_ in rows}


def parse_sacct(text: str) -> dict[str, str]:
    """{job id: state} from ``sacct -X -n -P -o JobID,State``; ``CANCELLED by 0`` is ``CANCELLED``.

    sacct adds who cancelled a job to its state, so the state is the first word of the State
    column (not of the line). A requeued job has one row per attempt: the last row wins.

    Example:
        >>> parse_sacct("12_0|CANCELLED by 0\\n12_1|COMPLETED\\n")
        {'12_0': 'CANCELLED', '12_1': 'COMPLETED'}
    """
    rows = (line.split("|") for line in text.splitlines() if "|" in line)
    return {job.strip(): state.split()[0] for job, state, *_ in rows if state.split()}


class SlurmJobs:
    """Whether SLURM jobs have ended, asked once per object (one ``squeue`` for all jobs).

    A job is **running** (not ended) while ``squeue`` lists it in a state other than a final one
    (``SLURM_FINISHED``); a requeued job is PENDING again. A job ``squeue`` no longer lists
    (purged after ``MinJobAge``, or a pending array task cancelled alone, which leaves no record
    at all) has ended: ``sacct`` names its final state where accounting is on, and where it is
    off (``sacct``: accounting storage is disabled) or has no row, the job is ended all the same,
    since the controller no longer holds it. When ``squeue`` cannot reach the controller (or is
    not installed) nothing can be told: None.

    Args:
        run: callable(argv) -> (returncode, stdout, stderr). Defaults to running the command.
    """

    def __init__(self, run=None):
        self._run = run or _run_command
        self._queue: dict[str, str] | None = None
        self._queue_ok = False

    def state(self, job_id: str) -> str | None:
        """The job's state (``RUNNING``, ``PENDING``, ``CANCELLED``, ...), ``"GONE"`` when SLURM no
        longer knows it, None when SLURM cannot be asked."""
        if self._queue is None:
            code, out, _ = self._run(["squeue", "-h", "-r", "--states=all", "-o", "%i|%T"])
            self._queue_ok = code == 0
            self._queue = parse_squeue(out) if self._queue_ok else {}
        job_id = str(job_id)
        if job_id in self._queue:
            return self._queue[job_id]
        code, out, _ = self._run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "JobID,State"])
        accounted = parse_sacct(out) if code == 0 else {}
        if job_id in accounted:
            return accounted[job_id]
        return "GONE" if self._queue_ok else None

    def finished(self, job_id: str) -> bool | None:
        """Whether the job has ended; None when that cannot be told (see the class docstring)."""
        state = self.state(job_id)
        return None if state is None else state == "GONE" or state.startswith(SLURM_FINISHED)


def _run_command(argv: list[str]) -> tuple[int, str, str]:
    if shutil.which(argv[0]) is None:
        return 127, "", f"{argv[0]}: not installed"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return 1, "", str(err)
    return done.returncode, done.stdout, done.stderr


def slurm_job_finished(job_id: str) -> bool | None:
    """Whether SLURM reports ``job_id`` ended (``SlurmJobs.finished``); None when that cannot be told."""
    return SlurmJobs().finished(job_id)


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    return start is None or _pid_start(pid) in (None, start)


def is_stale(holder: Owner, me: Owner, job_finished=slurm_job_finished) -> bool:
    """Whether ``me`` may take over ``holder``'s claim (see the module docstring).

    Args:
        holder: the claim's owner. me: the would-be owner.
        job_finished: callable(job_id) -> bool | None telling whether a SLURM job ended.
    """
    if holder.job_id and (holder.job_kind, holder.job_id) == (me.job_kind, me.job_id):
        return True
    if holder.host == me.host and not _alive(holder.pid, holder.pid_start):
        return True
    return holder.job_kind == "slurm" and bool(holder.job_id) and job_finished(holder.job_id) is True


def read_claim(run_path: str | os.PathLike) -> Owner | None:
    """The owner of the run's claim; None when unclaimed."""
    path = Path(run_path) / CLAIM
    try:
        values = json.loads(path.read_text())
        return Owner(**{f.name: values.get(f.name, f.default) for f in dataclasses.fields(Owner)})
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, OSError):  # being written, or its writer died right after creating it
        with contextlib.suppress(FileNotFoundError):
            if time.time() - path.stat().st_mtime < UNREADABLE_GRACE_S:
                return Owner(host="?", pid=-1, label="(claim being written)", since=path.stat().st_mtime)
        return Owner(host="?", pid=-1, label="(unreadable claim)", token="unreadable")


def _create(run_path: Path, owner: Owner) -> bool:
    try:
        fd = os.open(run_path / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(dataclasses.asdict(owner), f)
        f.flush()
        os.fsync(f.fileno())
    with open(run_path / CLAIMS_LOG, "a") as f:
        f.write(json.dumps(dataclasses.asdict(owner)) + "\n")
    return True


@contextlib.contextmanager
def _locked(run_path: Path):
    with open(run_path / LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def claim(run_path: str | os.PathLike, owner: Owner, job_finished=slurm_job_finished) -> bool:
    """Claim a run for ``owner``; True when ``owner`` now holds it.

    Args:
        run_path: the run's folder (created).
        owner: Owner. Its ``since`` is set to now in the claim.
        job_finished: see :func:`is_stale`.
    """
    run_path = Path(run_path)
    run_path.mkdir(parents=True, exist_ok=True)
    owner = dataclasses.replace(owner, since=time.time())
    if _create(run_path, owner):
        return True
    with _locked(run_path):
        holder = read_claim(run_path)
        if holder is not None and holder.token == owner.token:
            return True
        if holder is not None and holder.token != "unreadable" and not is_stale(holder, owner, job_finished):
            return False
        with contextlib.suppress(FileNotFoundError):
            os.remove(run_path / CLAIM)
        return _create(run_path, owner)


def release(run_path: str | os.PathLike, owner: Owner) -> None:
    """Delete the run's claim if ``owner`` holds it."""
    holder = read_claim(run_path)
    if holder is not None and holder.token == owner.token:
        with contextlib.suppress(FileNotFoundError):
            os.remove(Path(run_path) / CLAIM)


def attempts(run_path: str | os.PathLike) -> list[dict]:
    """Every claim ever taken on the run (``claims.log``), oldest first."""
    path = Path(run_path) / CLAIMS_LOG
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def record_failure(run_path: str | os.PathLike, owner: Owner, error: BaseException) -> Path:
    """Write ``failed.json``: the error, its traceback's tail, the owner and its log file."""
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return atomic_write_json(Path(run_path) / FAILED, {
        "error": f"{type(error).__name__}: {error}", "traceback": "".join(lines)[-4000:], "log": owner.log,
        "host": owner.host, "pid": owner.pid, "job": owner.job_id, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    })


def read_failure(run_path: str | os.PathLike) -> dict | None:
    """The run's failure record, or None."""
    path = Path(run_path) / FAILED
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def clear_failure(run_path: str | os.PathLike) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(Path(run_path) / FAILED)
