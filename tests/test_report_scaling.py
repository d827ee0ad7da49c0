"""The N-scaling study (vaeas.report.scaling): per-method and per-N summaries, the pairing by seed
at each N, the paper's points, the outputs; and the study's profile (mnist-scaling)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from vaeas import pipeline
from vaeas.errors import VaeasError
from vaeas.experiments import load_config, runs
from vaeas.report import scaling as sc

REPO = Path(__file__).resolve().parents[1]


def _rows():
    """Three seeds of VAE, VAE-AS(1, 1), VAE-AS(1, 0.2), β-VAE(0.2) at N = 1,000 and 3,000: AU of
    VAE-AS(1, 1) is the VAE's + 2 at N = 1,000 (every seed) and + (−1, 0, 2) at 3,000."""
    rows = []
    for n in (1000, 3000):
        for seed in range(3):
            base = {"seed": seed, "log_n": math.log(n), "nll_train": 70.0 + seed, "kl_train": 15.0}
            up = 2 if n == 1000 else (-1, 0, 2)[seed]
            rows += [
                {**base, "run": f"vae_{n}", "objective": "vae", "au": 5 + seed, "nll_test": 150.0 + seed},
                {**base, "run": f"a1_b1_{n}", "objective": "vaeas", "alpha": 1.0, "beta": 1.0, "au": 5 + seed + up,
                 "nll_test": 149.0 + seed, "mi": 6.5, "mi_mc": 6.9},
                {**base, "run": f"a1_b0p2_{n}", "objective": "vaeas", "alpha": 1.0, "beta": 0.2, "au": 12, "nll_test": 140.0},
                {**base, "run": f"beta_{n}", "objective": "beta_vae", "beta": 0.2, "au": 12, "nll_test": 141.0 + seed},
            ]
    return rows


def test_one_row_per_method_and_n_with_means_sds_and_derived_columns():
    table = sc.build_scaling(_rows())
    assert list(zip(table["method"], table["N"]))[:2] == [("VAE", 1000), ("VAE", 3000)]
    assert len(table) == 8 and set(table["n_seeds"]) == {3}
    row = table[(table["method"] == "VAE") & (table["N"] == 1000)].iloc[0]
    assert row["au_mean"] == 6 and row["au_sd"] == pytest.approx(1.0)
    assert row["gap_mean"] == pytest.approx(80.0) and row["gap_sd"] == pytest.approx(0.0)   # NLL_test − NLL_train per seed
    assert row["log_n"] == pytest.approx(math.log(1000))
    vaeas = table[table["method"].str.startswith("VAE-AS") & (table["N"] == 1000)]
    assert set(vaeas["mc_gap_mean"].round(6).dropna()) == {0.4}                               # MI_MC − MI_softmax
    assert math.isnan(row["mc_gap_mean"])                                                     # the VAE has no classifier


def test_a_seed_given_twice_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^scaling: VAE at N = 1000 has seed 0 twice$"):
        sc.build_scaling(_rows() + [_rows()[0]])


def test_pairs_at_each_n_and_the_reading_changes_with_n():
    pairs = sc.scaling_comparisons(_rows())
    au = pairs[(pairs["comparison"] == "VAE-AS(1, 1) − VAE") & (pairs["metric"] == "au")].set_index("N")
    assert au.loc[1000, "differences"] == "2 2 2"
    assert au.loc[1000, "low"] == pytest.approx(2.0) and au.loc[1000, "outcome"] == "VAE-AS higher"   # sd 0: the interval is the point
    assert au.loc[3000, "differences"] == "-1 0 2" and au.loc[3000, "outcome"] == "inconclusive"
    nll = pairs[(pairs["comparison"] == "VAE-AS(1, 0.2) − β-VAE(0.2)") & (pairs["metric"] == "nll_test")].set_index("N")
    assert nll.loc[1000, "differences"] == "-1 -2 -3"
    text = sc.format_scaling(sc.build_scaling(_rows()), pairs)
    assert "- VAE-AS(1, 1) − VAE, AU_test: N = 1,000: VAE-AS higher; N = 3,000: inconclusive (**changes with N**)" in text


def test_pooled_over_n_averages_the_per_n_means_and_sets_the_papers_difference_beside_it():
    pooled = sc.pooled_comparisons(_rows()).set_index(["comparison", "metric"])
    au = pooled.loc[("VAE-AS(1, 1) − VAE", "au")]
    # Per-N means 2 (sd 0) and 1/3 (sd of −1, 0, 2); only N = 3,000 has variance, so ν = 2.
    assert au["mean"] == pytest.approx((2 + 1 / 3) / 2) and au["df"] == pytest.approx(2.0)
    half = 4.303 * math.sqrt(pd.Series([-1.0, 0.0, 2.0]).var() / 3) / 2
    assert (au["low"], au["high"]) == pytest.approx((au["mean"] - half, au["mean"] + half))
    assert (au["pooled_N"], au["seeds"], au["outcome"]) == ("1000 3000", "3 3", "inconclusive")
    assert au["paper"] == pytest.approx(11 - 8) and au["paper_inside"] == "inside"
    nll = pooled.loc[("VAE-AS(1, 1) − VAE", "nll_test")]                  # −1 at every seed and N: the point
    assert (nll["mean"], nll["low"], nll["high"], nll["outcome"]) == (-1.0, -1.0, -1.0, "VAE-AS lower")
    assert nll["paper"] == pytest.approx(96.32 - 100.99) and nll["paper_inside"] == "outside"
    beta = pooled.loc[("VAE-AS(1, 0.2) − β-VAE(0.2)", "nll_test")]
    assert math.isnan(beta["paper"]) and beta["paper_inside"] == ""          # the paper has no β-VAE
    text = sc.format_scaling(sc.build_scaling(_rows()), sc.scaling_comparisons(_rows()), sc.pooled_comparisons(_rows()))
    assert "**Pooled over N.**" in text
    pooled_rows = [[c.strip() for c in l.strip("|").split("|")] for l in text.split("**Pooled over N.**")[1].splitlines()
                   if l.startswith("| VAE-AS")]
    assert ["VAE-AS(1, 1) − VAE", "NLL_test", "1,000 (3), 3,000 (3)", "−1.00", "[−1.00, −1.00]", "∞", "VAE-AS lower",
            "−4.67 (outside)"] in pooled_rows


