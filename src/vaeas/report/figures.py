"""Figures 2–5 and Tables 1–3 as trends: PNG, written atomically, seaborn on the Agg backend."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import objectives
from ..io import atomic_path
from .tables import METRIC_LABELS, PAPER_N, _check_table, _num, _sweep, table_title


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
        # Joined on the run id both files carry (the run's config.json); α, β and seed only for
        # files written before it existed.
        keys = ("run_id",) if "run_id" in frame.columns and "run_id" in row else ("dataset", "alpha", "beta", "seed")
        for col in keys:
            if col in frame.columns and col in row and len(frame):
                mine = frame[col].iloc[0]
                same = mine == row[col] if col in ("dataset", "run_id") else math.isclose(_num(mine), _num(row[col]))
                if not same:
                    raise ValueError(f"combine_mc: mc frame has {col}={mine!r} but its metrics row has {row[col]!r}")
        label = objectives.get(row.get("objective", objectives.DEFAULT)).label + (f", {count:,} labels" if count else "")
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
                for model in models:       # V < N shared labels: the softmax MI cannot exceed log V
                    count, log_n = mc.loc[mc["model"] == model, "label_count"].iloc[0], mc.loc[mc["model"] == model, "log_n"].iloc[0]
                    if count and math.isfinite(count) and math.isfinite(log_n) and math.log(count) < log_n - 1e-9:
                        ax.axhline(math.log(count), color=palette[model], ls=":", lw=1.2,
                                   label=f"log V = {math.log(count):.2f} (ceiling of the softmax MI, {int(count):,} labels)")
            ax.set_xscale("log")
            sizes = sorted({int(v) for v in mc["size"].dropna()})
            ax.set_xticks(sizes)                     # every S drawn is labelled
            ax.set_xticklabels([f"{v:,}" for v in sizes], rotation=45 if len(sizes) > 5 else 0)
            ax.minorticks_off()
            ax.set_xlabel("Monte Carlo sample size S (log scale)")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            # Below the axes, not inside: inside, 'best' still covered the log N line or a
            # softmax line (issue 12); the saved figure's tight bounding box takes it in.
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
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
        monitored = _monte_carlo_monitor(log_frame)
        if monitored is not None:   # training-time monitoring on: the ground truth, per monitored epoch
            for col, label, color in (("mon_mi_mc", "MI (Monte Carlo, S = monitored N)", "black"),
                                      ("mon_md_mc", "MD (Monte Carlo)", "0.45")):
                ax1.plot(monitored.index, monitored[col], "o--", color=color, ms=4, lw=1, label=label)
        ax1.set_ylabel("nats per sample")
        ax1.set_title("Mean KL vs its decomposition MI + MD" +
                      (" — softmax lines per epoch, Monte Carlo markers" if monitored is not None else ""))
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


def _monte_carlo_monitor(log_frame: pd.DataFrame) -> pd.DataFrame | None:
    """Per monitored epoch, the mean over runs of the Monte Carlo MI / MD that training-time
    monitoring (``training.monitor_every``) logged; None when the log has none."""
    if "mon_mi_mc" not in log_frame.columns or log_frame["mon_mi_mc"].isna().all():
        return None
    return log_frame.dropna(subset=["mon_mi_mc"]).groupby("epoch")[["mon_mi_mc", "mon_md_mc"]].mean()


def _load_entry(entry) -> tuple[Any, dict]:
    if isinstance(entry, tuple) and len(entry) == 2:
        return entry
    from ..training.checkpoint import load_model

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
    from ..runtime import eval_binarized

    plt = _pyplot()
    items = list(entries.values()) if isinstance(entries, Mapping) else list(entries)
    if len(items) != 2:
        raise ValueError(f"figure_reconstructions: expected two models (small and large α), got {len(items)}")
    loaded = sorted((_load_entry(e) for e in items), key=lambda mm: mm[1]["spec"].params["alpha"])
    (m_lo, meta_lo), (m_hi, meta_hi) = loaded
    if meta_lo["spec"].dataset != meta_hi["spec"].dataset:
        raise ValueError(f"figure_reconstructions: models of different data sets ({meta_lo['spec'].dataset}, {meta_hi['spec'].dataset})")
    dataset = meta_lo["spec"].dataset
    if data is None:
        from .. import data as data_mod

        data = data_mod.load(dataset, data_mod.rooted(meta_lo["cfg"].data, data_root))
    shape = meta_lo["image_shape"]
    seed = meta_lo["cfg"].evaluation.binarize_seed
    test = eval_binarized(data.test_x, seed + 1)[:n]
    train = eval_binarized(data.train_x, seed)[:n]
    a_lo, a_hi = meta_lo["spec"].params["alpha"], meta_hi["spec"].params["alpha"]
    b_lo, b_hi = meta_lo["spec"].params["beta"], meta_hi["spec"].params["beta"]
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
        vae = df[df["method"] == objectives.VAE.name]
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
                if m in ("mi", "md") and f"{m}_mc_mean" in sub:
                    # the softmax estimate beside the exact one over all N posteriors: at large α
                    # the softmax under-reads MI (the classifier is evaded, T*-alpha-evasion)
                    mc = sub[sub[f"{m}_mc_mean"].notna()]
                    if len(mc):
                        ax.errorbar(mc[vary], mc[f"{m}_mc_mean"], yerr=mc[f"{m}_mc_sd"].fillna(0), color="0.25",
                                    marker="^", capsize=3, lw=1.2, ls="-", label="ours, Monte Carlo over all N")
                if m == "mi":
                    log_n = df["log_n"].dropna()
                    bound = log_n.iloc[0] if len(log_n) else (math.log(PAPER_N[table]))
                    ax.axhline(bound, color="0.45", ls="-.", lw=1.0, label="log N (MI's ceiling)")
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
        order = ["ours (mean ± sd over seeds)", "ours, Monte Carlo over all N", "paper", "VAE, ours", "VAE, paper",
                 "log N (MI's ceiling)"]
        handles = dict(sorted(handles.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
        fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=len(handles),
                   bbox_to_anchor=(0.5, -0.02))
        fig.suptitle(table_title(df, table))
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    _save(fig, path)
