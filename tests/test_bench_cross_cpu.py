"""bench.cross_cpu: the Welch comparison of two CPUs' seed groups."""

import math

import pandas as pd
import pytest

from bench import cross_cpu


def test_welch_with_equal_variances_and_sizes_has_the_pooled_degrees_of_freedom():
    # va = vb = 1, n = 3 each: se² = 2/3 and Welch's df = (2/3)² / (2 · (1/3)² / 2) = 4, so the half-width
    # is t₀.₉₇₅,₄ · √(2/3) = 2.776 · 0.8165 (the table value to its 4 digits)
    d, lo, hi = cross_cpu.welch(pd.Series([1.0, 2.0, 3.0]), pd.Series([3.0, 4.0, 5.0]))
    assert d == 2.0
    assert (hi - lo) / 2 == pytest.approx(2.776 * math.sqrt(2 / 3), abs=1e-3)
    assert cross_cpu.welch(pd.Series([1.0, 1.0]), pd.Series([2.0, 2.0])) == (1.0, 1.0, 1.0)   # no spread: a point


def test_main_marks_only_intervals_that_exclude_zero(tmp_path, capsys):
    rows = lambda run, cpu, nll, au: pd.DataFrame({"run": run, "cpu": cpu, "nll_test": nll, "au": au})
    rows("r", "A", [100.0, 101.0, 102.0], [5, 6, 7]).to_csv(tmp_path / "a.csv", index=False)
    rows("q", "B", [110.0, 111.0, 112.0], [5, 7, 6]).to_csv(tmp_path / "b.csv", index=False)
    assert cross_cpu.main([f"{tmp_path}/a.csv:r={tmp_path}/b.csv:q"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| r (A)")]
    assert len(lines) == 2
    assert "nll_test" in lines[0] and lines[0].rstrip(" |").endswith("differ")
    assert "au" in lines[1] and lines[1].rstrip(" |").endswith("—")
    with pytest.raises(SystemExit, match="no rows of run 'x'"):
        cross_cpu.main([f"{tmp_path}/a.csv:x={tmp_path}/b.csv:q"])
