"""The grid on Slurm: the `ci` profile through Snakemake's Slurm executor, on a real one-node Slurm.

A Slurm 22.05 (Debian packages; see tests/slurm_cluster.py and .ci/install-slurm.sh) is started
on 127.0.0.1. Two copies of the project build the `ci` profile: one locally (`--cores 2`), one
with ``--workflow-profile workflow/profiles/slurm``, the command of docs/slurm.md. The test
checks that every job of the DAG (all but the target rule `all`) was an sbatch job that
slurmctld ran to completion with the profile's runtime, memory and CPUs, that training and
estimation jobs asked for a GPU (``--gpus=1``; the node's GPUs are fake, so they train on the
CPU), and that both copies wrote the same files and numbers (CPU training is deterministic),
wall-clock fields aside. The daemons are stopped by PID afterwards, also when the test fails.
Skips, with the reason, where Slurm cannot be installed or slurmd cannot run (not root).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from slurm_cluster import SlurmCluster, SlurmUnavailable, find_or_install_root

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GPU_RULES = {"train", "evaluate", "mc_estimate"}
TIME_FIELDS = {"seconds", "train_seconds", "eval_seconds"}  # wall-clock fields: the only values allowed to differ
PROFILE = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def slurm():
    if os.geteuid() != 0:
        pytest.skip(f"slurmd must run as root to launch jobs (uid {os.geteuid()})")
    try:
        root = find_or_install_root()
    except SlurmUnavailable as exc:
        pytest.skip(str(exc))
    # A short path: slurmd puts unix sockets in its spool directory (108-byte limit).
    workdir = Path(tempfile.mkdtemp(prefix="vaeas-slurm-", dir="/tmp" if os.path.isdir("/tmp") else None))
    # Twice as many CPUs (and fake GPUs) as the machine has: each job is mostly Snakemake's own
    # start-up, twice (sbatch script, then srun step), so a little oversubscription hides the waits.
    slots = 2 * (os.cpu_count() or 1)
    cluster = SlurmCluster(root, workdir, cpus=slots, gpus=slots)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def copy_project(dest: Path) -> Path:
    dest.mkdir()
    for name in ("Snakefile", "params.yaml"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "workflow", dest / "workflow")
    lock = REPO / "data" / "checksums.lock.json"
    if lock.is_file():
        (dest / "data").mkdir()
        shutil.copy(lock, dest / "data" / lock.name)
    return dest


def snakemake(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    res = subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout)
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"snakemake {' '.join(args)} failed ({res.returncode}):\n{out[-6000:]}"
    return out


def planned_jobs(log: str) -> dict[str, str]:
    """Snakemake job id -> rule, for every job announced in a Snakemake log."""
    return {m.group(2): m.group(1)
            for m in re.finditer(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)$", log, flags=re.M)}


def without(row: dict, fields: set[str]) -> dict:
    return {k: v for k, v in row.items() if k not in fields}


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return [without(row, TIME_FIELDS) for row in csv.DictReader(fh)]


def assert_same_outputs(local: Path, remote: Path) -> int:
    """Every file of runs/ and results/ equal in both copies (wall-clock fields aside)."""
    files = sorted(p.relative_to(local) for d in ("runs", "results") for p in (local / d).rglob("*") if p.is_file())
    assert files, "the local run wrote nothing"
    for rel in files:
        a, b = local / rel, remote / rel
        assert b.is_file(), f"{rel}: written by the local run, missing from the Slurm run"
        if rel.name == "REPORT.md":
            continue  # wall time per stage: its numbers come from the files compared here
        if rel.suffix == ".json":
            assert without(json.loads(b.read_text()), TIME_FIELDS) == without(json.loads(a.read_text()), TIME_FIELDS), rel
        elif rel.suffix == ".csv":
            assert read_csv(b) == read_csv(a), rel
        elif rel.suffix == ".pt" or rel.name.endswith(".pt.kept"):   # .kept: a hard link of model.pt
            import torch

            sa, sb = (torch.load(p, map_location="cpu", weights_only=False) for p in (a, b))
            assert _tensors_equal(sa, sb), rel
        else:
            assert b.read_bytes() == a.read_bytes(), rel
    return len(files)


def _tensors_equal(x, y) -> bool:
    import torch

    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.shape == y.shape and bool(torch.equal(x, y))
    if isinstance(x, dict):
        # "sha256" is the integrity digest of the whole payload, timing fields included: it differs
        # whenever "seconds" do, and everything it covers is compared here field by field.
        keys = set(x) - TIME_FIELDS - {"sha256"}
        return isinstance(y, dict) and keys == set(y) - TIME_FIELDS - {"sha256"} and all(_tensors_equal(x[k], y[k]) for k in keys)
    if isinstance(x, (list, tuple)):
        return isinstance(y, (list, tuple)) and len(x) == len(y) and all(map(_tensors_equal, x, y))
    return x == y or (x != x and y != y)  # NaN == NaN here


def test_ci_profile_runs_every_job_on_slurm_with_the_local_numbers(slurm, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    # Jobs call `vaeas` (and the job step calls srun) from PATH; sbatch --export=ALL passes it on.
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    local = copy_project(tmp_path / "local")
    remote = copy_project(tmp_path / "slurm")

    snakemake(["--cores", "2", "--config", "profile=ci"], local, env)

    log = snakemake(["--workflow-profile", "workflow/profiles/slurm", "--config", "profile=ci",
                     # no accounting on this test cluster: poll with squeue (MinJobAge=3600), soon
                     "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"],
                    remote, slurm.env(env))

    # Every job but the target rule was submitted with sbatch ...
    jobs = planned_jobs(log)
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log))
    # all and preflight (vaeas.preflight: makes onstart run) are local rules, run by Snakemake itself
    expected = {jid for jid, rule in jobs.items() if rule not in ("all", "preflight")}
    assert len(expected) >= 40, f"unexpected DAG: {sorted(set(jobs.values()))}"
    assert set(submitted) == expected, f"not submitted to Slurm: {sorted(expected - set(submitted))}"
    assert "localrule all:" in log

    # ... and slurmctld ran each to completion, as the rule it was submitted for.
    known = slurm.jobs()
    for jid, slurm_id in submitted.items():
        rule = jobs[jid]
        info = known.get(slurm_id)
        assert info is not None, f"Slurm does not know job {slurm_id} (rule {rule})"
        assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", (rule, info)
        assert info.get("Comment", "").startswith(f"rule_{rule}"), (rule, info.get("Comment"))
        assert info["BatchHost"] == slurm.host
        gres = info.get("TresPerJob", "")
        assert (gres == "gres:gpu:1") == (rule in GPU_RULES), f"{rule}: TresPerJob={gres!r}"
        # the profile's per-rule runtime, memory and CPUs reached sbatch
        want = PROFILE["set-resources"][rule]
        minutes = eval(str(want["runtime"]), {"attempt": 1})  # e.g. "240 * attempt"
        assert info["TimeLimit"] == f"{minutes // 60:02d}:{minutes % 60:02d}:00", (rule, info["TimeLimit"])
        assert info["MinMemoryNode"] == f"{want['mem_mb']}M", (rule, info["MinMemoryNode"])
        assert info["CPUs/Task"] == "1", (rule, info["CPUs/Task"])
    ctld = (slurm.log / "slurmctld.log").read_text()
    done = set(re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS 0", ctld))
    assert set(submitted.values()) <= done, "slurmctld log lacks a successful completion"

    compared = assert_same_outputs(local, remote)
    evaluated = sum(rule == "evaluate" for rule in jobs.values())
    assert sum(1 for _ in (remote / "runs").rglob("metrics.json")) == evaluated and compared > 3 * evaluated
