"""Finished models on disk, and whether they still belong to their run's configuration.

Snakemake reruns a job when the ``params`` it recorded for an output change, but it records
them only for outputs it made itself: a ``model.pt`` trained by hand (``vaeas train --run …``),
by DVC, or fetched with ``dvc pull`` has no record there, so Snakemake took it as finished
whatever configuration it was trained with. :func:`set_aside_stale` closes that hole: when the
Snakefile is parsed, every model of the profile is compared with its run's config.json (the
record kept beside it, else the configuration stored inside it), and one trained with another
configuration is renamed ``model.pt.stale`` (nothing is deleted) so that the run is trained again.

:func:`keep` and :func:`restore` give a finished model a second name (a hard link,
``model.pt.kept``, with the record it was trained with), which neither tool deletes before a rerun:
a rerun that then fails loses no finished model, and it comes back when its configuration does.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import contract
from . import experiments as exps
from .config import Config
from .errors import VaeasError
from .io import write_text

KEPT, RECORD, STALE = ".kept", ".kept.json", ".stale"


def training_code() -> str:
    """The digest of the training code (:func:`vaeas.pipeline.code_digest`) of this checkout, or
    the package's path when vaeas runs from an installed copy without its source tree."""
    from .pipeline import code_digest

    package = Path(__file__).resolve().parent
    root = package.parent.parent
    return code_digest("train", root=root) if (root / "src" / "vaeas").is_dir() else str(package)


def record(config: str | os.PathLike, code: str | None = None) -> str:
    """What a kept model must match to be restored: the run's train group and the training code."""
    return json.dumps({"train": contract.part(config, contract.TRAIN_KEYS),
                       "code": training_code() if code is None else code}, sort_keys=True)


def keep(config: str | os.PathLike, out: str | os.PathLike) -> None:
    """A second name (hard link) for a finished model, and the record it was trained with."""
    kept = Path(f"{out}{KEPT}")
    kept.unlink(missing_ok=True)
    try:
        os.link(out, kept)
    except OSError:
        shutil.copyfile(out, kept)
    write_text(f"{out}{RECORD}", record(config))


def restore(config: str | os.PathLike, out: str | os.PathLike) -> bool:
    """Put back the kept model when it was trained with exactly this configuration and code
    (its log is rebuilt from the history inside it)."""
    from .training import load_model, write_log_csv

    kept, rec = Path(f"{out}{KEPT}"), Path(f"{out}{RECORD}")
    if Path(out).exists() or not kept.is_file() or not rec.is_file() or rec.read_text() != record(config):
        return False
    try:
        _, meta = load_model(kept)
    except VaeasError:
        return False
    write_log_csv(meta["history"], Path(out).with_name(Path(out).stem + ".log.csv"))
    os.link(kept, out)
    return True


def _first_difference(old, new, key: str = "") -> str | None:
    """The first dotted key at which two JSON-like values differ, as ``key: old -> new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            found = _first_difference(old.get(k, "(absent)"), new.get(k, "(absent)"), f"{key}.{k}" if key else k)
            if found:
                return found
        return None
    return None if old == new else f"{key}: {old!r} -> {new!r}"


def stale(config: str | os.PathLike, model: str | os.PathLike, code: str | None = None) -> str | None:
    """Why ``model`` does not belong to the run of ``config`` (None when it does).

    A model with its kept record (the same file under both names) is compared by the record:
    the train group of config.json and the training code. Any other model (trained by hand,
    or fetched) by the configuration stored inside it, as ``vaeas evaluate`` checks it."""
    kept, rec = Path(f"{model}{KEPT}"), Path(f"{model}{RECORD}")
    if kept.is_file() and rec.is_file() and os.path.samefile(model, kept):
        recorded, now = rec.read_text(), record(config, code)
        if recorded == now:
            return None
        try:
            return _first_difference(json.loads(recorded), json.loads(now)) or "its record differs"
        except json.JSONDecodeError:
            return f"its record {rec} is not readable"
    from .training import load_model

    try:
        _, meta = load_model(model)
    except VaeasError as exc:
        return str(exc)
    return contract.mismatch(config, meta)


def set_aside_stale(cfg: Config) -> list[str]:
    """Rename every model of the profile trained with another configuration than its run's
    config.json to ``model.pt.stale`` (replacing an older one), so that it is trained again;
    returns one line per model set aside, naming the first key that differs."""
    lines, code = [], None
    for run in exps.distinct(exps.runs(cfg)):
        for seed in exps.seeds(cfg):
            model = Path(run.model_path(cfg.profile, seed))
            if not model.is_file():
                continue
            code = training_code() if code is None else code
            why = stale(contract.config_path(cfg, run, seed), model, code)
            if why:
                os.replace(model, f"{model}{STALE}")
                lines.append(f"vaeas: {model} was trained with another configuration ({why}): "
                             f"moved to {model}{STALE}; it will be trained again")
    return lines
