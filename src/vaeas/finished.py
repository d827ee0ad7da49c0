"""Finished models on disk, and whether they still belong to their run's configuration.

Snakemake reruns a job when the ``params`` it recorded for an output change, but it records
them only for outputs it made itself: a ``model.pt`` trained by hand (``vaeas train --run …``),
by DVC, or fetched with ``dvc pull`` has no record there, so Snakemake took it as finished
whatever configuration it was trained with. :func:`stale_models` closes that hole without
writing anything: it compares every model of the profile with its run's configuration (the
record kept beside the model, else the configuration stored inside it) and names the ones
trained with another. :mod:`vaeas.preflight` has Snakemake run their jobs again, and only a
real run, once Snakemake holds its lock, renames them ``model.pt.stale`` (:func:`set_aside`;
nothing is deleted).

:func:`keep` and :func:`restore` give a finished model a second name (a hard link,
``model.pt.kept``, with the record it was trained with), which neither tool deletes before a rerun:
a rerun that then fails loses no finished model, and it comes back when its configuration does.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import contract, staleness
from . import experiments as exps
from .config import Config
from .errors import VaeasError
from .io import write_text
from .run import RunSpec

KEPT, RECORD, STALE = ".kept", ".kept.json", ".stale"


def training_code() -> str:
    """The digest of the training code (:func:`vaeas.pipeline.code_digest`) of this checkout, or
    the package's path when vaeas runs from an installed copy without its source tree."""
    from .pipeline import code_digest

    package = Path(__file__).resolve().parent
    root = package.parent.parent
    return code_digest("train", root=root) if (root / "src" / "vaeas").is_dir() else str(package)


def record(config: str | os.PathLike | dict, code: str | None = None) -> str:
    """What a kept model must match to be restored: the run's train group and the training code
    (``config`` a config.json's path or its parsed content)."""
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
    content = json.loads(record(config))
    content["trained_on"] = trained_on()           # provenance for results/<profile>/seeds/, never compared
    write_text(f"{out}{RECORD}", json.dumps(content, sort_keys=True))


def trained_on() -> dict:
    """The machine a model was just trained on: CPU model, torch version, torch's thread count."""
    import torch

    from . import cpu_model

    return {"cpu": cpu_model(), "torch": torch.__version__, "threads": torch.get_num_threads()}


def kept_record(model: str | os.PathLike) -> dict:
    """The record kept beside a finished model ({} when there is none or it is unreadable)."""
    try:
        return json.loads(Path(f"{model}{RECORD}").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def restore(config: str | os.PathLike, out: str | os.PathLike) -> bool:
    """Put back the kept model when it was trained with exactly this configuration and code
    (its log is rebuilt from the history inside it)."""
    from .training import load_model, write_log_csv

    kept, rec = Path(f"{out}{KEPT}"), Path(f"{out}{RECORD}")
    if Path(out).exists() or not kept.is_file() or not rec.is_file() or _record_why(rec.read_text(), config, training_code()):
        return False
    try:
        _, meta = load_model(kept)
    except VaeasError:
        return False
    write_log_csv(meta["history"], Path(out).with_name(Path(out).stem + ".log.csv"))
    os.link(kept, out)
    return True


def _record_why(recorded_text: str, config: str | os.PathLike | dict, code: str) -> str | None:
    """Why a kept record no longer matches the run of ``config`` (None when it does): the one
    staleness rule (:func:`vaeas.staleness.why_stale` on the spec and the train group), then the
    training code."""
    content = config if isinstance(config, dict) else contract.read(config)
    try:
        recorded = json.loads(recorded_text)
        groups = recorded["train"]
        recorded_spec = RunSpec.from_dict(groups["run"])
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, VaeasError):
        return "its record is not readable"
    wanted = RunSpec.from_dict(content["run"])
    scheme = contract.labels_scheme(content)
    why = staleness.why_stale(recorded_spec, groups.get("train") or {}, wanted, content["train"], scheme)
    if why:
        return why
    if recorded.get("code") != code:
        return f"the training code: {recorded.get('code')!r} -> {code!r}"
    return None


def stale(config: str | os.PathLike | dict, model: str | os.PathLike, code: str | None = None) -> str | None:
    """Why ``model`` does not belong to the run of ``config`` (a config.json's path or content;
    None when it does). Reads only.

    A model with its kept record (the same file under both names) is compared by the record:
    the train group of config.json and the training code. Any other model (trained by hand,
    or fetched) by the configuration stored inside it, as ``vaeas evaluate`` checks it."""
    kept, rec = Path(f"{model}{KEPT}"), Path(f"{model}{RECORD}")
    if kept.is_file() and rec.is_file() and os.path.samefile(model, kept):
        return _record_why(rec.read_text(), config, training_code() if code is None else code)
    from .training import load_model

    try:
        _, meta = load_model(model)
    except VaeasError as exc:
        return str(exc)
    return contract.mismatch(config, meta)


def stale_models(cfg: Config, configs: dict[str, str]) -> dict[str, str]:
    """Every model of the profile trained with another configuration than its run's, as
    ``{model path: the first key that differs}``; ``configs`` are the config.json texts the run
    will have (:func:`vaeas.contract.run_configs`), compared in memory. Writes nothing."""
    found, code = {}, None
    for run in exps.distinct(exps.runs(cfg)):
        for seed in exps.seeds(cfg):
            model = Path(run.model_path(cfg.profile, seed))
            if not model.is_file():
                continue
            code = training_code() if code is None else code
            why = stale(json.loads(configs[contract.config_path(cfg, run, seed)]), model, code)
            if why:
                found[str(model)] = why
    return found


def set_aside(model: str | os.PathLike, why: str) -> str:
    """Rename a stale model ``model.pt.stale`` (replacing an older one) so that it is trained
    again; returns the line that says so. When ``model.pt.stale`` is already another name of the
    same file (a restored model set aside before), the model's own name is removed instead:
    renaming a file onto itself does nothing."""
    model, target = Path(model), Path(f"{model}{STALE}")
    if target.exists() and os.path.samefile(model, target):
        model.unlink()
    else:
        os.replace(model, target)
    return f"vaeas: {model} was trained with another configuration ({why}): moved to {target}; it will be trained again"
