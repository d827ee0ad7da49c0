"""The paper's experiment grid, read from the ``experiments`` section of params.yaml, and where
each run's files live.

Every training job is a :class:`Run` named ``<experiment>.<run>`` (e.g. ``table2.a1_b0p5``):

* ``table1`` — AU of the vanilla VAE against decoder depth (Table 1);
* ``table2`` / ``table3`` — VAE, then α = 1 with a β sweep, then β = 1 with an α sweep, on MNIST
  and Omniglot (Tables 2 and 3);
* ``fig2`` — VAE-AS with 55,000 and with 10,000 softmax labels, also estimated by Monte Carlo
  (Figures 2 and 3, §5.2's smaller decoder);
* ``baselines_mnist`` / ``baselines_omniglot`` — Table B (beyond the paper): VAE-AS(α = 1, β) at
  Table 2's / 3's β, each beside β-VAE(β), and free bits and KL annealing, with the VAE; its VAE-AS
  and VAE runs are Table 2's / 3's own (``same_as``), so every comparison is paired by seed;
* ``scaling`` — beyond the paper: the same objectives at several training-set sizes N (each
  run sets ``data.train_size``), the N-scaling study of docs/scaling.md;
* ``reconstructions`` — which two runs (α = 0.2 and α = 5) Figures 4 and 5 show.

Run names are stable keys (``p`` stands for the decimal point) so that DVC tracks each run's
parameters separately and editing one β reruns only that run. A profile can drop a run by
setting it to ``null``, and a whole experiment (or ``reconstructions``) the same way.

This module holds the one run-directory pattern (:data:`RUN_DIR`): :mod:`vaeas.pipeline`
(hence dvc.yaml) and the Snakemake rules both take their run paths from it. It is also where
params.yaml is loaded for a command (:func:`load_config`): the sections by :mod:`vaeas.config`,
then the grid, whose rules need the data sets' sizes (:data:`vaeas.data.TRAIN_SIZES`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import objectives
from .config import Config, profile_config, read_params, with_overrides
from .data.catalog import TRAIN_SIZES
from .errors import VaeasError
from .run import RunSpec

EXPERIMENTS = ("table1", "table2", "table3", "fig2", "baselines_mnist", "baselines_omniglot", "scaling")
TABLE_OF = {"table1": 1, "table2": 2, "table3": 3}

#: The one run-directory pattern. :meth:`Run.directory` fills it in; the Snakemake rules declare
#: it with its fields as wildcards (:func:`run_file_pattern`).
RUN_DIR = "runs/{profile}/{experiment}/{run}/seed{seed}"
MODEL_FILE = "model.pt"
LOG_FILE = "model.log.csv"        # training writes the log beside the model: <model stem>.log.csv
METRICS_FILE = "metrics.json"
MC_FILE = "mc.csv"


def run_file_pattern(filename: str) -> str:
    """``RUN_DIR/filename`` with the wildcards left in, as a Snakemake rule declares it."""
    return f"{RUN_DIR}/{filename}"


@dataclass(frozen=True)
class Run:
    """One configuration of the grid (trained once per seed)."""

    experiment: str
    name: str
    dataset: str
    objective: str = objectives.DEFAULT
    #: The objective's hyper-parameters, every one (defaults filled in by :class:`RunSpec`).
    params: Mapping[str, float] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    monte_carlo: bool = False
    #: The id of an earlier run of the grid that trains exactly this configuration (None: this run
    #: trains its own model). Its files are that run's: nothing is trained or evaluated twice.
    same_as: str | None = None

    @property
    def id(self) -> str:
        return f"{self.experiment}.{self.name}"

    def directory(self, profile: str, seed: int) -> str:
        experiment, name = self.same_as.split(".", 1) if self.same_as else (self.experiment, self.name)
        return RUN_DIR.format(profile=profile, experiment=experiment, run=name, seed=seed)

    def path(self, profile: str, seed: int, filename: str) -> str:
        return f"{self.directory(profile, seed)}/{filename}"

    def model_path(self, profile: str, seed: int) -> str:
        return self.path(profile, seed, MODEL_FILE)

    def spec(self, seed: int) -> RunSpec:
        """The run object of this run at ``seed`` (what config.json serialises)."""
        return RunSpec(self.dataset, self.objective, self.params, seed, f"{self.id}.seed{seed}")


def seeds(cfg: Config) -> list[int]:
    return list(cfg.experiments.get("seeds", [0]))


def runs(cfg: Config, experiment: str | None = None, source: str = "params.yaml") -> list[Run]:
    """Every run of the grid (or of one experiment), in params.yaml order; null entries dropped.

    A run whose configuration an earlier run of the grid (in :data:`EXPERIMENTS` order) already
    trains — e.g. Table 1's row at the base decoder depth and Table 2's VAE — gets that run's id
    as ``same_as`` and shares its files (:func:`distinct` leaves it out of the jobs)."""
    out, first = [], {}
    for exp in EXPERIMENTS:
        section = cfg.experiments.get(exp) or {}
        for name, entry in (section.get("runs") or {}).items():
            if entry is None:
                continue
            where = f"{source}: experiments.{exp}.runs.{name}.{{}}"
            objective = entry.get("objective", objectives.DEFAULT)
            allowed = ("objective", "set", *objectives.get(objective, where.format("objective")).param_names())
            unknown = [str(k) for k in entry if k not in allowed]
            if unknown:
                raise VaeasError(f"{source}: unknown key 'experiments.{exp}.runs.{name}.{unknown[0]}' "
                                 f"(allowed here: {', '.join(sorted(allowed))})")
            hyper = {k: v for k, v in entry.items() if k not in ("objective", "set")}
            spec = RunSpec(section.get("dataset", "mnist"), objective, hyper, where=where)
            run = Run(experiment=exp, name=name, dataset=spec.dataset, objective=spec.objective, params=spec.params,
                      overrides={**(section.get("set") or {}), **(entry.get("set") or {})},
                      monte_carlo=bool(section.get("monte_carlo", False)))
            key = _signature(cfg, run)
            if key in first:
                run = dataclasses.replace(run, same_as=first[key])
            first.setdefault(key, run.id)
            if experiment is None or exp == experiment:
                out.append(run)
    return out


def distinct(grid: list[Run]) -> list[Run]:
    """The runs that train a model of their own (``same_as`` unset): one job per configuration."""
    return [run for run in grid if run.same_as is None]


def _signature(cfg: Config, run: Run) -> str:
    """What decides a run's model and metrics: its spec and the overrides that change the
    profile's config (an override to the value the profile already has changes nothing)."""
    changed = {}
    for dotted, value in sorted(run.overrides.items()):
        section, _, key = dotted.partition(".")
        current = getattr(getattr(cfg, section, None), key, _MISSING)
        if current is _MISSING or json.dumps(current, sort_keys=True) != json.dumps(value, sort_keys=True):
            changed[dotted] = value
    return json.dumps([run.dataset, run.objective, run.params, run.monte_carlo, changed], sort_keys=True)


