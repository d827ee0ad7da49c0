"""The files training writes, and reading them back: checkpoints, final models, logs.

Every file carries the sha256 of its payload (torch.load checks no CRC, so a flipped bit in a
weight would otherwise load silently); :func:`load_checkpoint` and :func:`load_model` refuse one
that no longer matches. A checkpoint holds one run's model, Adam state, generator state, history
and the record of what decided it (:func:`run_record`), against which a resumed run is checked.
"""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path

import torch

from ..config import Config, build_config
from ..errors import VaeasError
from ..io import atomic_path, payload_sha256
from ..models import VAE
from ..monitoring import MONITOR_COLUMNS
from ..objectives import LOG_COLUMNS
from ..run import RunSpec
from ..staleness import train_group, why_stale

MODEL_FORMAT = "vaeas-model-v1"
CHECKPOINT_FORMAT = "vaeas-checkpoint-v1"


def run_record(cfg: Config, spec: RunSpec) -> dict:
    """What decided this run's numbers, as a checkpoint and a model file record it: the spec and
    the train group of :mod:`vaeas.staleness` (not device, threads or checkpoint_every)."""
    return {"spec": spec.to_dict(), "train": train_group(cfg, spec)}


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


def load_checkpoint(path: Path, cfg: Config, spec: RunSpec) -> dict | None:
    """The checkpoint at ``path`` when it belongs to this run (:func:`vaeas.staleness.why_stale`
    on its record), None when there is none or it belongs to another configuration."""
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or corrupt file is never used
        raise VaeasError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}); delete it to start over") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise VaeasError(f"checkpoint {path} is not a vaeas checkpoint; delete it to start over")
    _check_sha256(ckpt, path, "checkpoint", "delete it to start over")
    record = ckpt.get("record")
    why = ("it was written by an earlier vaeas" if record is None else
           why_stale(RunSpec.from_dict(record["spec"]), record["train"], spec, train_group(cfg, spec), cfg.labels.scheme))
    if why:
        print(f"vaeas: checkpoint {path} belongs to another configuration ({why}); starting from scratch")
        return None
    return ckpt


#: The column of the validation IW-NLL (``training.validate_every``; empty on other epochs).
VALID_COLUMN = "valid_nll"


def write_log_csv(history: list[dict], path: Path) -> None:
    """The per-epoch log; with training-time monitoring on, the ``mon_*`` columns follow, and with
    validation on, ``valid_nll`` (each empty on the epochs it was not computed)."""
    monitored = any(MONITOR_COLUMNS[0] in row for row in history)
    validated = any(VALID_COLUMN in row for row in history)
    columns = LOG_COLUMNS + (MONITOR_COLUMNS if monitored else ()) + ((VALID_COLUMN,) if validated else ())
    try:
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in history:
                writer.writerow({k: row.get(k, "") for k in columns})
    except OSError as exc:
        raise VaeasError(f"cannot write {path}: {exc.strerror or exc}; rerun the same command "
                         f"(training resumes from its last checkpoint)") from None


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
    return model.to(device).eval(), {**blob, "cfg": cfg, "spec": RunSpec.from_dict(blob["spec"], where=f"{path}: spec.{{}}")}
