"""Benchmark 5: what each job of a profile pays before it computes anything.

Every Snakemake or DVC job is one ``vaeas`` process. Its start-up is the Python interpreter plus
the imports its command needs: torch for train / evaluate / Monte Carlo and Figures 4–5 (which
load models), pandas for tables and claims, matplotlib and seaborn for the other figures. This
times each of those imports in a fresh process (best of ``repeats``), counts the profile's jobs
of each kind from its stage plan (:func:`vaeas.pipeline.stages`), and sums the start-up
core-seconds of the whole DAG — to set beside the DAG's wall time (benchmark 4) in the same run.
"""

from __future__ import annotations

import subprocess
import sys
import time

#: What a job of each kind imports before it computes (the modules its CLI command imports).
IMPORTS = {
    "interpreter + vaeas.cli": "import vaeas.cli",
    "torch (train, evaluate, mc, fig4-5)": "import vaeas.cli, vaeas.training, vaeas.evaluation",
    "pandas (resolve, process, table, claims, report)": "import vaeas.cli, vaeas.report.drivers",
    "seaborn (fig2-3, table figures)": "import vaeas.cli, vaeas.report.drivers, vaeas.report.figures, seaborn",
}


def _best_of(code: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def _kind(stage: str) -> str:
    name = stage.split("@")[0]
    if name in ("train", "evaluate", "mc", "figure-fig4", "figure-fig5"):
        return "torch (train, evaluate, mc, fig4-5)"
    if name.startswith("figure-"):
        return "seaborn (fig2-3, table figures)"
    return "pandas (resolve, process, table, claims, report)"


def run(profile: str = "ci", repeats: int = 3) -> dict:
    from vaeas import pipeline
    from vaeas.experiments import load_config

    seconds = {kind: _best_of(code, repeats) for kind, code in IMPORTS.items()}
    jobs: dict[str, int] = {}
    for stage in pipeline.stages(load_config("params.yaml", profile=profile)):
        jobs[_kind(stage.name)] = jobs.get(_kind(stage.name), 0) + 1
    total = sum(n * seconds[kind] for kind, n in jobs.items())
    return {"profile": profile, "import_s": seconds, "jobs": jobs, "startup_core_s": total,
            "torch_share": jobs.get("torch (train, evaluate, mc, fig4-5)", 0)
            * seconds["torch (train, evaluate, mc, fig4-5)"] / total}
