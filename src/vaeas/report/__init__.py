"""Reporting: the paper's Tables 1–3 beside ours, Figures 2–5, machine-checked claims, REPORT.md.

One module per product: :mod:`~vaeas.report.seeds` (per-seed results, what the tables are
computed from), :mod:`~vaeas.report.tables`, :mod:`~vaeas.report.figures`,
:mod:`~vaeas.report.claims` (with :mod:`~vaeas.report.claim`, :mod:`~vaeas.report.stats`,
:mod:`~vaeas.report.figure_claims`, :mod:`~vaeas.report.consistency`, :mod:`~vaeas.report.verdict`),
:mod:`~vaeas.report.provenance` (provenance and REPORT.md), and
:mod:`~vaeas.report.drivers`, what ``vaeas seeds|table|figure|claims|report`` run. Every public
name of the others is re-exported here.

Inputs are the files the other stages write: one flat ``metrics.json`` per trained model
(:func:`vaeas.evaluation.evaluate`), one ``mc.csv`` per Figure-2 model
(:func:`vaeas.evaluation.monte_carlo`), one ``<model>.log.csv`` per training run
(:func:`vaeas.training.train`) and the model files themselves (Figures 4/5). The paper's numbers
are transcribed once, in ``vaeas/reference/paper_tables.csv`` (:func:`paper_values`).

Tables
------
:func:`build_table` groups our metrics rows by run (named as params.yaml names it; ordered as
the paper's rows of the same setting, then ours), aggregates over seeds and puts the paper's
value of the run's setting and the difference beside each column. The frame is flat: ``run``,
key columns, ``config`` (a display label),
``n_seeds``, ``in_paper``, and for every metric ``m``: ``m_mean``, ``m_sd`` (sample sd, ddof = 1;
NaN with one seed), ``m_paper`` and ``m_delta`` (= ours mean − paper). Configurations only we
ran, and paper rows we did not run, are kept (NaN where missing), never dropped.

:func:`format_table` renders one Markdown row per configuration and one cell per metric::

    96.30 ± 0.40 (paper 96.32, Δ −0.02)

i.e. our mean ± sd over seeds, then the paper's value and ours − paper. When our data set is
not the paper's (the demo's digits beside MNIST), or its training set is smaller than the paper's
(``data.train_size``: every column scales with N), the ``m_delta`` columns are left out and the
cell reads ``96.30 ± 0.40 (paper 96.32)``; the caption says why (:data:`CELL_LEGEND_NO_DELTA`,
:data:`CELL_LEGEND_NO_DELTA_SCALE`, :func:`delta_meaningful`). One row per
configuration keeps a configuration's numbers on one line (sub-columns for ours / paper / Δ
would triple the width of an 8-metric table). With one seed the "± sd" is left out; a cell
reads ``— (paper 96.32)`` for a configuration we did not run and has no parenthesis where the
paper has no value. AU is a count: its mean is shown with one decimal when not whole.

Figures
-------
PNG, written atomically, drawn with seaborn on the Agg backend; titles, axis labels (nats) and
legends make each readable without the paper. :func:`figure_mc_vs_softmax` (Fig. 2),
:func:`figure_kl_decomposition` (Fig. 3), :func:`figure_reconstructions` (Figs. 4/5),
:func:`figure_table` (Tables 1–3 as trends vs α, β or depth, ours with ±sd bars vs the paper).

Claims
------
:func:`check_claims` turns each qualitative statement of §2.2 and §5 (and a few of ours beyond
the paper, each stated before it was run) into a :class:`Claim` with a rule
(:class:`~vaeas.report.stats.Rule`): a statistic computed **per seed**, summarised by its mean and
95 % Student t interval over seeds, and judged PASS (the interval wholly satisfies the rule),
FAIL (wholly violates it), INCONCLUSIVE (straddles the threshold; always with one seed) or N/A.
The paper's transcribed numbers are judged by the same rule at face value (``paper_outcome``), so
a failure of ours can be told apart from a statement the paper's table does not support either.
Rules:

* trends ("raising β lowers KL_test"): Spearman ρ between the swept value and the metric ≤
  −:data:`TREND_RHO` (falls) or ≥ :data:`TREND_RHO` (rises), 0.8; a constant series has ρ = 0.
  Rank correlation tolerates one wiggle in a 6–7 point sweep (the paper's Omniglot MD at β = 5,
  10) but not a flat or mixed series.
* "MI stays near log N": for every VAE-AS run with α ≤ 2 and β ≤ 1, log V − MI ≤
  :data:`MI_BOUND_TOL` (0.5 nats), where V is the run's ``label_count`` (V = N with full labels):
  log V is the ceiling of the softmax MI estimate (§3.3). The paper's gaps in those rows are
  ≤ 0.17 (MNIST) and ≤ 0.04 (Omniglot) nats; at β = 2 Omniglot's MI already falls to 6.17, so the
  range is β ≤ 1, not β ≤ 2.
* VAE-AS against VAE and against β-VAE (Table B): the per-seed paired difference (same seed, same
  data subset), > 0 for AU, < 0 for NLL_test; Table B's claims judge each β and fail if any fails.
* Figure 2: per model, |MC(S_min) − MC(S_max)| > |MC(S_next) − MC(S_max)|, the sd over repeats at
  S_min above that at S_max (MD; MI only where the posteriors overlap), |softmax − MC(S_max)| <
  |MC(S_min) − MC(S_max)|; the per-seed statistic is the smallest margin over models and MI/MD.

:func:`consistency_checks` reports the identities that hold by construction (MD = KL_train −
log N + SC; KL = MI + MD + (H − SC), Figure 3 at the last epoch within :data:`FIG3_REL_TOL`) in
their own section: they test the code, not the paper, and count no PASS.

Report
------
REPORT.md and claims.md open with :func:`scope_banner` (:mod:`~vaeas.report.scope`): the profile,
and per experiment the data set used, its training-set size, epochs and seeds beside the paper's.
Claims are titled with the data they were checked on (:func:`data_label`: "digits (paper: MNIST): …").

:func:`write_report` assembles REPORT.md from :class:`Section` s (Markdown text, embedded ``.md``
files, relative links to images) and the :func:`provenance` of the run.
"""

