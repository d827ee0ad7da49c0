"""The claims of Figure 2 (§5.2): the Monte Carlo estimates against S and the softmax estimates,
and the shared-label under-reading; judged per seed like every claim (:mod:`vaeas.report.claims`)."""

from __future__ import annotations

import math

import pandas as pd

from .claim import CAUGHT_UP_TOL, NA, SEPARATED_TOL, Claim, _judged, _model_groups
from .stats import Rule


def fig2_claims(mc: pd.DataFrame | None, ds: str) -> list[Claim]:
    no_paper = "Figure 2 is a plot without numbers (§5.2 describes the drift, the larger sd and the softmax agreement)"
    specs = {
        "Fig2-MC-drift": ("Monte Carlo MI and MD drift from their largest-S value as S shrinks: |MC(S_min) − MC(S_max)| > "
                          "|MC(S_next) − MC(S_max)| (§5.2, Fig. 2)",
                          Rule("min of |MC(S_min) − MC(S_max)| − |MC(S_next) − MC(S_max)|", ">", 0)),
        "Fig2-MC-sd": ("The Monte Carlo sd over repeats grows as S shrinks: sd(S_min) > sd(S_max), for MD, and for MI "
                       f"where the posteriors overlap (MC MI(S_min) below log S_min − {SEPARATED_TOL}: separated posteriors "
                       "give MI = log S exactly, sd 0 at every S) (§5.2, Fig. 2)",
                       Rule("min of sd(S_min) − sd(S_max)", ">", 0)),
        "Fig2-softmax": ("The softmax estimates are closer to the largest-S Monte Carlo estimate than the smallest-S "
                         "Monte Carlo estimate is, MI and MD (§5.2, Fig. 2)",
                         Rule("min of |MC(S_min) − MC(S_max)| − |softmax − MC(S_max)|", ">", 0)),
        "Fig2-shared-labels": ("with V < N shared labels the softmax MI under-reads the Monte Carlo MI by log(N/V) "
                               f"(within {CAUGHT_UP_TOL} nats): its ceiling is log V (§3.3; beyond the paper, stated "
                               "before it was run)",
                               Rule("|(MC MI − softmax MI) − log(N/V)|", "<=", CAUGHT_UP_TOL)),
    }
    if mc is None or mc.empty:
        return [Claim(cid, f"{ds}: {text}", NA, f"ours: no Monte Carlo results. Paper: {no_paper}.", NA, rule.text())
                for cid, (text, rule) in specs.items()]
    values: dict[str, dict[int, list[float]]] = {cid: {} for cid in specs}
    texts: dict[str, list[str]] = {cid: [] for cid in specs}

    def note(cid, seed, value, text):
        texts[cid].append(text)
        if value is not None and math.isfinite(value):
            values[cid].setdefault(seed, []).append(value)

    for name, seed, group in _model_groups(mc):
        stats = group.groupby("size")[["mi", "md"]].agg(["mean", "std"]).sort_index(ascending=False)
        sizes = list(stats.index)
        s_max, s_min = sizes[0], sizes[-1]
        for q in ("mi", "md"):
            mean, sd = stats[(q, "mean")], stats[(q, "std")]
            if len(sizes) >= 3:
                d_min, d_next = abs(mean[s_min] - mean[s_max]), abs(mean[sizes[1]] - mean[s_max])
                note("Fig2-MC-drift", seed, d_min - d_next, f"{name} {q.upper()}: |Δ| at S={s_min:,} {d_min:.2f} vs at "
                                                          f"S={sizes[1]:,} {d_next:.2f}")
            else:
                note("Fig2-MC-drift", seed, None, f"{name}: needs ≥ 3 sizes S, has {len(sizes)}")
            separated = q == "mi" and mean[s_min] >= math.log(s_min) - SEPARATED_TOL
            if separated:
                note("Fig2-MC-sd", seed, None, f"{name} MI: not judged, separated posteriors (MC MI at S={s_min:,} "
                                               f"{mean[s_min]:.3f} = log S {math.log(s_min):.3f})")
            elif len(sizes) >= 2 and math.isfinite(sd[s_min]) and math.isfinite(sd[s_max]):
                note("Fig2-MC-sd", seed, sd[s_min] - sd[s_max], f"{name} {q.upper()}: sd at S={s_min:,} {sd[s_min]:.3f} "
                                                              f"vs at S={s_max:,} {sd[s_max]:.3f}")
            else:
                note("Fig2-MC-sd", seed, None, f"{name}: needs ≥ 2 sizes and ≥ 2 repeats")
            soft_col = f"softmax_{q}"
            soft = group[soft_col].dropna() if soft_col in group else pd.Series(dtype=float)
            if len(soft) and len(sizes) >= 2:
                e_soft, e_min = abs(soft.iloc[0] - mean[s_max]), abs(mean[s_min] - mean[s_max])
                note("Fig2-softmax", seed, e_min - e_soft, f"{name} {q.upper()}: |softmax {soft.iloc[0]:.2f} − "
                                                         f"MC(S={s_max:,}) {mean[s_max]:.2f}| = {e_soft:.2f} vs "
                                                         f"|MC(S={s_min:,}) − MC(S={s_max:,})| = {e_min:.2f}")
            else:
                note("Fig2-softmax", seed, None, f"{name} {q.upper()}: no softmax estimate or < 2 sizes")
        count = group["label_count"].iloc[0] if "label_count" in group else math.nan
        log_n = group["log_n"].iloc[0] if "log_n" in group else math.nan
        soft_mi = group["softmax_mi"].iloc[0] if "softmax_mi" in group else math.nan
        if count and math.isfinite(count) and math.isfinite(log_n) and math.log(count) < log_n - 1e-9 and math.isfinite(soft_mi):
            under, expect = stats[("mi", "mean")][s_max] - soft_mi, log_n - math.log(count)
            note("Fig2-shared-labels", seed, abs(under - expect),
                 f"{name}: MC(S={s_max:,}) − softmax MI = {stats[('mi', 'mean')][s_max]:.2f} − {soft_mi:.2f} = {under:.2f} "
                 f"vs log(N/V) = {expect:.2f}")
    claims = []
    for cid, (text, rule) in specs.items():
        per_seed = {s: min(v) for s, v in values[cid].items()}
        shown = "; ".join(texts[cid]) or "no model with V < N shared labels"
        claims.append(_judged(cid, f"{ds}: {text}", rule, per_seed, shown, (math.nan, no_paper)))
    return claims
