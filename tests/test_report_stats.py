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


def test_pooled_interval_with_equal_groups_has_welchs_2n_minus_2_degrees_of_freedom():
    # Two groups of 3 with equal variance 1: mean of means 3.5, variance (1/3 + 1/3) / 2², and
    # Welch–Satterthwaite's ν = (2v)² / (2v² / 2) = 4 exactly.
    mean, low, high, df = stats.pooled_interval([[1, 2, 3], [4, 5, 6]])
    assert mean == pytest.approx(3.5) and df == pytest.approx(4.0)
    assert high - mean == pytest.approx(stats.t_quantile(4) * math.sqrt(2 / 3) / 2)
    assert mean - low == pytest.approx(high - mean)


def test_pooled_interval_weights_groups_equally_and_rounds_the_degrees_of_freedom_down():
    # Groups of 2 and 3 values: v = (2/2, 1/3); ν = (4/3)² / (1² / 1 + (1/3)² / 2) = 1.6, so t at df 1.
    mean, low, high, df = stats.pooled_interval([[0, 2], [0, 1, 2], [7]])       # [7]: one value, left out
    assert mean == pytest.approx(1.0)                                                 # (1 + 1) / 2
    assert stats.pooled_interval([[0, 2], [10, 11, 12]])[0] == pytest.approx(6.0)    # (1 + 11) / 2; all 5 values' mean is 7
    assert df == pytest.approx((4 / 3) ** 2 / (1 + (1 / 9) / 2))
    assert high - mean == pytest.approx(stats.t_quantile(1) * math.sqrt(4 / 3) / 2)


def test_pooled_interval_edges():
    assert all(math.isnan(x) for x in stats.pooled_interval([[1.0], [2.0, math.nan]]))    # no group of two finite values
    assert stats.pooled_interval([[2, 2], [1, 1, 1]]) == (1.5, 1.5, 1.5, math.inf)        # no spread: the point


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