_MISSING = object()


def resolve(cfg: Config, run_id: str) -> Run:
    """The run named ``<experiment>.<run>``; a one-line error naming it if there is none."""
    for run in runs(cfg):
        if run.id == run_id:
            return run
    known = ", ".join(r.id for r in runs(cfg)) or "none"
    raise VaeasError(f"no run '{run_id}' under 'experiments' in profile '{cfg.profile}' (defined: {known})")


def config_for(cfg: Config, run: Run, cli: dict[str, Any] | None = None) -> Config:
    """The profile's config with the run's (and its experiment's) overrides applied, then
    ``cli`` (the command line's ``--set``, as dotted keys), which wins over both."""
    overrides = {**run.overrides, **(cli or {})}
    if not overrides:
        return cfg
    return with_overrides(cfg, overrides, source=f"params.yaml (run {run.id})")


def reconstruction_runs(cfg: Config) -> dict[str, list[Run]]:
    """Figure name → the two runs (α = 0.2, α = 5) whose reconstructions it shows."""
    section = cfg.experiments.get("reconstructions") or {}
    return {fig: [resolve(cfg, run_id) for run_id in ids] for fig, ids in section.items()}


def validate(cfg: Config) -> None:
    """Every run's merged config must be valid; run before any job starts."""
    for run in runs(cfg):
        config_for(cfg, run)
    reconstruction_runs(cfg)


# --------------------------------------------------------------------------------------------
# Checking the grid, and loading params.yaml for a command

