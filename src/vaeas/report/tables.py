"""Tables 1–3: the paper's values beside ours (mean ± sd over seeds, paper, Δ), as a flat
frame (CSV) and Markdown. See :mod:`vaeas.report` for the cell format."""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from .. import objectives
from ..io import atomic_path, write_text

# ---------------------------------------------------------------------------------------------
# Constants

#: Every metric column of Tables 2 and 3, in the paper's order.
METRICS = ("nll_test", "kl_test", "au", "nll_train", "kl_train", "mi", "md", "sc")
#: Metrics shown per table. Table 1 of the paper has only AU; ours adds KL_test and NLL_test.
TABLE_METRICS = {1: ("au", "kl_test", "nll_test"), 2: METRICS, 3: METRICS}
#: Our checks of the softmax estimates (beyond the paper, issue 10): the Monte Carlo MI / MD over
#: all N training posteriors and the estimates of a classifier refit on the frozen final
#: posteriors (vaeas.refit). No paper value; shown in Tables 2/3 when any run has them.
#: And (issue 19, item 2; D38) the test IW-NLL at the epoch of the lowest validation IW-NLL, and that epoch.
CHECKS = ("mi_mc", "md_mc", "refit_mi", "refit_md", "best_nll_test", "best_epoch")
CHECK_LABELS = {"mi_mc": "MI_MC", "md_mc": "MD_MC", "refit_mi": "MI_refit", "refit_md": "MD_refit",
                "best_nll_test": "NLL_test (best valid.)", "best_epoch": "best epoch"}
COUNTS = ("au", "au_train", "best_au", "best_au_train", "best_epoch")   # shown whole when whole, else with one decimal
#: Column headers of the Markdown tables.
METRIC_LABELS = {"nll_test": "NLL_test", "kl_test": "KL_test", "au": "AU", "nll_train": "NLL_train",
                 "kl_train": "KL_train", "mi": "MI", "md": "MD", "sc": "SC"}
#: Which data set each table reports, and its training-set size N in the paper (§5.1).
TABLE_DATASETS = {1: "MNIST", 2: "MNIST", 3: "Omniglot"}
PAPER_N = {1: 55_000, 2: 55_000, 3: 24_345}
TABLE_TITLES = {
    1: "Table 1: active units of z vs decoder depth (VAE, MNIST)",
    2: "Table 2: VAE-AS on MNIST, α and β sweeps",
    3: "Table 3: VAE-AS on Omniglot, α and β sweeps",
}
CELL_LEGEND = ("Cells: our mean ± sd over seeds (paper's value, Δ = ours − paper). NLL, KL, MI, MD "
               "and SC in nats; AU is a count of latent dimensions. '—': not run / not reported.")
#: The legend of a table whose data set is not the paper's: no Δ, and why not.
CELL_LEGEND_NO_DELTA = ("Cells: our mean ± sd over seeds (the paper's value on its own data set). No Δ column: "
                        "ours are on {ours}, the paper's on {paper}, so a difference would compare data sets, not "
                        "methods. NLL, KL, MI, MD and SC in nats; AU is a count of latent dimensions. "
                        "'—': not run / not reported.")
#: The legend of a table on the paper's data set but a smaller training set: no Δ, and what is
#: comparable instead (issue 10: a reviewer must never be misled by a Δ column).
CELL_LEGEND_NO_DELTA_SCALE = (
    "Cells: our mean ± sd over seeds (the paper's value). No Δ column: ours come from {n:,} training images, "
    "the paper's from {paper_n:,}, and every column scales with N and with how much a model overfits "
    "(MI's upper bound is log N: {log_n:.2f} here, {paper_log_n:.2f} in the paper), so ours − paper would "
    "measure the scale, not the method. Comparable: the trends along α and β, the identity MD = KL_train "
    "− log N + SC, MI against its own bound log N, and the softmax against the Monte Carlo estimates (the "
    "claims check each). NLL, KL, MI, MD and SC in nats; AU is a count of latent dimensions. "
    "'—': not run / not reported.")
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


