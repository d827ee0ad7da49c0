"""The pipeline's DAG, decided in one place.

:func:`stages` lists every job of a profile — fetch → process → train → evaluate → Monte Carlo
→ tables → figures → scaling → claims → report — with its command (always a ``vaeas`` CLI call), inputs,
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

from . import contract, objectives
from . import experiments as exps
from .staleness import CODE
from .config import Config
from .data import catalog as data_paths
from .errors import VaeasError
from .dvc_views import curve_plots, results_in_git

TABLES = {1: "table1", 2: "table2", 3: "table3"}
#: Table B (beyond the paper): one per data set, each an experiment of its own.
BASELINES = ("baselines_mnist", "baselines_omniglot")
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


def seeds_path(cfg: Config, experiment: str) -> str:
    """The per-seed results of an experiment (vaeas.report.seeds), what its table is computed from."""
    return f"{results_dir(cfg)}/seeds/{experiment}.csv"


def experiments_with_runs(cfg: Config) -> list[str]:
    return [e for e in exps.EXPERIMENTS if exps.runs(cfg, e)]


def table_paths(cfg: Config, table: int) -> tuple[str, str, str]:
    """CSV (the full frame), Markdown (captioned) and JSON (the means, DVC's metrics) of a table."""
    base = f"{results_dir(cfg)}/tables/table{table}"
    return f"{base}.csv", f"{base}.md", f"{base}.json"


def baselines(cfg: Config) -> list[str]:
    """Table B's experiments with runs in this profile."""
    return [e for e in BASELINES if exps.runs(cfg, e)]


def baselines_paths(cfg: Config, experiment: str) -> tuple[str, str, str, str, str]:
    """Table B of one data set: CSV (per run), Markdown, JSON (DVC's metrics), the paired CSV, the figure."""
    base = f"{results_dir(cfg)}/tables/{experiment}"
    return f"{base}.csv", f"{base}.md", f"{base}.json", f"{base}_paired.csv", figure_path(cfg, experiment)


def scaling_paths(cfg: Config) -> tuple[str, str, str, str, str, str]:
    """The N-scaling study: CSV (per method and N), Markdown, JSON (DVC's metrics), the paired CSV
    (per N), the pooled CSV (over N) and the figure; empty without ``scaling`` runs."""
    if not exps.runs(cfg, "scaling"):
        return ()
    base = f"{results_dir(cfg)}/tables/scaling"
    return (*(f"{base}{end}" for end in (".csv", ".md", ".json", "_paired.csv", "_pooled.csv")), figure_path(cfg, "scaling"))


def has_claims(cfg: Config) -> bool:
    """Whether the profile runs anything the claims judge (a table's or Table B's experiment, or
    Figure 2's); a profile of the scaling study alone has none, so no claims.md / verdict.md."""
    return bool(tables(cfg) or baselines(cfg) or exps.runs(cfg, "fig2"))


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
    params: list = field(default_factory=list)        # keys of params.yaml, or {file: [keys]}
    metrics: list[str] = field(default_factory=list)  # outputs DVC reads as metrics (also in outs)
    plots: list[str] = field(default_factory=list)    # outputs DVC reads as plots (also in outs)
    persist: bool = False                             # DVC keeps the outputs while the stage runs


def code_digest(kind: str, root: str | Path = ".") -> str:
    """sha256 of the package files a kind of stage runs (:data:`vaeas.staleness.CODE`; Snakemake's
    rerun trigger for code)."""
    import hashlib

    digest = hashlib.sha256()
    for entry in CODE[kind]:
        base = Path(root) / entry
        files = sorted(base.rglob("*")) if base.is_dir() else [base]
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts:
                digest.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def run_config(cfg: Config, run: exps.Run, seed: int) -> str:
    return run.path(cfg.profile, seed, contract.CONFIG_FILE)


def profile_config_path(cfg: Config) -> str:
    """The profile's resolved config as a whole (what process and the guard read)."""
    return f"runs/{cfg.profile}/{contract.CONFIG_FILE}"


def stages(cfg: Config, raw: dict | None = None) -> list[Stage]:
    """Every job of the profile. The first, ``resolve``, checks that dvc.yaml still describes
    the profile (else stops, naming what to run) and writes every run's config.json; the other
    stages depend on the groups of it their outputs depend on."""
    p = f"--profile {cfg.profile}"
    whole = profile_config_path(cfg)
    trained = exps.distinct(exps.runs(cfg))
    configs = [run_config(cfg, run, s) for run in trained for s in exps.seeds(cfg)]
    out: list[Stage] = [Stage("resolve", "vaeas resolve --dvc-yaml dvc.yaml", ["params.yaml", *CODE["resolve"]],
                              [whole, *configs], persist=True)]
    for ds in datasets(cfg):
        if ds not in data_paths.EMBEDDED:
            out.append(Stage(f"fetch-{ds}", f"vaeas fetch {ds} {p}", CODE["process"], [raw_marker(cfg, ds)],
                             [{whole: ["data"]}]))
        deps = ([] if ds in data_paths.EMBEDDED else [raw_marker(cfg, ds)]) + CODE["process"]
        out.append(Stage(f"process-{ds}", f"vaeas process {ds} {p}", deps, [processed_input(cfg, ds)],
                         [{whole: ["data"]}]))
    for run in trained:
        for seed in exps.seeds(cfg):
            tag = f"{run.experiment}-{run.name}-s{seed}"
            conf, data = run_config(cfg, run, seed), processed_input(cfg, run.dataset)
            model, log = run.model_path(cfg.profile, seed), log_path(run, cfg, seed)
            out.append(Stage(f"train@{tag}", f"vaeas train --config {conf} --progress lines", [data, *CODE["train"]],
                             [model, log], [{conf: list(contract.TRAIN_KEYS)}], plots=[log]))
            metrics = metrics_path(run, cfg, seed)
            out.append(Stage(f"evaluate@{tag}", f"vaeas evaluate --config {conf} --model {model} --out {metrics} --quiet",
                             [model, data, *CODE["evaluate"]], [metrics], [{conf: list(contract.EVALUATE_KEYS)}],
                             metrics=[metrics]))
            if run.monte_carlo:
                mc = mc_path(run, cfg, seed)
                out.append(Stage(f"mc@{tag}", f"vaeas mc-estimate --config {conf} --model {model} --out {mc} --quiet",
                                 [model, data, *CODE["evaluate"]], [mc], [{conf: list(contract.EVALUATE_KEYS)}]))
    for experiment in experiments_with_runs(cfg):
        out.append(Stage(f"seeds-{experiment}", f"vaeas seeds {experiment} {p}", seeds_inputs(cfg, experiment) + CODE["report"],
                         [seeds_path(cfg, experiment)]))
    for n in tables(cfg):
        out.append(Stage(f"table{n}", f"vaeas table {n} {p}", table_inputs(cfg, n) + CODE["report"],
                         list(table_paths(cfg, n)), metrics=[table_paths(cfg, n)[2]]))
    for experiment in baselines(cfg):
        paths = baselines_paths(cfg, experiment)
        out.append(Stage(f"tableB-{experiment}", f"vaeas baselines {experiment} {p}",
                         [seeds_path(cfg, experiment), *CODE["report"]], list(paths), metrics=[paths[2]]))
    for name in figures(cfg):
        out.append(Stage(f"figure-{name}", f"vaeas figure {name} {p}", figure_inputs(cfg, name) + CODE["report"],
                         [figure_path(cfg, name)]))
    if paths := scaling_paths(cfg):
        out.append(Stage("scaling", f"vaeas scaling {p}", [seeds_path(cfg, "scaling"), *CODE["report"]], list(paths), metrics=[paths[2]]))
    if has_claims(cfg):
        out.append(Stage("claims", f"vaeas claims {p}", claims_inputs(cfg) + CODE["report"], claims_paths(cfg)))
    out.append(Stage("report", f"vaeas report {p}", report_inputs(cfg) + CODE["report"], [f"{results_dir(cfg)}/REPORT.md"]))
    return out


def seeds_inputs(cfg: Config, experiment: str) -> list[str]:
    """The metrics.json, then the model.log.csv, of every run and seed of ``experiment``, in
    grid order (what ``vaeas seeds`` reads; a run sharing another's model reads that one's)."""
    pairs = [(run, s) for run in exps.runs(cfg, experiment) for s in exps.seeds(cfg)]
    return [metrics_path(run, cfg, s) for run, s in pairs] + [log_path(run, cfg, s) for run, s in pairs]


def table_inputs(cfg: Config, table: int) -> list[str]:
    """The per-seed results of the table's experiment."""
    return [seeds_path(cfg, TABLES[table])]


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


def claims_paths(cfg: Config) -> list[str]:
    """What ``vaeas claims`` writes: claims.md (every claim and the consistency checks) and
    verdict.md (the table that opens REPORT.md)."""
    return [f"{results_dir(cfg)}/claims.md", f"{results_dir(cfg)}/verdict.md"]


def claims_inputs(cfg: Config) -> list[str]:
    """The per-seed results of the tables' and Table B's experiments (every claim is judged per
    seed), and Figures 2-3's files."""
    files = [seeds_path(cfg, TABLES[n]) for n in tables(cfg)] + [seeds_path(cfg, e) for e in baselines(cfg)]
    if exps.runs(cfg, "fig2"):
        files += figure_inputs(cfg, "fig2") + figure_inputs(cfg, "fig3")
    return files


def report_inputs(cfg: Config) -> list[str]:
    files = [f for n in tables(cfg) for f in table_paths(cfg, n)]
    files += [seeds_path(cfg, e) for e in experiments_with_runs(cfg)]
    files += [f for e in baselines(cfg) for f in baselines_paths(cfg, e)]
    files += [figure_path(cfg, name) for name in figures(cfg)]
    files += list(scaling_paths(cfg))
    if has_claims(cfg):
        files += claims_paths(cfg)
    if Path(run_notes_path(cfg)).is_file():
        files.append(run_notes_path(cfg))
    return files


def run_notes_path(cfg: Config) -> str:
    """A hand-written account of how the grid was run (commands, stretches of the machine, wall time,
    load: what no file of the run records), embedded in REPORT.md when it exists."""
    return f"{results_dir(cfg)}/RUN.md"


def _outs(st: Stage, in_git: bool = True) -> dict:
    """outs / metrics / plots of a stage as dvc.yaml writes them. ``in_git``: whether git keeps
    the profile's results/ (:func:`results_in_git`): then DVC does not cache them; else it does,
    so that `dvc metrics diff` reads a commit's table rows from dvc.lock and the cache (with
    neither git nor the cache holding them, every row's HEAD read "-", issue 21)."""
    def entry(o: str):
        options = {}
        if o.startswith("results/") and in_git:
            options["cache"] = False        # results/ is small and committed to git
        # The run configurations are cached like the models: runs/ is not in git, and without a
        # cached copy `dvc pull` could not restore them on another machine (`dvc status` would
        # then report every stage changed) nor `dvc exp show` read them at a commit.
        if st.persist:
            options["persist"] = True
        return {o: options} if options else o
    out = {"outs": [entry(o) for o in st.outs if o not in st.metrics and o not in st.plots]}
    if st.metrics:
        out["metrics"] = [entry(o) for o in st.metrics]
    if st.plots:
        out["plots"] = [{o: {"x": "epoch", "y": "loss"}} for o in st.plots]
    return {k: v for k, v in out.items() if v}


def _plain(st: Stage, in_git: bool = True) -> dict:
    entry: dict[str, Any] = {"cmd": st.cmd}
    if st.deps:
        entry["deps"] = st.deps
    if st.params:
        entry["params"] = st.params
    entry.update(_outs(st, in_git))
    return entry


def _template(kind: str, cfg: Config) -> dict:
    """The ``do`` of a per-run ``foreach``: ``${item.dir}`` is the run's directory and
    ``${item.data}`` its processed data file."""
    d = "${item.dir}"
    conf, model = f"{d}/{contract.CONFIG_FILE}", f"{d}/{exps.MODEL_FILE}"
    if kind == "train":
        # model.log.csv is drawn by the top-level `plots:` (several columns per run; dvc_yaml)
        return {"cmd": f"vaeas train --config {conf} --progress lines", "deps": ["${item.data}", *CODE["train"]],
                "params": [{conf: list(contract.TRAIN_KEYS)}], "outs": [model, f"{d}/{exps.LOG_FILE}"]}
    out_file = exps.METRICS_FILE if kind == "evaluate" else exps.MC_FILE
    command = "evaluate" if kind == "evaluate" else "mc-estimate"
    body = {"cmd": f"vaeas {command} --config {conf} --model {model} --out {d}/{out_file} --quiet",
            "deps": [model, "${item.data}", *CODE["evaluate"]], "params": [{conf: list(contract.EVALUATE_KEYS)}]}
    body["metrics" if kind == "evaluate" else "outs"] = [f"{d}/{out_file}"]
    return body


def dvc_yaml(cfg: Config, raw: dict | None = None, root: str | Path = ".") -> str:
    """dvc.yaml text for the profile: ``resolve`` (the guard; writes every run's config.json),
    the data stages, one ``foreach`` per kind of per-run stage over the profile's runs, then the
    reporting stages. Every stage depends on the package code it runs."""
    doc: dict[str, Any] = {"stages": {}}
    in_git = results_in_git(cfg.profile, root)
    per_run: dict[str, dict] = {"train": {}, "evaluate": {}, "mc": {}}
    runs_of: dict[str, exps.Run] = {}
    for st in stages(cfg):
        kind, _, tag = st.name.partition("@")
        if kind in per_run:
            directory = st.outs[0].rsplit("/", 1)[0]
            run = exps.resolve(cfg, ".".join(directory.split("/")[2:4]))
            per_run[kind][tag] = {"dir": directory, "data": processed_input(cfg, run.dataset)}
            runs_of[tag] = run
            if not any(k in doc["stages"] for k in per_run):
                doc["stages"].update(dict.fromkeys(per_run))     # keep the DAG's order in the file
            continue
        doc["stages"][st.name] = _plain(st, in_git)
    for kind, items in per_run.items():
        if items:
            doc["stages"][kind] = {"foreach": items, "do": _template(kind, cfg)}
        else:
            doc["stages"].pop(kind, None)
    doc["plots"] = curve_plots(cfg, [(runs_of[tag], f"{item['dir']}/{exps.LOG_FILE}") for tag, item in per_run["train"].items()])
    # The profile's resolved configuration as a params file of its own: `dvc exp show` then shows the
    # values in force (runs/<profile>/config.json:training.epochs) beside params.yaml's base values,
    # which DVC always shows and, where the names coincide, labels params.yaml:training.epochs.
    doc["params"] = [profile_config_path(cfg)]
    header = (f"# GENERATED by `vaeas dvc-yaml` for profile '{cfg.profile}' of params.yaml; do not edit.\n"
              "# Its first stage, resolve, stops `dvc repro` with one line when params.yaml selects another profile or\n"
              "# other runs or seeds (regenerate: `vaeas dvc-yaml`), and writes each run's config.json, on whose\n"
              "# content every later stage depends (docs/decisions.md, D25). The top-level params: the profile's\n"
              "# resolved configuration, shown by `dvc exp show` beside params.yaml's base values (README, DVC).\n")
    return header + yaml.dump(_flow(doc), Dumper=_Dumper, sort_keys=False, width=1000)


class _Dumper(yaml.SafeDumper):
    """Short lists and mappings of scalars on one line; long ones (deps of a table) one per line."""


class _FlowList(list):
    pass


class _FlowDict(dict):
    pass


_Dumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_Dumper.add_representer(_FlowDict, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))


def _flow(node):
    if isinstance(node, (_FlowDict, _FlowList)):     # already laid out on one line
        return node
    if isinstance(node, dict):
        items = {k: _flow(v) for k, v in node.items()}
        return _FlowDict(items) if node and all(not isinstance(v, (list, dict)) for v in node.values()) else items
    if isinstance(node, list):
        items = [_flow(v) for v in node]
        return _FlowList(items) if len(node) <= 6 and all(isinstance(v, str) for v in node) else items
    return node


def load_raw(params_path: str) -> dict:
    return yaml.safe_load(Path(params_path).read_text()) or {}