def test_pooled_over_n_leaves_out_an_n_with_one_paired_seed():
    rows = _rows() + [
        {"seed": 0, "log_n": math.log(10000), "nll_train": 70.0, "kl_train": 15.0, "run": f"{r}_10000", **extra}
        for r, extra in (("vae", {"objective": "vae", "au": 9, "nll_test": 120.0}),
                         ("a1_b1", {"objective": "vaeas", "alpha": 1.0, "beta": 1.0, "au": 30, "nll_test": 100.0}))]
    pairs = sc.scaling_comparisons(rows)
    assert 10000 in set(pairs["N"])                                             # shown per N, with n = 1
    au = sc.pooled_comparisons(rows).set_index(["comparison", "metric"]).loc[("VAE-AS(1, 1) − VAE", "au")]
    assert au["pooled_N"] == "1000 3000" and au["mean"] == pytest.approx((2 + 1 / 3) / 2)


def test_the_pace_counts_the_seeds_that_caught_up_of_those_monitored():
    rows = _rows()
    paces = iter([120.0, 140.0, math.inf])                     # VAE-AS(1, 1) at N = 3,000: two of three caught up
    for r in rows:
        if r["run"] == "a1_b1_3000":
            r["caught_up_epoch"] = next(paces)
    table = sc.build_scaling(rows).set_index(["method", "N"])
    row = table.loc[("VAE-AS α=1 β=1", 3000)]
    assert (row["caught_up_epoch_mean"], row["caught_up_epoch_reached"], row["caught_up_epoch_monitored"]) == (130.0, 2, 3)
    assert table.loc[("VAE", 3000), "caught_up_epoch_monitored"] == 0
    text = sc.format_scaling(sc.build_scaling(rows), sc.scaling_comparisons(rows))
    line = next(l for l in text.splitlines() if l.startswith("| VAE-AS α=1 β=1   | 3,000"))
    assert line.endswith("| 130 ± 14.14 (2 of 3) |")                                 # sd of 120 and 140
    assert "Epoch gap ≤ 0.3: the first monitored epoch" in text
    rows = [r for r in rows if r["run"] == "a1_b1_3000"]
    for r in rows:
        r["caught_up_epoch"] = math.inf
    assert "not by the last epoch (0 of 3)" in sc.format_scaling(sc.build_scaling(rows), sc.scaling_comparisons(rows))
    assert "epoch gap" not in sc.format_scaling(sc.build_scaling(_rows()), sc.scaling_comparisons(_rows()))


def test_the_papers_points_are_its_table_2_values():
    points = sc.paper_points(sc.build_scaling(_rows())).set_index(["method", "metric"])["value"]
    assert points[("VAE-AS α=1 β=1", "au")] == 11 and points[("VAE", "nll_test")] == pytest.approx(100.99)
    assert points[("VAE-AS α=1 β=1", "gap")] == pytest.approx(96.32 - 71.66)
    assert not any(m.startswith("β-VAE") for m, _ in points.index)                            # the paper has no β-VAE


def test_writes_table_pairs_metrics_and_figure(tmp_path):
    rows = _rows()
    paths = [tmp_path / n for n in ("s.csv", "s.md", "s.json", "p.csv", "q.csv")]
    sc.write_scaling(sc.build_scaling(rows), sc.scaling_comparisons(rows), sc.pooled_comparisons(rows), *paths)
    assert len(pd.read_csv(paths[0])) == 8
    assert list(pd.read_csv(paths[4]).columns) == sc.POOLED_COLUMNS and "**Pooled over N.**" in paths[1].read_text()
    assert json.loads(paths[2].read_text())["VAE N=3000"]["au"] == 6.0
    sc.figure_scaling(rows, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_study_profile_inherits_mnist_cpu_and_runs_only_the_study():
    cfg, base = load_config(REPO / "params.yaml", profile="mnist-scaling"), load_config(REPO / "params.yaml", profile="mnist-cpu")
    assert (cfg.training, cfg.model, cfg.evaluation) == (base.training, base.model, base.evaluation)    # YAML '<<' merge
    grid = runs(cfg)
    assert {r.experiment for r in grid} == {"scaling"} and len(grid) == 12
    sizes = {r.name: r.overrides["data.train_size"] for r in grid}
    assert sorted(set(sizes.values())) == [1000, 3000, 10000]
    assert pipeline.tables(cfg) == [] and not pipeline.has_claims(cfg)
    assert "results/mnist-scaling/figures/scaling.png" in pipeline.report_inputs(cfg)
    assert not any(p.endswith(("claims.md", "verdict.md")) for p in pipeline.report_inputs(cfg))


def test_scaling_and_claims_refuse_a_profile_without_their_runs():
    from vaeas.report.drivers import make_claims, make_scaling

    with pytest.raises(VaeasError, match=r"^no runs of experiment 'scaling' in profile 'ci' \(the study's profile: mnist-scaling\)$"):
        make_scaling(load_config(REPO / "params.yaml", profile="ci"))
    with pytest.raises(VaeasError, match=r"^profile 'mnist-scaling' runs nothing the claims judge"):
        make_claims(load_config(REPO / "params.yaml", profile="mnist-scaling"))