from .tables import (  # noqa: F401
    METRICS, TABLE_METRICS, METRIC_LABELS, TABLE_DATASETS, PAPER_N, TABLE_TITLES, CELL_LEGEND,
    CELL_LEGEND_NO_DELTA, CELL_LEGEND_NO_DELTA_SCALE, TREND_RHO, MI_BOUND_TOL, FIG3_REL_TOL, paper_values,
    same_data, our_dataset, our_train_size, delta_meaningful, table_legend,
    build_table, table_title, format_cell, format_table, write_table,
)
from .figures import (  # noqa: F401
    combine_mc, figure_mc_vs_softmax, figure_kl_decomposition, reconstruction_grid,
    figure_reconstructions, figure_table,
)
from .claims import (  # noqa: F401
    Claim, data_label, trend_rule, check_claims, claims_summary, format_claims, write_claims,
)
from .baselines import baseline_claims  # noqa: F401
from .consistency import Consistency, consistency_checks, format_consistency  # noqa: F401
from .stats import (  # noqa: F401
    Rule, t_quantile, mean_interval, judge, judge_point, combine,
)
from .scope import (  # noqa: F401
    PAPER_SCALE, DATA_NAMES, Scale, scope_banner,
)
from .provenance import (  # noqa: F401
    stage_times_from_seeds, provenance, format_provenance, Section, IMAGE_SUFFIXES, write_report,
    read_metrics,
)
from .drivers import (  # noqa: F401
    banner, make_table, make_figure, make_claims, make_report,
)
