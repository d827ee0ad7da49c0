"""The paper's qualitative statements (§2.2, §5), and ours beyond it, as claims with confidence;
the identities that hold by construction apart, as consistency checks. See :mod:`vaeas.report`
for the thresholds and docs/decisions.md D41 for the rule.

Every claim computes one statistic **per seed** (a Spearman ρ along a sweep, a gap to a bound, a
paired difference on the same seed) and summarises it by the mean over seeds and its 95 % Student t
interval (:func:`vaeas.report.stats.mean_interval`). The outcome is PASS when the whole interval
satisfies the claim's :class:`~vaeas.report.stats.Rule`, FAIL when the whole interval violates
it, INCONCLUSIVE when it straddles the threshold (always with one seed), N/A without data. The
paper's own transcribed numbers (one value each) are judged by the same rule at face value.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import objectives
from ..io import write_text
from .baselines import baseline_claims
from .claim import (  # noqa: F401  (re-exported: the claims' API)
    CAUGHT_UP_TOL, NA, OUTCOMES, SEPARATED_TOL, Check, Claim, Stat, _dataset_of, _esc, _judged, _seed_of, _signed,
    data_label,
)
from .consistency import format_consistency
from .figure_claims import fig2_claims
from .stats import Rule
from .tables import (
    MI_BOUND_TOL,
    PAPER_N,
    TABLE_DATASETS,
    TREND_RHO,
    _sweep,
    build_table,
)

def _table_claim(cid: str, statement: str, rule: Rule, check: Check, table: int,
                 rows: Sequence[Mapping] | None) -> Claim:
    """Apply ``check`` to the table of each seed's rows (ours) and to the paper's table."""
    paper = check(build_table(table, []), "paper")
    if not rows:
        return _judged(cid, statement, rule, {}, "no results of ours", paper)
    by_seed: dict[int, list] = {}
    for row in rows:
        by_seed.setdefault(_seed_of(row), []).append(row)
    per_seed = {s: check(build_table(table, r), "ours")[0] for s, r in sorted(by_seed.items())}
    text = check(build_table(table, rows), "ours")[1]
    if len(by_seed) > 1:
        text = f"means over seeds: {text}"
    return _judged(cid, statement, rule, per_seed, text, paper)


# ---------------------------------------------------------------------------------------------
# Checks on one table (one seed's rows, the mean over seeds, or the paper's)

def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ; 0 for a constant series (no monotone trend at all), NaN below 2 points."""
    xs, ys = pd.Series(list(x), dtype=float), pd.Series(list(y), dtype=float)
    if len(xs) < 2:
        return math.nan
    if xs.nunique() < 2 or ys.nunique() < 2:
        return 0.0
    return round(float(xs.rank().corr(ys.rank())), 12)    # ranks: a rational value; drop float noise


def _series_text(series: pd.Series, sym: str, digits: int = 2) -> str:
    return ", ".join(f"{sym}={k:g}: {v:.{digits}f}" for k, v in series.items())


def trend_rule(direction: int) -> Rule:
    """"Falls" (−1): ρ ≤ −TREND_RHO; "rises" (+1): ρ ≥ TREND_RHO."""
    return Rule("Spearman ρ", "<=" if direction < 0 else ">=", -TREND_RHO if direction < 0 else TREND_RHO, (-1.0, 1.0))


def _value_col(df: pd.DataFrame, metric: str, source: str) -> pd.Series:
    suffix = "mean" if source == "ours" else "paper"
    if metric == "gap":
        return df[f"nll_test_{suffix}"] - df[f"nll_train_{suffix}"]
    return df[f"{metric}_{suffix}"]


def _trend(values: pd.Series, sym: str, digits: int) -> Stat:
    values = values.dropna().sort_index()
    if len(values) < 2:
        return math.nan, f"{len(values)} {sym} setting(s)"
    rho = _spearman(values.index, values.values)
    return rho, f"{_series_text(values, sym, digits)} (ρ = {_signed(rho)})"


def _trend_check(fixed: str, vary: str, sym: str, metric: str) -> Check:
    def check(df: pd.DataFrame, source: str) -> Stat:
        sub = _sweep(df, fixed, vary)
        values = pd.Series(_value_col(sub, metric, source).values, index=sub[vary].values)
        return _trend(values, sym, 1 if metric == "au" else 2)
    return check