def our_train_size(df: pd.DataFrame) -> int | None:
    """Our training-set size N in a frame with ``log_n`` (None when no row has it)."""
    if "log_n" not in df.columns:
        return None
    values = pd.to_numeric(df["log_n"], errors="coerce").dropna()
    return int(round(math.exp(values.iloc[0]))) if len(values) else None


def delta_meaningful(table: int, dataset: str | None, n: int | None) -> bool:
    """Whether ours − paper compares methods: our data set is the paper's and so is the
    training-set size N (unknown N or no rows yet count as the paper's)."""
    return same_data(dataset, TABLE_DATASETS[table]) and (n is None or n == PAPER_N[table])


def table_legend(df: pd.DataFrame, table: int) -> str:
    """The cell legend of a table: with Δ, without Δ across data sets, or without Δ at a smaller scale."""
    ours = our_dataset(df)
    if not same_data(ours, TABLE_DATASETS[table]):
        return CELL_LEGEND_NO_DELTA.format(ours=ours, paper=TABLE_DATASETS[table])
    n = our_train_size(df)
    if delta_meaningful(table, ours, n):
        return CELL_LEGEND
    return CELL_LEGEND_NO_DELTA_SCALE.format(n=n, paper_n=PAPER_N[table], log_n=math.log(n),
                                             paper_log_n=math.log(PAPER_N[table]))


def same_data(ours: str | None, paper: str) -> bool:
    """Whether our data set is the paper's (or we have none yet): only then is ours − paper a
    difference of methods and not of data sets."""
    return not ours or str(ours).lower() == paper.lower()


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


def _hyper(method: str, row: Mapping) -> dict[str, float]:
    """The hyper-parameters of ``method`` in ``row`` (as its objective declares them, in that
    order); a missing one is NaN. The paper's rows carry α and β only."""
    names = objectives.get(method).param_names() if method in objectives.REGISTRY else ("alpha", "beta")
    return {k: round(_num(row.get(k)), 6) for k in names}


def _hyper_text(hyper: Mapping[str, float]) -> str:
    """`` alpha=1 beta=0.5``: the hyper-parameters a configuration has (NaN ones left out)."""
    return "".join(f" {k}={v:g}" for k, v in hyper.items() if math.isfinite(v))


def _config_key(table: int, method: str, hyper: Mapping[str, float], layers: float) -> str:
    """The setting a row is (what the paper's values attach by): objective and hyper-parameters;
    Table 1: decoder depth."""
    if table == 1:
        return f"L{int(layers)}"
    return f"{method}{_hyper_text(hyper)}"


def _config_label(table: int, method: str, hyper: Mapping[str, float], layers: float) -> str:
    if table == 1:
        return f"{int(layers)} decoder layer{'s' if int(layers) != 1 else ''}"
    return objectives.get(method).describe({k: v for k, v in hyper.items() if math.isfinite(v)})


def _normalise_row(table: int, row: Mapping) -> dict:
    method = row.get("objective", row.get("method"))
    if method not in objectives.REGISTRY:
        raise ValueError(f"metrics row has objective {method!r}; expected one of {', '.join(objectives.names())}")
    # A hyper-parameter the objective does not have is blank (NaN), as the paper leaves the VAE's.
    hyper = _hyper(method, row)
    alpha, beta = hyper.get("alpha", math.nan), hyper.get("beta", math.nan)
    layers = _num(row.get("decoder_layers"))
    if table == 1 and not math.isfinite(layers):
        raise ValueError("Table 1 rows need 'decoder_layers'")
    out = {"method": method, "alpha": alpha, "beta": beta, "decoder_layers": layers,
           "seed": row.get("seed"), "dataset": row.get("dataset"),
           "log_n": _num(row.get("log_n")), "label_count": _num(row.get("label_count"))}
    out.update({m: _num(row.get(m)) for m in (*METRICS, *CHECKS)})
    out["setting"] = _config_key(table, method, hyper, layers)
    out["label"] = _config_label(table, method, hyper, layers)
    # Rows are named by their run of params.yaml (the driver adds it); a row without one (written
    # by hand) gets the name params.yaml's convention gives its setting.
    out["key"] = str(row["run"]) if row.get("run") else _run_name(table, method, hyper, layers)
    return out


