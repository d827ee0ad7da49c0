"""A throwaway one-node Slurm on 127.0.0.1, for tests of the Slurm executor.

Debian 12's Slurm 22.05 packages, unpacked into a private root by ``.ci/install-slurm.sh``
(``apt-get download`` + ``dpkg -x``; no systemd, nothing written to /etc or /usr), or the system's
own Slurm where it is installed. The daemons run in the foreground as children of the test, with
every file (slurm.conf, state, spool, logs, pid files) under one temporary directory:

* no munge (``AuthType=auth/none``, ``CredType=cred/none``), no accounting (``squeue`` is the
  status command; ``MinJobAge=3600`` keeps finished jobs visible to it and to ``scontrol``),
  no cgroups;
* free ports on 127.0.0.1 for slurmctld and slurmd;
* one node (this host's name, ``NodeAddr=127.0.0.1``) with ``cpus`` CPUs (default: this
  machine's; more are allowed, ``SlurmdParameters=config_overrides``), a declared
  ``RealMemory`` large enough for the profile's ``--mem`` requests (not enforced without
  cgroups) and fake GPUs (gres ``gpu`` without device files) so that ``--gpus=1`` jobs run;
* wrappers for the client commands (sbatch, squeue, srun, ...) in ``bin/`` that set
  ``SLURM_CONF`` and ``LD_LIBRARY_PATH``: put ``bin/`` first on PATH. The Slurm executor's job
  step strips every ``SLURM_*`` variable before it calls ``srun``, so the config must travel in
  the wrapper, not in the environment.

:meth:`SlurmCluster.stop` cancels what is left in the queue, ends slurmd and slurmctld by their
PIDs, then any process of this cluster still alive (slurmstepd, job steps: found by the
``SLURM_CONF`` of this run in their environment) by PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = REPO / ".ci" / "install-slurm.sh"
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo", "srun", "salloc", "sacct", "sacctmgr", "sshare")


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be installed or started here; the message says why (a skip reason)."""


def _complete(root: Path) -> bool:
    return all((root / p).is_file() for p in
               ("usr/sbin/slurmctld-wlm", "usr/sbin/slurmd-wlm", "usr/sbin/slurmstepd-wlm", "usr/bin/sbatch"))


