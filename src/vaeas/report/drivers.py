"""What ``vaeas table|figure|claims|report`` run: gather the files of a profile's runs (paths
from :mod:`vaeas.pipeline`, the same that dvc.yaml and the Snakemake rules name) and hand them
to the tables, figures, claims and report of this package."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .. import experiments as exps
from .. import readers
from ..config import Config
from ..errors import VaeasError
from ..pipeline import (
    TABLES,
    baselines,
    baselines_paths,
    claims_paths,
    fig2_runs,
    figure_inputs,
    figure_path,
    figures,
    has_claims,
    log_path,
    mc_path,
    metrics_path,
    experiments_with_runs,
    report_inputs,
    results_dir,
    run_notes_path,
    scaling_paths,
    seeds_inputs,
    seeds_path,
    table_paths,
    tables,
)
from ..data.catalog import TRAIN_SIZES
from .claims import check_claims, write_claims
from .figures import combine_mc, figure_kl_decomposition, figure_mc_vs_softmax, figure_reconstructions, figure_table
from .provenance import Section, provenance, read_metrics, stage_times_from_seeds, write_report
from .scope import EXPERIMENT_NAMES, PAPER_SCALE, Scale, scope_banner
from .seeds import carried_seed_rows, read_seed_rows, seed_rows, write_seed_rows
from .tables import build_table, write_table



def banner(cfg: Config) -> str:
    """The scope banner of the profile: per experiment, the data set its runs use, N, the
    epochs of its runs (their own overrides applied) and the seeds; then every deviation from
    the paper's setting in force (:func:`deviations`)."""
    scales = []
    for experiment in exps.EXPERIMENTS:
        runs = exps.runs(cfg, experiment)
        if runs:
            configs = [exps.config_for(cfg, r) for r in runs]
            epochs = tuple(sorted({c.training.epochs for c in configs}))
            full = TRAIN_SIZES[runs[0].dataset]
            sizes = sorted({min(c.data.train_size or full, full) for c in configs})   # data.train_size: a seeded subset
            scales.append(Scale(experiment, runs[0].dataset, sizes[0], epochs, len(exps.seeds(cfg)),
                                sizes[-1] if len(sizes) > 1 else 0))
    return scope_banner(cfg.profile, scales, deviations(cfg))


#: The paper's setting that a profile may leave (§5.1, §5.3; Burda et al. 2015 for the architecture).
PAPER_SETTING = {"activation": "tanh", "init": "glorot", "iw_samples": 4096}


def deviations(cfg: Config) -> list[str]:
    """Every way the profile's runs leave the paper's setting, one line each, read from the
    resolved configurations of its runs (so a run's own override counts)."""
    runs = exps.distinct(exps.runs(cfg))
    configs = [exps.config_for(cfg, r) for r in runs]
    if not configs:
        return []
    out = []
    datasets = {r.dataset for r in runs}
    if "omniglot" in datasets and {c.data.omniglot_source for c in configs} & {"lake"}:
        out.append("Omniglot is made from Lake et al.'s official 105×105 images, inverted and area-averaged to 28×28 "
                   "(`data.omniglot_source: lake`), not Burda et al.'s 28×28 `chardata.mat` the paper used (its hash is "
                   "unpublished; docs/decisions.md, Data)")
    if datasets & {"digits", "omniglot-mini"}:
        out.append("embedded stand-ins for the paper's data sets (" + ", ".join(sorted(datasets & {"digits", "omniglot-mini"}))
                   + "): trends are comparable, absolute numbers are not")
    acts = sorted({c.model.activation for c in configs})
    if acts != [PAPER_SETTING["activation"]]:
        out.append(f"activation {', '.join(acts)} instead of the paper's {PAPER_SETTING['activation']} "
                   f"(initialisation {', '.join(sorted({c.model.init for c in configs}))}; docs/regime.md §2)")
    elif sorted({c.model.init for c in configs}) != [PAPER_SETTING["init"]]:
        out.append(f"initialisation {', '.join(sorted({c.model.init for c in configs}))} instead of Glorot")
    sizes = sorted({c.data.train_size for c in configs if c.data.train_size})
    if sizes:
        out.append(f"N = {', '.join(f'{n:,}' for n in sizes)} training images per data set (a fixed seeded subset; the paper: "
                   "MNIST 55,000, Omniglot 24,345): every model of this N overfits, MI's ceiling is log N")
    off: dict[str, set[int]] = {}
    for run, c in zip(runs, configs):
        paper_epochs = PAPER_SCALE.get(run.experiment, (None, None, None))[2]
        if paper_epochs and c.training.epochs != paper_epochs:
            off.setdefault(run.experiment, set()).add(c.training.epochs)
    if off:
        out.append("epochs: " + "; ".join(
            f"{EXPERIMENT_NAMES[e].split(' (')[0]} {'–'.join(str(x) for x in sorted({min(v), max(v)}))} "
            f"(the paper: {PAPER_SCALE[e][2]})" for e, v in off.items()))
    ks = sorted({c.evaluation.iw_samples for c in configs})
    tests = sorted({c.evaluation.iw_max_examples for c in configs})
    if ks != [PAPER_SETTING["iw_samples"]] or tests != [0]:
        subset = ("" if tests == [0] else
                  f" on the first {', '.join(f'{t:,}' for t in tests if t)} test images (the paper: the whole test set)")
        out.append(f"IW-NLL with k = {', '.join(f'{k:,}' for k in ks)} importance samples (the paper: "
                   f"k = {PAPER_SETTING['iw_samples']:,}){subset}")
    every = sorted({c.training.validate_every for c in configs} - {0})
    if every:
        out.append("beyond the paper: a validation IW-NLL every " + (
            "epoch" if every == [1] else f"{', '.join(map(str, every))} epochs") + "; "
                   "the tables' NLL is the last epoch's, as the paper's, with the best-validation model's beside it "
                   "in Table B")
    return out


