"""The one typed configuration, loaded from ``params.yaml`` in one place.

``params.yaml`` holds base sections (``data``, ``model``, ``labels``, ``training``,
``evaluation``, ``experiments``) and named ``profiles`` whose sections override the base key by
key. :func:`read_params` validates the file against ``schemas/params.schema.json`` (the same
schema Snakemake validates against) and :func:`profile_config` merges the selected profile and
returns a frozen :class:`Config`. Every problem is a one-line :class:`~vaeas.errors.VaeasError`
naming the key, raised before any compute starts.

A leaf: it imports nothing of vaeas but :mod:`vaeas.errors`. The experiment grid, which needs
the data sets' sizes, is checked by :mod:`vaeas.experiments` (whose :func:`load_config` is the
entry point every command uses).
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

@dataclass(frozen=True)
class DataConfig:
    root: str = "data"
    mirror: str = ""
    omniglot_source: str = "lake"
    lock_file: str = "data/checksums.lock.json"
    train_size: int = 0                 # 0 = the whole training split; else a seeded subset

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
    init: str = "glorot"                # glorot (Keras' default) | torch (nn.Linear's default); D22


@dataclass(frozen=True)
class LabelConfig:
    """How training samples get their fixed softmax labels (§3.2–3.3)."""

    scheme: str = "full"
    classes: int = 0
    heads: int = 1
    seed: int = 0
    md_constant: str = "n"              # eq. 10's log N: "n" (the training-set size) or "n_eff" (D5)


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 300
    batch_size: int = 128
    lr: float = 1e-3
    classifier_lr: float = 1e-3
    device: str = "auto"
    precision: str = "fp32"
    flush_denormal: bool = False        # float32 subnormals flushed to zero while training (D50)
    threads: int = 0
    checkpoint_every: int = 1
    classifier_steps: int = 0           # extra ω updates per VAE update (D23)
    monitor_every: int = 0              # epochs between Monte Carlo monitor rows (0 = off)
    monitor_size: int = 0               # posteriors monitored (0 = all N)
    validate_every: int = 0             # epochs between validation IW-NLLs; the best model is kept (0 = off)
    validate_size: int = 0              # validation images (0 = all)
    validate_samples: int = 16          # importance samples of the validation IW-NLL


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
    refit_epochs: int = 0               # classifier refit on the frozen posteriors (0 = off)
    refit_from: str = "fresh"
    refit_lr: float = 1e-3
    refit_batch: int = 256


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


def defaults() -> dict[str, dict]:
    """Every section's keys at their default values (what a key absent from params.yaml takes).

    A released key's default is frozen (tests/test_staleness.py): records of finished models
    omit keys at their default (:mod:`vaeas.staleness`), so a changed default would go unseen;
    a new behaviour is a new key, or a new value set in params.yaml."""
    return json.loads(json.dumps({name: dataclasses.asdict(cls()) for name, cls in _SECTION_TYPES.items()}))


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


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["section.key=value", ...]`` (values parsed as YAML) as ``{"section.key": value}``."""
    return {".".join(path): value for path, value in map(_parse_override, overrides)}


def with_overrides(cfg: "Config", overrides: Mapping[str, Any], source: str, grid: bool = True) -> "Config":
    """``cfg`` with dotted-key overrides applied, validated again; ``grid=False`` leaves the
    experiment grid out (what checking one run of the grid needs: the grid itself is checked)."""
    merged = {k: v for k, v in cfg.to_dict().items() if k in SECTIONS and (grid or k != "experiments")}
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


def read_params(path: str | os.PathLike = "params.yaml") -> dict:
    """The parsed params.yaml, schema-validated (every profile too); one-line errors naming the key."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise VaeasError(f"{source}: file not found")
    try:
        raw = _load_yaml(path.read_text(encoding="utf-8"), source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise VaeasError(f"{source}: not valid YAML{where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VaeasError(f"{source}: cannot be read ({type(exc).__name__}: {exc})") from None
    if raw is None:
        # An empty file would pass as the defaults with no experiments: "valid, 0 runs".
        raise VaeasError(f"{source}: is empty (expected the sections {', '.join(SECTIONS)} and 'profiles')")
    validate_raw(raw, source)
    return raw


def _load_yaml(text: str, source: str) -> Any:
    """Parse one YAML document, refusing a key that appears twice in one mapping: YAML keeps
    only the last silently, so an edit made to the first copy would change nothing."""
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(node, [], source, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _refuse_duplicate_keys(node: yaml.Node, path: list, source: str, seen_nodes: set) -> None:
    if id(node) in seen_nodes:     # an alias: already walked (and may refer to itself)
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, path + [i], source, seen_nodes)
    elif isinstance(node, yaml.MappingNode):
        first_line: dict[tuple, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":   # '<<: *base' then overriding is fine
                continue
            key = (key_node.tag, key_node.value) if isinstance(key_node, yaml.ScalarNode) else (key_node.tag, id(key_node))
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise VaeasError(f"{source}: duplicate key '{_key_path(path + [key_node.value])}' at line {line} "
                                 f"(first at line {first_line[key]}); YAML would silently keep only the last")
            first_line[key] = line
            _refuse_duplicate_keys(value_node, path + [key_node.value], source, seen_nodes)


def profile_config(raw: dict, profile: str | None = None, overrides: list[str] | None = None,
                   source: str = "params.yaml") -> Config:
    """The validated :class:`Config` of one profile of an already parsed params.yaml: its merged
    sections and their cross-key rules. The experiment grid is checked a level up, by
    :func:`vaeas.experiments.load_config`, which is what every command calls."""
    name = profile if profile is not None else raw.get("profile", "")
    merged = {k: raw.get(k, {}) for k in SECTIONS}
    if name:
        profiles = raw.get("profiles", {}) or {}
        if name not in profiles:
            raise VaeasError(f"{source}: profile '{name}' is not defined under 'profiles' (defined: {', '.join(sorted(profiles)) or 'none'})")
        merged = _deep_merge(merged, {k: v for k, v in profiles[name].items() if k in SECTIONS})
    if overrides:
        merged = apply_overrides(merged, overrides)
    return build_config(merged, profile=name, source=source)