def find_or_install_root(timeout: float = 600) -> Path:
    """The root holding Slurm's binaries: $VAEAS_SLURM_ROOT, the system, or the install script's."""
    env_root = os.environ.get("VAEAS_SLURM_ROOT")
    if env_root and _complete(Path(env_root)):
        return Path(env_root)
    if _complete(Path("/")):
        return Path("/")
    try:
        res = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SlurmUnavailable(f"{INSTALL_SCRIPT.name} could not run: {exc}") from None
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines or not _complete(Path(lines[-1])):
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise SlurmUnavailable(f"Slurm packages could not be installed by .ci/install-slurm.sh "
                               f"(exit {res.returncode}): {tail}")
    return Path(lines[-1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SlurmCluster:
    """One slurmctld + one slurmd on 127.0.0.1. Use as a context manager (stops on exit)."""

    def __init__(self, root: Path, workdir: Path, cpus: int | None = None, gpus: int = 2,
                 real_memory_mb: int = 64000):
        self.root = Path(root)
        self.dir = Path(workdir)
        self.cpus = cpus or os.cpu_count() or 1
        self.gpus = gpus
        self.real_memory_mb = real_memory_mb
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.dir / "etc" / "slurm.conf"
        self.bin = self.dir / "bin"
        self.log = self.dir / "log"
        # Debian's multiarch directory (usr/lib/x86_64-linux-gnu/slurm-wlm on amd64)
        found = sorted(self.root.glob("usr/lib/*/slurm-wlm/select_cons_tres.so"))
        if not found:
            raise SlurmUnavailable(f"no Slurm plugins (select_cons_tres.so) under {self.root}/usr/lib")
        self.plugin_dir = found[0].parent
        self.lib_path = os.pathsep.join(str(p) for p in (self.plugin_dir.parent, self.plugin_dir))
        self.procs: dict[str, subprocess.Popen] = {}

    # -- setup ---------------------------------------------------------------------------------

    def _daemon_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env["SLURM_CONF"] = str(self.conf)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [self.lib_path, os.environ.get("LD_LIBRARY_PATH")]))
        return env

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default os.environ) with this cluster's client wrappers first on PATH."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["SLURM_CONF"] = str(self.conf)
        return env

    def _write_config(self) -> None:
        for sub in ("etc", "state", "spool", "log", "run", "bin"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        d = self.dir
        self.conf.write_text("\n".join([
            "ClusterName=vaeastest",
            f"SlurmctldHost={self.host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/none",
            "CredType=cred/none",
            "MpiDefault=none",
            f"PluginDir={self.plugin_dir}",
            f"StateSaveLocation={d}/state",
            f"SlurmdSpoolDir={d}/spool",
            f"SlurmctldPidFile={d}/run/slurmctld.pid",
            f"SlurmdPidFile={d}/run/slurmd.pid",
            f"SlurmctldLogFile={d}/log/slurmctld.log",
            f"SlurmdLogFile={d}/log/slurmd.log",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SlurmdParameters=config_overrides",
            "ReturnToService=2",
            "MinJobAge=3600",
            "MaxJobCount=10000",
            "SchedulerParameters=sched_interval=2",
            "GresTypes=gpu",
            f"NodeName={self.host} NodeAddr=127.0.0.1 NodeHostname={self.host} CPUs={self.cpus} "
            f"RealMemory={self.real_memory_mb} Gres=gpu:{self.gpus} State=UNKNOWN",
            f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        (self.conf.parent / "gres.conf").write_text(f"NodeName={self.host} Name=gpu Count={self.gpus}\n")
        for name in CLIENTS:
            target = self.root / "usr/bin" / name
            wrapper = self.bin / name
            wrapper.write_text(
                "#!/bin/sh\n"
                f"SLURM_CONF='{self.conf}'; export SLURM_CONF\n"
                f"LD_LIBRARY_PATH='{self.lib_path}'${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}; export LD_LIBRARY_PATH\n"
                f"exec '{target}' \"$@\"\n")
            wrapper.chmod(0o755)

    def _start(self, name: str, argv: list[str]) -> None:
        out = open(self.log / f"{name}.stdout", "wb")
        self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self._daemon_env(), cwd=self.dir, start_new_session=True)
        out.close()

    def client(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        res = subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True,
                             timeout=timeout, env=self.env())
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: exit {res.returncode}: {res.stderr.strip()}")
        return res.stdout

    def start(self, timeout: float = 60) -> "SlurmCluster":
        if os.geteuid() != 0:
            raise SlurmUnavailable("slurmd must run as root to launch jobs (this test runs as uid "
                                   f"{os.geteuid()})")
        self._write_config()
        sbin = self.root / "usr/sbin"
        self._start("slurmctld", [str(sbin / "slurmctld-wlm"), "-D", "-i", "-f", str(self.conf)])
        self._start("slurmd", [str(sbin / "slurmd-wlm"), "-D", "-f", str(self.conf),
                               "-d", str(sbin / "slurmstepd-wlm"), "-N", self.host])
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise SlurmUnavailable(f"{name} exited with {proc.returncode} at start:\n{self.logs(name)}")
            res = subprocess.run([str(self.bin / "sinfo"), "-h", "-N", "-o", "%T %G"], capture_output=True,
                                 text=True, timeout=30, env=self.env())
            state = res.stdout.strip()
            if res.returncode == 0 and state.startswith("idle"):
                if f"gpu:{self.gpus}" in state:
                    return
                # Gres on the NodeName line does not always register at start-up.
                self.client("scontrol", "update", f"nodename={self.host}", f"gres=gpu:{self.gpus}", check=False)
            time.sleep(0.5)
        raise SlurmUnavailable(f"the Slurm node did not become idle in {timeout:.0f} s (sinfo: {state!r}):\n"
                               f"{self.logs('slurmctld')}\n{self.logs('slurmd')}")

    def logs(self, name: str, tail: int = 40) -> str:
        lines: list[str] = []
        for path in (self.log / f"{name}.log", self.log / f"{name}.stdout"):
            if path.is_file():
                lines += path.read_text(errors="replace").splitlines()[-tail:]
        return "\n".join(lines)

    # -- queries -------------------------------------------------------------------------------

    def jobs(self) -> dict[str, dict[str, str]]:
        """Every job slurmctld still knows (finished ones stay for MinJobAge = 3600 s): id -> fields."""
        out = self.client("scontrol", "show", "job", "--oneliner")
        jobs = {}
        for line in out.splitlines():
            fields = {}
            for token in line.split():
                key, sep, value = token.partition("=")
                if sep:
                    fields[key] = value
            if "JobId" in fields:
                jobs[fields["JobId"]] = fields
        return jobs

    # -- teardown ------------------------------------------------------------------------------

    def _leftover_pids(self) -> list[int]:
        """Processes of this cluster still alive: slurmstepd and job processes, found by the
        ``SLURM_CONF=<this cluster's slurm.conf>`` in their environment (a path unique to this run)."""
        marker = f"SLURM_CONF={self.conf}".encode()
        ours = {os.getpid(), *(p.pid for p in self.procs.values())}
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in ours:
                continue
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def stop(self) -> None:
        """Cancel leftover jobs, end slurmd and slurmctld by PID, then any process of this cluster
        still alive (slurmstepd, job steps) by PID. Idempotent."""
        alive = lambda name: name in self.procs and self.procs[name].poll() is None  # noqa: E731
        if alive("slurmctld"):
            try:
                ids = self.client("squeue", "-h", "-o", "%i", check=False).split()
                if ids:
                    self.client("scancel", *ids, check=False)
                    deadline = time.monotonic() + 20
                    while time.monotonic() < deadline and self.client("squeue", "-h", "-o", "%i", check=False).split():
                        time.sleep(0.5)
            except (OSError, subprocess.SubprocessError):
                pass
        for name in ("slurmd", "slurmctld"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for pid in self._leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


