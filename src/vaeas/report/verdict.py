"""The verdict table that opens REPORT.md (issue 18, item 5): one row per claim of the paper's
abstract and §5, our outcome with its interval, the baseline that would explain it otherwise, and
one sentence of reading generated from the outcomes, so that it says what the numbers show
whichever way they fall. A reviewer who reads only this table knows what held."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..io import write_text
from .claims import Claim
from .stats import FAIL, INCONCLUSIVE, NA, PASS, combine


@dataclass(frozen=True)
class PaperClaim:
    """A claim of the paper: the claims of ours that test it, those that test the baseline (or the
    estimator) that would explain it otherwise, and how each outcome of the latter reads."""

    claim: str
    tests: tuple[str, ...]
    baseline: tuple[str, ...]
    baseline_means: str
    against: Mapping[str, str]


_BETA_VAE = {
    PASS: "and VAE-AS beats β-VAE at the same β at every β, paired by seed",
    # FAIL is also a tie: the same AU at every seed is an interval [0, 0], not "more".
    FAIL: "and VAE-AS does not beat β-VAE at the same β at every β: at {failed} of {judged} β its paired interval "
          "lies wholly on β-VAE's side of 0 or at 0 (the same value at every seed)",
    INCONCLUSIVE: "and VAE-AS is not distinguishable from β-VAE at the same β ({per_beta})",
}

PAPER_CLAIMS = (
    PaperClaim("VAE-AS alleviates posterior collapse: more active units than the VAE (abstract; Tables 2–3)",
               ("T2-AU-vs-VAE", "T3-AU-vs-VAE"), ("TB-MNIST-AU", "TB-OMNIGLOT-AU"),
               "β-VAE at the same β (at α = 1 the objective is β·KL + (1 − β)·MI + const, D39)", _BETA_VAE),
    PaperClaim("VAE-AS (α = β = 1) reaches a lower test NLL than the VAE (abstract; Tables 2–3)",
               ("T2-NLL-vs-VAE", "T3-NLL-vs-VAE"), ("TB-MNIST-NLL", "TB-OMNIGLOT-NLL"),
               "β-VAE at the same β (free bits and KL annealing beside them in Table B)", _BETA_VAE),
    PaperClaim("The auxiliary softmax classifier estimates MI and MD (§3.3, §5.2, Fig. 2)",
               ("Fig2-softmax", "T2-softmax-vs-MC", "T3-softmax-vs-MC"),
               ("Fig2-shared-labels", "T2-alpha-evasion", "T3-alpha-evasion"),
               "the Monte Carlo MI over all N posteriors, where the softmax is predicted to under-read",
               {PASS: "but it under-reads the Monte Carlo MI where predicted ({passed}): a lower bound, capped at "
                      "log V with V < N shared labels, that the encoder evades at large α",
                FAIL: "and at least one predicted under-reading (shared labels, largest α) was not found",
                INCONCLUSIVE: "and whether it under-reads at shared labels and at the largest α is not decided"}),
    PaperClaim("β controls the KL and the active units while MI stays near log N (§5.3)",
               ("T2-beta-KL_test", "T2-beta-AU", "T3-beta-KL_test", "T3-beta-AU", "T2-MI-bound", "T3-MI-bound"),
               ("TB-MNIST-AU", "TB-OMNIGLOT-AU"), "β-VAE along the same β",
               {PASS: "and VAE-AS keeps more active units than β-VAE at every β",
                FAIL: "and VAE-AS keeps no more active units than β-VAE at {failed} of {judged} β (paired by seed; the "
                      "same count at every seed included): the trend is the β-VAE's",
                INCONCLUSIVE: "and β-VAE at the same β is not distinguishable ({per_beta}): the trend is what a "
                              "β-VAE does"}),
    PaperClaim("α controls MI and overfitting: large α lowers MI, raises NLL_train, shrinks the gap (§5.3)",
               ("T2-alpha-MI", "T3-alpha-MI", "T2-alpha-NLL_train", "T3-alpha-NLL_train", "T2-alpha-gap", "T3-alpha-gap"),
               ("T2-alpha-evasion", "T3-alpha-evasion"),
               "the Monte Carlo MI: does the posteriors' MI fall, or only the classifier's reading of it?",
               {PASS: "but at the largest α the Monte Carlo MI stays more than 0.3 nats above the softmax MI: much of "
                      "the fall is the classifier being evaded, not less information in the posteriors",
                FAIL: "and the Monte Carlo MI falls with the softmax MI: the posteriors do carry less information",
                INCONCLUSIVE: "and whether the posteriors' own (Monte Carlo) MI falls is not decided"}),
    PaperClaim("Deeper decoders leave fewer active units (§2.2, Table 1)", ("T1-AU-depth",), (), "—", {}),
)

_WORDS = {PASS: "holds", FAIL: "does not hold", INCONCLUSIVE: "is not decided by our seeds", NA: "was not run"}


def _outcomes(ids: Sequence[str], claims: Mapping[str, Claim]) -> list[tuple[str, Claim]]:
    return [(cid, claims[cid]) for cid in ids if cid in claims]


def _cell(items: list[tuple[str, Claim]]) -> str:
    if not items:
        return "—"
    return "; ".join(f"{cid} **{c.outcome}**" + (f" ({c.interval_text()})" if c.interval_text() != "—" else "")
                     for cid, c in items)


def _per_beta(items: list[tuple[str, Claim]]) -> dict[str, object]:
    """Table B's per-β paired intervals (the claims' members): how many were judged, failed, and
    the sentence of how many contain 0."""
    members = [o for _, c in items for o in c.members]
    judged = sum(o in (PASS, FAIL, INCONCLUSIVE) for o in members)
    return {"judged": judged, "failed": members.count(FAIL),
            "per_beta": f"{members.count(INCONCLUSIVE)} of {judged} paired intervals contain 0"}


def _reading(pc: PaperClaim, tests: list[tuple[str, Claim]], base: list[tuple[str, Claim]], scale_note: str) -> str:
    known = [c for _, c in tests if c.outcome != NA]
    overall = combine([c.outcome for c in known])
    head = f"In our setting the claim {_WORDS[overall]}"
    if len(known) > 1:
        head += " (" + ", ".join(f"{n} {o}" for o in (PASS, FAIL, INCONCLUSIVE)
                                 if (n := sum(c.outcome == o for c in known))) + f" of {len(known)} checks run)"
    parts = [head]
    paper = [c.paper_outcome for _, c in tests if c.paper_outcome != NA]
    if paper:
        parts.append(f"the paper's own numbers pass {paper.count(PASS)} of {len(paper)} of these checks")
    base_known = [(cid, c) for cid, c in base if c.outcome != NA]
    if base_known:
        passed = ", ".join(cid for cid, c in base_known if c.outcome == PASS)
        parts.append(pc.against[combine([c.outcome for _, c in base_known])].format(**_per_beta(base_known), passed=passed))
    elif pc.baseline:
        parts.append("the baseline comparison was not run")
    return "; ".join(parts) + "." + (f" {scale_note}" if scale_note else "")


def verdict_rows(claims: Sequence[Claim], scale_note: str = "") -> list[list[str]]:
    """The table's rows: paper's claim, our outcome (per test, with interval), the baseline and its
    outcome, and the reading."""
    by_id = {c.id: c for c in claims}
    rows = []
    for pc in PAPER_CLAIMS:
        tests, base = _outcomes(pc.tests, by_id), _outcomes(pc.baseline, by_id)
        note = scale_note if ("NLL" in pc.claim or "overfitting" in pc.claim) else ""
        rows.append([pc.claim, _cell(tests), f"{pc.baseline_means}: {_cell(base)}" if pc.baseline else "—",
                     _reading(pc, tests, base, note)])
    return rows


def format_verdict(claims: Sequence[Claim], scale_note: str = "") -> str:
    from tabulate import tabulate

    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    body = [[esc(x) for x in row] for row in verdict_rows(claims, scale_note)]
    return ("**Verdict: what held.** One row per claim of the paper's abstract and §5; outcomes and 95 % intervals "
            "over seeds as in the claims table below (INCONCLUSIVE: the interval straddles the threshold).\n\n"
            + tabulate(body, headers=["The paper claims", "Our outcome (mean [95 % interval], seeds)",
                                      "Baseline that would explain it otherwise", "Reading"],
                       tablefmt="github", disable_numparse=True) + "\n")


def scale_note(rows: Sequence[Mapping], n: int | None, paper_n: int) -> str:
    """The caveat of the NLL and overfitting rows when our training set is smaller than the paper's:
    the mean NLL_train and NLL_test of ``rows`` (one table's per-seed rows)."""
    if not n or n >= paper_n:
        return ""
    import math

    def mean(key):
        values = [float(r[key]) for r in rows if key in r and math.isfinite(float(r[key]))]
        return sum(values) / len(values) if values else math.nan
    train, test = mean("nll_train"), mean("nll_test")
    numbers = f" (mean over its runs: NLL_train {train:.1f} vs NLL_test {test:.1f})" if math.isfinite(train) else ""
    return (f"At N = {n:,} training images (the paper: {paper_n:,}) every model overfits{numbers}: test-NLL and "
            "overfitting claims at this scale do not decide the paper's; the N-scaling study (issue \"Scale\") does.")


def write_verdict(claims: Sequence[Claim], path: str | os.PathLike, scale_note: str = "") -> None:
    write_text(path, format_verdict(claims, scale_note))
