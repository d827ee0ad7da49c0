"""The N-scaling study (beyond the paper, issue "Scale"; docs/scaling.md): the same objectives
trained on N = 1,000 … 10,000 MNIST images, every other setting the real-data profile's.

At N = 1,000 every model memorises its training images (NLL_train ~70 against NLL_test ~150) and
MI is capped at log N = 6.91, so the paper's claims on test NLL and active units cannot be judged
there; this table says which of them move as N grows toward the paper's 55,000.

Per method and N: mean ± sd over seeds (n stated) of the active units (test and training
posteriors), NLL_test at the last epoch and at the best validation epoch, NLL_train, the
generalisation gap NLL_test − NLL_train, KL, the Monte Carlo MI over all N training posteriors
against its bound log N, the softmax's under-reading MI_MC − MI_softmax (methods with the
classifier) and the classifier's pace: the epoch from which that under-reading stays ≤ 0.3
(:func:`vaeas.report.seeds.caught_up_epoch`; only for runs whose log has the monitor's readings).
Paired by seed, per N: VAE-AS(1, 1) − VAE and VAE-AS(1, β) − β-VAE(β), with the
95 % t interval of :func:`vaeas.report.stats.mean_interval` read as in Table B
(:func:`vaeas.report.baselines.outcome`); and pooled over N (the per-N means averaged, with the
Welch–Satterthwaite interval of :func:`vaeas.report.stats.pooled_interval`), beside the paper's
own difference at N = 55,000 where its Table 2 has one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import objectives
from ..io import atomic_path, write_text
from .baselines import BETA_VAE, outcome
from .stats import mean_interval, pooled_interval
from .tables import PAPER_N, _fmt, _num, format_cell, paper_values

#: Columns of the scaling table, in order; ``gap`` and ``mc_gap`` are derived per seed.
METRICS = ("au", "au_train", "nll_test", "best_nll_test", "nll_train", "gap", "kl_test", "kl_train",
           "mi_mc", "mi", "mc_gap", "caught_up_epoch", "train_seconds", "eval_seconds")
LABELS = {"au": "AU_test", "au_train": "AU_train", "nll_test": "NLL_test", "best_nll_test": "NLL_test (best valid.)",
          "nll_train": "NLL_train", "gap": "NLL_test − NLL_train", "kl_test": "KL_test", "kl_train": "KL_train",
          "mi_mc": "MI_MC", "mi": "MI_softmax", "mc_gap": "MI_MC − MI_softmax",
          "caught_up_epoch": "epoch gap ≤ 0.3", "train_seconds": "train s",
          "eval_seconds": "eval s"}
#: What the figure draws, one panel each.
PANELS = ("au", "au_train", "nll_test", "best_nll_test", "nll_train", "gap", "kl_train", "mi_mc", "mc_gap")
#: The paired comparisons: more AU, lower NLL would favour VAE-AS.
PAIRED = ("au", "au_train", "nll_test", "best_nll_test")
#: The comparison the paper's Table 2 also makes (its VAE and VAE-AS(1, 1) rows).
VAE_PAIR = "VAE-AS(1, 1) − VAE"


def scaling_frame(rows: Sequence[Mapping]) -> pd.DataFrame:
    """The per-seed rows as numbers, with ``N`` (from ``log_n``), ``method`` (the objective's
    label and hyper-parameters), ``gap`` and ``mc_gap``. A (method, N, seed) given twice is an error."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        raise ValueError("scaling: no rows")
    for c in ("run", "seed", "objective", "log_n"):
        if c not in frame.columns:
            raise ValueError(f"scaling: rows lack column '{c}'")
    for c in (*[m for m in METRICS if m not in ("gap", "mc_gap")], "alpha", "beta", "log_n"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce") if c in frame.columns else math.nan
    frame["N"] = np.rint(np.exp(frame["log_n"])).astype(int)
    frame["method"] = [objectives.get(r["objective"]).describe(_params(r)) for _, r in frame.iterrows()]
    frame["gap"] = frame["nll_test"] - frame["nll_train"]
    frame["mc_gap"] = frame["mi_mc"] - frame["mi"]
    twice = frame.duplicated(["method", "N", "seed"])
    if twice.any():
        r = frame[twice].iloc[0]
        raise ValueError(f"scaling: {r['method']} at N = {r['N']} has seed {r['seed']} twice")
    return frame


def _params(row: Mapping) -> dict[str, float]:
    names = objectives.get(row["objective"]).param_names()
    return {k: _num(row.get(k)) for k in names if math.isfinite(_num(row.get(k)))}


def build_scaling(rows: Sequence[Mapping]) -> pd.DataFrame:
    """One row per method and N (methods in grid order, N ascending): ``method, objective, alpha,
    beta, N, log_n, n_seeds`` and ``<metric>_mean`` / ``<metric>_sd`` (sd NaN below two seeds);
    ``caught_up_epoch`` over the seeds that caught up, with ``caught_up_epoch_reached`` of
    ``caught_up_epoch_monitored`` (the seeds with a monitor reading)."""
    frame = scaling_frame(rows)
    order = {m: i for i, m in enumerate(dict.fromkeys(frame["method"]))}
    out = []
    for (method, n), group in sorted(frame.groupby(["method", "N"]), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        first = group.iloc[0]
        rec = {"method": method, "objective": first["objective"], "alpha": first["alpha"], "beta": first["beta"],
               "N": int(n), "log_n": math.log(n), "n_seeds": len(group)}
        for m in METRICS:
            values = group[m].dropna()
            if m == "caught_up_epoch":          # inf: not caught up by the last epoch
                rec["caught_up_epoch_monitored"], values = len(values), values[np.isfinite(values)]
                rec["caught_up_epoch_reached"] = len(values)
            rec[f"{m}_mean"] = float(values.mean()) if len(values) else math.nan
            rec[f"{m}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        out.append(rec)
    return pd.DataFrame(out)


def _pairs(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(label, VAE-AS rows, baseline rows): VAE-AS(1, 1) against the VAE, and every VAE-AS(1, β)
    against β-VAE(β)."""
    vaeas = frame[(frame["objective"] == objectives.VAEAS.name) & np.isclose(frame["alpha"].fillna(-1), 1.0)]
    out = []
    vae = frame[frame["objective"] == objectives.VAE.name]
    ones = vaeas[np.isclose(vaeas["beta"], 1.0)]
    if len(ones) and len(vae):
        out.append((VAE_PAIR, ones, vae))
    for beta in sorted(set(vaeas["beta"].round(6))):
        theirs = frame[(frame["objective"] == BETA_VAE) & np.isclose(frame["beta"].fillna(-1), beta)]
        if len(theirs):
            out.append((f"VAE-AS(1, {beta:g}) − β-VAE({beta:g})", vaeas[np.isclose(vaeas["beta"], beta)], theirs))
    return out


def _differences(frame: pd.DataFrame):
    """(comparison, N, metric, per-seed differences) for each comparison of :func:`_pairs`, N both
    ran and metric of :data:`PAIRED`, on the seeds both have (finite differences only)."""
    for label, ours, theirs in _pairs(frame):
        for n in sorted(set(ours["N"]) & set(theirs["N"])):
            a = ours[ours["N"] == n].set_index("seed")
            b = theirs[theirs["N"] == n].set_index("seed")
            seeds = sorted(set(a.index) & set(b.index))
            for metric in PAIRED:
                diffs = [float(a.at[s, metric] - b.at[s, metric]) for s in seeds]
                diffs = [d for d in diffs if math.isfinite(d)]
                if diffs:
                    yield label, int(n), metric, diffs


def scaling_comparisons(rows: Sequence[Mapping]) -> pd.DataFrame:
    """Per comparison of :func:`_pairs`, N both ran and metric of :data:`PAIRED`, on the seeds
    both have: ``comparison, N, metric, n, differences, mean, low, high, outcome``."""
    out = []
    for label, n, metric, diffs in _differences(scaling_frame(rows)):
        mean, low, high = mean_interval(diffs)
        out.append({"comparison": label, "N": n, "metric": metric, "n": len(diffs),
                    "differences": " ".join(f"{d:.4g}" for d in diffs), "mean": mean, "low": low,
                    "high": high, "outcome": outcome(low, high, diffs)})
    return pd.DataFrame(out, columns=["comparison", "N", "metric", "n", "differences", "mean", "low", "high", "outcome"])


POOLED_COLUMNS = ["comparison", "metric", "pooled_N", "seeds", "mean", "low", "high", "df", "outcome",
                  "paper", "paper_inside"]


def pooled_comparisons(rows: Sequence[Mapping]) -> pd.DataFrame:
    """Per comparison and metric: the paired difference averaged over the N that have ≥ 2 paired
    seeds, each N weighted equally, with its Welch–Satterthwaite 95 % interval
    (:func:`vaeas.report.stats.pooled_interval`): ``comparison, metric, pooled_N`` (the N pooled,
    space-separated), ``seeds`` (per N), ``mean, low, high, df, outcome``; ``paper``: the paper's
    difference at N = 55,000 where Table 2 has both methods and the metric (VAE-AS(1, 1) − VAE:
    AU and NLL_test), and ``paper_inside``: whether our interval contains it ("inside",
    "outside", "" without a paper value). Each N alone has n − 1 = 1–2 degrees of freedom; pooled,
    Welch–Satterthwaite's ν is at most their sum (less when one N's variance dominates)."""
    groups: dict[tuple[str, str], list[tuple[int, list[float]]]] = {}
    for label, n, metric, diffs in _differences(scaling_frame(rows)):
        groups.setdefault((label, metric), []).append((n, diffs))
    paper = _paper_differences()
    out = []
    for (label, metric), per_n in groups.items():
        used = [(n, d) for n, d in per_n if len(d) >= 2]
        if not used:
            continue
        mean, low, high, df = pooled_interval([d for _, d in used])
        value = paper.get((label, metric), math.nan)
        inside = "" if not math.isfinite(value) else ("inside" if low <= value <= high else "outside")
        out.append({"comparison": label, "metric": metric, "pooled_N": " ".join(str(n) for n, _ in used),
                    "seeds": " ".join(str(len(d)) for _, d in used), "mean": mean, "low": low, "high": high,
                    "df": df, "outcome": outcome(low, high, [x for _, d in used for x in d]),
                    "paper": value, "paper_inside": inside})
    return pd.DataFrame(out, columns=POOLED_COLUMNS)


def _paper_differences() -> dict[tuple[str, str], float]:
    """The paper's Table 2 difference VAE-AS(1, 1) − VAE (N = 55,000) per paired metric it
    reports (AU, NLL_test); the paper has no β-VAE, so no other comparison has one."""
    paper = paper_values(2)
    vae = paper[paper["method"] == objectives.VAE.name]
    ones = paper[(paper["method"] == objectives.VAEAS.name) & np.isclose(paper["alpha"], 1.0) & np.isclose(paper["beta"], 1.0)]
    if len(vae) != 1 or len(ones) != 1:
        return {}
    return {(VAE_PAIR, m): float(ones.iloc[0][m] - vae.iloc[0][m]) for m in ("au", "nll_test")
            if math.isfinite(ones.iloc[0][m] - vae.iloc[0][m])}


def paper_points(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 2 value (N = 55,000) of each method of ``table`` the paper ran (the VAE
    and VAE-AS(α, β)), per metric it reports: ``method, metric, value``."""
    paper = paper_values(2)        # its ``method`` column holds the objectives' names
    out = []
    for method, group in table.groupby("method", sort=False):
        first = group.iloc[0]
        if first["objective"] == objectives.VAE.name:
            match = paper[paper["method"] == objectives.VAE.name]
        elif first["objective"] == objectives.VAEAS.name:
            match = paper[(paper["method"] == objectives.VAEAS.name) & np.isclose(paper["alpha"], first["alpha"])
                          & np.isclose(paper["beta"], first["beta"])]
        else:
            continue
        if len(match) != 1:
            continue
        p = match.iloc[0]
        values = {m: float(p[m]) for m in ("au", "nll_test", "nll_train", "kl_test", "kl_train") if math.isfinite(p[m])}
        if "nll_test" in values and "nll_train" in values:
            values["gap"] = values["nll_test"] - values["nll_train"]
        out += [{"method": method, "metric": m, "value": v} for m, v in values.items()]
    return pd.DataFrame(out, columns=["method", "metric", "value"])


def format_scaling(table: pd.DataFrame, pairs: pd.DataFrame, pooled: pd.DataFrame | None = None) -> str:
    """Markdown: the caption, one row per method and N, the paired comparisons, the reading of
    each comparison along N, and (``pooled``) each comparison pooled over N beside the paper's."""
    from tabulate import tabulate

    shown = [m for m in METRICS if table[f"{m}_mean"].notna().any()
             or (m == "caught_up_epoch" and table["caught_up_epoch_monitored"].gt(0).any())]
    body = [[r["method"], f"{int(r['N']):,}", f"{r['log_n']:.2f}", str(int(r["n_seeds"])),
             *(_pace_cell(r) if m == "caught_up_epoch" else format_cell(r[f"{m}_mean"], r[f"{m}_sd"], math.nan,
                                                                      math.nan, m) for m in shown)]
            for _, r in table.iterrows()]
    runs = tabulate(body, headers=["Method", "N", "log N", "n", *(LABELS[m] for m in shown)], tablefmt="github",
                    disable_numparse=True)
    seeds = sorted(set(table["n_seeds"]))
    n_text = ("n = 1 seed per row: no sd, and no paired interval" if seeds == [1]
              else f"mean ± sd over n seeds (n per row: {', '.join(map(str, seeds))})")
    caption = (f"**The N-scaling study (MNIST, beyond the paper; the paper's N is {PAPER_N[2]:,}).** Cells: {n_text}. "
               "NLL, KL and MI in nats, AU a count of latent dimensions, seconds at one thread. MI_MC: the Monte Carlo "
               "MI over all N training posteriors (its bound is log N); MI_MC − MI_softmax: how much the classifier "
               "under-reads it (the regime needs ≤ 0.3). NLL_test (best valid.): at the epoch of the lowest validation "
               "IW-NLL." + (" Epoch gap ≤ 0.3: the first monitored epoch from which MI_MC − MI_softmax stays ≤ 0.3, "
                           "over the seeds that reached it (k of the m seeds whose training log has the monitor's "
                           "readings; '—' where none has)." if "caught_up_epoch" in shown else ""))
    if pairs.empty:
        return f"{caption}\n\n{runs}\n"
    rows = []
    for _, p in pairs.iterrows():
        interval = "—" if not math.isfinite(p["low"]) else f"[{_fmt(p['low'], 'x', True)}, {_fmt(p['high'], 'x', True)}]"
        rows.append([p["comparison"], f"{int(p['N']):,}", LABELS[p["metric"]], str(int(p["n"])), p["differences"],
                     _fmt(p["mean"], "x", True), interval, p["outcome"]])
    paired = tabulate(rows, headers=["comparison", "N", "metric", "n", "per-seed difference", "mean", "95 % t interval",
                                     "reading"], tablefmt="github", disable_numparse=True)
    along = []
    for (label, metric), group in pairs.groupby(["comparison", "metric"], sort=False):
        readings = "; ".join(f"N = {int(p['N']):,}: {p['outcome']}" for _, p in group.sort_values("N").iterrows())
        changes = " (**changes with N**)" if group["outcome"].nunique() > 1 else ""
        along.append(f"- {label}, {LABELS[metric]}: {readings}{changes}")
    text = (f"{caption}\n\n{runs}\n\n**Paired by seed, at each N.** Interval: mean ± t₀.₉₇₅,ₙ₋₁ · sd/√n over the "
            "seeds' differences; 'inconclusive' when it contains 0 (or n = 1). More AU and lower NLL would favour "
            f"VAE-AS.\n\n{paired}\n\n**Along N.**\n\n" + "\n".join(along) + "\n")
    if pooled is not None and not pooled.empty:
        text += "\n" + _format_pooled(pooled)
    return text


def _format_pooled(pooled: pd.DataFrame) -> str:
    from tabulate import tabulate

    rows = []
    for _, p in pooled.iterrows():
        ns = ", ".join(f"{int(n):,} ({k})" for n, k in zip(p["pooled_N"].split(), p["seeds"].split()))
        paper = "—" if not math.isfinite(p["paper"]) else f"{_fmt(p['paper'], 'x', True)} ({p['paper_inside']})"
        rows.append([p["comparison"], LABELS[p["metric"]], ns, _fmt(p["mean"], "x", True),
                     f"[{_fmt(p['low'], 'x', True)}, {_fmt(p['high'], 'x', True)}]",
                     "∞" if not math.isfinite(p["df"]) else f"{p['df']:.1f}", p["outcome"], paper])
    table = tabulate(rows, headers=["comparison", "metric", "N pooled (seeds)", "mean over N", "95 % interval", "df",
                                    "reading", f"paper, N = {PAPER_N[2]:,} (in our interval?)"],
                     tablefmt="github", disable_numparse=True)
    return ("**Pooled over N.** The per-N mean differences averaged, each N weighted equally, with a "
            "Welch–Satterthwaite 95 % t interval (each N's own seed-to-seed variance; df rounded down); an N "
            "with one paired seed does not enter. It estimates the average effect over the N studied, which is "
            "not the effect at any one N, nor at the paper's N: a paper's difference outside our interval may "
            "also mean that the effect changes with N. The paper's column is the difference of its Table 2 rows "
            f"(VAE-AS(1, 1) − VAE); the paper has no β-VAE.\n\n{table}\n")


def _pace_cell(row: Mapping) -> str:
    """The ``caught_up_epoch`` cell: mean ± sd over the seeds that caught up, and how many of the
    monitored seeds did ('not by the last epoch' when none)."""
    monitored, reached = int(row["caught_up_epoch_monitored"]), int(row["caught_up_epoch_reached"])
    if monitored == 0:
        return "—"
    if reached == 0:
        return f"not by the last epoch (0 of {monitored})"
    return f"{format_cell(row['caught_up_epoch_mean'], row['caught_up_epoch_sd'], math.nan, math.nan, 'best_epoch')} " \
           f"({reached} of {monitored})"


def metrics_json(table: pd.DataFrame) -> dict:
    """DVC metrics: ``{"<method> N=<N>": {metric: mean}}``."""
    return {f"{r['method']} N={int(r['N'])}": {m: round(float(r[f"{m}_mean"]), 4) for m in METRICS
                                               if math.isfinite(r[f"{m}_mean"])} for _, r in table.iterrows()}


def write_scaling(table: pd.DataFrame, pairs: pd.DataFrame, pooled: pd.DataFrame, csv_path: str | os.PathLike,
                  md_path: str | os.PathLike, json_path: str | os.PathLike, pairs_path: str | os.PathLike,
                  pooled_path: str | os.PathLike) -> None:
    for frame, path in ((table, csv_path), (pairs, pairs_path), (pooled, pooled_path)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    write_text(json_path, json.dumps(metrics_json(table), indent=2, sort_keys=True) + "\n")
    write_text(md_path, format_scaling(table, pairs, pooled))


def figure_scaling(rows: Sequence[Mapping], path: str | os.PathLike) -> None:
    """One panel per quantity of :data:`PANELS` against N (log axis): each seed a point, the mean a
    line per method; log N on the MI panel; the paper's Table 2 value at N = 55,000 a star where
    the paper ran the method."""
    import seaborn as sns

    from .figures import _pyplot, _save, _style

    plt = _pyplot()
    frame = scaling_frame(rows)
    table = build_scaling(rows)
    paper = paper_points(table)
    methods = list(dict.fromkeys(frame["method"]))
    palette = dict(zip(methods, sns.color_palette("colorblind", len(methods))))
    with _style():
        fig, axes = plt.subplots(3, 3, figsize=(15, 11.5))
        handles, labels = [], []
        for ax, metric in zip(axes.flat, PANELS):
            data = frame[frame[metric].notna()]
            if not data.empty:
                sns.lineplot(data=data, x="N", y=metric, hue="method", hue_order=methods, palette=palette,
                             estimator="mean", errorbar=None, marker="o", ax=ax)
                sns.scatterplot(data=data, x="N", y=metric, hue="method", hue_order=methods, palette=palette,
                                alpha=0.35, s=18, legend=False, ax=ax)
            for _, p in paper[paper["metric"] == metric].iterrows():
                ax.scatter([PAPER_N[2]], [p["value"]], marker="*", s=140, color=palette[p["method"]],
                           edgecolor="black", linewidth=0.5, zorder=5)
            if data.empty:
                ax.text(0.5, 0.5, "not in these rows", ha="center", va="center", transform=ax.transAxes, color="grey")
            if metric == "mi_mc":
                ns = np.geomspace(frame["N"].min(), PAPER_N[2], 50)
                ax.plot(ns, np.log(ns), color="grey", ls="--", lw=1)
                ax.annotate("log N (bound)", (ns[-1], math.log(ns[-1])), ha="right", va="bottom", fontsize=8, color="grey")
            if metric == "mc_gap":
                ax.axhline(0.3, color="grey", ls="--", lw=1)
                ax.annotate("regime: ≤ 0.3", (frame["N"].min(), 0.3), va="bottom", fontsize=8, color="grey")
            ax.set_xscale("log")
            ax.set_xlim(frame["N"].min() / 1.4, PAPER_N[2] * 1.4)
            ax.set_xlabel("N (training images)")
            ax.set_ylabel(LABELS[metric] + (" (latent dims)" if metric.startswith("au") else " (nats)"))
            if metric == PANELS[0]:
                handles, labels = ax.get_legend_handles_labels()      # every method has AU
            if ax.get_legend():
                ax.get_legend().remove()
        fig.legend(handles + [plt.Line2D([], [], marker="*", ls="", color="grey", markeredgecolor="black", markersize=11)],
                   labels + [f"the paper's Table 2 (N = {PAPER_N[2]:,})"], loc="lower center", ncol=4, fontsize=9)
        fig.suptitle("N-scaling on MNIST: each seed a dot, the mean a line")
        fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    _save(fig, path)
