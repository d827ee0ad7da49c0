"""bench/gpu.sh --dry: the prepared GPU check runs end to end on the CPU (tiny shapes, no
compiling), and its projection is the arithmetic its docstring states, recomputed here from the
JSON it wrote (steps x measured step x seeds per run; the concurrent time divided by the measured
factor). It checks the script; its numbers are no projection of anything (the file says so)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_dry_gpu_check_writes_its_measurements_and_a_consistent_projection(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh"), "--dry", "--steps", "2", "--out", str(tmp_path)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads((tmp_path / "gpu_check.json").read_text())
    assert out["dry"] is True and out["device"] == "cpu (dry run)"
    assert [(r["objective"], r["classes"]) for r in out["steps"]] == [("vaeas", 1000), ("vae", 0)]
    assert all(r["eager_s"] > 0 and "graphed_s" not in r for r in out["steps"])          # dry: no compiling
    conc = out["concurrency"]
    assert math.isclose(conc["factor"], 3 * conc["alone_s_per_step"] / conc["together_s_per_step"], rel_tol=1e-12)
    proj, step_of = out["projection"], {(r["objective"], r["classes"]): r["best_s"] for r in out["steps"]}
    assert proj["seeds"] == 3 and len(proj["runs"]) > 30
    for run in proj["runs"]:
        expected = run["steps"] * step_of[tuple(run["shape"])] * proj["seeds"]
        assert math.isclose(run["seconds_all_seeds"], expected, rel_tol=1e-12), run
    assert math.isclose(proj["train_serial_s"], sum(r["seconds_all_seeds"] for r in proj["runs"]), rel_tol=1e-12)
    assert math.isclose(proj["train_concurrent_s"], proj["train_serial_s"] / max(conc["factor"], 1.0), rel_tol=1e-12)
    assert (tmp_path / "gpu_check.md").read_text().startswith("# GPU check (DRY: CPU, tiny, not a projection of anything)")
