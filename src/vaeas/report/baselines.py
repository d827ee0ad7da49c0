"""Table B (beyond the paper, issue "What does VAE-AS add?"): VAE-AS(α = 1, β) beside the
baselines its objective reduces to, on the data and seeds of Tables 2–3.

With the softmax MI = log N − SC and eq. 10's MD = KL − log N + SC, the regulariser α·MI + β·MD
is β·KL + (α − β)·MI + const (docs/decisions.md D39): at α = 1 a β-VAE (β on the whole KL) plus
(1 − β)·MI. So each VAE-AS(1, β) run is paired with β-VAE(β), seed by seed (same data subset,
same seed, same initialisation), and the VAE, free bits (Kingma et al. 2016) and KL annealing are
shown beside them as the standard remedies for inactive units.

Numbers are per run: mean ± sd over seeds with the seed count. A paired comparison is the mean of
the per-seed differences VAE-AS(1, β) − β-VAE(β) with a 95 % Student t interval over seeds
(:func:`vaeas.report.stats.mean_interval`; exact under normal differences, and with 3 seeds
honestly wide — a bootstrap over 3 values has only 10 distinct resamples and would understate it). Its outcome is
"VAE-AS higher" / "VAE-AS lower" when the interval excludes 0, "no difference" when every seed's
difference is 0, and "inconclusive" otherwise (or with one seed).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import objectives
from ..io import atomic_path, write_text
from .claim import Claim, _dataset_of, _signed, data_label
from .stats import NA, Rule, combine, judge
from .stats import mean_interval as paired_interval, t_quantile  # noqa: F401  (t_quantile: re-exported)
from .tables import _fmt, _num, format_cell

#: Table B's columns, in order: test and train NLL (last epoch, then at the best validation
#: epoch where training kept one), KL, active units on test and train posteriors, the Monte Carlo
#: MI / MD over all N training posteriors, and the softmax estimates of methods with a classifier.
METRICS = ("nll_test", "best_nll_test", "nll_train", "kl_test", "kl_train", "au", "au_train",
           "mi_mc", "md_mc", "mi", "md", "sc")
LABELS = {"nll_test": "NLL_test", "best_nll_test": "NLL_test (best valid.)", "nll_train": "NLL_train",
          "kl_test": "KL_test", "kl_train": "KL_train", "au": "AU_test", "au_train": "AU_train",
          "mi_mc": "MI_MC", "md_mc": "MD_MC", "mi": "MI_softmax", "md": "MD_softmax", "sc": "SC"}
#: The paired comparisons (more AU and lower NLL would favour VAE-AS).
#: The objective VAE-AS(1, β) is paired with, and the baselines without a β (horizontal lines).
BETA_VAE = "beta_vae"
FLAT = ("vae", "free_bits", "kl_annealing")
PAIRED = ("au", "au_train", "nll_test", "best_nll_test")

def outcome(low: float, high: float, differences: Sequence[float]) -> str:
    """How a paired interval reads (see the module docstring)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return "inconclusive"
    if all(x == 0 for x in differences):
        return "no difference"
    if low > 0:
        return "VAE-AS higher"
    if high < 0:
        return "VAE-AS lower"
    return "inconclusive"


