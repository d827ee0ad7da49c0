"""What ``vaeas table|figure|claims|report`` run: gather the files of a profile's runs (paths
from :mod:`vaeas.pipeline`, the same that dvc.yaml and the Snakemake rules name) and hand them
to the tables, figures, claims and report of this package."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .. import experiments as exps
from ..config import Config
from ..errors import VaeasError
from ..pipeline import (
    TABLES,
    baselines,
    baselines_paths,
    fig2_runs,
    figure_inputs,
    figure_path,
    figures,
    log_path,
    mc_path,
    metrics_path,
    experiments_with_runs,
    report_inputs,
    results_dir,
    seeds_inputs,
    seeds_path,
    table_paths,
    tables,
)
from ..data.catalog import TRAIN_SIZES
from .claims import check_claims, write_claims
from .figures import combine_mc, figure_kl_decomposition, figure_mc_vs_softmax, figure_reconstructions, figure_table
from .provenance import Section, collect_stage_times, provenance, read_metrics, write_report
from .scope import Scale, scope_banner
from .seeds import read_seed_rows, seed_rows, write_seed_rows
from .tables import build_table, write_table



def banner(cfg: Config) -> str:
    """The scope banner of the profile: per experiment, the data set its runs use, N, the
    epochs of its runs (their own overrides applied) and the seeds."""
    scales = []
    for experiment in exps.EXPERIMENTS:
        runs = exps.runs(cfg, experiment)
        if runs:
            configs = [exps.config_for(cfg, r) for r in runs]
            epochs = tuple(sorted({c.training.epochs for c in configs}))
            full = TRAIN_SIZES[runs[0].dataset]
            n = min(configs[0].data.train_size or full, full)      # data.train_size: a seeded subset
            scales.append(Scale(experiment, runs[0].dataset, n, epochs, len(exps.seeds(cfg))))
    return scope_banner(cfg.profile, scales)


def make_seeds(cfg: Config, experiment: str) -> None:
    """``vaeas seeds EXPERIMENT``: the experiment's per-seed results file (vaeas.report.seeds)."""
    if experiment not in exps.EXPERIMENTS or not exps.runs(cfg, experiment):
        known = ", ".join(experiments_with_runs(cfg)) or "none"
        raise VaeasError(f"no runs of experiment '{experiment}' in profile '{cfg.profile}' (experiments with runs: {known})")
    inputs = seeds_inputs(cfg, experiment)
    _require(inputs)
    half = len(inputs) // 2
    write_seed_rows(seed_rows(cfg, experiment, inputs[:half], inputs[half:]), seeds_path(cfg, experiment))


def _metrics_rows(cfg: Config, experiment: str) -> list[dict]:
    """The per-seed rows of an experiment's runs (results/<profile>/seeds/<experiment>.csv), each
    named by its run of the grid (``run``)."""
    path = seeds_path(cfg, experiment)
    _require([path])
    return read_seed_rows(path)


def _require(paths: list[str]) -> None:
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise VaeasError(f"missing input {missing[0]} ({len(missing)} missing); run the pipeline (snakemake or dvc repro) first")


def make_baselines(cfg: Config, experiment: str) -> None:
    """``vaeas baselines EXPERIMENT``: Table B of one data set (vaeas.report.baselines)."""
    from .baselines import build_baselines, figure_baselines, paired_comparisons, write_baselines

    if experiment not in baselines(cfg):
        known = ", ".join(baselines(cfg)) or "none"
        raise VaeasError(f"no runs of experiment '{experiment}' in profile '{cfg.profile}' (Table B experiments with runs: {known})")
    rows = _metrics_rows(cfg, experiment)
    csv, md, js, paired, png = baselines_paths(cfg, experiment)
    dataset = exps.runs(cfg, experiment)[0].dataset
    title = f"Table B ({dataset}, beyond the paper): VAE-AS(α = 1, β) beside the baselines its objective reduces to"
    write_baselines(build_baselines(rows), paired_comparisons(rows), title, csv, md, js, paired)
    figure_baselines(rows, png, f"Table B ({dataset}): active units and test NLL against β, VAE-AS(α = 1) vs β-VAE")


def make_table(cfg: Config, table: int) -> None:
    if table not in TABLES:
        raise VaeasError(f"unknown table {table} (choose from: 1, 2, 3)")
    df = build_table(table, _metrics_rows(cfg, TABLES[table]))
    write_table(df, *table_paths(cfg, table))


def _table_frame(cfg: Config, table: int):
    path = table_paths(cfg, table)[0]
    _require([path])
    return pd.read_csv(path)


def _fig2_frames(cfg: Config):
    pairs = fig2_runs(cfg)
    mc_files = [mc_path(r, cfg, s) for r, s in pairs]
    metric_files = [metrics_path(r, cfg, s) for r, s in pairs]
    _require(mc_files + metric_files)
    return [pd.read_csv(f) for f in mc_files], read_metrics(metric_files)