def make_seeds(cfg: Config, experiment: str, carry_over: bool = False, allow_missing: bool = False) -> None:
    """``vaeas seeds EXPERIMENT``: the experiment's per-seed results file (vaeas.report.seeds).

    With ``carry_over`` (``--carry-over``), a run and seed whose metrics.json is absent keeps its
    row of the existing file, provided that row was made with the configuration the run has now
    (its ``config_digest`` equals the digest of the run's config.json as resolved from params.yaml);
    otherwise the command refuses, naming the run. This lets a study longer than one machine's
    stretch accumulate its rows across machines whose models are gone (docs/scaling.md). With
    ``allow_missing`` too, a run and seed that has neither is left out of the file and named on
    stdout: a partial study, whose tables count the seeds each point has."""
    if allow_missing and not carry_over:
        raise VaeasError("--allow-missing needs --carry-over (a complete grid needs every metrics.json)")
    if experiment not in exps.EXPERIMENTS or not exps.runs(cfg, experiment):
        known = ", ".join(experiments_with_runs(cfg)) or "none"
        raise VaeasError(f"no runs of experiment '{experiment}' in profile '{cfg.profile}' (experiments with runs: {known})")
    inputs = seeds_inputs(cfg, experiment)
    half = len(inputs) // 2
    if not carry_over:
        readers.require(inputs)
        write_seed_rows(seed_rows(cfg, experiment, inputs[:half], inputs[half:]), seeds_path(cfg, experiment))
        return
    rows, missing = carried_seed_rows(cfg, experiment, inputs[:half], inputs[half:], seeds_path(cfg, experiment),
                                      allow_missing)
    write_seed_rows(rows, seeds_path(cfg, experiment))
    if missing:
        print(f"vaeas seeds: {len(missing)} of {len(missing) + len(rows)} left out (no metrics.json, no row to carry over): "
              + ", ".join(missing))


def _metrics_rows(cfg: Config, experiment: str) -> list[dict]:
    """The per-seed rows of an experiment's runs (results/<profile>/seeds/<experiment>.csv), each
    named by its run of the grid (``run``)."""
    path = seeds_path(cfg, experiment)
    readers.require([path])
    return read_seed_rows(path)


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


def make_scaling(cfg: Config) -> None:
    """``vaeas scaling``: the N-scaling study's table, paired comparisons (per N and pooled over N)
    and figure (vaeas.report.scaling)."""
    from .scaling import build_scaling, figure_scaling, pooled_comparisons, scaling_comparisons, write_scaling

    paths = scaling_paths(cfg)
    if not paths:
        raise VaeasError(f"no runs of experiment 'scaling' in profile '{cfg.profile}' (the study's profile: mnist-scaling)")
    rows = _metrics_rows(cfg, "scaling")
    csv, md, js, paired, pooled, png = paths
    write_scaling(build_scaling(rows), scaling_comparisons(rows), pooled_comparisons(rows), csv, md, js, paired, pooled)
    figure_scaling(rows, png)


def make_table(cfg: Config, table: int) -> None:
    if table not in TABLES:
        raise VaeasError(f"unknown table {table} (choose from: 1, 2, 3)")
    df = build_table(table, _metrics_rows(cfg, TABLES[table]))
    write_table(df, *table_paths(cfg, table))


def _table_frame(cfg: Config, table: int):
    path = table_paths(cfg, table)[0]
    readers.require([path])
    return pd.read_csv(path)


def _fig2_frames(cfg: Config):
    pairs = fig2_runs(cfg)
    mc_files = [mc_path(r, cfg, s) for r, s in pairs]
    metric_files = [metrics_path(r, cfg, s) for r, s in pairs]
    readers.require(mc_files + metric_files)
    return [pd.read_csv(f) for f in mc_files], read_metrics(metric_files)


def _fig3_logs(cfg: Config):
    """Figure 3's training logs, one ``run`` per model, with ``md_gap``: log N − log V when the run
    shares V < N labels and eq. 10 subtracts log N (``labels.md_constant: n``, D5), else 0 — the
    part of the KL that MI, capped at log V, cannot see, so that MI + MD + md_gap is the sum
    Appendix 7.1's decomposition compares with the mean KL."""
    frames = []
    for run, seed in fig2_runs(cfg):
        path = log_path(run, cfg, seed)
        readers.require([path])
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
        readers.require(files)
        figure_reconstructions(files[:2], out, data_root=cfg.data.root)
    else:
        n = int(name[-1])
        figure_table(_table_frame(cfg, n), n, out)