def _frame(rows: Sequence[Mapping]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        raise ValueError("Table B: no rows")
    missing = [c for c in ("run", "seed", "objective") if c not in frame.columns]
    if missing:
        raise ValueError(f"Table B: rows lack column '{missing[0]}'")
    for m in METRICS:
        frame[m] = pd.to_numeric(frame[m], errors="coerce") if m in frame.columns else math.nan
    for k in ("alpha", "beta"):
        frame[k] = pd.to_numeric(frame[k], errors="coerce") if k in frame.columns else math.nan
    frame["run"] = frame["run"].astype(str)
    return frame


def _params(row: Mapping) -> dict[str, float]:
    names = objectives.get(row["objective"]).param_names()
    return {k: _num(row.get(k)) for k in names if math.isfinite(_num(row.get(k)))}


def build_baselines(rows: Sequence[Mapping]) -> pd.DataFrame:
    """One row per run of the experiment (grid order): ``run, config, method`` and its
    hyper-parameters, ``n_seeds``, ``dataset``, ``<metric>_mean`` / ``<metric>_sd`` for each of
    :data:`METRICS` (sd NaN below two seeds). A seed given twice for a run is an error."""
    frame = _frame(rows)
    out = []
    for run, group in frame.groupby("run", sort=False):
        seeds = group["seed"].tolist()
        if len(seeds) != len(set(seeds)):
            raise ValueError(f"Table B, run {run}: a seed appears twice ({seeds})")
        first = group.iloc[0]
        definition = objectives.get(first["objective"])
        rec = {"run": run, "config": definition.describe(_params(first)), "method": first["objective"],
               **{k: _num(first.get(k)) for k in ("alpha", "beta", "lam", "warmup")},
               "n_seeds": len(group), "dataset": first.get("dataset", "")}
        for m in METRICS:
            values = group[m].dropna()
            rec[f"{m}_mean"] = float(values.mean()) if len(values) else math.nan
            rec[f"{m}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        out.append(rec)
    return pd.DataFrame(out)


def _vaeas_at(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["objective"] == objectives.VAEAS.name) & np.isclose(frame["alpha"].astype(float), 1.0)]


def paired_comparisons(rows: Sequence[Mapping]) -> pd.DataFrame:
    """VAE-AS(1, β) − β-VAE(β) per β present in both and per metric of :data:`PAIRED`, on the
    seeds both have: ``beta, metric, n, differences`` (per seed, in seed order), ``mean, low,
    high`` (:func:`paired_interval`) and ``outcome`` (:func:`outcome`)."""
    frame = _frame(rows)
    ours, theirs = _vaeas_at(frame), frame[frame["objective"] == BETA_VAE]
    out = []
    for beta in sorted(set(ours["beta"].round(6)) & set(theirs["beta"].round(6))):
        a = ours[np.isclose(ours["beta"], beta)].set_index("seed")
        b = theirs[np.isclose(theirs["beta"], beta)].set_index("seed")
        seeds = sorted(set(a.index) & set(b.index))
        for metric in PAIRED:
            diffs = [float(a.at[s, metric] - b.at[s, metric]) for s in seeds]
            diffs = [d for d in diffs if math.isfinite(d)]
            if not diffs:
                continue
            mean, low, high = paired_interval(diffs)
            out.append({"beta": float(beta), "metric": metric, "n": len(diffs),
                        "differences": " ".join(f"{d:.4g}" for d in diffs),
                        "mean": mean, "low": low, "high": high, "outcome": outcome(low, high, diffs)})
    return pd.DataFrame(out, columns=["beta", "metric", "n", "differences", "mean", "low", "high", "outcome"])


def format_baselines(table: pd.DataFrame, pairs: pd.DataFrame, title: str) -> str:
    """Markdown: the caption, the runs' table (n = seeds per row), then the paired comparisons."""
    from tabulate import tabulate

    shown = [m for m in METRICS if table[f"{m}_mean"].notna().any()]
    body = [[r["run"], r["config"], str(int(r["n_seeds"])), *(format_cell(r[f"{m}_mean"], r[f"{m}_sd"], math.nan, math.nan, m) for m in shown)]
            for _, r in table.iterrows()]
    runs = tabulate(body, headers=["Run", "Method", "n", *(LABELS[m] for m in shown)], tablefmt="github",
                    disable_numparse=True)
    seeds = sorted(set(table["n_seeds"]))
    n_text = ("n = 1 seed per row: no sd, and no paired interval can be formed" if seeds == [1]
              else f"mean ± sd over n seeds (n per row: {', '.join(map(str, seeds))})")
    caption = (f"**{title}.** Cells: {n_text}. NLL, KL, MI, MD, SC in nats; AU is a count of latent "
               "dimensions (variance of the posterior mean over the data > 0.01), on test and on training "
               "posteriors. MI_MC / MD_MC: Monte Carlo over all N training posteriors, for every method; "
               "MI/MD_softmax and SC only where the method has the auxiliary classifier. "
               "NLL_test (best valid.): at the epoch of the lowest validation IW-NLL (docs/decisions.md D38). "
               "VAE-AS(1, β) rows are Table 2's / 3's own models (same files), so each is paired with "
               "β-VAE(β) on the same data subset and seeds.")
    if pairs.empty:
        return f"{caption}\n\n{runs}\n"
    rows = []
    for _, p in pairs.iterrows():
        interval = ("—" if not math.isfinite(p["low"]) else
                    f"[{_fmt(p['low'], 'x', True)}, {_fmt(p['high'], 'x', True)}]")
        rows.append([f"{p['beta']:g}", LABELS[p["metric"]], str(int(p["n"])), p["differences"],
                     _fmt(p["mean"], "x", True), interval, p["outcome"]])
    paired = tabulate(rows, headers=["β", "metric", "n", "per-seed VAE-AS − β-VAE", "mean", "95 % t interval", "reading"],
                      tablefmt="github", disable_numparse=True)
    return (f"{caption}\n\n{runs}\n\n**Paired: VAE-AS(α = 1, β) − β-VAE(β), seed by seed.** "
            "Interval: mean ± t₀.₉₇₅,ₙ₋₁ · sd/√n over the seeds' differences; 'inconclusive' when it contains 0 "
            "(or n = 1). More AU and lower NLL would favour VAE-AS.\n\n" + paired + "\n")


def metrics_json(table: pd.DataFrame) -> dict:
    """DVC metrics: ``{run: {metric: mean}}`` keyed by the runs' names in params.yaml."""
    return {str(r["run"]): {m: round(float(r[f"{m}_mean"]), 4) for m in METRICS if math.isfinite(r[f"{m}_mean"])}
            for _, r in table.iterrows()}


def write_baselines(table: pd.DataFrame, pairs: pd.DataFrame, title: str, csv_path: str | os.PathLike,
                    md_path: str | os.PathLike, json_path: str | os.PathLike, pairs_path: str | os.PathLike) -> None:
    import json

    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(pairs_path) as tmp:
        pairs.to_csv(tmp, index=False)
    write_text(json_path, json.dumps(metrics_json(table), indent=2, sort_keys=True) + "\n")
    write_text(md_path, format_baselines(table, pairs, title))


def figure_baselines(rows: Sequence[Mapping], path: str | os.PathLike, title: str) -> None:
    """AU (test) and NLL_test against β, one axis each: VAE-AS(α = 1, β) and β-VAE(β), each seed a
    point and the mean a line; the VAE, free bits and KL annealing as horizontal lines (their
    means, which have no β)."""
    import seaborn as sns

    from .figures import _pyplot, _save, _style

    plt = _pyplot()
    frame = _frame(rows)
    swept = pd.concat([_vaeas_at(frame).assign(method="VAE-AS (α = 1)"),
                       frame[frame["objective"] == BETA_VAE].assign(method="β-VAE")])
    flat = frame[frame["objective"].isin(FLAT)]
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        palette = sns.color_palette("colorblind", 6)
        for ax, metric in zip(axes, ("au", "nll_test")):
            if not swept.empty and swept[metric].notna().any():
                sns.lineplot(data=swept, x="beta", y=metric, hue="method", style="method", markers=True,
                             errorbar=None, ax=ax, palette=palette[:2])
                sns.stripplot(data=swept, x="beta", y=metric, hue="method", ax=ax, native_scale=True,
                              palette=palette[:2], alpha=0.4, legend=False, jitter=False, size=4)
            for i, (run, group) in enumerate(flat.groupby("run", sort=False)):
                value = group[metric].mean()
                if math.isfinite(value):
                    label = objectives.get(group["objective"].iloc[0]).describe(_params(group.iloc[0]))
                    ax.axhline(value, color=palette[2 + i % 4], ls=(0, (4, 2 + i)), lw=1.2,
                               label=f"{label} (n = {len(group)})")
            ax.set_xscale("log")
            ax.set_xlabel("β (weight of the KL in β-VAE; of MD in VAE-AS)")
            ax.set_ylabel(LABELS[metric] + (" (nats)" if metric != "au" else " (latent dims)"))
            ax.legend(fontsize=8, loc="best")
        fig.suptitle(title)
        fig.tight_layout()
    _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Table B: VAE-AS(1, β) against β-VAE(β), paired by seed

#: The Table B claims: metric, rule on VAE-AS − β-VAE, what it would mean.
BASELINE_CLAIMS = (("au", "AU", Rule("AU(VAE-AS) − AU(β-VAE)", ">", 0), "more active units"),
                   ("nll_test", "NLL", Rule("NLL_test(VAE-AS) − NLL_test(β-VAE)", "<", 0), "a lower NLL_test"))


def baseline_claims(dataset_rows: Mapping[str, Sequence[Mapping]]) -> list[Claim]:
    """Per data set of Table B: VAE-AS(1, β) has more AU / a lower NLL_test than β-VAE(β) at every β
    both ran, paired by seed. Each β is judged by its own interval; the claim is FAIL if any β fails,
    PASS if all pass, else INCONCLUSIVE."""
    claims = []
    for name, rows in dataset_rows.items():
        pairs = paired_comparisons(rows) if rows else pd.DataFrame()
        ds = data_label(_dataset_of(rows), "MNIST" if "mnist" in name.lower() else "Omniglot")
        tag = name.split("_")[-1].upper() if "_" in name else name.upper()
        for metric, short, rule, meaning in BASELINE_CLAIMS:
            statement = (f"{ds}: VAE-AS(α = 1, β) has {meaning} than β-VAE(β) at every β, paired by seed (what VAE-AS "
                         f"adds beyond the β-VAE its objective reduces to; beyond the paper, stated before it was run)")
            cid = f"TB-{tag}-{short}"
            sub = pairs[pairs["metric"] == metric] if not pairs.empty else pairs
            if sub.empty:
                claims.append(Claim(cid, statement, NA, "ours: no paired VAE-AS / β-VAE runs. Paper: no β-VAE.", NA, rule.text()))
                continue
            parts, outcomes = [], []
            for _, p in sub.iterrows():
                low, high = float(p["low"]), float(p["high"])
                outcomes.append(judge(rule, low, high))
                interval = (f"[{_signed(low)}, {_signed(high)}]" if math.isfinite(low) else "no interval")
                parts.append(f"β={p['beta']:g}: {_signed(p['mean'])} {interval} ({outcomes[-1]})")
            n = int(sub["n"].min())
            claims.append(Claim(cid, statement, combine(outcomes),
                                f"ours: {rule.statistic}, mean over {n} seeds [95 % t interval]: " + "; ".join(parts)
                                + ". Paper: the paper has no β-VAE.", NA, rule.text(), n, members=tuple(outcomes)))
    return claims
