"""Two CPUs, the same runs, all their seeds: ``python -m bench.cross_cpu A.csv:RUN B.csv:RUN ...``.

Statistical reproducibility (docs/reliability.md) asks whether another CPU draws its models from
the same distribution, not whether one seed repeats. This compares the seed groups of runs whose
resolved training configuration is the same on both sides (e.g. mnist-cpu's ``table2.a1_b1``, made
on AMD EPYC, and mnist-scaling's ``a1_b1_n1k``, made on an Intel Xeon; check the configurations
with ``vaeas.staleness.train_group`` before pairing runs), metric by metric: each side's mean ± sd
over its seeds, and the difference of means with its 95 % Welch interval (unequal variances;
same-seed values are not paired, since float32 training is chaotic and one seed on two CPUs is two
unrelated draws). An interval that excludes 0 says the CPUs differ in distribution for that metric;
with 3 seeds a side the interval is wide, and that width is the finding's power.

Arguments: pairs ``LEFT=RIGHT``, each side ``path/to/seeds.csv:run``.
"""

from __future__ import annotations

import math
import sys

import pandas as pd
from scipy.stats import t
from tabulate import tabulate

METRICS = ("nll_test", "best_nll_test", "nll_train", "kl_test", "kl_train", "au", "au_train", "mi", "mi_mc", "sc")


def side(spec: str) -> tuple[str, pd.DataFrame]:
    path, _, run = spec.rpartition(":")
    rows = pd.read_csv(path, dtype={"run": str, "cpu": str})
    rows = rows[rows["run"].astype(str).eq(run)]
    if rows.empty:
        raise SystemExit(f"cross_cpu: no rows of run '{run}' in {path}")
    return f"{run} ({rows['cpu'].iloc[0]})", rows


def welch(a: pd.Series, b: pd.Series) -> tuple[float, float, float]:
    """Difference of means b − a and its 95 % Welch interval."""
    va, vb, na, nb = a.var(ddof=1), b.var(ddof=1), len(a), len(b)
    se2 = va / na + vb / nb
    d = float(b.mean() - a.mean())
    if se2 == 0:
        return d, d, d
    df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    half = float(t.ppf(0.975, df)) * math.sqrt(se2)
    return d, d - half, d + half


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print(__doc__)
        return 2
    out = []
    for pair in argv:
        (na, a), (nb, b) = (side(s) for s in pair.split("=", 1))
        for m in METRICS:
            if m not in a or m not in b or a[m].isna().all() or b[m].isna().all():
                continue
            x, y = a[m].dropna().astype(float), b[m].dropna().astype(float)
            d, lo, hi = welch(x, y)
            out.append([f"{na} vs {nb}", m, f"{x.mean():.4g} ± {x.std(ddof=1):.2g} (n={len(x)})",
                        f"{y.mean():.4g} ± {y.std(ddof=1):.2g} (n={len(y)})", f"{d:+.3g} [{lo:+.3g}, {hi:+.3g}]",
                        "differ" if lo > 0 or hi < 0 else "—"])
    print(tabulate(out, headers=["runs", "metric", "left mean ± sd", "right mean ± sd",
                                 "right − left, 95 % Welch", "0 outside"], tablefmt="github", disable_numparse=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
