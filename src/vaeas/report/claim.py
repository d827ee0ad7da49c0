"""What a claim is and how it is judged from per-seed statistics (shared by :mod:`~vaeas.report.claims`,
:mod:`~vaeas.report.figure_claims`, Table B's claims in :mod:`~vaeas.report.baselines` and
:mod:`~vaeas.report.consistency`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from .stats import FAIL, INCONCLUSIVE, NA, PASS, Rule, judge, judge_point, mean_interval
from .tables import our_dataset, same_data

#: Tolerance of the "caught up" claims (issue 10's target |softmax MI − Monte Carlo MI| ≤ 0.3),
#: also the margin of the shared-label and evasion claims.
CAUGHT_UP_TOL = 0.3
#: Monte Carlo MI within this of log S at the smallest S means the posteriors are separated: every
#: posterior's mass sits on its own mean, the estimate is exactly log S and its sd 0 whatever S is.
SEPARATED_TOL = 0.05

OUTCOMES = (PASS, FAIL, INCONCLUSIVE, NA)


@dataclass
class Claim:
    """One claim: its ``rule``, our ``outcome`` with the per-seed statistic's mean and 95 %
    interval over ``n`` seeds, and ``paper_outcome``, the same rule on the paper's numbers."""

    id: str
    statement: str
    outcome: str
    evidence: str
    paper_outcome: str = NA
    rule: str = ""
    n: int = 0
    mean: float = math.nan
    low: float = math.nan
    high: float = math.nan
    #: a "for every" claim's per-member outcomes (Table B: one per β), in order
    members: tuple[str, ...] = ()

    @property
    def passed(self) -> bool | None:
        """True for PASS, False for FAIL, None for INCONCLUSIVE or N/A."""
        return {PASS: True, FAIL: False}.get(self.outcome)

    @property
    def paper_passed(self) -> bool | None:
        return {PASS: True, FAIL: False}.get(self.paper_outcome)

    def interval_text(self) -> str:
        """"−0.94 [−1.00, −0.81], n = 3", or what stands in its place."""
        if self.n == 0 or not math.isfinite(self.mean):
            return "—"
        if self.n == 1:
            return f"{_signed(self.mean)}, n = 1 (no interval)"
        return f"{_signed(self.mean)} [{_signed(self.low)}, {_signed(self.high)}], n = {self.n}"


def _signed(x: float) -> str:
    return f"{x:+.2f}".replace("-", "\u2212")


#: What a check returns: the statistic (NaN = not enough data) and the words that show it.
Stat = tuple[float, str]
Check = Callable[[pd.DataFrame, str], Stat]


def _judged(cid: str, statement: str, rule: Rule, per_seed: Mapping[int, float], ours_text: str,
            paper: Stat | None, extra: str = "") -> Claim:
    """A claim from per-seed statistics: mean, interval (clipped to the statistic's range), outcome."""
    values = {s: v for s, v in per_seed.items() if v is not None and math.isfinite(v)}
    mean, low, high = mean_interval(list(values.values()))
    low, high = rule.clip(low, high) if values else (low, high)
    outcome = judge(rule, low, high) if values else NA
    seeds = ", ".join(f"seed {s}: {_signed(v)}" for s, v in sorted(values.items()))
    ev = f"ours: {ours_text}" + (f"; {rule.statistic} per seed: {seeds}" if values else "")
    paper_outcome, paper_text = NA, "—"
    if paper is not None:
        paper_outcome, paper_text = judge_point(rule, paper[0]), paper[1]
    return Claim(cid, statement, outcome, f"{ev}{extra}. Paper: {paper_text}.", paper_outcome, rule.text(),
                 len(values), mean, low, high)


def _seed_of(row: Mapping) -> int:
    seed = row.get("seed", 0)
    return int(seed) if seed is not None and not (isinstance(seed, float) and math.isnan(seed)) else 0


def data_label(ours: str | None, paper: str) -> str:
    """How a claim names its data: the paper's data set when ours is the same (or we have no
    results), else ours with the paper's beside it, e.g. "digits (paper: MNIST)"."""
    return paper if same_data(ours, paper) else f"{ours} (paper: {paper})"


def _dataset_of(rows: Sequence[Mapping] | None) -> str | None:
    if not rows:
        return None
    return our_dataset(pd.DataFrame([{"dataset": r.get("dataset")} for r in rows]))


def _model_groups(frame: pd.DataFrame) -> list[tuple[str, int, pd.DataFrame]]:
    ids = [c for c in ("model", "dataset", "alpha", "beta", "seed", "label_count", "run") if c in frame.columns]
    if not ids:
        return [("run", 0, frame)]
    out = []
    for key, group in frame.groupby(ids, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        name = str(group["model"].iloc[0]) if "model" in group else ", ".join(map(str, key))
        out.append((name, _seed_of(group.iloc[0]), group))
    return out


def _esc(s) -> str:
    return str(s).replace("|", "\\|")