def _fig3_logs(cfg: Config):
    """Figure 3's training logs, one ``run`` per model, with ``md_gap``: log N − log V when the run
    shares V < N labels and eq. 10 subtracts log N (``labels.md_constant: n``, D5), else 0 — the
    part of the KL that MI, capped at log V, cannot see, so that MI + MD + md_gap is the sum
    Appendix 7.1's decomposition compares with the mean KL."""
    frames = []
    for run, seed in fig2_runs(cfg):
        path = log_path(run, cfg, seed)
        _require([path])
        frame = pd.read_csv(path)
        frame["run"] = f"{run.name} seed {seed}"
        labels = exps.config_for(cfg, run).labels
        metrics = read_metrics([metrics_path(run, cfg, seed)])[0] if Path(metrics_path(run, cfg, seed)).exists() else {}
        count, log_n = metrics.get("label_count"), metrics.get("log_n")
        shared = labels.md_constant == "n" and count and log_n and math.log(count) < log_n - 1e-9
        frame["md_gap"] = (log_n - math.log(count)) if shared else 0.0
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def make_figure(cfg: Config, name: str) -> None:
    if name not in figures(cfg):
        raise VaeasError(f"figure '{name}' is not part of profile '{cfg.profile}' (its figures: {', '.join(figures(cfg))})")
    out = figure_path(cfg, name)
    if name == "fig2":
        figure_mc_vs_softmax(*_fig2_frames(cfg), out)
    elif name == "fig3":
        first = exps.runs(cfg, "fig2")[0]
        logs = _fig3_logs(cfg)
        figure_kl_decomposition(logs[logs["run"].str.startswith(first.name + " ")], out,
                                    title=f"{first.dataset}, {first.name}")
    elif name in ("fig4", "fig5"):
        files = figure_inputs(cfg, name)
        _require(files)
        figure_reconstructions(files[:2], out, data_root=cfg.data.root)
    else:
        n = int(name[-1])
        figure_table(_table_frame(cfg, n), n, out)


def make_claims(cfg: Config) -> None:
    frames = {n: _table_frame(cfg, n) for n in tables(cfg)}
    mc = logs = None
    if exps.runs(cfg, "fig2"):
        mc = combine_mc(*_fig2_frames(cfg))
        logs = _fig3_logs(cfg)
    write_claims(check_claims(frames, mc, logs), f"{results_dir(cfg)}/claims.md", banner(cfg))


def make_report(cfg: Config, params_path: str) -> None:
    _require(report_inputs(cfg))
    runs = [(run, seed) for run in exps.distinct(exps.runs(cfg)) for seed in exps.seeds(cfg)]
    rows = read_metrics([metrics_path(run, cfg, seed) for run, seed in runs])
    # Stage times are keyed by the run's place under runs/<profile>/ (experiment/run/seed<S>).
    logs = {f"{run.experiment}/{run.name}/seed{seed}": pd.read_csv(log_path(run, cfg, seed)) for run, seed in runs}
    res = results_dir(cfg)
    sections = [Section("Claims", files=[f"{res}/claims.md"])]
    titles = {1: "Table 1 — active units vs decoder depth", 2: "Table 2 — MNIST", 3: "Table 3 — Omniglot"}
    for n in tables(cfg):
        ds = exps.runs(cfg, TABLES[n])[0].dataset
        sections.append(Section(f"{titles[n]} (ours on {ds})", files=[table_paths(cfg, n)[1], figure_path(cfg, f"table{n}")]))
    names = {"fig2": "Figure 2 — MI and MD: softmax vs Monte Carlo", "fig3": "Figure 3 — mean KL vs MI + MD over training",
             "fig4": "Figure 4 — reconstructions, α = 0.2 vs α = 5 (Table 2's data)",
             "fig5": "Figure 5 — reconstructions, α = 0.2 vs α = 5 (Table 3's data)"}
    for experiment in baselines(cfg):
        ds = exps.runs(cfg, experiment)[0].dataset
        csv, md, _, _, png = baselines_paths(cfg, experiment)
        sections.append(Section(f"Table B — {ds}: VAE-AS vs the baselines its objective reduces to (beyond the paper)",
                                files=[md, png]))
    for name in figures(cfg):
        if name in names:
            sections.append(Section(names[name], files=[figure_path(cfg, name)]))
    sections.append(Section("Per-seed results", body=_seeds_summary(cfg)))
    prov = provenance(params_path, collect_stage_times(rows, logs), profile=cfg.profile)
    write_report(f"{res}/REPORT.md", sections, prov, banner(cfg))


def _seeds_summary(cfg: Config) -> str:
    """Where the per-seed rows are, and which machines and training code made the models."""
    from tabulate import tabulate

    frames = [pd.read_csv(seeds_path(cfg, e), dtype={"cpu": str, "train_code": str}) for e in experiments_with_runs(cfg)]
    every = pd.concat(frames, ignore_index=True)
    files = ", ".join(f"`seeds/{e}.csv`" for e in experiments_with_runs(cfg))
    made = (every.fillna({"cpu": "(not recorded)", "train_code": "(not recorded)", "torch": "", "threads": ""})
            .groupby(["cpu", "torch", "threads", "train_code"], dropna=False).size().reset_index(name="rows"))
    table = tabulate(made.values.tolist(), headers=["trained on (CPU)", "torch", "threads", "training code", "rows"],
                     tablefmt="github", disable_numparse=True)
    return (f"Every table above is computed from the per-seed files {files} ({len(every)} rows: one per run "
            f"and seed, every metric, the configuration and training-code digests, and the machine). "
            f"Models made by another route than `vaeas train --config` (by hand, `dvc pull`) have no record "
            f"of their machine.\n\n{table}")