def _mi_bound_check(table: int) -> Check:
    def check(df: pd.DataFrame, source: str) -> Stat:
        sel = df[(df["method"] == objectives.VAEAS.name) & (df["alpha"] <= 2 + 1e-9) & (df["beta"] <= 1 + 1e-9)]
        mi = _value_col(sel, "mi", source)
        sel, mi = sel[mi.notna()], mi[mi.notna()]
        if not len(sel):
            return math.nan, "no VAE-AS run with α ≤ 2, β ≤ 1"
        if source == "paper":
            bounds = pd.Series(math.log(PAPER_N[table]), index=sel.index)
            which = f"log N = log {PAPER_N[table]:,} = {bounds.iloc[0]:.2f}"
        else:
            counts = sel["label_count"]
            bounds = np.log(counts.where(counts > 0)).fillna(sel["log_n"])
            if bounds.isna().all():
                return math.nan, "no label_count or log_n in our metrics"
            which = f"log V = {bounds.dropna().iloc[0]:.2f} (V = {int(counts.dropna().iloc[0]):,} labels)" \
                if counts.notna().any() else f"log N = {bounds.dropna().iloc[0]:.2f}"
        gaps = bounds - mi
        worst = gaps.idxmax()
        return float(gaps.max()), (f"max bound − MI = {gaps.max():.2f} nats at α={df.loc[worst, 'alpha']:g} "
                                   f"β={df.loc[worst, 'beta']:g} (MI = {mi[worst]:.2f}, bound {which}; {len(sel)} runs)")
    return check


def _vaeas_rows(df: pd.DataFrame, alpha: float | None = 1.0, beta: float | None = None) -> pd.DataFrame:
    sel = df[df["method"] == objectives.VAEAS.name]
    if alpha is not None:
        sel = sel[np.isclose(sel["alpha"].astype(float), alpha)]
    if beta is not None:
        sel = sel[np.isclose(sel["beta"].astype(float), beta)]
    return sel


def _vae_au_check(df: pd.DataFrame, source: str) -> Stat:
    vae = _value_col(df[df["method"] == objectives.VAE.name], "au", source).dropna()
    sel = _vaeas_rows(df)
    sel = sel[sel["beta"] <= 1 + 1e-9]
    au = pd.Series(_value_col(sel, "au", source).values, index=sel["beta"].values).dropna().sort_index()
    if not len(vae) or not len(au):
        return math.nan, "needs the VAE row and VAE-AS α=1, β ≤ 1 rows"
    return float((au - vae.iloc[0]).min()), f"VAE AU = {vae.iloc[0]:.1f}; VAE-AS α=1: {_series_text(au, 'β', 1)}"


def _vae_nll_check(df: pd.DataFrame, source: str) -> Stat:
    vae = _value_col(df[df["method"] == objectives.VAE.name], "nll_test", source).dropna()
    ours = _value_col(_vaeas_rows(df, 1.0, 1.0), "nll_test", source).dropna()
    if not len(vae) or not len(ours):
        return math.nan, "needs the VAE row and the VAE-AS α=1, β=1 row"
    return float(ours.iloc[0] - vae.iloc[0]), f"NLL_test VAE-AS(α=1, β=1) = {ours.iloc[0]:.2f} vs VAE = {vae.iloc[0]:.2f}"


def _agreement_check(reference: str, name: str) -> Check:
    """|softmax MI − reference| on the α = β = 1 row; the paper reports neither estimate."""
    def check(df: pd.DataFrame, source: str) -> Stat:
        if source == "paper":
            return math.nan, f"the paper reports no {name} estimate for its tables"
        sel = _vaeas_rows(df, 1.0, 1.0)
        if not len(sel) or f"{reference}_mean" not in sel.columns or sel[f"{reference}_mean"].isna().all():
            return math.nan, (f"no {name} MI in our metrics (evaluation.refit_epochs = 0?)" if name == "refit"
                              else f"no {name} MI in our metrics")
        ours, ref = float(sel["mi_mean"].iloc[0]), float(sel[f"{reference}_mean"].iloc[0])
        return abs(ours - ref), f"softmax MI = {ours:.2f}, {name} MI = {ref:.2f} (|Δ| = {abs(ours - ref):.2f})"
    return check