def _run_name(table: int, method: str, hyper: Mapping[str, float], layers: float) -> str:
    """params.yaml's names: dec3 (Table 1), vae, a1_b0p5 (the default objective), beta_vae_b0p2."""
    if table == 1:
        return f"dec{int(layers)}"
    text = "_".join(f"{k[0]}{v:g}" for k, v in hyper.items() if math.isfinite(v))
    prefix = "" if method == objectives.DEFAULT and text else str(method)
    return "_".join(p for p in (prefix, text) if p).replace(".", "p")


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
        norm = [r for r in norm if r["method"] == objectives.VAE.name]
    ours = pd.DataFrame(norm, columns=["key", "setting", "label", "method", "alpha", "beta", "decoder_layers", "seed", "dataset",
                                       "log_n", "label_count", *METRICS, *CHECKS])
    datasets = sorted({str(d) for d in ours["dataset"].dropna()})
    if len(datasets) > 1:
        raise ValueError(f"Table {table}: rows of several data sets ({', '.join(datasets)}); pass one data set's rows")
    metrics = TABLE_METRICS[table]
    checks = CHECKS if table != 1 else ()

    agg_rows = []
    for key, group in ours.groupby("key", sort=False):
        seeds = group["seed"].dropna().tolist()
        if len(seeds) != len(set(seeds)):
            raise ValueError(f"Table {table}, configuration {key}: a seed appears twice ({seeds})")
        if table != 1 and group["decoder_layers"].nunique(dropna=True) > 1:
            raise ValueError(f"Table {table}, configuration {key}: runs differ in decoder_layers "
                             f"({sorted(group['decoder_layers'].dropna().unique())})")
        if group["setting"].nunique() > 1:
            raise ValueError(f"Table {table}, run {key}: its seeds have different settings ({', '.join(group['setting'].unique())})")
        first = group.iloc[0]
        rec = {"key": key, "setting": first["setting"], "label": first["label"], "method": first["method"], "alpha": first["alpha"], "beta": first["beta"],
               "decoder_layers": first["decoder_layers"], "n_seeds": len(group),
               "log_n": group["log_n"].mean(), "label_count": group["label_count"].mean()}
        for m in (*metrics, *checks):
            values = group[m].dropna()
            rec[f"{m}_mean"] = values.mean() if len(values) else math.nan
            rec[f"{m}_sd"] = values.std(ddof=1) if len(values) > 1 else math.nan
        agg_rows.append(rec)
    agg = pd.DataFrame(agg_rows, columns=["key", "setting", "label", "method", "alpha", "beta", "decoder_layers", "n_seeds",
                                          "log_n", "label_count",
                                          *[f"{m}_{s}" for m in (*metrics, *checks) for s in ("mean", "sd")]])

    # The paper's values attach by setting (objective, α, β; decoder depth in Table 1), not by run
    # name: a run keeps its name when its β is edited, and must not then be compared with the
    # paper's row of the old β (docs/decisions.md D35). Rows are named by run.
    paper = paper_values(table)
    paper["setting"] = [_config_key(table, r.method, _hyper(r.method, r._asdict()), r.decoder_layers)
                        for r in paper.itertuples()]
    paper = paper.rename(columns={m: f"{m}_paper" for m in METRICS})[
        ["setting", "method", "alpha", "beta", "decoder_layers", *[f"{m}_paper" for m in metrics]]]
    paper["_order"] = np.arange(len(paper))

    merged = paper.merge(agg, on="setting", how="outer", suffixes=("", "_ours"))
    for col in ("method", "alpha", "beta", "decoder_layers"):
        merged[col] = merged[col].where(merged["_order"].notna(), merged[f"{col}_ours"])
        if table != 1 and col == "decoder_layers":  # the paper's Tables 2/3 do not list it; ours does
            merged[col] = merged[f"{col}_ours"]
    merged["in_paper"] = merged["_order"].notna()
    merged["n_seeds"] = merged["n_seeds"].fillna(0).astype(int)
    extra_order = merged[["method", "alpha", "beta", "decoder_layers"]].apply(
        lambda r: (str(r["method"]), _sort_num(r["decoder_layers"]), _sort_num(r["alpha"]), _sort_num(r["beta"])), axis=1)
    merged["_extra"] = [(*e, str(k)) for e, k in zip(extra_order, merged["key"])]
    merged = pd.concat([merged[merged["in_paper"]].sort_values(["_order", "key"]),
                        merged[~merged["in_paper"]].sort_values("_extra")], ignore_index=True)
    merged["run"] = merged["key"].fillna("")
    for m in metrics:
        merged[f"{m}_delta"] = merged[f"{m}_mean"] - merged[f"{m}_paper"]
    merged["config"] = [r.label if isinstance(r.label, str) else
                        _config_label(table, r.method, _hyper(r.method, r._asdict()), r.decoder_layers)
                        for r in merged.itertuples()]
    keys = ["decoder_layers"] if table == 1 else ["method", "alpha", "beta", "decoder_layers"]
    cols = ["run", "config", *keys, "n_seeds", "in_paper", "log_n", "label_count",
            *[f"{m}_{s}" for m in metrics for s in ("mean", "sd", "paper", "delta")],
            *[f"{m}_{s}" for m in checks for s in ("mean", "sd")]]
    sizes = sorted({int(round(math.exp(v))) for v in ours["log_n"].dropna()})
    if datasets and not delta_meaningful(table, datasets[0], sizes[0] if sizes else None):
        cols = [c for c in cols if not c.endswith("_delta")]    # no Δ across data sets or scales (table_legend)
    out = merged[cols].reset_index(drop=True)
    out["dataset"] = datasets[0] if datasets else ""
    out.attrs["table"] = table
    return out


