"""Per-seed results: ``results/<profile>/seeds/<experiment>.csv``, one row per run of the grid
and seed, from which the tables are computed (issue 20).

A row holds the run's identity (``run_id`` of the grid, its experiment, run name and seed, and
``trained_as``: the run whose model it shares, when the grid trains its configuration once), its
objective and hyper-parameters, every column of its metrics.json, and its provenance: the digest
of the run's configuration (``config_digest``: the groups of config.json its metrics depend on),
the digest of the training code that made the model and the machine it was trained on (CPU model,
torch version, threads; from the record ``vaeas train`` keeps beside the model, blank when the
model came another way, e.g. ``dvc pull``), and the wall seconds of training and evaluation.
A run trained with the Monte Carlo monitor over all N posteriors also gets ``caught_up_epoch``
(:func:`caught_up_epoch`): the classifier's pace, read from its model.log.csv.

A reviewer recomputes any table or statistic from these files::

    pd.concat(pd.read_csv(f) for f in glob.glob("results/demo/seeds/*.csv"))
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd

from .. import contract, objectives
from .. import experiments as exps
from ..config import Config
from ..errors import VaeasError
from ..finished import kept_record
from ..io import atomic_path
from .claim import CAUGHT_UP_TOL

#: The identity and provenance columns, first; every metrics.json column follows.
FIRST = ("run_id", "experiment", "run", "seed", "trained_as", "dataset", "objective")
PROVENANCE = ("config_digest", "train_code", "cpu", "torch", "threads", "train_seconds", "eval_seconds")


def seed_rows(cfg: Config, experiment: str, metrics_paths: list[str], log_paths: list[str]) -> pd.DataFrame:
    """The rows of ``experiment``: its runs x seeds in grid order, reading the given metrics.json
    and model.log.csv paths (one per run and seed, in that order)."""
    pairs = [(run, seed) for run in exps.runs(cfg, experiment) for seed in exps.seeds(cfg)]
    return seed_rows_for(cfg, pairs, metrics_paths, log_paths)


def seed_rows_for(cfg: Config, pairs: list, metrics_paths: list[str], log_paths: list[str]) -> pd.DataFrame:
    """The rows of the given (run, seed) pairs, reading one metrics.json and model.log.csv each."""
    rows = []
    for (run, seed), metrics_file, log_file in zip(pairs, metrics_paths, log_paths):
        metrics = json.loads(Path(metrics_file).read_text())
        trained_as = metrics.get("run_id", "")
        row = {"run_id": f"{run.id}.seed{seed}", "experiment": run.experiment, "run": run.name, "seed": seed,
               "trained_as": "" if trained_as == f"{run.id}.seed{seed}" else trained_as,
               "dataset": run.dataset, "objective": run.objective, **run.params}
        row.update({k: v for k, v in metrics.items() if k not in (*row, "run_id", "path", "seconds")})
        model = Path(metrics_file).with_name(exps.MODEL_FILE)
        record = kept_record(model)
        machine = record.get("trained_on") or {}
        log = read_log(log_file)
        row.update({"config_digest": _config_digest(Path(metrics_file).with_name(contract.CONFIG_FILE)),
                    "train_code": record.get("code", ""), "cpu": machine.get("cpu", ""),
                    "torch": machine.get("torch", ""), "threads": machine.get("threads", ""),
                    "train_seconds": _train_seconds(log), "eval_seconds": metrics.get("seconds", math.nan)})
        pace = caught_up_epoch(log, metrics.get("n_train"))
        if not math.isnan(pace):
            row["caught_up_epoch"] = pace
        rows.append(row)
    return _ordered(pd.DataFrame(rows))


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Identity columns first, then the hyper-parameters, the metrics, and the provenance last."""
    if frame.empty:
        return frame
    hyper = [c for o in objectives.REGISTRY.values() for c in o.param_names() if c in frame.columns]
    hyper = list(dict.fromkeys(hyper))                                  # alpha, beta, ... once each
    rest = [c for c in frame.columns if c not in (*FIRST, *hyper, *PROVENANCE)]
    return frame[[*FIRST, *hyper, *rest, *PROVENANCE]]


