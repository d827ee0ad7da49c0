"""From verified raw files to the canonical processed file: :func:`process`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..config import DataConfig
from ..errors import VaeasError
from .catalog import check_dataset, processed_path, raw_alternatives, raw_dir
from .digits import process_digits
from .mnist import process_mnist
from .omniglot import process_omniglot_burda, process_omniglot_lake
from .omniglot_mini import process_omniglot_mini
from ..io import sha256_file, write_json
from .store import read_processed, summary, write_processed
from .verification import VerifiedFile, _warn_if_variant, read_lock, verify


def verified_raw_files(dataset: str, cfg: DataConfig) -> list[VerifiedFile]:
    """The data set's raw files as already fetched, re-verified (for :func:`process`)."""
    folder = raw_dir(dataset, cfg)
    lock = read_lock(cfg.lock_file)
    found = []
    for alternatives in raw_alternatives(dataset, cfg):
        for spec in alternatives:
            if (folder / spec.name).is_file():
                checked = verify(spec, folder / spec.name, lock, source=str(folder / spec.name))
                if checked.pin is not None:
                    raise VaeasError(f"{checked.path} has no pin in {cfg.lock_file}; rerun 'vaeas fetch {dataset}'")
                _warn_if_variant(checked)
                found.append(checked)
                break
        else:
            names = " or ".join(str(folder / spec.name) for spec in alternatives)
            raise VaeasError(f"missing raw file {names}; run 'vaeas fetch {dataset}' first")
    return found


def process(dataset: str, cfg: DataConfig) -> Path:
    """Build ``{root}/processed/{dataset}.npz`` from the verified raw files; return its path."""
    check_dataset(dataset)
    if dataset == "mnist":
        splits, meta = process_mnist(verified_raw_files(dataset, cfg))
    elif dataset == "omniglot" and cfg.omniglot_source == "burda":
        splits, meta = process_omniglot_burda(verified_raw_files(dataset, cfg))
    elif dataset == "omniglot":
        splits, meta = process_omniglot_lake(verified_raw_files(dataset, cfg))
    elif dataset == "omniglot-mini":
        splits, meta = process_omniglot_mini()
    else:
        splits, meta = process_digits()
    path = processed_path(dataset, cfg.root)
    write_processed(path, splits, meta)
    write_stamp(path)
    print(summary(dataset, path, splits))
    return path


def stamp_path(path: Path) -> Path:
    """``<file>.sha256``: the processed file's sha256 (with its size and mtime, to skip rehashing)."""
    return path.with_name(path.name + ".sha256")


def write_stamp(path: Path) -> str:
    st = path.stat()
    digest = sha256_file(path)
    write_json(stamp_path(path), {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return digest


def _matches_stamp(path: Path) -> bool:
    """Does the processed file still hold the bytes recorded when it was built? (Rehashed only
    when its size or mtime moved; a file touched with the same bytes gets a new stamp.)"""
    try:
        rec = json.loads(stamp_path(path).read_text())
        st = path.stat()
    except (OSError, ValueError):
        return False
    if (st.st_size, st.st_mtime_ns) == (rec.get("size"), rec.get("mtime_ns")):
        return True
    if sha256_file(path) != rec.get("sha256"):
        return False
    write_stamp(path)
    return True


def repair_processed(dataset: str, cfg: DataConfig) -> None:
    """Before any job is scheduled (the Snakefile calls this when it is read): a processed file
    built before that is now missing or no longer matches its recorded sha256 is rebuilt here,
    byte for byte, so that no training is rescheduled for it and none starts on damaged data.
    A file with no stamp is checked by reading it (its arrays' sha256) and stamped."""
    path = processed_path(dataset, cfg.root)
    if stamp_path(path).is_file():
        if path.is_file() and _matches_stamp(path):
            return
        why = "does not match its recorded sha256" if path.is_file() else "is missing"
    elif path.is_file():
        try:
            read_processed(path, dataset)
            write_stamp(path)
            return
        except VaeasError as exc:
            why = f"is damaged ({exc})"
    else:
        return                           # never built: the pipeline's process job builds it
    print(f"vaeas: {path} {why}; rebuilding it before any job", file=sys.stderr)
    try:
        process(dataset, cfg)
    except VaeasError as exc:            # e.g. raw files not fetched: the pipeline's jobs will say so
        path.unlink(missing_ok=True)
        print(f"vaeas: cannot rebuild {path} now ({exc})", file=sys.stderr)
