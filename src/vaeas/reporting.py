"""Reporting: the paper's Tables 1–3 beside ours, Figures 2–5, machine-checked claims, REPORT.md.

Inputs are the files the other stages write: one flat ``metrics.json`` per trained model
(:func:`vaeas.evaluation.evaluate`), one ``mc.csv`` per Figure-2 model
(:func:`vaeas.evaluation.monte_carlo`), one ``<model>.log.csv`` per training run
(:func:`vaeas.training.train`) and the model files themselves (Figures 4/5). The paper's numbers
are transcribed once, in ``vaeas/reference/paper_tables.csv`` (:func:`paper_values`).

Tables
------
:func:`build_table` groups our metrics rows by configuration (Table 1: decoder depth; Tables 2/3:
method, α, β, in the paper's row order), aggregates over seeds and puts the paper's value and the
difference beside each column. The frame is flat: key columns, ``config`` (a display label),
``n_seeds``, ``in_paper``, and for every metric ``m``: ``m_mean``, ``m_sd`` (sample sd, ddof = 1;
NaN with one seed), ``m_paper`` and ``m_delta`` (= ours mean − paper). Configurations only we
ran, and paper rows we did not run, are kept (NaN where missing), never dropped.

:func:`format_table` renders one Markdown row per configuration and one cell per metric::

    96.30 ± 0.40 (paper 96.32, Δ −0.02)

i.e. our mean ± sd over seeds, then the paper's value and ours − paper. One row per
configuration keeps a configuration's numbers on one line (sub-columns for ours / paper / Δ
would triple the width of an 8-metric table). With one seed the "± sd" is left out; a cell
reads ``— (paper 96.32)`` for a configuration we did not run and has no parenthesis where the
paper has no value. AU is a count: its mean is shown with one decimal when not whole.

Figures
-------
PNG, written atomically, drawn with seaborn on the Agg backend; titles, axis labels (nats) and
legends make each readable without the paper. :func:`figure_mc_vs_softmax` (Fig. 2),
:func:`figure_kl_decomposition` (Fig. 3), :func:`figure_reconstructions` (Figs. 4/5),
:func:`figure_table` (Tables 1–3 as trends vs α, β or depth, ours with ±sd bars vs the paper).

Claims
------
:func:`check_claims` turns each qualitative statement of §2.2 and §5 into a check with numbers;
each :class:`Claim` says whether our numbers pass (``passed``) and whether the paper's own numbers
pass the same check (``paper_passed``), so a failure of ours can be told apart from a statement
the paper's table does not support either. ``None`` means not enough data. Thresholds:

* trends ("raising β lowers KL_test"): Spearman ρ between the swept value and the metric of at
  least :data:`TREND_RHO` (0.8) in the stated direction, *and* the value at the largest setting
  beyond the value at the smallest. Rank correlation tolerates one wiggle in a 6–7 point sweep
  (the paper's Omniglot MD at β = 5, 10) but not a flat or mixed series.
* "MI stays near log N": for every VAE-AS run with α ≤ 2 and β ≤ 1, log V − MI ≤
  :data:`MI_BOUND_TOL` (0.5 nats), where V is the run's ``label_count`` (the number of softmax
  labels, V = N with full labels): log V is the ceiling of the softmax MI estimate (§3.3), so
  with shared labels (V < N) the check stays meaningful. The paper's gaps are ≤ 0.14 (MNIST) and
  ≤ 0.04 (Omniglot) nats in those rows; at β = 2 Omniglot's MI already falls to 6.17, so the
  range is β ≤ 1, not β ≤ 2.
* Figure 2: per model, |MC(S_min) − MC(S_max)| > |MC(S_next) − MC(S_max)| (S_next the second
  largest S), the sd over repeats at S_min larger than at S_max, and |softmax − MC(S_max)| <
  |MC(S_min) − MC(S_max)|, for both MI and MD.
* Figure 3: at the last epoch |KL − (MI + MD)| ≤ :data:`FIG3_REL_TOL` (5 %) of KL. The paper's
  Table 2 (α = β = 1) gives KL_train 21.22 vs MI + MD 21.44 (1.0 %).

Report
------
:func:`write_report` assembles REPORT.md from :class:`Section` s (Markdown text, embedded ``.md``
files, relative links to images) and the :func:`provenance` of the run.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .io import atomic_path, sha256_file, write_text

# ---------------------------------------------------------------------------------------------
# Constants

#: Every metric column of Tables 2 and 3, in the paper's order.
METRICS = ("nll_test", "kl_test", "au", "nll_train", "kl_train", "mi", "md", "sc")
#: Metrics shown per table. Table 1 of the paper has only AU; ours adds KL_test and NLL_test.
TABLE_METRICS = {1: ("au", "kl_test", "nll_test"), 2: METRICS, 3: METRICS}
#: Column headers of the Markdown tables.
METRIC_LABELS = {"nll_test": "NLL_test", "kl_test": "KL_test", "au": "AU", "nll_train": "NLL_train",
                 "kl_train": "KL_train", "mi": "MI", "md": "MD", "sc": "SC"}
#: Which data set each table reports, and its training-set size N in the paper (§5.1).
TABLE_DATASETS = {1: "MNIST", 2: "MNIST", 3: "Omniglot"}
PAPER_N = {2: 55_000, 3: 24_345}
TABLE_TITLES = {
    1: "Table 1: active units of z vs decoder depth (VAE, MNIST)",
    2: "Table 2: VAE-AS on MNIST, α and β sweeps",
    3: "Table 3: VAE-AS on Omniglot, α and β sweeps",
}
CELL_LEGEND = ("Cells: our mean ± sd over seeds (paper's value, Δ = ours − paper). NLL, KL, MI, MD "
               "and SC in nats; AU is a count of latent dimensions. '—': not run / not reported.")

TREND_RHO = 0.8
MI_BOUND_TOL = 0.5
FIG3_REL_TOL = 0.05

_MINUS = "\u2212"


# ---------------------------------------------------------------------------------------------
# Paper values

def paper_values(table: int) -> pd.DataFrame:
    """The paper's rows of Table ``table`` (1, 2 or 3), in the paper's order.

    Columns ``table, method, alpha, beta, decoder_layers`` and the metrics of :data:`METRICS`
    (NaN where the paper gives none: every column but AU in Table 1, MI/MD/SC and α/β for VAE).
    """
    _check_table(table)
    text = resources.files("vaeas").joinpath("reference/paper_tables.csv").read_text(encoding="utf-8")
    frame = pd.read_csv(io.StringIO(text))
    out = frame[frame["table"] == table].reset_index(drop=True)
    for col in ("alpha", "beta", "decoder_layers", *METRICS):
        out[col] = out[col].astype(float)
    return out


def _check_table(table: int) -> None:
    if table not in (1, 2, 3):
        raise ValueError(f"table must be 1, 2 or 3, got {table!r}")


# ---------------------------------------------------------------------------------------------
# Tables

def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _config_key(table: int, method: str, alpha: float, beta: float, layers: float) -> str:
    if table == 1:
        return f"L{int(layers)}"
    if method == "vae":
        return "vae"
    return f"vaeas a={alpha:g} b={beta:g}"


def _config_label(table: int, method: str, alpha: float, beta: float, layers: float) -> str:
    if table == 1:
        return f"{int(layers)} decoder layer{'s' if int(layers) != 1 else ''}"
    if method == "vae":
        return "VAE"
    return f"VAE-AS α={alpha:g} β={beta:g}"


def _normalise_row(table: int, row: Mapping) -> dict:
    method = row.get("objective", row.get("method"))
    if method not in ("vae", "vaeas"):
        raise ValueError(f"metrics row has objective {method!r}; expected 'vae' or 'vaeas'")
    alpha, beta = round(_num(row.get("alpha")), 6), round(_num(row.get("beta")), 6)
    if method == "vae":  # α and β do not enter the ELBO; the paper leaves them blank
        alpha = beta = math.nan
    layers = _num(row.get("decoder_layers"))
    if table == 1 and not math.isfinite(layers):
        raise ValueError("Table 1 rows need 'decoder_layers'")
    out = {"method": method, "alpha": alpha, "beta": beta, "decoder_layers": layers,
           "seed": row.get("seed"), "dataset": row.get("dataset"),
           "log_n": _num(row.get("log_n")), "label_count": _num(row.get("label_count"))}
    out.update({m: _num(row.get(m)) for m in METRICS})
    out["key"] = _config_key(table, method, alpha, beta, layers)
    return out


def build_table(table: int, rows: Sequence[Mapping]) -> pd.DataFrame:
    """Our metrics rows of one table, aggregated over seeds, beside the paper's values.

    ``rows`` are metrics.json dicts of the runs of this table's experiment. Table 1 uses the
    ``objective == 'vae'`` rows, one configuration per ``decoder_layers``; Tables 2/3 group by
    (objective, α, β), α and β being ignored for VAE. Rows of several data sets, or a
    configuration whose runs differ in decoder depth, or a seed given twice, are an error.
    The result is ordered as the paper's table, then our extra configurations.
    """
    _check_table(table)
    norm = [_normalise_row(table, r) for r in rows]
    if table == 1:
        norm = [r for r in norm if r["method"] == "vae"]
    ours = pd.DataFrame(norm, columns=["key", "method", "alpha", "beta", "decoder_layers", "seed", "dataset",
                                       "log_n", "label_count", *METRICS])
    datasets = sorted({str(d) for d in ours["dataset"].dropna()})
    if len(datasets) > 1:
        raise ValueError(f"Table {table}: rows of several data sets ({', '.join(datasets)}); pass one data set's rows")
    metrics = TABLE_METRICS[table]

    agg_rows = []
    for key, group in ours.groupby("key", sort=False):
        seeds = group["seed"].dropna().tolist()
        if len(seeds) != len(set(seeds)):
            raise ValueError(f"Table {table}, configuration {key}: a seed appears twice ({seeds})")
        if table != 1 and group["decoder_layers"].nunique(dropna=True) > 1:
            raise ValueError(f"Table {table}, configuration {key}: runs differ in decoder_layers "
                             f"({sorted(group['decoder_layers'].dropna().unique())})")
        first = group.iloc[0]
        rec = {"key": key, "method": first["method"], "alpha": first["alpha"], "beta": first["beta"],
               "decoder_layers": first["decoder_layers"], "n_seeds": len(group),
               "log_n": group["log_n"].mean(), "label_count": group["label_count"].mean()}
        for m in metrics:
            values = group[m].dropna()
            rec[f"{m}_mean"] = values.mean() if len(values) else math.nan
            rec[f"{m}_sd"] = values.std(ddof=1) if len(values) > 1 else math.nan
        agg_rows.append(rec)
    agg = pd.DataFrame(agg_rows, columns=["key", "method", "alpha", "beta", "decoder_layers", "n_seeds",
                                          "log_n", "label_count",
                                          *[f"{m}_{s}" for m in metrics for s in ("mean", "sd")]])

    paper = paper_values(table)
    paper["key"] = [_config_key(table, r.method, r.alpha, r.beta, r.decoder_layers) for r in paper.itertuples()]
    paper = paper.rename(columns={m: f"{m}_paper" for m in METRICS})[
        ["key", "method", "alpha", "beta", "decoder_layers", *[f"{m}_paper" for m in metrics]]]
    paper["_order"] = np.arange(len(paper))

    merged = paper.merge(agg, on="key", how="outer", suffixes=("", "_ours"))
    for col in ("method", "alpha", "beta", "decoder_layers"):
        merged[col] = merged[col].where(merged["_order"].notna(), merged[f"{col}_ours"])
        if table != 1 and col == "decoder_layers":  # the paper's Tables 2/3 do not list it; ours does
            merged[col] = merged[f"{col}_ours"]
    merged["in_paper"] = merged["_order"].notna()
    merged["n_seeds"] = merged["n_seeds"].fillna(0).astype(int)
    extra_order = merged[["method", "alpha", "beta", "decoder_layers"]].apply(
        lambda r: (str(r["method"]), _sort_num(r["decoder_layers"]), _sort_num(r["alpha"]), _sort_num(r["beta"])), axis=1)
    merged["_extra"] = extra_order
    merged = pd.concat([merged[merged["in_paper"]].sort_values("_order"),
                        merged[~merged["in_paper"]].sort_values("_extra")], ignore_index=True)
    for m in metrics:
        merged[f"{m}_delta"] = merged[f"{m}_mean"] - merged[f"{m}_paper"]
    merged["config"] = [_config_label(table, r.method, r.alpha, r.beta, r.decoder_layers) for r in merged.itertuples()]
    keys = ["decoder_layers"] if table == 1 else ["method", "alpha", "beta", "decoder_layers"]
    cols = ["config", *keys, "n_seeds", "in_paper", "log_n", "label_count",
            *[f"{m}_{s}" for m in metrics for s in ("mean", "sd", "paper", "delta")]]
    out = merged[cols].reset_index(drop=True)
    out["dataset"] = datasets[0] if datasets else ""
    out.attrs["table"] = table
    return out


def table_title(df: pd.DataFrame, table: int) -> str:
    """The paper's title, plus which data set our numbers come from when it is not the paper's."""
    ours = str(df["dataset"].iloc[0]) if "dataset" in df.columns and len(df) and isinstance(df["dataset"].iloc[0], str) else ""
    if ours and ours.lower() != TABLE_DATASETS[table].lower():
        return f"{TABLE_TITLES[table]} — ours on {ours}, the paper's on {TABLE_DATASETS[table]}"
    return TABLE_TITLES[table]


def _sort_num(value: Any) -> float:
    v = _num(value)
    return -math.inf if math.isnan(v) else v


def _table_of(df: pd.DataFrame) -> int:
    table = df.attrs.get("table")
    if table in (1, 2, 3):
        return table
    return 2 if "method" in df.columns else 1


def _fmt(value: float, metric: str, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if metric == "au" and not signed and float(value).is_integer():
        text = f"{int(value)}"
    elif metric == "au":
        text = f"{value:+.1f}" if signed else f"{value:.1f}"
    else:
        text = f"{value:+.2f}" if signed else f"{value:.2f}"
    return text.replace("-", _MINUS)


def format_cell(mean: float, sd: float, paper: float, delta: float, metric: str) -> str:
    """One cell of :func:`format_table`: ``mean ± sd (paper p, Δ d)`` (see the module docstring)."""
    ours = _fmt(mean, metric)
    if math.isfinite(mean) and math.isfinite(sd):
        ours += f" ± {_fmt(sd, metric if metric != 'au' else 'sd')}"
    if not math.isfinite(paper):
        return ours
    if not math.isfinite(mean):
        return f"— (paper {_fmt(paper, metric)})"
    return f"{ours} (paper {_fmt(paper, metric)}, Δ {_fmt(delta, metric, signed=True)})"


def format_table(df: pd.DataFrame) -> str:
    """A Markdown table (GitHub pipes) of a :func:`build_table` frame, one cell per metric."""
    from tabulate import tabulate

    table = _table_of(df)
    metrics = TABLE_METRICS[table]
    if table == 1:
        headers = ["Decoder layers", "Seeds"]
        keys = lambda r: [f"{int(r['decoder_layers'])}"]  # noqa: E731
    else:
        headers = ["Method", "α", "β", "Seeds"]
        keys = lambda r: ["VAE" if r["method"] == "vae" else "VAE-AS",  # noqa: E731
                          "—" if r["method"] == "vae" else f"{r['alpha']:g}",
                          "—" if r["method"] == "vae" else f"{r['beta']:g}"]
    headers += [METRIC_LABELS[m] for m in metrics]
    body = []
    for _, r in df.iterrows():
        cells = [format_cell(r[f"{m}_mean"], r[f"{m}_sd"], r[f"{m}_paper"], r[f"{m}_delta"], m) for m in metrics]
        body.append([*keys(r), str(int(r["n_seeds"])), *cells])
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def write_table(df: pd.DataFrame, csv_path: str | os.PathLike, md_path: str | os.PathLike) -> None:
    """The full frame as CSV, and a captioned Markdown rendering (:func:`format_table`)."""
    table = _table_of(df)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    caption = f"**{table_title(df, table)}.** {CELL_LEGEND}"
    write_text(md_path, f"{caption}\n\n{format_table(df)}\n")


# ---------------------------------------------------------------------------------------------
# Figures

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    plt = _pyplot()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)


def _style():
    import seaborn as sns

    return sns.axes_style("whitegrid")


def combine_mc(mc_frames: Sequence[pd.DataFrame] | pd.DataFrame,
               softmax_rows: Sequence[Mapping]) -> pd.DataFrame:
    """Concatenate Figure 2's mc.csv frames with their models' softmax estimates.

    ``mc_frames[i]`` and ``softmax_rows[i]`` (the model's metrics.json) belong to the same
    model. Adds ``model`` (a legend label naming the label count), ``label_count``, ``log_n``,
    ``softmax_mi`` and ``softmax_md``. A pair whose data set, α, β or seed disagree is an error.
    """
    frames = [mc_frames] if isinstance(mc_frames, pd.DataFrame) else list(mc_frames)
    rows = list(softmax_rows)
    if len(frames) != len(rows):
        raise ValueError(f"combine_mc: {len(frames)} Monte Carlo frames but {len(rows)} softmax rows")
    counts = [int(_num(r.get("label_count"))) if math.isfinite(_num(r.get("label_count"))) else None for r in rows]
    out = []
    for frame, row, count in zip(frames, rows, counts):
        frame = frame.copy()
        for col in ("dataset", "alpha", "beta", "seed"):
            if col in frame.columns and col in row and len(frame):
                mine = frame[col].iloc[0]
                same = mine == row[col] if col == "dataset" else math.isclose(_num(mine), _num(row[col]))
                if not same:
                    raise ValueError(f"combine_mc: mc frame has {col}={mine!r} but its metrics row has {row[col]!r}")
        label = "VAE-AS" + (f", {count:,} labels" if count else "")
        if counts.count(count) > 1:
            label += f", α={_num(row.get('alpha')):g} β={_num(row.get('beta')):g} seed {row.get('seed')}"
        frame["model"] = label
        frame["label_count"] = count
        frame["log_n"] = _num(row.get("log_n"))
        frame["softmax_mi"] = _num(row.get("mi"))
        frame["softmax_md"] = _num(row.get("md"))
        out.append(frame)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def figure_mc_vs_softmax(mc_frames: Sequence[pd.DataFrame] | pd.DataFrame, softmax_rows: Sequence[Mapping],
                         path: str | os.PathLike) -> pd.DataFrame:
    """Figure 2: Monte Carlo MI and MD vs sample size S (mean ± sd over repeats) and the softmax
    estimates as horizontal lines, one colour per model (label count). Returns the combined frame."""
    import seaborn as sns

    plt = _pyplot()
    mc = combine_mc(mc_frames, softmax_rows)
    if mc.empty:
        raise ValueError("figure_mc_vs_softmax: no Monte Carlo data")
    models = list(dict.fromkeys(mc["model"]))
    palette = dict(zip(models, sns.color_palette("colorblind", len(models))))
    dataset = ", ".join(sorted({str(d) for d in mc.get("dataset", pd.Series(dtype=str)).dropna()})) or "training set"
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=(13, 5))
        panels = [("mi", "softmax_mi", "Mutual information I(z, x)", "MI (nats)"),
                  ("md", "softmax_md", "Marginal KL divergence KL(q(z) ‖ p(z))", "MD (nats)")]
        for ax, (col, soft, title, ylabel) in zip(axes, panels):
            for model in models:
                sub = mc[mc["model"] == model]
                colour = palette[model]
                sns.lineplot(data=sub, x="size", y=col, errorbar="sd", marker="o", color=colour, ax=ax,
                             label=f"Monte Carlo, {model} (mean ± sd)")
                value = sub[soft].iloc[0]
                if math.isfinite(value):
                    ax.axhline(value, color=colour, ls="--", lw=1.6, label=f"softmax estimate, {model}: {value:.2f}")
            if col == "mi":
                log_ns = sorted({v for v in mc["log_n"] if math.isfinite(v)})
                for log_n in log_ns:
                    ax.axhline(log_n, color="0.4", ls=":", lw=1.2, label=f"log N = {log_n:.2f} (upper bound of MI)")
            ax.set_xscale("log")
            ax.set_xlabel("Monte Carlo sample size S (log scale)")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.legend(fontsize=8, loc="best")
        repeats = mc.groupby(["model", "size"]).size().max()
        fig.suptitle(f"Figure 2 ({dataset}): Monte Carlo estimates on S samples ({repeats} repeats) "
                     f"vs the auxiliary softmax estimates")
        fig.tight_layout()
    _save(fig, path)
    return mc


def figure_kl_decomposition(log_frame: pd.DataFrame, path: str | os.PathLike, title: str = "") -> None:
    """Figure 3: mean KL(q(z|x) ‖ p(z)) vs MI + MD over training epochs (top), and SC with the gap
    KL − (MI + MD) (bottom). Several runs in ``log_frame`` are averaged per epoch (± sd band)."""
    import seaborn as sns

    plt = _pyplot()
    frame = log_frame.dropna(subset=["mi", "md"]).copy()
    if frame.empty:
        raise ValueError("figure_kl_decomposition: the log has no MI/MD (a VAE run?); pass a VAE-AS log")
    frame["mi_plus_md"] = frame["mi"] + frame["md"]
    frame["gap"] = frame["kl"] - frame["mi_plus_md"]
    top = frame.melt(id_vars="epoch", value_vars=["kl", "mi_plus_md", "mi", "md"], var_name="quantity", value_name="nats")
    names = {"kl": "mean KL(q(z|x) ‖ p(z))", "mi_plus_md": "MI + MD (softmax)", "mi": "MI", "md": "MD",
             "sc": "SC (softmax cross-entropy)", "gap": "KL − (MI + MD)"}
    top["quantity"] = top["quantity"].map(names)
    bottom = frame.melt(id_vars="epoch", value_vars=["sc", "gap"], var_name="quantity", value_name="nats")
    bottom["quantity"] = bottom["quantity"].map(names)
    with _style():
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 8), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
        styles = {names["kl"]: "", names["mi_plus_md"]: (4, 2), names["mi"]: (1, 2), names["md"]: (1, 2)}
        sns.lineplot(data=top, x="epoch", y="nats", hue="quantity", style="quantity", dashes=styles,
                     errorbar="sd", ax=ax1, palette=sns.color_palette("colorblind", 4))
        ax1.set_ylabel("nats per sample")
        ax1.set_title("Mean KL vs its decomposition MI + MD")
        ax1.legend(title=None, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        sns.lineplot(data=bottom, x="epoch", y="nats", hue="quantity", errorbar="sd", ax=ax2,
                     palette=sns.color_palette("colorblind", 6)[4:6])
        ax2.axhline(0, color="0.5", lw=0.8)
        ax2.set_ylabel("nats per sample")
        ax2.set_xlabel("training epoch")
        ax2.set_title("Softmax cross-entropy SC and the gap KL − (MI + MD) (= H − SC with one label per sample)")
        ax2.legend(title=None, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.suptitle(title or "Figure 3: KL divergence = mutual information + marginal divergence (training set)")
        fig.tight_layout()
    _save(fig, path)


def _load_entry(entry) -> tuple[Any, dict]:
    if isinstance(entry, tuple) and len(entry) == 2:
        return entry
    from .training.checkpoint import load_model

    return load_model(entry, "cpu")


def reconstruction_grid(model, images: np.ndarray | Any, image_shape: Sequence[int], nrow: int = 8,
                        reconstruct: bool = True):
    """A (H', W') numpy grid of ``images`` (n, H·W), or of their reconstructions
    sigmoid(decode(μ(x))) when ``reconstruct``."""
    import torch
    from torchvision.utils import make_grid

    x = torch.as_tensor(images, dtype=torch.float32)
    if reconstruct:
        with torch.no_grad():
            mu, _ = model.encode(x)
            x = torch.sigmoid(model.decode(mu)).float()
    h, w = int(image_shape[0]), int(image_shape[1])
    grid = make_grid(x.view(-1, 1, h, w), nrow=nrow, padding=2, pad_value=0.5)
    return grid[0].cpu().numpy()


def figure_reconstructions(entries, path: str | os.PathLike, n: int = 64, data_root: str | None = None,
                           data=None) -> None:
    """Figures 4/5: reconstructions of a small-α and a large-α model on test and train images.

    ``entries``: the two models, each a model file path (read with
    :func:`vaeas.training.load_model`) or an already loaded ``(model, meta)`` pair; a mapping's
    values are used. The model with the smaller α gives panels (a), (d), the larger (c), (f).
    Images: the first ``n`` of each split, binarized as in evaluation (train: ``binarize_seed``,
    test: ``binarize_seed + 1``); reconstruction = sigmoid(decode(μ(x))). ``data`` (an object with
    ``train_x``, ``test_x``) replaces loading the data set with :func:`vaeas.data.load`.
    """
    from .runtime import eval_binarized

    plt = _pyplot()
    items = list(entries.values()) if isinstance(entries, Mapping) else list(entries)
    if len(items) != 2:
        raise ValueError(f"figure_reconstructions: expected two models (small and large α), got {len(items)}")
    loaded = sorted((_load_entry(e) for e in items), key=lambda mm: mm[1]["spec"].alpha)
    (m_lo, meta_lo), (m_hi, meta_hi) = loaded
    if meta_lo["spec"].dataset != meta_hi["spec"].dataset:
        raise ValueError(f"figure_reconstructions: models of different data sets ({meta_lo['spec'].dataset}, {meta_hi['spec'].dataset})")
    dataset = meta_lo["spec"].dataset
    if data is None:
        from . import data as data_mod

        data = data_mod.load(dataset, data_root or meta_lo["cfg"].data.root)
    shape = meta_lo["image_shape"]
    seed = meta_lo["cfg"].evaluation.binarize_seed
    test = eval_binarized(data.test_x, seed + 1)[:n]
    train = eval_binarized(data.train_x, seed)[:n]
    a_lo, a_hi = meta_lo["spec"].alpha, meta_hi["spec"].alpha
    b_lo, b_hi = meta_lo["spec"].beta, meta_hi["spec"].beta
    m_lo.eval(), m_hi.eval()
    panels = [
        (f"(a) α = {a_lo:g}: reconstruction, test", reconstruction_grid(m_lo, test, shape)),
        ("(b) test images (binarized)", reconstruction_grid(None, test, shape, reconstruct=False)),
        (f"(c) α = {a_hi:g}: reconstruction, test", reconstruction_grid(m_hi, test, shape)),
        (f"(d) α = {a_lo:g}: reconstruction, train", reconstruction_grid(m_lo, train, shape)),
        ("(e) training images (binarized)", reconstruction_grid(None, train, shape, reconstruct=False)),
        (f"(f) α = {a_hi:g}: reconstruction, train", reconstruction_grid(m_hi, train, shape)),
    ]
    gh, gw = panels[0][1].shape
    panel_w = 4.3
    fig, axes = plt.subplots(2, 3, figsize=(3 * panel_w, 2 * (panel_w * gh / gw + 0.45) + 0.5))
    for ax, (title, grid) in zip(axes.flat, panels):
        ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(title, fontsize=11)
        ax.set_axis_off()
    beta = f"β = {b_lo:g}" if b_lo == b_hi else f"β = {b_lo:g} / {b_hi:g}"
    fig.suptitle(f"Reconstructions on {dataset} ({len(test)} images each): α = {a_lo:g} vs α = {a_hi:g}, {beta}; "
                 f"pixel intensity = Bernoulli mean", fontsize=12)
    fig.tight_layout()
    _save(fig, path)


def _sweep(df: pd.DataFrame, fixed: str, vary: str) -> pd.DataFrame:
    sel = df[(df["method"] == "vaeas") & np.isclose(df[fixed].astype(float), 1.0)]
    return sel.sort_values(vary)


def figure_table(df: pd.DataFrame, table: int, path: str | os.PathLike) -> None:
    """A table as trends: Table 1, AU vs decoder depth; Tables 2/3, NLL_test, KL_test, AU, MI, MD
    vs β (α = 1) and vs α (β = 1). Ours: mean ± sd bars; paper: hollow markers, dashed."""
    import seaborn as sns

    plt = _pyplot()
    _check_table(table)
    ours_c, paper_c = sns.color_palette("colorblind", 2)
    ours_kw = dict(color=ours_c, marker="o", capsize=3, lw=1.8, label="ours (mean ± sd over seeds)")
    paper_kw = dict(color=paper_c, marker="s", ms=9, mfc="none", mew=1.6, ls="--", lw=1.4, label="paper", zorder=4)
    with _style():
        if table == 1:
            fig, ax = plt.subplots(figsize=(7, 4.8))
            sub = df.sort_values("decoder_layers")
            mine, theirs = sub[sub["au_mean"].notna()], sub[sub["au_paper"].notna()]
            ours_h = ax.errorbar(mine["decoder_layers"], mine["au_mean"], yerr=mine["au_sd"].fillna(0), **ours_kw)
            paper_h, = ax.plot(theirs["decoder_layers"], theirs["au_paper"], **paper_kw)
            ax.set_xlabel("decoder hidden layers")
            ax.set_ylabel("active units AU (count, Cov ≥ 0.01)")
            ax.set_xticks(sorted(sub["decoder_layers"].dropna().unique()))
            ax.set_title(table_title(df, 1))
            ax.legend([ours_h, paper_h], [ours_kw["label"], paper_kw["label"]])
            fig.tight_layout()
            _save(fig, path)
            return
        metrics = ("nll_test", "kl_test", "au", "mi", "md")
        units = {"au": "active units (count)"}
        vae = df[df["method"] == "vae"]
        fig, axes = plt.subplots(2, len(metrics), figsize=(4.0 * len(metrics), 8))
        for row_i, (fixed, vary, sym) in enumerate((("alpha", "beta", "β"), ("beta", "alpha", "α"))):
            sub = _sweep(df, fixed, vary)
            for ax, m in zip(axes[row_i], metrics):
                mine = sub[sub[f"{m}_mean"].notna()]      # connect the settings that exist
                ax.errorbar(mine[vary], mine[f"{m}_mean"], yerr=mine[f"{m}_sd"].fillna(0), **ours_kw)
                theirs = sub[sub[f"{m}_paper"].notna()]
                ax.plot(theirs[vary], theirs[f"{m}_paper"], **paper_kw)
                if len(vae) and m not in ("mi", "md"):
                    v_ours, v_paper = vae[f"{m}_mean"].iloc[0], vae[f"{m}_paper"].iloc[0]
                    if math.isfinite(v_ours):
                        ax.axhline(v_ours, color=ours_c, ls=":", lw=1.2, label="VAE, ours")
                    if math.isfinite(v_paper):
                        ax.axhline(v_paper, color=paper_c, ls=":", lw=1.2, label="VAE, paper")
                if m == "mi":
                    log_n = df["log_n"].dropna()
                    bound = log_n.iloc[0] if len(log_n) else (math.log(PAPER_N[table]))
                    ax.axhline(bound, color="0.45", ls="-.", lw=1.0, label=f"log N = {bound:.2f}")
                ax.set_xscale("log")
                ticks = sorted(v for v in sub[vary].dropna().unique())
                if ticks:
                    ax.set_xticks(ticks)
                    ax.set_xticklabels([f"{t:g}" for t in ticks])
                    ax.minorticks_off()
                other = "α" if sym == "β" else "β"
                ax.set_xlabel(f"{sym} (log scale), {other} = 1")
                ax.set_ylabel(units.get(m, f"{METRIC_LABELS[m]} (nats)"))
                ax.set_title(f"{METRIC_LABELS[m]} vs {sym}")
        handles = {}
        for ax in axes.flat:
            for h, l in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(l, h)
        order = ["ours (mean ± sd over seeds)", "paper", "VAE, ours", "VAE, paper"]
        handles = dict(sorted(handles.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
        fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=len(handles),
                   bbox_to_anchor=(0.5, -0.02))
        fig.suptitle(table_title(df, table))
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Claims

@dataclass
class Claim:
    """One machine-checked statement: ``passed`` for our numbers, ``paper_passed`` for the
    paper's own numbers under the same check; ``None`` = not enough data."""

    id: str
    statement: str
    passed: bool | None
    evidence: str
    paper_passed: bool | None = None


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    xs, ys = pd.Series(list(x), dtype=float), pd.Series(list(y), dtype=float)
    if xs.nunique() < 2 or ys.nunique() < 2:
        return math.nan
    return float(xs.rank().corr(ys.rank()))


def _series_text(series: pd.Series, sym: str, digits: int = 2) -> str:
    return ", ".join(f"{sym}={k:g}: {v:.{digits}f}" for k, v in series.items())


def trend(series: pd.Series, direction: int) -> tuple[bool | None, str]:
    """Whether ``series`` (indexed by the swept value) moves in ``direction`` (−1 falls, +1 rises):
    Spearman ρ·direction ≥ :data:`TREND_RHO` and last − first has the sign of ``direction``."""
    s = series.dropna().sort_index()
    if len(s) < 2:
        return None, "fewer than 2 settings"
    rho = _spearman(s.index, s.values)
    change = s.iloc[-1] - s.iloc[0]
    ok = bool(math.isfinite(rho) and direction * rho >= TREND_RHO - 1e-9 and direction * change > 0)
    rho_text = "undefined (constant)" if not math.isfinite(rho) else f"{rho:+.2f}"
    return ok, f"Spearman ρ = {rho_text}, last − first = {change:+.2f}"


def _value_col(df: pd.DataFrame, metric: str, source: str) -> pd.Series:
    suffix = "mean" if source == "ours" else "paper"
    if metric == "gap":
        return df[f"nll_test_{suffix}"] - df[f"nll_train_{suffix}"]
    return df[f"{metric}_{suffix}"]


def _both(check, ours_df: pd.DataFrame | None, paper_df: pd.DataFrame) -> tuple[bool | None, str, bool | None, str]:
    if ours_df is None:
        ours_ok, ours_text = None, "no results of ours"
    else:
        ours_ok, ours_text = check(ours_df, "ours")
    paper_ok, paper_text = check(paper_df, "paper")
    return ours_ok, ours_text, paper_ok, paper_text


def _make(cid: str, statement: str, result) -> Claim:
    ours_ok, ours_text, paper_ok, paper_text = result
    return Claim(cid, statement, ours_ok, f"ours: {ours_text}. Paper: {paper_text}.", paper_ok)


def _trend_check(fixed: str, vary: str, sym: str, metric: str, direction: int):
    def check(df: pd.DataFrame, source: str):
        sub = _sweep(df, fixed, vary)
        values = pd.Series(_value_col(sub, metric, source).values, index=sub[vary].values)
        values = values.dropna()
        if len(values) < 2:
            return None, f"{len(values)} {sym} setting(s) with {METRIC_LABELS.get(metric, metric)}"
        ok, text = trend(values, direction)
        digits = 1 if metric == "au" else 2
        return ok, f"{_series_text(values, sym, digits)} ({text})"
    return check


def _mi_bound_check(table: int):
    def check(df: pd.DataFrame, source: str):
        sel = df[(df["method"] == "vaeas") & (df["alpha"] <= 2 + 1e-9) & (df["beta"] <= 1 + 1e-9)]
        mi = _value_col(sel, "mi", source)
        sel, mi = sel[mi.notna()], mi[mi.notna()]
        if not len(sel):
            return None, "no VAE-AS run with α ≤ 2, β ≤ 1"
        if source == "paper":
            bounds = pd.Series(math.log(PAPER_N[table]), index=sel.index)
            which = f"log N = log {PAPER_N[table]:,} = {bounds.iloc[0]:.2f}"
        else:
            counts = sel["label_count"]
            bounds = np.log(counts.where(counts > 0)).fillna(sel["log_n"])
            if bounds.isna().all():
                return None, "no label_count or log_n in our metrics"
            uniq = sorted({round(float(b), 2) for b in bounds.dropna()})
            which = ("log V with V = label_count = " + ", ".join(f"{int(c):,}" for c in sorted(set(counts.dropna())))
                     + f" ({', '.join(f'{u:.2f}' for u in uniq)} nats; log N = {sel['log_n'].dropna().iloc[0]:.2f})"
                     if counts.notna().any() else f"log N = {uniq[0]:.2f} (no label_count)")
        gaps = bounds - mi
        worst = gaps.idxmax()
        ok = bool((gaps <= MI_BOUND_TOL).all())
        return ok, (f"max bound − MI = {gaps.max():.2f} nats at α={df.loc[worst, 'alpha']:g} β={df.loc[worst, 'beta']:g} "
                    f"(MI = {mi[worst]:.2f}, bound {which}; {len(sel)} runs, tolerance {MI_BOUND_TOL})")
    return check


def _vae_au_check(df: pd.DataFrame, source: str):
    vae = _value_col(df[df["method"] == "vae"], "au", source).dropna()
    sel = df[(df["method"] == "vaeas") & np.isclose(df["alpha"].astype(float), 1.0) & (df["beta"] <= 1 + 1e-9)]
    au = pd.Series(_value_col(sel, "au", source).values, index=sel["beta"].values).dropna().sort_index()
    if not len(vae) or not len(au):
        return None, "needs the VAE row and VAE-AS α=1, β ≤ 1 rows"
    ok = bool((au > vae.iloc[0]).all())
    return ok, f"VAE AU = {vae.iloc[0]:.1f}; VAE-AS α=1: {_series_text(au, 'β', 1)}"


def _vae_nll_check(df: pd.DataFrame, source: str):
    vae = _value_col(df[df["method"] == "vae"], "nll_test", source).dropna()
    sel = df[(df["method"] == "vaeas") & np.isclose(df["alpha"].astype(float), 1.0) & np.isclose(df["beta"].astype(float), 1.0)]
    ours = _value_col(sel, "nll_test", source).dropna()
    if not len(vae) or not len(ours):
        return None, "needs the VAE row and the VAE-AS α=1, β=1 row"
    return bool(ours.iloc[0] < vae.iloc[0]), f"NLL_test VAE-AS(α=1, β=1) = {ours.iloc[0]:.2f} vs VAE = {vae.iloc[0]:.2f}"


def _table_claims(table: int, ours: pd.DataFrame | None) -> list[Claim]:
    paper = build_table(table, [])
    if ours is not None and not (ours["n_seeds"] > 0).any():
        ours = None
    ds = TABLE_DATASETS[table]
    t = f"T{table}"
    claims = []
    beta_specs = [("kl_test", "KL_test"), ("au", "AU"), ("md", "MD"), ("mi", "MI")]
    for metric, name in beta_specs:
        claims.append(_make(f"{t}-beta-{name}", f"{ds}: with α = 1, raising β lowers {name} (§5.3, Table {table})",
                            _both(_trend_check("alpha", "beta", "β", metric, -1), ours, paper)))
    claims.append(_make(f"{t}-MI-bound", f"{ds}: MI stays within {MI_BOUND_TOL} nats of its upper bound log N for "
                                         f"α ≤ 2 and β ≤ 1 (§5.3, Table {table})",
                        _both(_mi_bound_check(table), ours, paper)))
    alpha_specs = [("mi", -1, "large α lowers MI"), ("au", -1, "large α lowers AU (fewer active units)"),
                   ("nll_train", +1, "raising α raises NLL_train (small α fits the training set more closely)"),
                   ("gap", -1, "raising α shrinks the generalisation gap NLL_test − NLL_train (small α overfits)")]
    for metric, direction, text in alpha_specs:
        name = {"mi": "MI", "au": "AU", "nll_train": "NLL_train", "gap": "gap"}[metric]
        claims.append(_make(f"{t}-alpha-{name}", f"{ds}: with β = 1, {text} (§5.3, Table {table})",
                            _both(_trend_check("beta", "alpha", "α", metric, direction), ours, paper)))
    claims.append(_make(f"{t}-AU-vs-VAE", f"{ds}: VAE-AS with α = 1, β ≤ 1 has more active units than VAE "
                                          f"(less posterior collapse; abstract, Table {table})",
                        _both(_vae_au_check, ours, paper)))
    claims.append(_make(f"{t}-NLL-vs-VAE", f"{ds}: VAE-AS (α = β = 1) has a lower NLL_test than VAE (Table {table})",
                        _both(_vae_nll_check, ours, paper)))
    return claims


def _table1_claim(ours: pd.DataFrame | None) -> Claim:
    def check(df: pd.DataFrame, source: str):
        s = pd.Series(_value_col(df, "au", source).values, index=df["decoder_layers"].values).dropna()
        if len(s) < 2:
            return None, f"{len(s)} decoder depth(s) with AU"
        ok, text = trend(s, -1)
        return ok, f"{_series_text(s, 'layers', 1)} ({text})"
    if ours is not None and not (ours["n_seeds"] > 0).any():
        ours = None
    return _make("T1-AU-depth", "AU decreases as the decoder gets deeper (§2.2, Table 1)",
                 _both(check, ours, build_table(1, [])))


def _model_groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    ids = [c for c in ("model", "dataset", "alpha", "beta", "seed", "label_count", "run") if c in frame.columns]
    if not ids:
        return [("run", frame)]
    out = []
    for key, group in frame.groupby(ids, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        out.append((str(group["model"].iloc[0]) if "model" in group else ", ".join(map(str, key)), group))
    return out


def _fig2_claims(mc: pd.DataFrame | None) -> list[Claim]:
    no_paper = "Figure 2 is a plot without numbers (§5.2 describes the drift, the larger sd and the softmax agreement)"
    statements = {
        "Fig2-MC-drift": "Monte Carlo MI and MD drift from their largest-S value as S shrinks: "
                         "|MC(S_min) − MC(S_max)| > |MC(S_next) − MC(S_max)| (§5.2, Fig. 2)",
        "Fig2-MC-sd": "The Monte Carlo sd over repeats grows as S shrinks: sd(S_min) > sd(S_max), MI and MD (§5.2, Fig. 2)",
        "Fig2-softmax": "The softmax estimates are closer to the largest-S Monte Carlo estimate than the smallest-S "
                        "Monte Carlo estimate is, MI and MD (§5.2, Fig. 2)",
    }
    if mc is None or mc.empty:
        return [Claim(cid, text, None, f"ours: no Monte Carlo results. Paper: {no_paper}.") for cid, text in statements.items()]
    results = {cid: [] for cid in statements}
    for name, group in _model_groups(mc):
        stats = group.groupby("size")[["mi", "md"]].agg(["mean", "std"]).sort_index(ascending=False)
        sizes = list(stats.index)
        for q in ("mi", "md"):
            mean, sd = stats[(q, "mean")], stats[(q, "std")]
            s_max, s_min = sizes[0], sizes[-1]
            if len(sizes) >= 3:
                d_min, d_next = abs(mean[s_min] - mean[s_max]), abs(mean[sizes[1]] - mean[s_max])
                results["Fig2-MC-drift"].append((d_min > d_next, f"{name} {q.upper()}: |Δ| at S={s_min:,} {d_min:.2f} vs at "
                                                                 f"S={sizes[1]:,} {d_next:.2f} (MC(S={s_max:,}) = {mean[s_max]:.2f})"))
            else:
                results["Fig2-MC-drift"].append((None, f"{name}: needs ≥ 3 sizes S, has {len(sizes)}"))
            if len(sizes) >= 2 and math.isfinite(sd[s_min]) and math.isfinite(sd[s_max]):
                results["Fig2-MC-sd"].append((sd[s_min] > sd[s_max], f"{name} {q.upper()}: sd at S={s_min:,} {sd[s_min]:.3f} vs "
                                                                     f"at S={s_max:,} {sd[s_max]:.3f}"))
            else:
                results["Fig2-MC-sd"].append((None, f"{name}: needs ≥ 2 sizes and ≥ 2 repeats"))
            soft_col = f"softmax_{q}"
            soft = group[soft_col].dropna() if soft_col in group else pd.Series(dtype=float)
            if len(soft) and len(sizes) >= 2:
                e_soft, e_min = abs(soft.iloc[0] - mean[s_max]), abs(mean[s_min] - mean[s_max])
                results["Fig2-softmax"].append((e_soft < e_min, f"{name} {q.upper()}: |softmax {soft.iloc[0]:.2f} − MC(S={s_max:,}) "
                                                                f"{mean[s_max]:.2f}| = {e_soft:.2f} vs |MC(S={s_min:,}) − "
                                                                f"MC(S={s_max:,})| = {e_min:.2f}"))
            else:
                results["Fig2-softmax"].append((None, f"{name}: no softmax estimate or < 2 sizes"))
    claims = []
    for cid, items in results.items():
        verdicts = [v for v, _ in items]
        passed = None if any(v is None for v in verdicts) else bool(all(verdicts))
        claims.append(Claim(cid, statements[cid], passed, "ours: " + "; ".join(t for _, t in items) + f". Paper: {no_paper}."))
    return claims


def _fig3_claim(logs: pd.DataFrame | None) -> Claim:
    statement = (f"MI + MD tracks the mean KL: at the last training epoch |KL − (MI + MD)| ≤ {FIG3_REL_TOL:.0%} of KL "
                 "(§5.2, Fig. 3)")
    paper = paper_values(2)
    row = paper[(paper["method"] == "vaeas") & (paper["alpha"] == 1.0) & (paper["beta"] == 1.0)].iloc[0]
    p_sum = row["mi"] + row["md"]
    p_rel = abs(row["kl_train"] - p_sum) / row["kl_train"]
    paper_text = (f"Figure 3 has no numbers; Table 2 (α=β=1): KL_train {row['kl_train']:.2f} vs MI + MD {p_sum:.2f} "
                  f"({p_rel:.1%})")
    paper_ok = bool(p_rel <= FIG3_REL_TOL)
    frame = None if logs is None else logs.dropna(subset=[c for c in ("mi", "md") if c in logs.columns])
    if frame is None or frame.empty or not {"mi", "md", "kl", "epoch"} <= set(frame.columns):
        return Claim("Fig3-KL-decomposition", statement, None, f"ours: no VAE-AS training log. Paper: {paper_text}.", paper_ok)
    verdicts, texts = [], []
    for name, group in _model_groups(frame):
        group = group.sort_values("epoch")
        first, last = group.iloc[0], group.iloc[-1]
        total = last["mi"] + last["md"]
        rel = abs(last["kl"] - total) / abs(last["kl"]) if last["kl"] else math.inf
        rel0 = abs(first["kl"] - first["mi"] - first["md"]) / abs(first["kl"]) if first["kl"] else math.inf
        verdicts.append(rel <= FIG3_REL_TOL)
        texts.append(f"{name}: epoch {int(last['epoch'])} KL {last['kl']:.2f} vs MI + MD {total:.2f} ({rel:.1%}; "
                     f"epoch {int(first['epoch'])}: {rel0:.1%})")
    return Claim("Fig3-KL-decomposition", statement, bool(all(verdicts)),
                 "ours: " + "; ".join(texts) + f". Paper: {paper_text}.", paper_ok)


def check_claims(tables: Mapping[int, pd.DataFrame], mc: pd.DataFrame | None,
                 logs: pd.DataFrame | None) -> list[Claim]:
    """Check the qualitative claims of §2.2 and §5 on our results (see the module docstring).

    ``tables``: :func:`build_table` frames by table number (missing ones give N/A claims);
    ``mc``: :func:`combine_mc` output (or concatenated mc.csv rows, without the softmax claim);
    ``logs``: training log rows of the Figure-3 run(s) (a ``run`` column separates several).
    """
    claims = [_table1_claim(tables.get(1))]
    for table in (2, 3):
        claims += _table_claims(table, tables.get(table))
    claims += _fig2_claims(mc)
    claims.append(_fig3_claim(logs))
    return claims


def _verdict(value: bool | None) -> str:
    return "N/A" if value is None else ("PASS" if value else "FAIL")


def claims_summary(claims: Sequence[Claim]) -> str:
    """One line: counts of PASS / FAIL / N/A for ours and for the paper's own numbers."""
    def counts(values):
        v = [_verdict(x) for x in values]
        return f"{v.count('PASS')} PASS, {v.count('FAIL')} FAIL, {v.count('N/A')} N/A"
    return (f"{len(claims)} claims. Ours: {counts(c.passed for c in claims)}. "
            f"Paper's own numbers: {counts(c.paper_passed for c in claims)}.")


def format_claims(claims: Sequence[Claim]) -> str:
    """The claims as a Markdown table with the summary line above it."""
    from tabulate import tabulate

    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    body = [[c.id, esc(c.statement), _verdict(c.passed), _verdict(c.paper_passed), esc(c.evidence)] for c in claims]
    table = tabulate(body, headers=["Claim", "Statement", "Ours", "Paper's numbers", "Evidence"],
                     tablefmt="github", disable_numparse=True)
    return (f"**Summary:** {claims_summary(claims)}\n\n"
            f"'Paper's numbers' applies the same check to the paper's transcribed values; N/A = not enough data.\n\n"
            f"{table}\n")


def write_claims(claims: Sequence[Claim], path: str | os.PathLike) -> None:
    """Write ``claims.md``: summary line and the PASS/FAIL/N/A table."""
    write_text(path, format_claims(claims))


# ---------------------------------------------------------------------------------------------
# Provenance and the report

def collect_stage_times(metrics_rows: Sequence[Mapping] = (), logs: Mapping[str, pd.DataFrame] | None = None) -> dict[str, float]:
    """Wall time (s) per stage: training from the logs' per-epoch ``seconds`` (summed per run),
    evaluation from each metrics.json's ``seconds``; keys ``train: <run>``, ``evaluate: <run>``
    and the totals ``train (total)``, ``evaluate (total)``."""
    times: dict[str, float] = {}
    for name, frame in (logs or {}).items():
        if "seconds" in frame:
            times[f"train: {name}"] = float(frame["seconds"].sum())
    for row in metrics_rows:
        if math.isfinite(_num(row.get("seconds"))):
            name = (f"{row.get('dataset')} {row.get('objective')} a={_num(row.get('alpha')):g} "
                    f"b={_num(row.get('beta')):g} L={row.get('decoder_layers')} s={row.get('seed')}")
            key, i = f"evaluate: {name}", 2
            while key in times:
                key, i = f"evaluate: {name} #{i}", i + 1
            times[key] = float(row["seconds"])
    for stage in ("train", "evaluate"):
        parts = [v for k, v in times.items() if k.startswith(f"{stage}: ")]
        if parts:
            times[f"{stage} (total)"] = float(sum(parts))
    return times


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(params_path: str | os.PathLike, stage_times: Mapping[str, float], profile: str | None = None) -> dict:
    """What produced the report: git commit and dirty flag (of the repository holding
    ``params_path``), sha256 of params.yaml, the profile (``profile`` or the file's ``profile``
    key), package versions (None if not installed), this machine's CPU / CUDA device, and
    ``stage_times`` (see :func:`collect_stage_times`)."""
    params_path = Path(params_path)
    repo = params_path.resolve().parent
    commit = _git(["rev-parse", "HEAD"], repo)
    status = _git(["status", "--porcelain", "--untracked-files=no"], repo) if commit else None
    if profile is None and params_path.is_file():
        import yaml

        raw = yaml.safe_load(params_path.read_text()) or {}
        profile = raw.get("profile") if isinstance(raw, dict) else None
    packages = {}
    for name in ("vaeas", "torch", "torchvision", "numpy", "pandas", "seaborn", "matplotlib", "snakemake", "dvc"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    cuda = None
    try:
        import torch

        if torch.cuda.is_available():
            cuda = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - provenance must not fail on a broken CUDA setup
        cuda = None
    return {
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "params_sha256": sha256_file(params_path) if params_path.is_file() else None,
        "params_path": str(params_path),
        "profile": profile,
        "python": platform.python_version(),
        "packages": packages,
        "device": {"cpu": _cpu_model(), "cuda": cuda, "note": "the machine that wrote the report"},
        "stage_times_s": {k: round(float(v), 3) for k, v in stage_times.items()},
    }


def format_provenance(prov: Mapping) -> str:
    """Provenance as Markdown: a key/value table, package versions, and wall time per stage."""
    from tabulate import tabulate

    dev = prov.get("device", {}) or {}
    commit = prov.get("git_commit")
    rows = [["git commit", (f"`{commit}`" if commit else "unknown (not a git checkout)")
             + (" (dirty: uncommitted changes)" if prov.get("git_dirty") else "")],
            ["git dirty", str(prov.get("git_dirty"))],
            ["params.yaml sha256", f"`{prov.get('params_sha256')}`"],
            ["profile", str(prov.get("profile"))],
            ["python", str(prov.get("python"))],
            ["device (CPU)", str(dev.get("cpu"))],
            ["device (CUDA)", str(dev.get("cuda") or "none")]]
    rows += [[f"package {k}", str(v)] for k, v in (prov.get("packages") or {}).items()]
    out = tabulate(rows, headers=["Key", "Value"], tablefmt="github", disable_numparse=True)
    times = prov.get("stage_times_s") or {}
    if times:
        order = sorted(times, key=lambda k: (not k.endswith("(total)"), k))
        out += "\n\nWall time per stage (seconds):\n\n" + tabulate(
            [[k, f"{times[k]:.1f}"] for k in order], headers=["Stage", "Seconds"], tablefmt="github", disable_numparse=True)
    out += "\n\n<details><summary>provenance.json</summary>\n\n```json\n" + json.dumps(prov, indent=2, sort_keys=True) + "\n```\n\n</details>"
    return out


@dataclass
class Section:
    """One part of REPORT.md: a heading, Markdown ``body``, then ``files`` in order: ``.md`` files
    are embedded verbatim, images (``.png``, ``.svg``, ``.jpg``) linked relative to the report."""

    title: str
    body: str = ""
    files: Sequence[str | os.PathLike] = field(default_factory=tuple)


IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg")


def write_report(path: str | os.PathLike, sections: Sequence[Section], provenance: Mapping) -> None:
    """Write REPORT.md: the sections in order, then the provenance. A missing file is an error."""
    from .errors import VaeasError

    path = Path(path)
    base = path.resolve().parent
    parts = ["# VAE-AS reproduction report",
             "Reproduction of *Improve Variational Autoencoder with Auxiliary Softmax Multiclassifier* (VAE-AS). "
             + CELL_LEGEND]
    for section in sections:
        parts.append(f"## {section.title}")
        if section.body:
            parts.append(section.body.strip())
        for item in section.files:
            item = Path(item)
            if not item.is_file():
                raise VaeasError(f"report: {item} (section '{section.title}') not found")
            if item.suffix.lower() in IMAGE_SUFFIXES:
                rel = Path(os.path.relpath(item.resolve(), base)).as_posix()
                parts.append(f"![{section.title}: {item.name}]({rel})")
            else:
                parts.append(item.read_text(encoding="utf-8").strip())
    parts.append("## Provenance")
    parts.append(format_provenance(provenance))
    write_text(path, "\n\n".join(parts) + "\n")


def read_metrics(paths: Sequence[str | os.PathLike]) -> list[dict]:
    """The metrics.json files as a list of dicts (each with ``path`` added)."""
    rows = []
    for p in paths:
        row = json.loads(Path(p).read_text())
        row["path"] = str(p)
        rows.append(row)
    return rows


__all__ = [
    "METRICS", "TABLE_METRICS", "PAPER_N", "TREND_RHO", "MI_BOUND_TOL", "FIG3_REL_TOL", "CELL_LEGEND",
    "paper_values", "build_table", "format_cell", "format_table", "write_table",
    "combine_mc", "figure_mc_vs_softmax", "figure_kl_decomposition", "reconstruction_grid",
    "figure_reconstructions", "figure_table",
    "Claim", "trend", "check_claims", "claims_summary", "format_claims", "write_claims",
    "collect_stage_times", "provenance", "format_provenance", "Section", "write_report", "read_metrics",
]
