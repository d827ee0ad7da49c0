"""The pipeline's DAG, decided in one place.

:func:`stages` lists every job of a profile — fetch → process → train → evaluate → Monte Carlo
→ tables → figures → claims → report — with its command (always a ``vaeas`` CLI call), inputs,
outputs and the params.yaml keys it reads. The Snakemake rules (``workflow/rules/*.smk``) use
the same path functions; ``dvc.yaml`` is generated from :func:`stages` by ``vaeas dvc-yaml``,
and a test checks that both DAGs produce the same set of outputs.

Run paths come from :mod:`vaeas.experiments` (its one pattern, :data:`~vaeas.experiments.RUN_DIR`),
data paths from :mod:`vaeas.data`; the reporting stages' drivers (``make_*``) live in
:mod:`vaeas.report.drivers` and read their inputs from the functions here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import experiments as exps
from .config import Config
from .data import catalog as data_paths
from .errors import VaeasError

TABLES = {1: "table1", 2: "table2", 3: "table3"}
FIGURES = ("fig2", "fig3", "fig4", "fig5", "table1", "table2", "table3")


# --------------------------------------------------------------------------------------------
# Paths (the contract reviewers rely on)

def results_dir(cfg: Config) -> str:
    return f"results/{cfg.profile}"


def processed_input(cfg: Config, dataset: str) -> str:
    """The processed file of ``dataset`` (:func:`vaeas.data.processed_path`), as a DAG path."""
    return str(data_paths.processed_path(dataset, cfg.data.root))


def raw_marker(cfg: Config, dataset: str) -> str:
    """The raw folder of ``dataset`` (:func:`vaeas.data.raw_dir`), the fetch stage's output."""
    return str(data_paths.raw_dir(dataset, cfg.data))


def table_paths(cfg: Config, table: int) -> tuple[str, str]:
    base = f"{results_dir(cfg)}/tables/table{table}"
    return f"{base}.csv", f"{base}.md"


def figure_path(cfg: Config, name: str) -> str:
    return f"{results_dir(cfg)}/figures/{name}.png"


def metrics_path(run: exps.Run, cfg: Config, seed: int) -> str:
    return run.path(cfg.profile, seed, exps.METRICS_FILE)


def mc_path(run: exps.Run, cfg: Config, seed: int) -> str:
    return run.path(cfg.profile, seed, exps.MC_FILE)


def log_path(run: exps.Run, cfg: Config, seed: int) -> str:
    return run.path(cfg.profile, seed, exps.LOG_FILE)


def datasets(cfg: Config) -> list[str]:
    return sorted({run.dataset for run in exps.runs(cfg)})


def tables(cfg: Config) -> list[int]:
    """Tables whose experiment has at least one run in this profile."""
    return [n for n, exp in TABLES.items() if exps.runs(cfg, exp)]


def figures(cfg: Config) -> list[str]:
    out = []
    if exps.runs(cfg, "fig2"):
        out += ["fig2", "fig3"]
    out += sorted(exps.reconstruction_runs(cfg))
    out += [f"table{n}" for n in tables(cfg)]
    return out


# --------------------------------------------------------------------------------------------
# The DAG

@dataclass
class Stage:
    name: str
    cmd: str
    deps: list[str]
    outs: list[str]
    params: list[str] = field(default_factory=list)


def _key_exists(raw: dict, dotted: str) -> bool:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _param_keys(raw: dict, profile: str, keys: list[str]) -> list[str]:
    """The keys (base and the profile's overrides) that exist in params.yaml: DVC tracks these."""
    candidates = []
    for key in keys:
        candidates += [key, f"profiles.{profile}.{key}"]
    return [k for k in candidates if _key_exists(raw, k)]


