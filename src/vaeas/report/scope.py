"""What a report's numbers are: the data sets actually used, their scale and the profile, beside
the paper's. REPORT.md and claims.md open with :func:`scope_banner`, so a reader learns before
any number that, say, the demo trained on 8×8 digits and not on MNIST."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .tables import same_data

#: Each experiment's data in the paper: data set, training-set size N, epochs (§2.2, §5.1–5.3;
#: §2.2 gives no epoch count for Table 1).
PAPER_SCALE = {
    "table1": ("MNIST", 55_000, None),
    "table2": ("MNIST", 55_000, 300),
    "table3": ("Omniglot", 24_345, 300),
    "fig2": ("MNIST", 55_000, 120),
    "baselines_mnist": ("MNIST", 55_000, 300),         # not in the paper: its Table 2's setting
    "baselines_omniglot": ("Omniglot", 24_345, 300),   # not in the paper: its Table 3's setting
    "scaling": ("MNIST", 55_000, 300),                  # not in the paper: its Table 2's setting
}
EXPERIMENT_NAMES = {"table1": "Table 1", "table2": "Table 2 (and Figure 4)", "table3": "Table 3 (and Figure 5)",
                    "fig2": "Figures 2–3", "baselines_mnist": "Table B, MNIST (beyond the paper)",
                    "baselines_omniglot": "Table B, Omniglot (beyond the paper)",
                    "scaling": "N-scaling study, MNIST (beyond the paper)"}
DATA_NAMES = {"digits": "digits (scikit-learn's 8×8 images)", "mnist": "MNIST (28×28)", "omniglot": "Omniglot (28×28)",
              "omniglot-mini": "omniglot-mini (1,000 Omniglot 28×28 images embedded in vaeas)"}


@dataclass(frozen=True)
class Scale:
    """How one experiment of a profile was run: its data set, N, epochs (every distinct value
    among its runs) and number of seeds. ``train_size`` is the smallest N among its runs,
    ``largest`` the largest where they differ (the scaling study), else 0."""

    experiment: str
    dataset: str
    train_size: int
    epochs: tuple[int, ...]
    seeds: int
    largest: int = 0


def _epochs(epochs: Sequence[int]) -> str:
    values = sorted(set(epochs))
    text = str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"
    return f"{text} epoch{'s' if values != [1] else ''}"


def _line(scale: Scale) -> str:
    paper, paper_n, paper_epochs = PAPER_SCALE[scale.experiment]
    sizes = f"{scale.train_size:,}" + (f"–{scale.largest:,}" if scale.largest > scale.train_size else "")
    ours = (f"**{DATA_NAMES.get(scale.dataset, scale.dataset)}**, {sizes} training images, "
            f"{_epochs(scale.epochs)}, {scale.seeds} seed{'s' if scale.seeds != 1 else ''}")
    theirs = f"{DATA_NAMES.get(paper.lower(), paper)}, {paper_n:,} training images" + (
        f", {paper_epochs} epochs" if paper_epochs else "")
    return f"> - {EXPERIMENT_NAMES[scale.experiment]}: {ours}; the paper: {theirs}"


def scope_banner(profile: str, scales: Sequence[Scale], deviations: Sequence[str] = ()) -> str:
    """The Markdown block a report opens with: the profile, then per experiment the data set
    used, N, epochs and seeds beside the paper's; every deviation from the paper's setting in
    force (``deviations``, one line each); and, where a data set is not the paper's, what that
    changes in the tables (no Δ) and the claims (titled with our data)."""
    used = ", ".join(DATA_NAMES.get(d, d) for d in dict.fromkeys(s.dataset for s in scales)) or "none"
    lines = [f"> **Scope: profile `{profile}`; data actually used: {used}.**", ">"]
    lines += [_line(s) for s in scales]
    if deviations:
        lines += [">", "> **Deviations from the paper in force:**", ">"] + [f"> - {d}" for d in deviations]
    other = [s for s in scales if not same_data(s.dataset, PAPER_SCALE[s.experiment][0])]
    smaller = [s for s in scales if s not in other and s.train_size < PAPER_SCALE[s.experiment][1]]
    if smaller:
        names = ", ".join(EXPERIMENT_NAMES[s.experiment].split(" (")[0] for s in smaller)
        lines += [">", f"> {names}: the paper's data set on fewer training images. What is comparable with the "
                       "paper: the trends along α and β, the identity MD = KL_train − log N + SC, MI against its own "
                       "bound log N, and the softmax against the Monte Carlo estimates (the claims check each). What "
                       "is not: absolute NLL, KL, MI, MD, SC and AU, which scale with N and with how much a model of "
                       "few images overfits; the tables show the paper's values beside ours without a Δ."]
    if other:
        example = f"{other[0].dataset} (paper: {PAPER_SCALE[other[0].experiment][0]})"
        lines += [">", "> Where our data set is not the paper's, the paper's values are shown beside ours without a "
                       "Δ (the difference would compare data sets, not methods), and each claim is titled with the "
                       f"data it was checked on, e.g. \"{example}: …\"."]
    return "\n".join(lines)
