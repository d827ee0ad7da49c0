"""The one contract between params.yaml and every stage: a resolved configuration per run.

``vaeas resolve`` (and a Snakemake run before its first job, :mod:`vaeas.preflight`) writes, for
every run and seed of the profile, ``runs/<profile>/<experiment>/<run>/seed<k>/config.json``: the whole resolved
:class:`~vaeas.config.Config` (every section, the profile's and the run's own ``set:`` applied,
then the command line's ``--set``, which wins), the run spec and the run id. ``train``,
``evaluate`` and ``mc-estimate`` read everything from it; metrics.json and mc.csv carry its
``run_id``; the Snakemake rules and the DVC stages depend on it. A file is rewritten only when
its content changes, so its mtime moves only with its content.

The file groups the sections by who reads them (:mod:`vaeas.staleness` decides the groups; a key
added to any section is tracked without listing it):

* ``run`` — the :class:`~vaeas.run.RunSpec` (run id, data set, objective, its hyper-parameters,
  seed), then profile, experiment, name and Monte Carlo;
* ``train`` — what determines the model, at other than its default (:mod:`vaeas.staleness`);
* ``evaluate`` — what determines the metrics of a given model (evaluation), likewise;
* ``inert`` — keys that cannot change this run's outputs (:func:`inert_keys`), kept for the record;
* ``defaults`` — every other key, at its default value (a record; a new key lands here);
* ``set`` — the command line's overrides, as given (a record, read by nothing).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import staleness
from .config import Config, SECTIONS, build_config, parse_overrides
from .errors import VaeasError
from .experiments import Run, config_for, distinct, runs, seeds
from .io import write_text
from .run import RunSpec

CONFIG_FILE = "config.json"
FORMAT = "vaeas-run-config-v2"
#: Sections only evaluation reads (re-exported from :mod:`vaeas.staleness`, which decides the groups).
EVALUATE_SECTIONS = staleness.EVALUATE_SECTIONS
inert_keys = staleness.inert_keys
#: Top-level groups of config.json each stage's outputs depend on.
TRAIN_KEYS = ("run", "train")
EVALUATE_KEYS = ("run", "train", "evaluate")


def run_id(run: Run, seed: int) -> str:
    """The run's id: ``<experiment>.<run>.seed<k>`` (with the profile, unique in ``runs/``)."""
    return f"{run.id}.seed{seed}"


def config_path(cfg: Config, run: Run, seed: int) -> str:
    return run.path(cfg.profile, seed, CONFIG_FILE)


def resolved(cfg: Config, run: Run, seed: int, cli_overrides: list[str] | None = None) -> dict:
    """The content of one run's config.json: the profile's config with the run's (and its
    experiment's) ``set:`` applied, then ``cli_overrides`` (which win), grouped canonically by
    :func:`vaeas.staleness.split`."""
    run_cfg = config_for(cfg, run, parse_overrides(cli_overrides or []))
    spec = run.spec(seed)
    return {
        "format": FORMAT,
        "run": {**spec.to_dict(canonical=True), "profile": cfg.profile, "experiment": run.experiment,
                "name": run.name, "monte_carlo": run.monte_carlo},
        **staleness.split(run_cfg, spec),
        "set": list(cli_overrides or []),
    }


def dumps(content: dict) -> str:
    return json.dumps(content, indent=2, sort_keys=True) + "\n"


def write_if_changed(path: str | os.PathLike, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; True when written."""
    path = Path(path)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    write_text(path, text)
    return True


def run_configs(cfg: Config, cli_overrides: list[str] | None = None) -> dict[str, str]:
    """Every config.json of the profile as it should read (path -> text), computed in memory:
    the profile's whole configuration first, then each run and seed. Writes nothing."""
    texts = {f"runs/{cfg.profile}/{CONFIG_FILE}":
             dumps({"format": FORMAT + "-profile", **cfg.to_dict(), "set": list(cli_overrides or [])})}
    for run in distinct(runs(cfg)):
        for seed in seeds(cfg):
            texts[config_path(cfg, run, seed)] = dumps(resolved(cfg, run, seed, cli_overrides))
    return texts


def write_run_configs(cfg: Config, cli_overrides: list[str] | None = None,
                      texts: dict[str, str] | None = None) -> list[str]:
    """Write every run's config.json of the profile (only those whose content changed; ``texts``
    from :func:`run_configs` when the caller has them); returns the paths written."""
    texts = run_configs(cfg, cli_overrides) if texts is None else texts
    return [path for path, text in texts.items() if write_if_changed(path, text)]


def read(path: str | os.PathLike) -> dict:
    """A config.json as written by :func:`write_run_configs`; one-line error if it is not one."""
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VaeasError(f"{path} not found; run 'vaeas resolve' (or snakemake / dvc repro) first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VaeasError(f"{path} is not a readable run configuration ({type(exc).__name__}); run 'vaeas resolve'") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise VaeasError(f"{path} is not a vaeas run configuration ({FORMAT}); run 'vaeas resolve'")
    return content


def part(config: str | os.PathLike | dict, keys: tuple[str, ...]) -> dict:
    """The groups ``keys`` of a config.json (a path, or its content already parsed): what a
    stage's outputs depend on."""
    content = config if isinstance(config, dict) else read(config)
    return {k: content.get(k) for k in keys}


def load(path: str | os.PathLike) -> tuple[Config, RunSpec, dict]:
    """(Config, RunSpec, run section) of a config.json, validated as params.yaml is."""
    content = read(path)
    merged = _merged(content)
    unknown = sorted(set(merged) - set(SECTIONS))
    if unknown:
        raise VaeasError(f"{path}: unknown section '{unknown[0]}'; run 'vaeas resolve' with this vaeas")
    run = content["run"]
    cfg = build_config(merged, profile=run["profile"], source=str(path))
    return cfg, RunSpec.from_dict(run, where=f"{path}: run.{{}}"), run


def mismatch(config: str | os.PathLike | dict, meta: dict) -> str | None:
    """Why a model with metadata ``meta`` (from :func:`vaeas.training.load_model`) was not trained
    with this config.json — the first differing key, as ``key: model's -> config.json's`` — or
    None when it was (:func:`vaeas.staleness.why_stale` on its spec and the ``train`` group)."""
    content = config if isinstance(config, dict) else read(config)
    wanted = RunSpec.from_dict(content["run"], where=f"{config if not isinstance(config, dict) else 'config.json'}: run.{{}}")
    return staleness.why_stale(meta["spec"], meta.get("config", {}), wanted, content["train"], labels_scheme(content))


def labels_scheme(content: dict) -> str:
    """The labels scheme a config.json's run trains with (what decides which keys are inert)."""
    return _merged(content).get("labels", {}).get("scheme", "full")


def _merged(content: dict) -> dict:
    """Every section of a config.json, its groups put back together."""
    merged: dict = {}
    for group in ("defaults", "inert", "train", "evaluate"):
        for section, values in (content.get(group) or {}).items():
            merged[section] = {**merged.get(section, {}), **values}
    return merged
