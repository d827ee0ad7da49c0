"""Intervals over seeds and their judgement (vaeas.report.stats): Student t's closed forms, the
interval's formula, and PASS / FAIL / INCONCLUSIVE at the edges."""

from __future__ import annotations

import math

import pytest

from vaeas.report import stats


def test_t_quantiles_are_students():
    # closed forms of Student's t quantile q_p: df 1 (Cauchy) tan(π(p − 1/2)); df 2 (2p − 1)/sqrt(2p(1 − p))
    assert stats.t_quantile(1) == pytest.approx(math.tan(math.pi * 0.475), abs=5e-4)
    p = 0.975
    assert stats.t_quantile(2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), abs=5e-4)
    assert stats.t_quantile(31) == 1.96
    with pytest.raises(ValueError, match="df must be"):
        stats.t_quantile(0)


def test_mean_interval_is_mean_plus_minus_t_sd_over_root_n():
    mean, low, high = stats.mean_interval([1.0, 2.0, 3.0])           # sd 1, n 3
    half = 4.303 / math.sqrt(3)
    # a handful of float64 operations on values ≤ 5 (numpy's mean and sd of three numbers): error a few
    # ulps of 5, ~1e-15, far inside the bound on any CPU
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half), abs=1e-12)
    assert stats.mean_interval([4.0, math.nan]) == (4.0, -math.inf, math.inf)    # NaN seeds are dropped
    assert stats.mean_interval([0.5, 0.5]) == (0.5, 0.5, 0.5)
    assert all(math.isnan(x) for x in stats.mean_interval([]))


@pytest.mark.parametrize("low, high, expected", [
    (-1.0, -0.9, "PASS"), (-0.9, -0.8, "PASS"),               # ≤ −0.8 over the whole interval, edge included
    (-0.7, 0.3, "FAIL"), (-0.95, -0.5, "INCONCLUSIVE"),
    (-math.inf, math.inf, "INCONCLUSIVE"), (math.nan, math.nan, "N/A")])
def test_judge_reads_the_interval_against_the_rule(low, high, expected):
    assert stats.judge(stats.Rule("ρ", "<=", -0.8), low, high) == expected


def test_strict_rules_fail_at_the_threshold_and_points_are_judged_at_face_value():
    more = stats.Rule("AU difference", ">", 0)
    assert stats.judge(more, 0.0, 0.0) == "FAIL"                   # every seed tied: not "more"
    assert stats.judge(more, 0.0, 2.0) == "INCONCLUSIVE"
    assert stats.judge_point(more, 1.0) == "PASS" and stats.judge_point(more, math.nan) == "N/A"
    assert more.text() == "AU difference > 0"
    with pytest.raises(ValueError, match="op must be one of"):
        stats.Rule("x", "=<", 0)


def test_combine_fails_on_any_failure_and_passes_only_when_all_pass():
    assert stats.combine(["PASS", "PASS", "N/A"]) == "PASS"
    assert stats.combine(["PASS", "INCONCLUSIVE"]) == "INCONCLUSIVE"
    assert stats.combine(["INCONCLUSIVE", "FAIL"]) == "FAIL"
    assert stats.combine(["N/A"]) == "N/A" and stats.combine([]) == "N/A"
