"""The one typed configuration, loaded from ``params.yaml`` in one place.

``params.yaml`` holds base sections (``data``, ``model``, ``labels``, ``training``,
``evaluation``, ``experiments``) and named ``profiles`` whose sections override the base key by
key. :func:`load_config` validates the file against ``schemas/params.schema.json`` (the same
schema Snakemake validates against), merges the selected profile and returns a frozen
:class:`Config`. Every problem is a one-line :class:`~vaeas.errors.VaeasError` naming the key,
raised before any compute starts.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import VaeasError

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when present: 10x faster
SECTIONS = ("data", "model", "labels", "training", "evaluation", "experiments")

# Training-set size N of each data set, as data.py splits it (MNIST: the first 55,000 official
# training images; Omniglot: 24,345 from either source; digits: 1,247). Cross-key rules that need
# N (labels.classes < N, evaluation.mc_sizes <= N) are checked against these before any job
# starts, without reading the data; tests/test_reliability_config.py checks they match data.py.
TRAIN_SIZES = {"mnist": 55_000, "omniglot": 24_345, "digits": 1_247}


@dataclass(frozen=True)
class DataConfig:
    root: str = "data"
    mirror: str = ""
    omniglot_source: str = "lake"
    lock_file: str = "data/checksums.lock.json"

    @property
    def effective_mirror(self) -> str:
        """The mirror in force: env ``VAEAS_DATA_MIRROR`` wins over params.yaml."""
        return os.environ.get("VAEAS_DATA_MIRROR", self.mirror)


@dataclass(frozen=True)
class ModelConfig:
    """MLP sizes. Defaults are the paper's §5.3 (layers 2, 5, 2 of width 500, z of 40 dims)."""

    latent_dim: int = 40
    hidden_units: int = 500
    encoder_layers: int = 2
    decoder_layers: int = 5
    classifier_layers: int = 2
    activation: str = "tanh"


@dataclass(frozen=True)
class LabelConfig:
    """How training samples get their fixed softmax labels (§3.2–3.3)."""

    scheme: str = "full"
    classes: int = 0
    heads: int = 1
    seed: int = 0


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 300
    batch_size: int = 128
    lr: float = 1e-3
    classifier_lr: float = 1e-3
    device: str = "auto"
    precision: str = "fp32"
    threads: int = 0
    checkpoint_every: int = 1


@dataclass(frozen=True)
class EvaluationConfig:
    iw_samples: int = 4096
    iw_chunk: int = 512
    iw_max_examples: int = 0
    au_threshold: float = 0.01
    binarize_seed: int = 20191001
    mc_sizes: tuple[int, ...] = (55000, 10000, 5000, 1000, 500, 100)
    mc_repeats: int = 5
    mc_chunk: int = 1024


@dataclass(frozen=True)
class Config:
    profile: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    experiments: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain-dict view (for provenance and checkpoints)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


_SECTION_TYPES = {
    "data": DataConfig,
    "model": ModelConfig,
    "labels": LabelConfig,
    "training": TrainingConfig,
    "evaluation": EvaluationConfig,
}


def schema() -> dict:
    """The JSON schema of params.yaml (shipped with the package)."""
    text = resources.files("vaeas").joinpath("schemas/params.schema.json").read_text()
    return json.loads(text)


def schema_path() -> Path:
    """Filesystem path of the schema, for ``snakemake.utils.validate``."""
    return Path(str(resources.files("vaeas").joinpath("schemas/params.schema.json")))


def _key_path(parts) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


