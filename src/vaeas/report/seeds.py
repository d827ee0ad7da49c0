"""Per-seed results: ``results/<profile>/seeds/<experiment>.csv``, one row per run of the grid
and seed, from which the tables are computed (issue 20).

A row holds the run's identity (``run_id`` of the grid, its experiment, run name and seed, and
``trained_as``: the run whose model it shares, when the grid trains its configuration once), its
objective and hyper-parameters, every column of its metrics.json, and its provenance: the digest
of the run's configuration (``config_digest``: the groups of config.json its metrics depend on),
the digest of the training code that made the model and the machine it was trained on (CPU model,
torch version, threads; from the record ``vaeas train`` keeps beside the model, blank when the
model came another way, e.g. ``dvc pull``), and the wall seconds of training and evaluation.

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
from ..finished import kept_record
from ..io import atomic_path

#: The identity and provenance columns, first; every metrics.json column follows.
FIRST = ("run_id", "experiment", "run", "seed", "trained_as", "dataset", "objective")
PROVENANCE = ("config_digest", "train_code", "cpu", "torch", "threads", "train_seconds", "eval_seconds")


def seed_rows(cfg: Config, experiment: str, metrics_paths: list[str], log_paths: list[str]) -> pd.DataFrame:
    """The rows of ``experiment``: its runs x seeds in grid order, reading the given metrics.json
    and model.log.csv paths (one per run and seed, in that order)."""
    rows = []
    pairs = [(run, seed) for run in exps.runs(cfg, experiment) for seed in exps.seeds(cfg)]
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
        row.update({"config_digest": _config_digest(Path(metrics_file).with_name(contract.CONFIG_FILE)),
                    "train_code": record.get("code", ""), "cpu": machine.get("cpu", ""),
                    "torch": machine.get("torch", ""), "threads": machine.get("threads", ""),
                    "train_seconds": _train_seconds(log_file), "eval_seconds": metrics.get("seconds", math.nan)})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    hyper = [c for o in objectives.REGISTRY.values() for c in o.param_names() if c in frame.columns]
    hyper = list(dict.fromkeys(hyper))                                  # alpha, beta, ... once each
    rest = [c for c in frame.columns if c not in (*FIRST, *hyper, *PROVENANCE)]
    return frame[[*FIRST, *hyper, *rest, *PROVENANCE]]


def _config_digest(path: Path) -> str:
    """sha256 (16 hex digits) of the config.json groups a run's metrics depend on; blank when
    the file is missing or unreadable."""
    try:
        groups = contract.part(path, contract.EVALUATE_KEYS)
    except Exception:          # noqa: BLE001 - provenance is best effort, never a failure
        return ""
    groups["run"] = {k: v for k, v in (groups.get("run") or {}).items() if k != "run_id"}
    return hashlib.sha256(json.dumps(groups, sort_keys=True).encode()).hexdigest()[:16]


def _train_seconds(log_file: str) -> float:
    try:
        return round(float(pd.read_csv(log_file)["seconds"].sum()), 3)
    except (OSError, KeyError, ValueError, pd.errors.ParserError):
        return math.nan


def write_seed_rows(frame: pd.DataFrame, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def read_seed_rows(path: str) -> list[dict]:
    """The rows of a per-seed file as dicts (blank cells dropped, as a metrics.json has no key)."""
    frame = pd.read_csv(path, keep_default_na=True, dtype={"run": str, "trained_as": str})
    return [{k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
            for row in frame.to_dict("records")]