def _evasion_check(df: pd.DataFrame, source: str) -> Stat:
    """Monte Carlo MI − softmax MI at the largest α of the β = 1 sweep."""
    if source == "paper":
        return math.nan, "the paper reports no Monte Carlo estimate"
    sel = _vaeas_rows(df, None, 1.0)
    if "mi_mc_mean" not in sel.columns:
        return math.nan, "no Monte Carlo MI in our metrics"
    sel = sel[sel["mi_mc_mean"].notna() & sel["mi_mean"].notna()]
    if not len(sel):
        return math.nan, "no VAE-AS run with β = 1 and a Monte Carlo MI"
    top = sel.loc[sel["alpha"].astype(float).idxmax()]
    gap = float(top["mi_mc_mean"] - top["mi_mean"])
    au = f", AU {top['au_mean']:.1f}" if math.isfinite(top.get("au_mean", math.nan)) else ""
    return gap, (f"α={top['alpha']:g}: Monte Carlo MI {top['mi_mc_mean']:.2f} vs softmax MI {top['mi_mean']:.2f}"
                 f"{au}, KL_test {top['kl_test_mean']:.2f}")


# ---------------------------------------------------------------------------------------------
# The claims of Tables 1–3

def _table_claims(table: int, rows: Sequence[Mapping] | None) -> list[Claim]:
    ds = data_label(_dataset_of(rows), TABLE_DATASETS[table])
    t = f"T{table}"
    claims = []

    def add(cid, statement, rule, check):
        claims.append(_table_claim(f"{t}-{cid}", f"{ds}: {statement}", rule, check, table, rows))

    for metric, name in [("kl_test", "KL_test"), ("au", "AU"), ("md", "MD"), ("mi", "MI")]:
        add(f"beta-{name}", f"with α = 1, raising β lowers {name} (§5.3, Table {table})", trend_rule(-1),
            _trend_check("alpha", "beta", "β", metric))
    add("MI-bound", f"MI stays within {MI_BOUND_TOL} nats of its upper bound log N for α ≤ 2 and β ≤ 1 (§5.3, Table {table})",
        Rule("max(bound − MI)", "<=", MI_BOUND_TOL), _mi_bound_check(table))
    alpha_specs = [("mi", -1, "MI", "large α lowers MI"), ("au", -1, "AU", "large α lowers AU (fewer active units)"),
                   ("nll_train", +1, "NLL_train", "raising α raises NLL_train (small α fits the training set more closely)"),
                   ("gap", -1, "gap", "raising α shrinks the generalisation gap NLL_test − NLL_train (small α overfits)")]
    for metric, direction, name, text in alpha_specs:
        add(f"alpha-{name}", f"with β = 1, {text} (§5.3, Table {table})", trend_rule(direction),
            _trend_check("beta", "alpha", "α", metric))
    add("AU-vs-VAE", f"VAE-AS with α = 1, β ≤ 1 has more active units than VAE (less posterior collapse; abstract, "
                     f"Table {table})", Rule("min over β ≤ 1 of AU(VAE-AS) − AU(VAE)", ">", 0), _vae_au_check)
    add("NLL-vs-VAE", f"VAE-AS (α = β = 1) has a lower NLL_test than VAE (Table {table})",
        Rule("NLL_test(VAE-AS) − NLL_test(VAE)", "<", 0), _vae_nll_check)
    add("softmax-vs-MC", f"at the last epoch the softmax MI of VAE-AS (α = β = 1) is within {CAUGHT_UP_TOL} nats of the "
                         f"Monte Carlo MI over all N training posteriors (the classifier has caught up; beyond the paper, "
                         f"cf. §5.2)", Rule("|softmax MI − MC MI|", "<=", CAUGHT_UP_TOL), _agreement_check("mi_mc", "Monte Carlo"))
    add("refit", f"the trained classifier had converged: its MI (α = β = 1) is within {CAUGHT_UP_TOL} nats of a classifier "
                 f"refit on the frozen final posteriors (beyond the paper)",
        Rule("|softmax MI − refit MI|", "<=", CAUGHT_UP_TOL), _agreement_check("refit_mi", "refit"))
    add("alpha-evasion", f"at the largest α (β = 1) the encoder evades the classifier: the Monte Carlo MI exceeds the "
                         f"softmax MI by more than {CAUGHT_UP_TOL} nats, so the softmax MI's fall along α is the estimator's, "
                         f"not the posteriors' (beyond the paper, stated before it was run)",
        Rule("MC MI − softmax MI", ">", CAUGHT_UP_TOL), _evasion_check)
    return claims