def stages(cfg: Config, raw: dict) -> list[Stage]:
    """Every job of the profile; ``raw`` is the parsed params.yaml (for DVC's param keys)."""
    p = f"--profile {cfg.profile}"
    out: list[Stage] = []
    for ds in datasets(cfg):
        if ds != "digits":
            out.append(Stage(f"fetch-{ds}", f"vaeas fetch {ds} {p}", [], [raw_marker(cfg, ds)],
                             _param_keys(raw, cfg.profile, ["data"])))
        deps = [] if ds == "digits" else [raw_marker(cfg, ds)]
        out.append(Stage(f"process-{ds}", f"vaeas process {ds} {p}", deps, [processed_input(cfg, ds)],
                         _param_keys(raw, cfg.profile, ["data"])))
    for run in exps.runs(cfg):
        run_keys = ["model", "labels", "training", f"experiments.{run.experiment}.dataset",
                    f"experiments.{run.experiment}.set", f"experiments.{run.experiment}.runs.{run.name}"]
        for seed in exps.seeds(cfg):
            tag = f"{run.experiment}-{run.name}-s{seed}"
            model = run.model_path(cfg.profile, seed)
            out.append(Stage(f"train-{tag}", f"vaeas train --run {run.id} --seed {seed} --out {model} --quiet {p}",
                             [processed_input(cfg, run.dataset)], [model, log_path(run, cfg, seed)],
                             _param_keys(raw, cfg.profile, run_keys)))
            metrics = metrics_path(run, cfg, seed)
            out.append(Stage(f"evaluate-{tag}", f"vaeas evaluate --model {model} --out {metrics} --quiet",
                             [model, processed_input(cfg, run.dataset)], [metrics],
                             _param_keys(raw, cfg.profile, ["evaluation"])))
            if run.monte_carlo:
                mc = mc_path(run, cfg, seed)
                out.append(Stage(f"mc-{tag}", f"vaeas mc-estimate --model {model} --out {mc} --quiet",
                                 [model, processed_input(cfg, run.dataset)], [mc],
                                 _param_keys(raw, cfg.profile, ["evaluation"])))
    for n in tables(cfg):
        out.append(Stage(f"table{n}", f"vaeas table {n} {p}", table_inputs(cfg, n),
                         list(table_paths(cfg, n))))
    for name in figures(cfg):
        out.append(Stage(f"figure-{name}", f"vaeas figure {name} {p}", figure_inputs(cfg, name),
                         [figure_path(cfg, name)]))
    out.append(Stage("claims", f"vaeas claims {p}", claims_inputs(cfg), [f"{results_dir(cfg)}/claims.md"]))
    out.append(Stage("report", f"vaeas report {p}", report_inputs(cfg), [f"{results_dir(cfg)}/REPORT.md"]))
    return out


def table_inputs(cfg: Config, table: int) -> list[str]:
    """The metrics.json of every run and seed of the table's experiment."""
    return sorted(metrics_path(run, cfg, s) for run in exps.runs(cfg, TABLES[table]) for s in exps.seeds(cfg))


def fig2_runs(cfg: Config) -> list[tuple[exps.Run, int]]:
    return [(run, seed) for run in exps.runs(cfg, "fig2") for seed in exps.seeds(cfg)]


def figure_inputs(cfg: Config, name: str) -> list[str]:
    if name == "fig2":
        return [f for run, s in fig2_runs(cfg) for f in (mc_path(run, cfg, s), metrics_path(run, cfg, s))]
    if name == "fig3":
        return [log_path(run, cfg, s) for run, s in fig2_runs(cfg)]
    if name in ("fig4", "fig5"):
        pair = exps.reconstruction_runs(cfg)[name]
        seed = exps.seeds(cfg)[0]
        return [r.model_path(cfg.profile, seed) for r in pair] + [processed_input(cfg, pair[0].dataset)]
    if name.startswith("table"):
        return [table_paths(cfg, int(name[-1]))[0]]
    raise VaeasError(f"unknown figure '{name}' (choose from: {', '.join(FIGURES)})")


def claims_inputs(cfg: Config) -> list[str]:
    files = [table_paths(cfg, n)[0] for n in tables(cfg)]
    if exps.runs(cfg, "fig2"):
        files += figure_inputs(cfg, "fig2") + figure_inputs(cfg, "fig3")
    return files


def report_inputs(cfg: Config) -> list[str]:
    files = [f for n in tables(cfg) for f in table_paths(cfg, n)]
    files += [figure_path(cfg, name) for name in figures(cfg)]
    files.append(f"{results_dir(cfg)}/claims.md")
    files += [metrics_path(run, cfg, s) for run in exps.runs(cfg) for s in exps.seeds(cfg)]
    files += [log_path(run, cfg, s) for run in exps.runs(cfg) for s in exps.seeds(cfg)]
    return files


def dvc_yaml(cfg: Config, raw: dict) -> str:
    """dvc.yaml text for the profile: one stage per job, each naming exactly the params it reads."""
    doc = {"stages": {}}
    for st in stages(cfg, raw):
        entry: dict[str, Any] = {"cmd": st.cmd}
        if st.deps:
            entry["deps"] = st.deps
        if st.params:
            entry["params"] = st.params
        # Reports are small and committed to git (results/<profile>/), so DVC must not cache them.
        entry["outs"] = [{o: {"cache": False}} if o.startswith("results/") else o for o in st.outs]
        doc["stages"][st.name] = entry
    header = (f"# GENERATED by `vaeas dvc-yaml --profile {cfg.profile}` from params.yaml; do not edit.\n"
              "# Regenerate after adding or removing runs or keys in params.yaml (a test checks it is current).\n")
    return header + yaml.safe_dump(doc, sort_keys=False, width=1000)


def load_raw(params_path: str) -> dict:
    return yaml.safe_load(Path(params_path).read_text()) or {}
