"""From verified raw files to the canonical processed file: :func:`process`."""

from __future__ import annotations

from pathlib import Path

from ..config import DataConfig
from ..errors import VaeasError
from .catalog import check_dataset, processed_path, raw_alternatives, raw_dir
from .digits import process_digits
from .mnist import process_mnist
from .omniglot import process_omniglot_burda, process_omniglot_lake
from .store import summary, write_processed
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
    else:
        splits, meta = process_digits()
    path = processed_path(dataset, cfg.root)
    write_processed(path, splits, meta)
    print(summary(dataset, path, splits))
    return path
