"""Intervals over seeds and how a claim's interval is judged against its threshold.

Every claim and every paired comparison of this package summarises a statistic computed once per
seed (a Spearman ρ along a sweep, a gap to a bound, a paired difference) by the mean over seeds
and a 95 % Student t interval of that mean, mean ± t₀.₉₇₅,ₙ₋₁ · sd/√n: exact when the per-seed
values are normal, and with 3 seeds honestly wide (t₀.₉₇₅,₂ = 4.303). A percentile bootstrap over
3 values has only 10 distinct resamples and its interval never leaves their range, so it would
understate the uncertainty (docs/decisions.md D40, D41).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Two-sided 95 % quantiles of Student's t by degrees of freedom (1–30); above, the normal's.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042)

PASS, FAIL, INCONCLUSIVE, NA = "PASS", "FAIL", "INCONCLUSIVE", "N/A"


def t_quantile(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (1.96 above 30)."""
    if df < 1:
        raise ValueError(f"t_quantile: df must be ≥ 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean of the finite ``values`` (one per seed) and its 95 % Student t
    interval. With one value the interval is (−inf, inf): one seed cannot tell signal from noise;
    with identical values it is the point itself; with none, NaNs."""
    d = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if not len(d):
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if len(d) == 1:
        return mean, -math.inf, math.inf
    half = t_quantile(len(d) - 1) * float(d.std(ddof=1)) / math.sqrt(len(d))
    return mean, mean - half, mean + half


def pooled_interval(groups: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    """(mean, low, high, df): the average of the groups' means, each group weighted equally, and
    its 95 % interval with each group's own variance (Welch–Satterthwaite).

    For K groups with n_k finite values, mean m_k and variance s_k²: the estimate is Σ m_k / K, its
    variance Σ v_k / K² with v_k = s_k² / n_k, and its degrees of freedom
    ν = (Σ v_k)² / Σ [v_k² / (n_k − 1)]; the quantile is t₀.₉₇₅ at ⌊ν⌋ (rounding down widens the
    interval). Groups of fewer than two values carry no variance estimate and are left out; with
    none left, NaNs; when every group's values are identical, the interval is the point. It
    estimates the effect averaged over the groups (the N of a scaling study), not a common one:
    the groups' effects may differ, and their spread is not in this interval.
    """
    kept = [np.asarray(d, dtype=float) for d in ([x for x in g if math.isfinite(x)] for g in groups)]
    kept = [d for d in kept if len(d) >= 2]
    if not kept:
        return math.nan, math.nan, math.nan, math.nan
    k = len(kept)
    mean = float(sum(d.mean() for d in kept)) / k
    v = [float(d.var(ddof=1)) / len(d) for d in kept]
    if sum(v) == 0:
        return mean, mean, mean, math.inf
    df = sum(v) ** 2 / sum(vk ** 2 / (len(d) - 1) for vk, d in zip(v, kept))
    half = t_quantile(max(1, math.floor(df + 1e-9))) * math.sqrt(sum(v)) / k
    return mean, mean - half, mean + half, df


_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_SHOWN = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}


@dataclass(frozen=True)
class Rule:
    """A claim's threshold: the claim holds when ``statistic op threshold``. ``bounds`` are the
    statistic's own range (ρ ∈ [−1, 1]), to which its interval is clipped."""

    statistic: str
    op: str
    threshold: float
    bounds: tuple[float, float] | None = None

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"Rule: op must be one of {', '.join(_OPS)}, got {self.op!r}")

    def holds(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.threshold))

    def text(self) -> str:
        return f"{self.statistic} {_SHOWN[self.op]} {self.threshold:g}"

    def clip(self, low: float, high: float) -> tuple[float, float]:
        if self.bounds is None:
            return low, high
        lo, hi = self.bounds
        return max(low, lo), min(high, hi)


def judge(rule: Rule, low: float, high: float) -> str:
    """PASS when the rule holds over the whole interval [low, high], FAIL when it fails over the
    whole of it, INCONCLUSIVE when the interval straddles the threshold (always with one seed,
    whose interval is unbounded), N/A when there is no value."""
    if math.isnan(low) or math.isnan(high):
        return NA
    at_low, at_high = rule.holds(low), rule.holds(high)
    if at_low and at_high:
        return PASS
    if not at_low and not at_high and math.isfinite(low) and math.isfinite(high):
        return FAIL
    return INCONCLUSIVE


def judge_point(rule: Rule, value: float) -> str:
    """The outcome of one value taken at face value (the paper's transcribed numbers)."""
    if value is None or math.isnan(value):
        return NA
    return PASS if rule.holds(value) else FAIL


def combine(outcomes: Sequence[str]) -> str:
    """The outcome of a claim made "for every" member (every β, every model): FAIL if any member
    fails, PASS if all pass, N/A if none has data, else INCONCLUSIVE."""
    known = [o for o in outcomes if o != NA]
    if not known:
        return NA
    if FAIL in known:
        return FAIL
    if all(o == PASS for o in known):
        return PASS
    return INCONCLUSIVE