def our_dataset(df: pd.DataFrame) -> str:
    """The data set of our rows in a :func:`build_table` frame ('' when we have none)."""
    value = df["dataset"].iloc[0] if "dataset" in df.columns and len(df) else ""
    return value if isinstance(value, str) else ""


def table_title(df: pd.DataFrame, table: int) -> str:
    """The paper's title, plus which data set our numbers come from when it is not the paper's,
    or how many of its training images when fewer than the paper's."""
    ours = our_dataset(df)
    if ours and ours.lower() != TABLE_DATASETS[table].lower():
        return f"{TABLE_TITLES[table]} — ours on {ours}, the paper's on {TABLE_DATASETS[table]}"
    n = our_train_size(df)
    if ours and n is not None and n != PAPER_N[table]:
        return f"{TABLE_TITLES[table]} — ours on {n:,} training images, the paper's on {PAPER_N[table]:,}"
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
    if metric in COUNTS and not signed and float(value).is_integer():
        text = f"{int(value)}"
    elif metric in COUNTS:
        text = f"{value:+.1f}" if signed else f"{value:.1f}"
    else:
        text = f"{value:+.2f}" if signed else f"{value:.2f}"
    return text.replace("-", _MINUS)


def format_cell(mean: float, sd: float, paper: float, delta: float, metric: str) -> str:
    """One cell of :func:`format_table`: ``mean ± sd (paper p, Δ d)`` (see the module docstring)."""
    ours = _fmt(mean, metric)
    if math.isfinite(mean) and math.isfinite(sd):
        ours += f" ± {_fmt(sd, metric if metric not in COUNTS else 'sd')}"
    if not math.isfinite(paper):
        return ours
    if not math.isfinite(mean):
        return f"— (paper {_fmt(paper, metric)})"
    if not math.isfinite(delta):          # another data set than the paper's: no Δ
        return f"{ours} (paper {_fmt(paper, metric)})"
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
        keys = lambda r: [_method_cell(r),  # noqa: E731
                          *("—" if not math.isfinite(_num(r[k])) else f"{r[k]:g}" for k in ("alpha", "beta"))]
    checks = [m for m in CHECKS if f"{m}_mean" in df.columns and df[f"{m}_mean"].notna().any()]
    headers += [METRIC_LABELS[m] for m in metrics] + [CHECK_LABELS[m] for m in checks]
    body = []
    for _, r in df.iterrows():
        cells = [format_cell(r[f"{m}_mean"], r[f"{m}_sd"], r[f"{m}_paper"], r.get(f"{m}_delta", math.nan), m)
                 for m in metrics]
        cells += [format_cell(r[f"{m}_mean"], r[f"{m}_sd"], math.nan, math.nan, m) for m in checks]
        run = r.get("run", "")
        body.append([run if isinstance(run, str) and run else "—", *keys(r), str(int(r["n_seeds"])), *cells])
    return tabulate(body, headers=["Run", *headers], tablefmt="github", disable_numparse=True)


