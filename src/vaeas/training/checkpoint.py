"""The files training writes, and reading them back: checkpoints, final models, logs.

Every file carries the sha256 of its payload (torch.load checks no CRC, so a flipped bit in a
weight would otherwise load silently); :func:`load_checkpoint` and :func:`load_model` refuse one
that no longer matches. A checkpoint holds one run's model, Adam state, generator state and
history; :func:`unstack_optimizer_state` / :func:`stack_optimizer_states` convert between one
run's Adam state and that of K stacked runs, so the two are interchangeable.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io as _io
import json
from pathlib import Path

import torch

from ..config import Config, build_config
from ..errors import VaeasError
from ..io import atomic_path, payload_sha256
from ..models import VAE
from ..monitoring import MONITOR_COLUMNS
from .objective import LOG_COLUMNS, RunSpec

MODEL_FORMAT = "vaeas-model-v1"
CHECKPOINT_FORMAT = "vaeas-checkpoint-v1"


def run_fingerprint(cfg: Config, spec: RunSpec) -> str:
    """Hash of everything that determines the trained numbers (not device or thread settings)."""
    payload = {"spec": dataclasses.asdict(spec), "model": dataclasses.asdict(cfg.model),
               "labels": dataclasses.asdict(cfg.labels),
               "data": {"omniglot_source": cfg.data.omniglot_source, "train_size": cfg.data.train_size},
               "training": {k: v for k, v in dataclasses.asdict(cfg.training).items()
                            if k not in ("device", "threads", "checkpoint_every")}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def save_atomic(obj, path: Path) -> None:
    # The payload's sha256 travels inside the file: torch.load checks no CRC, so a flipped bit
    # in a weight would otherwise load silently (tests/test_reliability_files.py).
    obj = {**obj, "sha256": payload_sha256(obj)}
    buffer = _io.BytesIO()
    torch.save(obj, buffer)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(buffer.getvalue())
    except OSError as exc:
        raise _unwritable(exc, Path(path)) from None


def _unwritable(exc: OSError, path: Path) -> VaeasError:
    """A failed write (a full disk): name the file, and the checkpoint a rerun resumes from —
    the write was atomic, so the previous checkpoint is still whole."""
    ckpt = path if path.name.endswith(".ckpt") else path.with_name(path.name + ".ckpt")
    kept = (f"the last good checkpoint {ckpt} is kept; rerun the same command to resume from it" if ckpt.exists()
            else "no checkpoint was written yet; rerun the same command")
    return VaeasError(f"cannot write {path}: {exc.strerror or exc}; {kept}")


def _check_sha256(blob: dict, path: Path, what: str, remedy: str) -> None:
    """Refuse a file whose content no longer matches the sha256 recorded when it was saved."""
    if blob.get("sha256") != payload_sha256({k: v for k, v in blob.items() if k != "sha256"}):
        raise VaeasError(f"{what} {path} does not match the sha256 recorded when it was saved (altered or damaged); {remedy}")


def load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or corrupt file is never used
        raise VaeasError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}); delete it to start over") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise VaeasError(f"checkpoint {path} is not a vaeas checkpoint; delete it to start over")
    _check_sha256(ckpt, path, "checkpoint", "delete it to start over")
    if ckpt.get("fingerprint") != fingerprint:
        print(f"vaeas: checkpoint {path} belongs to another configuration; starting from scratch")
        return None
    return ckpt


def write_log_csv(history: list[dict], path: Path) -> None:
    """The per-epoch log; with training-time monitoring on, the ``mon_*`` columns follow (empty
    on the epochs that were not monitored)."""
    monitored = any(MONITOR_COLUMNS[0] in row for row in history)
    columns = LOG_COLUMNS + (MONITOR_COLUMNS if monitored else ())
    try:
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in history:
                writer.writerow({k: row.get(k, "") for k in columns})
    except OSError as exc:
        raise VaeasError(f"cannot write {path}: {exc.strerror or exc}; rerun the same command "
                         f"(training resumes from its last checkpoint)") from None


def unstack_optimizer_state(state: dict, k: int) -> dict:
    """Run k's share of the stacked Adam's state: the state_dict a lone run's Adam would have
    (StackedVAE orders its parameters as VAE does, so the parameter indices agree)."""
    return {"state": {i: {name: v if name == "step" else v[k].clone() for name, v in st.items()}
                      for i, st in state["state"].items()},
            "param_groups": [dict(g) for g in state["param_groups"]]}


def stack_optimizer_states(states: list[dict]) -> dict:
    first = states[0]
    return {"state": {i: {name: v if name == "step" else torch.stack([s["state"][i][name] for s in states])
                          for name, v in st.items()} for i, st in first["state"].items()},
            "param_groups": first["param_groups"]}


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[VAE, dict]:
    """Load a trained model file written by :func:`vaeas.training.train`; returns (model, metadata)."""
    path = Path(path)
    if not path.is_file():
        raise VaeasError(f"model file {path} not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise VaeasError(f"model file {path} is corrupt or truncated ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != MODEL_FORMAT:
        raise VaeasError(f"model file {path} is not a vaeas model")
    _check_sha256(blob, path, "model file", "delete it and rerun 'vaeas train'")
    cfg = build_config(blob["config"], profile=blob["config"].get("profile", ""), source=str(path))
    labels = blob["labels"]
    model = VAE(blob["data_dim"], cfg.model, **({} if labels is None else labels))
    model.load_state_dict(blob["model"])
    return model.to(device).eval(), {**blob, "cfg": cfg, "spec": RunSpec(**blob["spec"])}
