"""The one contract between params.yaml and every stage: a resolved configuration per run.

``vaeas resolve`` (and a Snakemake run before its first job, :mod:`vaeas.preflight`) writes, for
every run and seed of the profile, ``runs/<profile>/<experiment>/<run>/seed<k>/config.json``: the whole resolved
:class:`~vaeas.config.Config` (every section, the profile's and the run's own ``set:`` applied,
then the command line's ``--set``, which wins), the run spec and the run id. ``train``,
``evaluate`` and ``mc-estimate`` read everything from it; metrics.json and mc.csv carry its
``run_id``; the Snakemake rules and the DVC stages depend on it. A file is rewritten only when
its content changes, so its mtime moves only with its content.

The file groups the sections by who reads them (:data:`EVALUATE_SECTIONS` for evaluation, every
other section for training, so a key added to any section is tracked without listing it):

* ``run`` — run id, profile, experiment, name, seed, data set, objective, α, β, Monte Carlo;
* ``train`` — what determines the model (data, model, labels, training, and any new section);
* ``evaluate`` — what determines the metrics of a given model (evaluation);
* ``inert`` — keys that cannot change this run's outputs (:func:`inert_keys`), kept for the record;
* ``set`` — the command line's overrides, as given (a record, read by nothing).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .config import Config, SECTIONS, build_config, parse_overrides
from .errors import VaeasError
from .experiments import Run, config_for, distinct, runs, seeds
from .io import write_text

CONFIG_FILE = "config.json"
FORMAT = "vaeas-run-config-v1"
#: Sections only evaluation reads; every other section of the Config determines the model.
EVALUATE_SECTIONS = ("evaluation",)
#: Keys that only say where raw files come from (each is verified against a pinned hash, so they
#: never change the processed data): no training or evaluation depends on them.
FETCH_KEYS = ("data.mirror", "data.lock_file")


def inert_keys(run: Run, labels_scheme: str = "full") -> tuple[str, ...]:
    """Keys (``section.key``, or a whole ``section``) that cannot change this run's outputs: where
    raw files come from, the Omniglot source for another data set, the labels and the
    classifier's settings for the VAE baseline (which has no classifier), and eq. 10's constant
    with one label per sample (log N = log N_eff there)."""
    keys = list(FETCH_KEYS)
    if run.dataset != "omniglot":
        keys.append("data.omniglot_source")
    if run.objective == "vae":
        keys += ["labels", "training.classifier_lr", "training.classifier_steps"]
    elif labels_scheme == "full":
        keys.append("labels.md_constant")
    return tuple(keys)
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
    experiment's) ``set:`` applied, then ``cli_overrides`` (which win)."""
    run_cfg = config_for(cfg, run, parse_overrides(cli_overrides or []))
    sections = {k: v for k, v in run_cfg.to_dict().items() if k not in ("profile", "experiments")}
    inert: dict = {}
    for dotted in inert_keys(run, run_cfg.labels.scheme):
        section, _, key = dotted.partition(".")
        if key:
            inert.setdefault(section, {})[key] = sections[section].pop(key)
        else:
            inert[section] = sections.pop(section)
    return {
        "format": FORMAT,
        "run": {"run_id": run_id(run, seed), "profile": cfg.profile, "experiment": run.experiment,
                "name": run.name, "seed": seed, "dataset": run.dataset, "objective": run.objective,
                "alpha": run.alpha, "beta": run.beta, "monte_carlo": run.monte_carlo},
        "train": {k: v for k, v in sections.items() if k not in EVALUATE_SECTIONS},
        "evaluate": {k: v for k, v in sections.items() if k in EVALUATE_SECTIONS},
        "inert": inert,
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


def load(path: str | os.PathLike):
    """(Config, RunSpec, run section) of a config.json, validated as params.yaml is."""
    from .training.objective import RunSpec

    content = read(path)
    merged = {**content["train"], **content["evaluate"]}
    for section, values in (content.get("inert") or {}).items():
        merged[section] = {**merged.get(section, {}), **values}
    unknown = sorted(set(merged) - set(SECTIONS))
    if unknown:
        raise VaeasError(f"{path}: unknown section '{unknown[0]}'; run 'vaeas resolve' with this vaeas")
    run = content["run"]
    cfg = build_config(merged, profile=run["profile"], source=str(path))
    spec = RunSpec(run["dataset"], run["objective"], float(run["alpha"]), float(run["beta"]), int(run["seed"]))
    spec.validate()
    return cfg, spec, run


def mismatch(config: str | os.PathLike | dict, meta: dict) -> str | None:
    """Why a model with metadata ``meta`` (from :func:`vaeas.training.load_model`) was not trained
    with this config.json — the first differing key, as ``key: model's -> config.json's`` — or
    None when it was: its spec (data set, objective, α, β, seed) and every key of the ``train``
    group (inert keys are not compared)."""
    content = config if isinstance(config, dict) else read(config)
    spec, model_config, missing = meta["spec"], meta.get("config", {}), "(absent)"
    for key in ("dataset", "objective", "alpha", "beta", "seed"):
        if getattr(spec, key) != content["run"][key]:
            return f"run.{key}: {getattr(spec, key)!r} -> {content['run'][key]!r}"
    for section, values in content["train"].items():
        for key, value in values.items():
            if model_config.get(section, {}).get(key, missing) != value:
                return f"{section}.{key}: {model_config.get(section, {}).get(key, missing)!r} -> {value!r}"
    return None
