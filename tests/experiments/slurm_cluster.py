"""A one-node SLURM on localhost for the tests: munged, slurmctld and slurmd, all in one temp folder.

Debian's ``slurm-wlm`` (22.05) and ``munge`` packages, run as root without systemd and without
touching ``/etc``: the configuration is written to ``FOLDER/slurm.conf`` and found through
``SLURM_CONF`` (daemons, ``sbatch``, ``squeue``, and the jobs, which inherit it); munged listens on
``FOLDER/munge.sock`` (``AuthInfo=socket=...``) with a fresh key; slurmctld and slurmd use free
ports on 127.0.0.1, so a real SLURM or another test cluster on the machine is not disturbed.
There is no accounting (no slurmdbd / MariaDB): ``sacct`` answers that accounting is disabled, and
kequireg's job states come from ``squeue``, which is what a cluster without accounting gives.

The daemons run in the foreground (``-D``, ``munged -F``) as children of this process, so their
PIDs are known; :meth:`LocalSlurm.stop` cancels every job, waits for them, and stops each daemon by
its PID (SIGTERM, then SIGKILL). ``KillWait`` is 2 s, so a requeued or cancelled job ends quickly
(submitit's jobs ignore SIGTERM). The node has ``cpus`` CPUs whatever the machine has
(``SlurmdParameters=config_overrides``), so several tiny tasks run at once on two cores.

Run as a script to try it: ``python tests/experiments/slurm_cluster.py`` starts the cluster, runs
``srun hostname`` and stops it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")


def unavailable() -> str | None:
    """Why a local SLURM cannot start here (None when it can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "a local SLURM needs root (munged, slurmd); CI's .ci/run installs and runs it as root"
    missing = [c for c in COMMANDS if shutil.which(c) is None and not Path("/usr/sbin", c).exists()]
    if missing:
        return (f"SLURM or munge is not installed (missing: {', '.join(missing)}); "
                "install them with: apt-get install -y slurm-wlm munge")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class LocalSlurm:
    """A one-node SLURM in ``folder``; :meth:`start` it, :meth:`stop` it.

    Args:
        folder: a new, empty folder (configuration, state, logs, munge socket).
        cpus: int. CPUs of the node. Defaults to 4.
        memory_mb: int. Memory of the node. Defaults to 4000.
    """

    def __init__(self, folder: str | os.PathLike, cpus: int = 4, memory_mb: int = 4000):
        self.folder = Path(folder)
        self.cpus, self.memory_mb = int(cpus), int(memory_mb)
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.folder / "slurm.conf"
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def log(self, daemon: str) -> Path:
        return self.folder / f"{daemon}.log"

    def run(self, *argv: str, check: bool = True, timeout: float = 30) -> str:
        """Run a SLURM command against this cluster; its stdout."""
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def _config(self) -> str:
        f = self.folder
        return f"""ClusterName=kequireg-test
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={f / 'munge.sock'}
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
StateSaveLocation={f / 'state'}
SlurmdSpoolDir={f / 'spool'}
SlurmctldPidFile={f / 'slurmctld.pid'}
SlurmdPidFile={f / 'slurmd.pid'}
SlurmctldLogFile={self.log('slurmctld')}
SlurmdLogFile={self.log('slurmd')}
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobRequeue=1
MailProg=/bin/true
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=2
Waittime=0
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
"""

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.folder / f"{name}.out", "w")
        self.processes[name] = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def _wait(self, what: str, ready, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while not ready():
            dead = [n for n, p in self.processes.items() if p.poll() is not None]
            if dead or time.time() > deadline:
                logs = "\n".join(f"--- {n}:\n{(self.folder / f'{n}.out').read_text()[-1500:]}" for n in self.processes)
                raise RuntimeError(f"local SLURM: {what} not ready after {timeout:.0f} s"
                                   f"{' (' + ', '.join(dead) + ' exited)' if dead else ''}\n{logs}")
            time.sleep(0.2)

    def start(self) -> LocalSlurm:
        """Write the configuration and start munged, slurmctld and slurmd; return once the node is idle."""
        f = self.folder
        for sub in ("state", "spool"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        f.chmod(0o755)  # munged wants its socket's folder searchable
        key = f / "munge.key"
        subprocess.run([_command("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True)
        key.chmod(0o400)
        self.conf.write_text(self._config())
        try:
            self._spawn("munged", [_command("munged"), "-F", "--force", f"--socket={f / 'munge.sock'}",
                                   f"--key-file={key}", f"--pid-file={f / 'munged.pid'}",
                                   f"--log-file={self.log('munged')}", f"--seed-file={f / 'munged.seed'}"])
            self._wait("munged", lambda: (f / "munge.sock").exists())
            self._spawn("slurmctld", [_command("slurmctld"), "-D", "-c", "-f", str(self.conf)])
            self._wait("slurmctld", lambda: self.run("scontrol", "ping", check=False).count("UP") > 0)
            self._spawn("slurmd", [_command("slurmd"), "-D", "-N", self.host, "-f", str(self.conf)])
            self._wait("slurmd", lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", check=False))
        except BaseException:
            self.stop()
            raise
        return self

    def jobs(self) -> list[str]:
        """Ids of the jobs the cluster still runs or holds."""
        return self.run("squeue", "-h", "-o", "%i", check=False).split()

    def stop(self) -> None:
        """Cancel every job, wait for them to end, and stop the daemons by PID (slurmd first)."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self.run("scancel", "--user=root", check=False)
            deadline = time.time() + 20
            while self.jobs() and time.time() < deadline:
                time.sleep(0.5)
        for name in reversed(DAEMONS):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


if __name__ == "__main__":
    import tempfile

    reason = unavailable()
    if reason:
        raise SystemExit(reason)
    start = time.time()
    cluster = LocalSlurm(tempfile.mkdtemp(prefix="kequireg-slurm-")).start()
    try:
        print(f"started in {time.time() - start:.1f} s; SLURM_CONF={cluster.conf}")
        print(cluster.run("sinfo"), cluster.run("srun", "-N1", "hostname"), end="")
    finally:
        cluster.stop()
        print(f"stopped; {time.time() - start:.1f} s in all")
