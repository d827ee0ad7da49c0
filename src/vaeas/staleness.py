"""What decides a trained model, stated once, and the one function that says whether a finished
model or a checkpoint is stale.

Three things decide a model: its :class:`~vaeas.run.RunSpec` (data set, objective and its
hyper-parameters, seed), the **train group** of its configuration (:func:`split`: every key of
every section but ``evaluation``, less the keys :func:`inert_keys` names), and the **training
code** (:data:`CODE`, whose digest :func:`vaeas.pipeline.code_digest` computes).

Groups are written **canonically**: a key at its default value (:func:`vaeas.config.defaults`,
frozen once released) is left out of the group and listed under ``defaults`` instead, and so is a
hyper-parameter at its objective's default. What Snakemake's params, DVC's params, a checkpoint
and a kept model's record hold is that canonical form, so a new key (or hyper-parameter) whose
default reproduces the old behaviour changes none of them and retrains nothing; setting it to
another value changes exactly the runs it applies to. :func:`why_stale` compares a record with
what is wanted, for model files and checkpoints alike.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from .config import Config, defaults
from .run import RunSpec

#: Keys that only say where raw files come from (each is verified against a pinned hash, so they
#: never change the processed data).
FETCH_KEYS = ("data.mirror", "data.lock_file")
#: Keys that change how fast a run goes or how often it is saved, never its numbers beyond float
#: rounding (device and thread count) or at all (checkpoint_every: resume is bitwise, tested).
RUNTIME_KEYS = ("training.device", "training.threads", "training.checkpoint_every")
#: Sections only evaluation reads; every other section of the Config determines the model.
EVALUATE_SECTIONS = ("evaluation",)

#: The package code each kind of stage runs (DVC hashes it; Snakemake compares its digest).
CODE = {
    "resolve": ["src/vaeas/config.py", "src/vaeas/experiments.py", "src/vaeas/contract.py",
                "src/vaeas/staleness.py", "src/vaeas/run.py", "src/vaeas/schemas"],
    "process": ["src/vaeas/data"],
    # Every module the command imports that can change its numbers: the objectives' losses call
    # the estimators and metrics; the training-time monitor the passes.
    "train": ["src/vaeas/training", "src/vaeas/objectives", "src/vaeas/models.py", "src/vaeas/runtime.py",
              "src/vaeas/data", "src/vaeas/estimators.py", "src/vaeas/metrics.py", "src/vaeas/monitoring.py",
              "src/vaeas/passes.py"],
    "evaluate": ["src/vaeas/evaluation.py", "src/vaeas/estimators.py", "src/vaeas/metrics.py",
                 "src/vaeas/models.py", "src/vaeas/runtime.py", "src/vaeas/passes.py", "src/vaeas/refit.py"],
    "report": ["src/vaeas/report", "src/vaeas/reference"],
}


def inert_keys(spec: RunSpec, labels_scheme: str = "full") -> tuple[str, ...]:
    """Keys (``section.key``, or a whole ``section``) that cannot change this run's outputs: where
    raw files come from, the runtime keys, the Omniglot source for another data set, and what the
    run's objective declares inert (the classifier's settings for one without a classifier;
    eq. 10's constant with one label per sample)."""
    keys = [*FETCH_KEYS, *RUNTIME_KEYS]
    if spec.dataset != "omniglot":
        keys.append("data.omniglot_source")
    definition = spec.definition
    keys += definition.inert
    if labels_scheme == "full":
        keys += definition.inert_with_full_labels
    return tuple(keys)


def _is_inert(section: str, key: str, inert: tuple[str, ...]) -> bool:
    return section in inert or f"{section}.{key}" in inert


def split(cfg: Config, spec: RunSpec) -> dict[str, dict]:
    """The groups of a config.json for ``cfg`` and ``spec``: ``train`` and ``evaluate`` (the keys
    that decide the model, and its metrics, at other than their default), ``inert`` (keys that
    cannot change this run's outputs) and ``defaults`` (every other key, at its default)."""
    inert = inert_keys(spec, cfg.labels.scheme)
    base = defaults()
    groups: dict[str, dict] = {"train": {}, "evaluate": {}, "inert": {}, "defaults": {}}
    for section, values in cfg.to_dict().items():
        if section in ("profile", "experiments"):
            continue
        for key, value in values.items():
            if _is_inert(section, key, inert):
                group = "inert"
            elif _canonical(value) == _canonical(base.get(section, {}).get(key, _ABSENT)):
                group = "defaults"
            else:
                group = "evaluate" if section in EVALUATE_SECTIONS else "train"
            groups[group].setdefault(section, {})[key] = value
    return groups


def train_group(cfg: Config, spec: RunSpec) -> dict:
    """What of ``cfg`` decides ``spec``'s model, canonically (keys at their default left out)."""
    return split(cfg, spec)["train"]


def canonical_train(recorded: Mapping[str, Any], spec: RunSpec, labels_scheme: str) -> dict:
    """A recorded configuration (a whole config, or a train group, of any vaeas version) in the
    canonical form of :func:`split`'s ``train`` group for ``spec``: keys at their default, inert
    keys, evaluation sections and keys this vaeas no longer has are left out."""
    inert, base = inert_keys(spec, labels_scheme), defaults()
    out: dict[str, dict] = {}
    for section, values in recorded.items():
        if section in EVALUATE_SECTIONS or section not in base or not isinstance(values, Mapping):
            continue
        for key, value in values.items():
            if key in base[section] and not _is_inert(section, key, inert) and \
                    _canonical(value) != _canonical(base[section][key]):
                out.setdefault(section, {})[key] = value
    return out


def why_stale(recorded_spec: RunSpec, recorded_train: Mapping[str, Any], spec: RunSpec,
              train: Mapping[str, Any], labels_scheme: str = "full") -> str | None:
    """Why a model (or checkpoint) recorded as (``recorded_spec``, ``recorded_train``) is not one
    of (``spec``, ``train``) — the first difference, as ``key: recorded -> wanted`` — or None.
    Both configurations are compared in canonical form (:func:`canonical_train`), so a key one of
    them lacks reads as its default."""
    differs = recorded_spec.same_model(spec)
    if differs:
        return differs
    old, new = canonical_train(recorded_train, spec, labels_scheme), canonical_train(train, spec, labels_scheme)
    base = defaults()
    for section in sorted(set(old) | set(new)):
        for key in sorted(set(old.get(section, {})) | set(new.get(section, {}))):
            default = base[section][key]
            was, now = old.get(section, {}).get(key, default), new.get(section, {}).get(key, default)
            if _canonical(was) != _canonical(now):
                return f"{section}.{key}: {was!r} -> {now!r}"
    return None


_ABSENT = object()


def _canonical(value: Any) -> Any:
    """The value as JSON reads it back: a tuple equals its list (and 1 equals 1.0, as in Python)."""
    return _ABSENT if value is _ABSENT else json.loads(json.dumps(value))