@functools.lru_cache(maxsize=1)
def _validator():
    """Draft 2020-12 with a strict integer: 3.0 is a float here (range(3.0) fails at train time)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    strict = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(base, type_checker=strict)(schema())


def _check_values(node: Any, path: list, source: str, stack: tuple = ()) -> None:
    """Refuse what JSON-schema checks let through, naming the key: non-finite numbers (YAML
    .nan, .inf pass every bound), keys with control characters, and a container that contains
    itself (a recursive YAML alias, which would send the validator into infinite recursion)."""
    if isinstance(node, float) and not math.isfinite(node):
        raise VaeasError(f"{source}: {_key_path(path)}: {node} is not a finite number")
    if isinstance(node, (dict, list)):
        if any(node is outer for outer in stack):
            raise VaeasError(f"{source}: {_key_path(path)}: a YAML alias refers to the mapping or list that contains it")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            # Keys become run ids, paths and Snakemake wildcards; and Python's regex '$' (the
            # schema's name patterns) matches before a final line break, so refuse those here.
            if isinstance(node, dict) and isinstance(key, str) and any(ord(c) < 32 or ord(c) == 127 for c in key):
                raise VaeasError(f"{source}: {_key_path(path)}: the key {key!r} contains a control character")
            _check_values(value, path + [key], source, stack + (node,))


def validate_raw(raw: Any, source: str = "params.yaml") -> None:
    """Validate the parsed params.yaml against the schema; raise a one-line error naming the key."""
    if not isinstance(raw, dict):
        raise VaeasError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    _check_values(raw, [], source)
    errors = sorted(_validator().iter_errors(raw), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    err = errors[0]
    if err.validator == "additionalProperties" and isinstance(err.instance, dict) and "properties" in err.schema:
        known = set(err.schema.get("properties", {}))
        extra = sorted((k for k in err.instance if k not in known), key=str)
        where = _key_path(list(err.absolute_path) + extra[:1])
        raise VaeasError(f"{source}: unknown key '{where}' (allowed here: {', '.join(sorted(known))})")
    message = err.message.replace("\n", " ")
    if "propertyNames" in err.absolute_schema_path:
        message = f"bad key name: {message}"
    raise VaeasError(f"{source}: {_key_path(err.absolute_path)}: {message}")


def _deep_merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise VaeasError(f"--set {item!r}: expected KEY=VALUE, e.g. model.decoder_layers=3")
    key, value = item.split("=", 1)
    path = key.strip().split(".")
    if len(path) < 2 or path[0] not in SECTIONS or not all(path):
        # Only the sections are merged and validated: any other key would be silently ignored.
        raise VaeasError(f"--set {item!r}: '{key.strip()}' is not SECTION.KEY with SECTION one of {', '.join(SECTIONS)}")
    try:
        return path, yaml.safe_load(value)
    except yaml.YAMLError:
        raise VaeasError(f"--set {item!r}: the value of '{key.strip()}' is not valid YAML") from None


def set_dotted(raw: dict, key: str, value: Any) -> dict:
    """Copy of ``raw`` with ``section.key`` set to ``value``."""
    out = copy.deepcopy(raw)
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise VaeasError(f"override '{key}': '{part}' is not a section")
    node[parts[-1]] = value
    return out


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a merged config dict."""
    for item in overrides:
        path, value = _parse_override(item)
        raw = set_dotted(raw, ".".join(path), value)
    return raw


def with_overrides(cfg: "Config", overrides: Mapping[str, Any], source: str) -> "Config":
    """``cfg`` with dotted-key overrides applied, validated again."""
    merged = {k: v for k, v in cfg.to_dict().items() if k in SECTIONS}
    for key, value in overrides.items():
        merged = set_dotted(merged, key, value)
    return build_config(merged, profile=cfg.profile, source=source)


def _sections_with_overrides(cfg: Config, overrides: Mapping[str, Any], source: str) -> Config:
    """Like :func:`with_overrides`, for checking only: the grid is left out (not revalidated)."""
    merged = {k: v for k, v in cfg.to_dict().items() if k in SECTIONS and k != "experiments"}
    for key, value in overrides.items():
        merged = set_dotted(merged, key, value)
    return build_config(merged, profile=cfg.profile, source=source)


def _check_cross_keys(cfg: Config, source: str) -> None:
    lab = cfg.labels
    if lab.scheme == "full" and (lab.classes not in (0,) or lab.heads != 1):
        raise VaeasError(f"{source}: labels.classes must be 0 and labels.heads 1 when labels.scheme is 'full' (got classes={lab.classes}, heads={lab.heads})")
    if lab.scheme == "shared" and (lab.classes < 2 or lab.heads != 1):
        raise VaeasError(f"{source}: labels.classes must be >= 2 and labels.heads 1 when labels.scheme is 'shared' (got classes={lab.classes}, heads={lab.heads})")
    if lab.scheme == "multihead" and (lab.classes < 2 or lab.heads < 2):
        raise VaeasError(f"{source}: labels.classes must be >= 2 and labels.heads >= 2 when labels.scheme is 'multihead' (got classes={lab.classes}, heads={lab.heads})")
    if cfg.training.precision != "fp32" and cfg.training.device == "cpu" and cfg.training.precision == "tf32":
        raise VaeasError(f"{source}: training.precision 'tf32' needs a CUDA device (training.device is 'cpu')")


def build_config(merged: Mapping[str, Any], profile: str = "", source: str = "params.yaml") -> Config:
    """Turn a merged (profile already applied) dict into a validated :class:`Config`."""
    validate_raw({k: v for k, v in merged.items() if k in SECTIONS}, source)
    sections = {}
    for name, cls in _SECTION_TYPES.items():
        values = dict(merged.get(name, {}) or {})
        if name == "evaluation" and "mc_sizes" in values:
            values["mc_sizes"] = tuple(values["mc_sizes"])
        sections[name] = cls(**values)
    cfg = Config(profile=profile, experiments=dict(merged.get("experiments", {}) or {}), **sections)
    _check_cross_keys(cfg, source)
    return cfg