def check_fits_dataset(cfg: Config, dataset: str, monte_carlo: bool = False, source: str = "params.yaml",
                       n: int | None = None, labels: bool = True) -> None:
    """Cross-key rules that need the training-set size N of ``dataset`` (:data:`TRAIN_SIZES`).

    * shared / multihead labels: V = labels.classes < N (with V >= N every sample has its own
      label: that is scheme 'full');
    * multihead: V^(K-1) < N, i.e. no more heads than it takes to tell N samples apart (a head
      beyond that is constant, and V^K would overflow the int64 label arithmetic);
    * Monte Carlo runs: every S of evaluation.mc_sizes is <= N (S posteriors out of N).

    The one statement of these rules: params.yaml is checked with them before any job starts,
    and training (``labels``) and the Monte Carlo stage (``monte_carlo``) call them again with the
    N of the data actually loaded (``n``), for a run started outside the grid.
    """
    prefix = f"{source}: " if source else ""
    if n is None:
        n = TRAIN_SIZES.get(dataset)
        if n is None:
            return
    if cfg.data.train_size:
        if cfg.data.train_size > n:
            raise VaeasError(f"{prefix}data.train_size ({cfg.data.train_size}) exceeds the {n} training images of '{dataset}'")
        n = min(n, cfg.data.train_size)
    lab = cfg.labels
    if labels and lab.scheme != "full" and lab.classes >= n:
        raise VaeasError(f"{prefix}labels.classes ({lab.classes}) must be < the {n} training samples of '{dataset}' for scheme '{lab.scheme}'")
    if labels and lab.scheme == "multihead" and lab.classes ** (lab.heads - 1) >= n:
        needed = next(k for k in range(1, lab.heads + 1) if lab.classes ** k >= n)
        raise VaeasError(f"{prefix}labels.heads ({lab.heads}) is more than the {needed} heads of {lab.classes} classes that tell the {n} training samples of '{dataset}' apart")
    too_big = [size for size in cfg.evaluation.mc_sizes if size > n] if monte_carlo else []
    if too_big:
        raise VaeasError(f"{prefix}evaluation.mc_sizes: {too_big} exceed the {n} training samples of '{dataset}'")


def validate_grid(cfg: Config, source: str = "params.yaml") -> None:
    """The experiment grid of ``cfg``'s profile: every run's merged config (its experiment's and its
    own ``set``), the rules that need the data set's size, and the runs Figures 4-5 name."""
    defined = []
    for run in runs(cfg, source=source):
        run_source = f"{source} (run {run.id})"
        run_cfg = with_overrides(cfg, run.overrides, run_source, grid=False) if run.overrides else cfg
        check_fits_dataset(run_cfg, run.dataset, run.monte_carlo, run_source)
        defined.append(run.id)
    for figure, ids in (cfg.experiments.get("reconstructions") or {}).items():
        for run_id in ids:
            if run_id not in defined:
                where = f"profile '{cfg.profile}'" if cfg.profile else "the base sections"
                raise VaeasError(f"{source}: experiments.reconstructions.{figure}: '{run_id}' is not a run of {where} "
                                 f"(runs: {', '.join(defined) or 'none'})")


def require_runs(cfg: Config, source: str = "params.yaml") -> None:
    """What a pipeline needs beyond a valid file: a profile name (outputs go to
    ``results/<profile>/``, ``runs/<profile>/``) and at least one run to train."""
    if not cfg.profile:
        raise VaeasError(f"{source}: no profile selected: set 'profile:' in it or pass --profile NAME "
                         f"(outputs go to results/<profile>/)")
    if not runs(cfg):
        raise VaeasError(f"{source}: profile '{cfg.profile}' defines no runs under 'experiments' (nothing to train)")


def load_config(path: str | os.PathLike = "params.yaml", profile: str | None = None,
                overrides: list[str] | None = None) -> Config:
    """Load, validate and merge ``params.yaml``; ``profile`` defaults to the file's ``profile`` key.

    Validation covers the whole file against the schema, then the selected profile's merged
    config, its cross-key rules and its experiment grid (:func:`validate_grid`)."""
    return _profile_with_grid(read_params(path), profile, overrides, source=str(path))


def check_params(path: str | os.PathLike = "params.yaml", profile: str | None = None,
                 overrides: list[str] | None = None) -> Config:
    """What ``vaeas check`` runs: :func:`load_config` for the selected profile, then every other
    profile's merged config and grid too, so an error in a profile not in use is found now."""
    raw = read_params(path)
    cfg = _profile_with_grid(raw, profile, overrides, source=str(path))
    for name in (raw.get("profiles") or {}):
        if name != cfg.profile:
            _profile_with_grid(raw, name, overrides, source=str(path))
    return cfg


def _profile_with_grid(raw: dict, profile: str | None, overrides: list[str] | None, source: str) -> Config:
    cfg = profile_config(raw, profile, overrides, source=source)
    validate_grid(cfg, source)
    return cfg
