"""The verdict table (vaeas.report.verdict): its reading follows the outcomes whichever way they
fall, and it names the baseline comparison."""

from __future__ import annotations

from vaeas.report import Claim
from vaeas.report.verdict import PAPER_CLAIMS, format_verdict, scale_note, verdict_rows


def claim(cid, outcome, paper="PASS", mean=1.0, low=0.5, high=1.5, n=3, evidence="", members=()):
    return Claim(cid, cid, outcome, evidence, paper, "x > 0", n, mean, low, high, members)


def au_row(claims):
    return verdict_rows(claims)[0]


def test_every_row_reads_its_outcome():
    tb = "β=0.1: +1.00 [+0.50, +1.50] (PASS); β=0.2: −1.00 [−3.00, +1.00] (INCONCLUSIVE)"
    for outcome, words in [("PASS", "the claim holds"), ("FAIL", "the claim does not hold"),
                           ("INCONCLUSIVE", "the claim is not decided by our seeds")]:
        row = au_row([claim("T2-AU-vs-VAE", outcome), claim("TB-MNIST-AU", "INCONCLUSIVE", "N/A", evidence=tb, members=("PASS", "INCONCLUSIVE"))])
        assert row[0].startswith("VAE-AS alleviates posterior collapse")
        assert f"In our setting {words}" in row[3]
        assert "T2-AU-vs-VAE **" + outcome + "** (+1.00 [+0.50, +1.50], n = 3)" in row[1]
        assert "not distinguishable from β-VAE at the same β (1 of 2 paired intervals contain 0)" in row[3]
    # A FAIL of Table B is an interval wholly at or on β-VAE's side of 0: a tie at every seed is one.
    fail = au_row([claim("T2-AU-vs-VAE", "PASS"), claim("TB-MNIST-AU", "FAIL", "N/A", members=("INCONCLUSIVE", "FAIL", "FAIL"))])
    assert ("VAE-AS does not beat β-VAE at the same β at every β: at 2 of 3 β its paired interval lies wholly on "
            "β-VAE's side of 0 or at 0") in fail[3]
    trend = verdict_rows([claim("T2-beta-AU", "PASS"), claim("TB-MNIST-AU", "FAIL", "N/A", members=("FAIL", "PASS"))])[3]
    assert "VAE-AS keeps no more active units than β-VAE at 1 of 2 β" in trend[3]


def test_counts_only_the_checks_run_and_the_papers_own_outcomes():
    row = au_row([claim("T2-AU-vs-VAE", "INCONCLUSIVE"), claim("T3-AU-vs-VAE", "N/A", paper="FAIL", n=0, mean=float("nan"))])
    assert "not decided by our seeds;" in row[3] and "the paper's own numbers pass 1 of 2" in row[3]
    assert "the baseline comparison was not run" in row[3]
    assert "T3-AU-vs-VAE **N/A**" in row[1] and "(" not in row[1].split("T3-AU-vs-VAE")[1]


def test_the_estimator_row_reads_the_predicted_under_reading():
    rows = verdict_rows([claim("T2-softmax-vs-MC", "PASS"), claim("T2-alpha-evasion", "PASS", "N/A")])
    assert "under-reads the Monte Carlo MI where predicted (T2-alpha-evasion)" in rows[2][3]
    alpha = verdict_rows([claim("T2-alpha-MI", "PASS"), claim("T2-alpha-evasion", "FAIL", "N/A")])[4]
    assert "the posteriors do carry less information" in alpha[3]


def test_table_has_a_row_per_paper_claim_and_the_scale_note_on_nll_rows():
    note = scale_note([{"nll_train": 70.0, "nll_test": 150.0}, {"nll_train": 72.0, "nll_test": 148.0}], 1000, 55000)
    assert note.startswith("At N = 1,000 training images (the paper: 55,000) every model overfits (mean over its "
                           "runs: NLL_train 71.0 vs NLL_test 149.0)")
    assert scale_note([], 55000, 55000) == "" and scale_note([], None, 55000) == ""
    rows = verdict_rows([], note)
    assert len(rows) == len(PAPER_CLAIMS)
    assert note in rows[1][3] and note in rows[4][3] and note not in rows[0][3]
    text = format_verdict([])
    assert text.startswith("**Verdict: what held.**") and text.count("\n|") == len(PAPER_CLAIMS) + 2