def _method_cell(r) -> str:
    """The Method cell: the objective's label, with its hyper-parameters other than α and β
    (which have their own columns), e.g. "KL floor λ=0.5"."""
    definition = objectives.get(r["method"])
    if set(definition.param_names()) - {"alpha", "beta"} and isinstance(r.get("config"), str):
        return r["config"]
    return definition.label


def metrics_json(df: pd.DataFrame) -> dict:
    """Our means of a :func:`build_table` frame as DVC metrics: ``{run: {metric: mean}}``, keyed
    by the runs' names in params.yaml (``vae``, ``a1_b0p5``; ``dec3`` in Table 1), so that
    ``dvc metrics diff`` after an edit of one β shows that run's numbers changing under its name."""
    cols = [c[:-5] for c in df.columns if c.endswith("_mean")]
    return {str(r["run"]): {m: round(float(r[f"{m}_mean"]), 4) for m in cols if math.isfinite(_num(r[f"{m}_mean"]))}
            for _, r in df[df["n_seeds"] > 0].iterrows()}


def write_table(df: pd.DataFrame, csv_path: str | os.PathLike, md_path: str | os.PathLike,
                json_path: str | os.PathLike | None = None) -> None:
    """The full frame as CSV, a captioned Markdown rendering (:func:`format_table`) and, with
    ``json_path``, our means as DVC metrics (:func:`metrics_json`)."""
    table = _table_of(df)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    if json_path is not None:
        write_text(json_path, json.dumps(metrics_json(df), indent=2, sort_keys=True) + "\n")
    caption = f"**{table_title(df, table)}.** {table_legend(df, table)}"
    if any(f"{m}_mean" in df.columns and df[f"{m}_mean"].notna().any() for m in CHECKS):
        caption += (" Beyond the paper: MI_MC / MD_MC are Monte Carlo estimates over all N training "
                    "posteriors (what the softmax MI / MD estimate); MI_refit / MD_refit come from a "
                    "classifier refit to convergence on the frozen final posteriors (docs/regime.md).")
    if "best_nll_test_mean" in df.columns and df["best_nll_test_mean"].notna().any():
        caption += (" NLL_test (best valid.): the test IW-NLL of the model kept at the epoch of the lowest "
                    "validation IW-NLL (best epoch), i.e. early stopping as the paper's setting would select it "
                    "(docs/decisions.md D38); the other columns, like the paper's, are the last epoch's.")
    write_text(md_path, f"{caption}\n\n{format_table(df)}\n")


def _sweep(df: pd.DataFrame, fixed: str, vary: str) -> pd.DataFrame:
    sel = df[(df["method"] == objectives.VAEAS.name) & np.isclose(df[fixed].astype(float), 1.0)]
    return sel.sort_values(vary)
