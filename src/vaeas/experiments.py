"""The paper's experiment grid, read from the ``experiments`` section of params.yaml.

Every training job is a :class:`Run` named ``<experiment>.<run>`` (e.g. ``table2.a1_b0p5``):

* ``table1`` — AU of the vanilla VAE against decoder depth (Table 1);
* ``table2`` / ``table3`` — VAE, then α = 1 with a β sweep, then β = 1 with an α sweep, on MNIST
  and Omniglot (Tables 2 and 3);
* ``fig2`` — VAE-AS with 55,000 and with 10,000 softmax labels, also estimated by Monte Carlo
  (Figures 2 and 3, §5.2's smaller decoder);
* ``reconstructions`` — which two runs (α = 0.2 and α = 5) Figures 4 and 5 show.

Run names are stable keys (``p`` stands for the decimal point) so that DVC tracks each run's
parameters separately and editing one β reruns only that run. A profile can drop a run by
setting it to ``null``. This module is the one place where paths of the pipeline's outputs
are decided; the Snakefile and the generated dvc.yaml both ask it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .config import Config, with_overrides
from .errors import VaeasError

EXPERIMENTS = ("table1", "table2", "table3", "fig2")
TABLE_OF = {"table1": 1, "table2": 2, "table3": 3}


@dataclass(frozen=True)
class Run:
    """One configuration of the grid (trained once per seed)."""

    experiment: str
    name: str
    dataset: str
    objective: str = "vaeas"
    alpha: float = 1.0
    beta: float = 1.0
    overrides: dict[str, Any] = field(default_factory=dict)
    monte_carlo: bool = False

    @property
    def id(self) -> str:
        return f"{self.experiment}.{self.name}"

    def directory(self, profile: str, seed: int) -> str:
        return f"runs/{profile}/{self.experiment}/{self.name}/seed{seed}"

    def model_path(self, profile: str, seed: int) -> str:
        return f"{self.directory(profile, seed)}/model.pt"


def seeds(cfg: Config) -> list[int]:
    return list(cfg.experiments.get("seeds", [0]))


def runs(cfg: Config, experiment: str | None = None) -> list[Run]:
    """Every run of the grid (or of one experiment), in params.yaml order; null entries dropped."""
    out = []
    for exp in EXPERIMENTS if experiment is None else (experiment,):
        section = cfg.experiments.get(exp) or {}
        for name, entry in (section.get("runs") or {}).items():
            if entry is None:
                continue
            out.append(Run(experiment=exp, name=name, dataset=section.get("dataset", "mnist"),
                           objective=entry.get("objective", "vaeas"), alpha=float(entry.get("alpha", 1.0)),
                           beta=float(entry.get("beta", 1.0)),
                           overrides={**(section.get("set") or {}), **(entry.get("set") or {})},
                           monte_carlo=bool(section.get("monte_carlo", False))))
    return out


def resolve(cfg: Config, run_id: str) -> Run:
    """The run named ``<experiment>.<run>``; a one-line error naming it if there is none."""
    for run in runs(cfg):
        if run.id == run_id:
            return run
    known = ", ".join(r.id for r in runs(cfg)) or "none"
    raise VaeasError(f"no run '{run_id}' under 'experiments' in profile '{cfg.profile}' (defined: {known})")


def config_for(cfg: Config, run: Run) -> Config:
    """The profile's config with the run's (and its experiment's) overrides applied."""
    if not run.overrides:
        return cfg
    return with_overrides(cfg, run.overrides, source=f"params.yaml (run {run.id})")


def run_params(cfg: Config, run: Run) -> dict:
    """Everything that determines one run's model: its resolved sections and the run itself.

    Snakemake compares this between invocations (rerun trigger 'params'), so it must not carry
    the rest of the grid: editing one run's β must not rerun the others."""
    resolved = config_for(cfg, run).to_dict()
    keep = ("data", "model", "labels", "training")
    return {**{k: resolved[k] for k in keep}, "run": dataclasses.asdict(run)}


def reconstruction_runs(cfg: Config) -> dict[str, list[Run]]:
    """Figure name → the two runs (α = 0.2, α = 5) whose reconstructions it shows."""
    section = cfg.experiments.get("reconstructions") or {}
    return {fig: [resolve(cfg, run_id) for run_id in ids] for fig, ids in section.items()}


def validate(cfg: Config) -> None:
    """Every run's merged config must be valid; run before any job starts."""
    for run in runs(cfg):
        config_for(cfg, run)
    reconstruction_runs(cfg)