def _table1_claim(rows: Sequence[Mapping] | None) -> Claim:
    def check(df: pd.DataFrame, source: str) -> Stat:
        values = pd.Series(_value_col(df, "au", source).values, index=df["decoder_layers"].values)
        return _trend(values, "layers", 1)
    ds = data_label(_dataset_of(rows), TABLE_DATASETS[1])
    return _table_claim("T1-AU-depth", f"{ds}: AU decreases as the decoder gets deeper (§2.2, Table 1)",
                        trend_rule(-1), check, 1, rows)


# ---------------------------------------------------------------------------------------------
# Shared by the figure claims and the consistency checks

# ---------------------------------------------------------------------------------------------
# All claims, their summary and claims.md

def check_claims(rows_by_table: Mapping[int, Sequence[Mapping]], mc: pd.DataFrame | None,
                 logs: pd.DataFrame | None = None, baselines: Mapping[str, Sequence[Mapping]] | None = None) -> list[Claim]:
    """Check the claims of §2.2 and §5 (and ours beyond the paper) on our per-seed results.

    ``rows_by_table``: per table number, the per-seed rows of its experiment (one dict per run and
    seed, as in ``results/<profile>/seeds/<experiment>.csv``; missing tables give N/A claims);
    ``mc``: :func:`combine_mc` output for Figure 2; ``logs`` is unused by the claims (Figure 3's
    decomposition is a consistency check, :func:`consistency_checks`); ``baselines``: per Table B
    experiment its per-seed rows.
    """
    claims = [_table1_claim(rows_by_table.get(1))]
    for table in (2, 3):
        claims += _table_claims(table, rows_by_table.get(table))
    claims += baseline_claims(baselines or {})
    frames = [f for f in (mc, logs) if f is not None and "dataset" in f.columns and f["dataset"].notna().any()]
    ds = data_label(str(frames[0]["dataset"].dropna().iloc[0]) if frames else None, "MNIST")
    claims += fig2_claims(mc, ds)
    return claims


def claims_summary(claims: Sequence[Claim]) -> str:
    """One line: counts of each outcome for ours and for the paper's own numbers."""
    def counts(values):
        values = list(values)
        return ", ".join(f"{values.count(o)} {o}" for o in OUTCOMES)
    return (f"{len(claims)} claims. Ours: {counts(c.outcome for c in claims)}. "
            f"Paper's own numbers: {counts(c.paper_outcome for c in claims)}.")


def format_claims(claims: Sequence[Claim], banner: str = "", checks: Sequence = ()) -> str:
    """The claims as a Markdown table with the summary line above it (and ``banner``, the
    report's scope, above that), then the consistency checks."""
    from tabulate import tabulate

    body = [[c.id, _esc(c.statement), _esc(c.rule), c.outcome, _esc(c.interval_text()), c.paper_outcome, _esc(c.evidence)]
            for c in claims]
    table = tabulate(body, headers=["Claim", "Statement", "Rule", "Ours", "Mean [95 % interval], seeds",
                                    "Paper's numbers", "Evidence"], tablefmt="github", disable_numparse=True)
    legend = ("Each claim's statistic is computed per seed; 'Ours' is PASS when its 95 % Student t interval over "
              "seeds lies wholly on the rule's side of the threshold, FAIL when wholly on the other, INCONCLUSIVE "
              "when it straddles the threshold (always with one seed); Table B's claims judge each β's paired "
              "interval and fail if any β fails. 'Paper's numbers' applies the same rule to the paper's "
              "transcribed values (one each, at face value); N/A = not enough data.")
    out = (f"{banner}\n\n" if banner else "") + f"**Summary:** {claims_summary(claims)}\n\n{legend}\n\n{table}\n"
    if checks:
        out += "\n" + format_consistency(checks)
    return out


def write_claims(claims: Sequence[Claim], path: str | os.PathLike, banner: str = "",
                 checks: Sequence = ()) -> None:
    """Write ``claims.md``: the scope ``banner`` (:func:`vaeas.report.scope.scope_banner`),
    the summary line, the claims table and the consistency checks."""
    write_text(path, format_claims(claims, banner, checks))
