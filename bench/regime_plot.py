"""Plots of the regime study (docs/regime.md) from docs/regime/runs.csv.

    python -m bench.regime_plot --group decoder vae_torch_n1000_long vae_glorot_n1000_long ...

One PNG per group, docs/regime/<group>.png: per training step, the reconstruction (NLL_train),
KL_train, the softmax MI beside the Monte Carlo MI (dashed) with log N_eff, and SC.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def plot(runs: pd.DataFrame, names: list[str], out: Path, title: str) -> None:
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    palette = dict(zip(names, sns.color_palette("tab10", len(names))))
    for name in names:
        r = runs[runs.name == name].sort_values("steps")
        if r.empty:
            raise SystemExit(f"regime_plot: no rows named '{name}' in the CSV")
        c = palette[name]
        axes[0].plot(r.steps, r.nll_train, color=c, label=name)
        axes[1].plot(r.steps, r.kl_train, color=c)
        if r.mi.notna().any():
            axes[2].plot(r.steps, r.mi, color=c)
            axes[3].plot(r.steps, r.sc, color=c)
        axes[2].plot(r.steps, r.mi_mc, color=c, ls="--")
        axes[2].axhline(r.log_n.iloc[0], color=c, ls=":", lw=0.8)
    axes[0].set(title="NLL_train (reconstruction)", xlabel="steps", ylim=(None, 260))
    axes[1].set(title="KL_train", xlabel="steps", yscale="log")
    axes[2].set(title="MI: softmax (solid), Monte Carlo (dashed), log N (dotted)", xlabel="steps")
    axes[3].set(title="SC (softmax cross-entropy)", xlabel="steps")
    fig.legend(loc="lower center", ncol=min(4, len(names)), frameon=False, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle(title)
    fig.tight_layout()
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(out)
    plt.close(fig)


def summary(runs: pd.DataFrame, names: list[str]) -> str:
    """The last monitored row of each run as a Markdown table (docs/regime.md's lever table)."""
    from tabulate import tabulate

    rows = []
    for name in names:
        r = runs[runs.name == name].sort_values("steps").iloc[-1]
        rows.append([name, int(r.steps), f"{r.seconds:.0f} (load {r.load:.1f})", f"{r.nll_train:.1f}",
                     f"{r.kl_train:.2f}", f"{r.mi:.2f}", f"{r.mi_mc:.2f}", f"{r.log_n:.2f}", f"{r.sc:.2f}",
                     f"{r.nll_test_iw64:.1f}", int(r.au)])
    return tabulate(rows, headers=["run", "steps", "train s", "NLL_train", "KL_train", "MI softmax", "MI MC",
                                   "log N", "SC", "NLL_test (k=64)", "AU"], tablefmt="github", disable_numparse=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", default="docs/regime/runs.csv")
    p.add_argument("--group", default="", help="output name: docs/regime/<group>.png")
    p.add_argument("--title", default="")
    p.add_argument("--table", action="store_true", help="print the last row of each run as Markdown instead")
    p.add_argument("names", nargs="+")
    a = p.parse_args(argv)
    runs = pd.read_csv(a.csv)
    if a.table:
        print(summary(runs, a.names))
        return
    out = Path(a.csv).with_name(f"{a.group}.png")
    plot(runs, a.names, out, a.title or a.group)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