def check_fits_dataset(cfg: Config, dataset: str, monte_carlo: bool = False, source: str = "params.yaml") -> None:
    """Cross-key rules that need the training-set size N of ``dataset`` (:data:`TRAIN_SIZES`).

    * shared / multihead labels: V = labels.classes < N (with V >= N every sample has its own
      label: that is scheme 'full');
    * multihead: V^(K-1) < N, i.e. no more heads than it takes to tell N samples apart (a head
      beyond that is constant, and V^K would overflow the int64 label arithmetic);
    * Monte Carlo runs: every S of evaluation.mc_sizes is <= N (S posteriors out of N).
    """
    n = TRAIN_SIZES.get(dataset)
    if n is None:
        return
    lab = cfg.labels
    if lab.scheme != "full" and lab.classes >= n:
        raise VaeasError(f"{source}: labels.classes ({lab.classes}) must be < the {n} training samples of '{dataset}' for scheme '{lab.scheme}'")
    if lab.scheme == "multihead" and lab.classes ** (lab.heads - 1) >= n:
        needed = next(k for k in range(1, lab.heads + 1) if lab.classes ** k >= n)
        raise VaeasError(f"{source}: labels.heads ({lab.heads}) is more than the {needed} heads of {lab.classes} classes that tell the {n} training samples of '{dataset}' apart")
    too_big = [size for size in cfg.evaluation.mc_sizes if size > n] if monte_carlo else []
    if too_big:
        raise VaeasError(f"{source}: evaluation.mc_sizes: {too_big} exceed the {n} training samples of '{dataset}'")


def validate_grid(cfg: Config, source: str = "params.yaml") -> None:
    """The experiment grid of ``cfg``'s profile: every run's merged config (its experiment's and its
    own ``set``), the rules that need the data set's size, and the runs Figures 4-5 name."""
    from . import experiments as exps   # experiments imports this module

    defined = []
    for run in exps.runs(cfg):
        run_source = f"{source} (run {run.id})"
        run_cfg = _sections_with_overrides(cfg, run.overrides, run_source) if run.overrides else cfg
        check_fits_dataset(run_cfg, run.dataset, run.monte_carlo, run_source)
        defined.append(run.id)
    for figure, ids in (cfg.experiments.get("reconstructions") or {}).items():
        for run_id in ids:
            if run_id not in defined:
                where = f"profile '{cfg.profile}'" if cfg.profile else "the base sections"
                raise VaeasError(f"{source}: experiments.reconstructions.{figure}: '{run_id}' is not a run of {where} "
                                 f"(runs: {', '.join(defined) or 'none'})")


def read_params(path: str | os.PathLike = "params.yaml") -> dict:
    """The parsed params.yaml, schema-validated (every profile too); one-line errors naming the key."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise VaeasError(f"{source}: file not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise VaeasError(f"{source}: not valid YAML{where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VaeasError(f"{source}: cannot be read ({type(exc).__name__}: {exc})") from None
    raw = {} if raw is None else raw
    validate_raw(raw, source)
    return raw


def config_from_params(raw: dict, profile: str | None = None, overrides: list[str] | None = None,
                       source: str = "params.yaml") -> Config:
    """The validated :class:`Config` of one profile of an already parsed params.yaml."""
    name = profile if profile is not None else raw.get("profile", "")
    merged = {k: raw.get(k, {}) for k in SECTIONS}
    if name:
        profiles = raw.get("profiles", {}) or {}
        if name not in profiles:
            raise VaeasError(f"{source}: profile '{name}' is not defined under 'profiles' (defined: {', '.join(sorted(profiles)) or 'none'})")
        merged = _deep_merge(merged, {k: v for k, v in profiles[name].items() if k in SECTIONS})
    if overrides:
        merged = apply_overrides(merged, overrides)
    cfg = build_config(merged, profile=name, source=source)
    validate_grid(cfg, source)
    return cfg


def load_config(path: str | os.PathLike = "params.yaml", profile: str | None = None,
                overrides: list[str] | None = None) -> Config:
    """Load, validate and merge ``params.yaml``; ``profile`` defaults to the file's ``profile`` key.

    Validation covers the whole file against the schema, then the selected profile's merged
    config, its cross-key rules and its experiment grid (:func:`validate_grid`)."""
    raw = read_params(path)
    return config_from_params(raw, profile, overrides, source=str(path))


def check_params(path: str | os.PathLike = "params.yaml", profile: str | None = None,
                 overrides: list[str] | None = None) -> Config:
    """What ``vaeas check`` runs: :func:`load_config` for the selected profile, then every other
    profile's merged config and grid too, so an error in a profile not in use is found now."""
    raw = read_params(path)
    cfg = config_from_params(raw, profile, overrides, source=str(path))
    for name in (raw.get("profiles") or {}):
        if name != cfg.profile:
            config_from_params(raw, name, overrides, source=str(path))
    return cfg