def make_claims(cfg: Config) -> None:
    """``vaeas claims``: every claim judged on the per-seed rows (results/<profile>/seeds/), and the
    consistency checks."""
    from .consistency import consistency_checks
    from .tables import PAPER_N, our_train_size
    from .verdict import scale_note, write_verdict

    if not has_claims(cfg):
        raise VaeasError(f"profile '{cfg.profile}' runs nothing the claims judge (no table's, Table B's or Figure 2's runs)")
    rows = {n: _metrics_rows(cfg, TABLES[n]) for n in tables(cfg)}
    table_b = {e: _metrics_rows(cfg, e) for e in baselines(cfg)}
    mc = logs = None
    if exps.runs(cfg, "fig2"):
        mc = combine_mc(*_fig2_frames(cfg))
        logs = _fig3_logs(cfg)
    claims = check_claims(rows, mc, logs, table_b)
    claims_md, verdict_md = claims_paths(cfg)
    write_claims(claims, claims_md, banner(cfg), consistency_checks(rows, logs))
    first = 2 if 2 in rows else (min(rows) if rows else None)      # the paper's MNIST tables
    note = scale_note(rows[first], our_train_size(pd.DataFrame(rows[first])), PAPER_N[first]) if first else ""
    write_verdict(claims, verdict_md, note)


def make_report(cfg: Config, params_path: str) -> None:
    """``vaeas report``: REPORT.md from the committed products under results/<profile>/ alone (the
    per-seed files carry each model's train and evaluation seconds), so it rebuilds without runs/."""
    readers.require(report_inputs(cfg))
    seed_rows_all = [r for e in experiments_with_runs(cfg) for r in read_seed_rows(seeds_path(cfg, e))]
    res = results_dir(cfg)
    claims_md, verdict_md = claims_paths(cfg)
    sections = [Section("Verdict", files=[verdict_md]), Section("Claims", files=[claims_md])] if has_claims(cfg) else []
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
    if scaling_paths(cfg):
        _, md, _, _, _, png = scaling_paths(cfg)
        sections.append(Section("The N-scaling study — MNIST, each method against N (beyond the paper)",
                                body="What the study is and which claims change with N: docs/scaling.md.", files=[md, png]))
    for name in figures(cfg):
        if name in names:
            note = FIGURE_NOTES.get(name, "") if name not in ("fig4", "fig5") or _subset(cfg, name) else ""
            sections.append(Section(names[name], body=note, files=[figure_path(cfg, name)]))
    sections.append(Section("Per-seed results", body=_seeds_summary(cfg)))
    if Path(run_notes_path(cfg)).is_file():
        sections.append(Section("How it was run", files=[run_notes_path(cfg)]))
    prov = provenance(params_path, stage_times_from_seeds(seed_rows_all), profile=cfg.profile)
    write_report(f"{res}/REPORT.md", sections, prov, banner(cfg))


#: What a figure's numbers are, where a reader would otherwise compare unlike quantities.
FIGURE_NOTES = {
    "fig3": ("The curves are the training log's per-epoch means over minibatches: inputs binarised afresh at each "
             "draw and the model still moving within the epoch. Figure 2's legend and the tables evaluate the final "
             "model once, on a fixed binarisation of the training images (`evaluation.binarize_seed`). The two need "
             "not agree exactly (on mnist-cpu's labels1000 models, seeds 0, 1, 2: KL 17.27, 17.42, 17.97 at the last "
             "epoch here, MI + MD 17.54, 17.39, 17.94 from the evaluation); how much of that each cause explains is not measured."),
    "fig5": ("These models were trained on a small subset of the training images (the scope banner) and "
             "memorise it (NLL_train far below NLL_test): a test reconstruction can then look like a training "
             "image rather than its own input, a sign of the scale, not of the method."),
}
FIGURE_NOTES["fig4"] = FIGURE_NOTES["fig5"]


def _subset(cfg: Config, name: str) -> bool:
    """Whether Figure ``name``'s models were trained on a subset of their data set's training images."""
    run = exps.reconstruction_runs(cfg)[name][0]
    size = exps.config_for(cfg, run).data.train_size
    return bool(size) and size < TRAIN_SIZES[run.dataset]


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
    from ..pipeline import code_digest

    here = code_digest("train")
    other = sorted(set(every["train_code"].dropna().astype(str)) - {here})
    code = (f"Every model was trained by this commit's training code (digest `{here}`)." if not other else
            f"This commit's training code has digest `{here}`; {int(every['train_code'].astype(str).isin(other).sum())} "
            f"rows come from other training code ({', '.join(f'`{d}`' for d in other)}): the provenance says which "
            "commit that was and how it differs.")
    return (f"Every table above is computed from the per-seed files {files} ({len(every)} rows: one per run "
            f"and seed, every metric, the configuration and training-code digests, and the machine). "
            f"Models made by another route than `vaeas train --config` (by hand, `dvc pull`) have no record "
            f"of their machine. {code}\n\n{table}")