def carried_seed_rows(cfg: Config, experiment: str, metrics_paths: list[str], log_paths: list[str],
                      existing: str, allow_missing: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """:func:`seed_rows` for the runs and seeds whose metrics.json exists; each other one's row
    is taken from the per-seed file ``existing`` when its ``config_digest`` equals the digest of
    the run's configuration resolved now (:func:`vaeas.contract.resolved`, the content its
    config.json would have). A run and seed that has neither raises VaeasError naming it, or with
    ``allow_missing`` is left out; returns the rows and the run ids left out."""
    pairs = [(run, seed) for run in exps.runs(cfg, experiment) for seed in exps.seeds(cfg)]
    try:
        old = pd.read_csv(existing, dtype={"run": str, "trained_as": str, "cpu": str, "train_code": str,
                                           "torch": str, "config_digest": str})
    except FileNotFoundError:
        old = pd.DataFrame({"run_id": [], "config_digest": []})
    old_by_id = {r["run_id"]: r for r in old.to_dict("records")}
    present = [i for i, path in enumerate(metrics_paths) if Path(path).is_file()]
    fresh = seed_rows_for(cfg, [pairs[i] for i in present], [metrics_paths[i] for i in present],
                          [log_paths[i] for i in present])
    fresh_by_id = {r["run_id"]: r for r in fresh.to_dict("records")}
    rows, missing = [], []
    for run, seed in pairs:
        run_id = f"{run.id}.seed{seed}"
        if run_id in fresh_by_id:
            rows.append(fresh_by_id[run_id])
            continue
        kept = old_by_id.get(run_id)
        if kept is None and allow_missing:
            missing.append(run_id)
            continue
        if kept is None:
            raise VaeasError(f"{metrics_paths[pairs.index((run, seed))]} not found and {existing} has no row "
                             f"'{run_id}' to carry over; train and evaluate that run")
        want = _digest_of(contract.resolved(cfg, run, seed))
        if str(kept.get("config_digest")) != want:
            raise VaeasError(f"{existing}: row '{run_id}' was made with another configuration "
                             f"(config_digest {kept.get('config_digest')}, now {want}); retrain that run")
        rows.append(kept)
    if not rows:
        raise VaeasError(f"no run of experiment '{experiment}' has a metrics.json or a row in {existing}")
    return _ordered(pd.DataFrame(rows)), missing


def _config_digest(path: Path) -> str:
    """sha256 (16 hex digits) of the config.json groups a run's metrics depend on; blank when
    the file is missing or unreadable."""
    try:
        return _digest_of(contract.read(path))
    except Exception:          # noqa: BLE001 - provenance is best effort, never a failure
        return ""


def _digest_of(content: dict) -> str:
    """The digest of :func:`_config_digest` from a config.json's content (as parsed, or as
    :func:`vaeas.contract.resolved` builds it: a JSON round trip first, so both read alike)."""
    groups = contract.part(json.loads(contract.dumps(content)), contract.EVALUATE_KEYS)
    groups["run"] = {k: v for k, v in (groups.get("run") or {}).items() if k != "run_id"}
    return hashlib.sha256(json.dumps(groups, sort_keys=True).encode()).hexdigest()[:16]


def read_log(log_file: str) -> pd.DataFrame | None:
    """A run's model.log.csv, or None when it is missing or unreadable (provenance is best effort)."""
    try:
        return pd.read_csv(log_file)
    except (OSError, ValueError, pd.errors.ParserError):
        return None


def _train_seconds(log: pd.DataFrame | None) -> float:
    if log is None or "seconds" not in log.columns:
        return math.nan
    try:
        return round(float(log["seconds"].sum()), 3)
    except (TypeError, ValueError):
        return math.nan


def caught_up_epoch(log: pd.DataFrame | None, n_train: float | None, tol: float = CAUGHT_UP_TOL) -> float:
    """The classifier's pace, from a run's log (:func:`read_log`): the first monitored epoch from which the softmax MI (eq. 5, the
    classifier as it is then) stays within ``tol`` of the Monte Carlo MI over all N training
    posteriors, to the last monitored epoch; ``inf`` when it is not within ``tol`` at the last one
    (not caught up by the end of training); NaN when the log has no such reading (no monitor, no
    classifier, or a monitored subset S < N, whose Monte Carlo MI is capped at log S).

    The first epoch *from which it stays* and not the first within ``tol``: before the encoder
    spreads the posteriors both estimates can be near 0, so a gap within ``tol`` at the start
    says nothing of the classifier; it grows as the encoder separates the samples and shrinks as
    the classifier identifies them (at N = 10,000 the first reading, epoch 10, is already 5-6 nats)."""
    if log is None or n_train is None or not {"epoch", "mon_mi", "mon_mi_mc", "mon_size"} <= set(log.columns):
        return math.nan
    mon = log.dropna(subset=["mon_mi", "mon_mi_mc"])
    mon = mon[mon["mon_size"] == n_train].sort_values("epoch")
    if mon.empty:
        return math.nan
    within = ((mon["mon_mi_mc"] - mon["mon_mi"]) <= tol).to_numpy()
    if not within[-1]:
        return math.inf
    first = len(within) - int(within[::-1].argmin()) if not within.all() else 0
    return float(mon["epoch"].iloc[first])


def write_seed_rows(frame: pd.DataFrame, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def read_seed_rows(path: str) -> list[dict]:
    """The rows of a per-seed file as dicts (blank cells dropped, as a metrics.json has no key)."""
    frame = pd.read_csv(path, keep_default_na=True, dtype={"run": str, "trained_as": str})
    return [{k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
            for row in frame.to_dict("records")]
