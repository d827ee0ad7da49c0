"""Table B (vaeas.report.baselines): the paired interval's closed form, the pairing by seed,
and the outputs' shape."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from vaeas.report import baselines as tb


@pytest.mark.parametrize("diffs, expected", [
    ([1.0, 1.2, 1.1], "VAE-AS higher"), ([-1.0, -1.2, -1.1], "VAE-AS lower"), ([1.0, 2.0, 3.0], "inconclusive"), ([-1.0, 2.0, 0.0], "inconclusive"),
    ([0.0, 0.0, 0.0], "no difference"), ([5.0], "inconclusive")])
def test_outcome_reads_the_interval(diffs, expected):
    _, low, high = tb.paired_interval(diffs)
    assert tb.outcome(low, high, diffs) == expected


def _rows():
    rows = []
    for seed, (au_as, au_b, nll_as, nll_b) in enumerate([(10, 8, 100.0, 101.0), (12, 9, 99.0, 101.5), (11, 9, 98.0, 100.0)]):
        rows.append({"run": "a1_b0p2", "seed": seed, "objective": "vaeas", "alpha": 1.0, "beta": 0.2, "au": au_as, "nll_test": nll_as})
        rows.append({"run": "beta_b0p2", "seed": seed, "objective": "beta_vae", "beta": 0.2, "au": au_b, "nll_test": nll_b})
        rows.append({"run": "a2_b0p2", "seed": seed, "objective": "vaeas", "alpha": 2.0, "beta": 0.2, "au": 40, "nll_test": 50.0})
        rows.append({"run": "fb_l0p5", "seed": seed, "objective": "free_bits", "lam": 0.5, "au": 40, "nll_test": 90.0})
    return rows


def test_pairs_vaeas_at_alpha_one_with_beta_vae_seed_by_seed():
    pairs = tb.paired_comparisons(_rows()).set_index("metric")
    assert pairs.loc["au", "differences"] == "2 3 2"                 # α = 2 is not paired
    assert pairs.loc["au", "outcome"] == "VAE-AS higher"
    assert pairs.loc["nll_test", "mean"] == pytest.approx(-(1.0 + 2.5 + 2.0) / 3)
    assert set(pairs.index) == {"au", "nll_test"}                     # metrics the rows have


def test_table_has_one_row_per_run_with_seed_counts_and_sd():
    table = tb.build_baselines(_rows())
    assert list(table["run"]) == ["a1_b0p2", "beta_b0p2", "a2_b0p2", "fb_l0p5"]
    assert set(table["n_seeds"]) == {3}
    row = table.set_index("run").loc["a1_b0p2"]
    assert row["au_mean"] == 11 and row["au_sd"] == pytest.approx(1.0)
    assert table.set_index("run").loc["fb_l0p5", "config"] == "free bits λ=0.5"
    with pytest.raises(ValueError, match="a seed appears twice"):
        tb.build_baselines(_rows() + [_rows()[0]])


def test_one_seed_says_n_equals_one_and_forms_no_interval(tmp_path):
    rows = [r for r in _rows() if r["seed"] == 0]
    table, pairs = tb.build_baselines(rows), tb.paired_comparisons(rows)
    assert set(pairs["outcome"]) == {"inconclusive"}
    text = tb.format_baselines(table, pairs, "T")
    assert "n = 1 seed per row" in text and "mean ± sd" not in text
    paths = [tmp_path / n for n in ("b.csv", "b.md", "b.json", "p.csv")]
    tb.write_baselines(table, pairs, "T", *paths)
    assert len(pd.read_csv(paths[0])) == 4 and len(pd.read_csv(paths[3])) == len(pairs)
    tb.figure_baselines(rows, tmp_path / "b.png", "T")
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
