"""Benchmark 4: the whole DAG of a profile (``snakemake --cores N``) in a temporary copy of the
project (tracked and untracked-but-not-ignored files, minus ``results/``: no data, models or
results, so every job runs, data processing included), wall time."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import ROOT


def project_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    return [f for f in out if (ROOT / f).is_file() and not f.startswith("results/")]


def run(profile: str = "demo", cores: int = 2, keep: bool = False) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"vaeas-dag-{profile}-"))
    for rel in project_files():
        dst = tmp / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst)
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    cmd = [str(Path(bindir) / "snakemake"), "--cores", str(cores), "--config", f"profile={profile}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", log)
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed ({proc.returncode}); last lines:\n{log[-3000:]}")
    return {"wall_s": wall, "jobs": int(done[-1][1]) if done else None, "profile": profile,
            "cores": cores, "command": " ".join(["snakemake", "--cores", str(cores), "--config", f"profile={profile}"]),
            "directory": str(tmp) if keep else None}
