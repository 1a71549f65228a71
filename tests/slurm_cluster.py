"""A real single-node Slurm cluster for the tests: munged, slurmctld and slurmd (Debian's `munge` and
`slurm-wlm`) on localhost, with a minimal slurm.conf written here (no cgroups, no accounting), on
free ports, everything under one temporary folder. `start` returns the environment a client needs
(SLURM_CONF); `stop` cancels every job and stops what it started."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing() -> str | None:
    """Why no cluster can be started here (None: it can)."""
    absent = [name for name in (*DAEMONS, "sbatch", "squeue", "scancel", "sinfo") if not _which(name)]
    if absent:
        return f"{', '.join(absent)} not found (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "the test cluster runs its daemons as root"
    return None


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _free_ports(n: int) -> list:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _conf(root: Path, host: str, ports: list) -> str:
    cpus = os.cpu_count() or 1
    return f"""ClusterName=cfpairs-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
KillWait=5
InactiveLimit=0
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def start(root: Path) -> dict:
    """Start the cluster under `root`; returns the client environment. Raises RuntimeError (with the
    daemons' logs) when it does not come up."""
    root = Path(root)
    for sub in ("munge", "state", "spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(_conf(root, host, _free_ports(2)))
    env = dict(os.environ, SLURM_CONF=str(conf))
    munge = root / "munge"
    subprocess.run([_which("munged"), "--force", f"--socket={munge}/munge.sock", f"--key-file={key}",
                    f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
                    f"--seed-file={munge}/seed"], check=True, env=env, capture_output=True)
    for daemon in ("slurmctld", "slurmd"):
        subprocess.run([_which(daemon), "-f", str(conf)], check=True, env=env, capture_output=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout.strip()
        if state in ("idle", "mixed", "allocated"):
            return env
        time.sleep(0.5)
    logs = "\n".join((root / f"{d}.log").read_text()[-1500:] for d in ("slurmctld", "slurmd")
                     if (root / f"{d}.log").is_file())
    stop(root, env)
    raise RuntimeError(f"the test Slurm cluster did not come up (node state {state!r}):\n{logs}")


def stop(root: Path, env: dict) -> None:
    """Cancel every job, stop slurmd, slurmctld and munged (by their pid files)."""
    subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True)
    time.sleep(1)
    root = Path(root)
    for pid_file in (root / "slurmd.pid", root / "slurmctld.pid", root / "munge" / "munged.pid"):
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            continue
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.05)
