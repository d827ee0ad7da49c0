"""The canonical processed file ``{root}/processed/{dataset}.npz``: written byte-reproducibly,
read back checked, and loaded as a :class:`Dataset` of flattened torch tensors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from ..config import DataConfig
from ..errors import VaeasError
from ..io import atomic_path
from .catalog import check_dataset, processed_path

if TYPE_CHECKING:
    import torch

ARRAY_KEYS = ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y")
# Zip members get a fixed timestamp so the processed file's bytes depend only on its content.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
BINARIZATION_NOTE = (
    "stored as intensities in [0,1]; binarization happens in training: dynamic Bernoulli "
    "resampling each epoch for training, a fixed seeded draw for evaluation"
)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_canonical_npz(path: Path, members: Mapping[str, np.ndarray]) -> None:
    """Write an ``.npz`` whose bytes depend only on the arrays (fixed dates, order, level).

    ``numpy.savez`` stamps members with the current time, so two identical runs would differ.
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name, array in members.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, _npy_bytes(array), compresslevel=6)


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over the six split arrays: each one's name, dtype, shape and bytes, in order.

    Stored in ``meta["arrays_sha256"]`` and checked by :func:`read_processed`: the zip CRCs catch
    damaged bytes, this catches a file rewritten with other values (still a valid npz)."""
    digest = hashlib.sha256()
    for key in ARRAY_KEYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def write_processed(path: Path, splits: Mapping[str, np.ndarray], meta: dict) -> None:
    """Store the six split arrays (x as little-endian float32, y as int64) and ``meta`` as JSON,
    with the arrays' sha256 in ``meta["arrays_sha256"]``."""
    members = {}
    for key in ARRAY_KEYS:
        dtype = "<f4" if key.endswith("_x") else "<i8"
        members[key] = np.ascontiguousarray(splits[key], dtype=dtype)
    meta = {**meta, "arrays_sha256": arrays_sha256(members)}
    members["meta"] = np.array(json.dumps(meta, sort_keys=True))
    write_canonical_npz(path, members)


def read_processed(path: Path, dataset: str) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and meta of a processed file; one-line error if it is unreadable or incomplete."""
    rerun = f"rerun 'vaeas process {dataset}'"
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in (*ARRAY_KEYS, "meta") if k not in npz.files]
            if missing:
                raise VaeasError(f"{path} is incomplete (missing {', '.join(missing)}); {rerun}")
            # Reading every member checks every CRC, so truncation inside a member is caught here.
            arrays = {key: npz[key] for key in ARRAY_KEYS}
            meta = json.loads(str(npz["meta"]))
    except VaeasError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise VaeasError(f"{path} is corrupt or truncated ({type(exc).__name__}); {rerun}") from None
    recorded = meta.get("arrays_sha256") if isinstance(meta, dict) else None
    if recorded is None:
        raise VaeasError(f"{path} records no arrays_sha256 (written by an older vaeas); {rerun}")
    for key in ARRAY_KEYS:
        want = "<f4" if key.endswith("_x") else "<i8"
        if arrays[key].dtype.str != want:
            raise VaeasError(f"{path}: {key} is {arrays[key].dtype.str}, expected {want}; {rerun}")
    actual = arrays_sha256(arrays)
    if actual != recorded:
        raise VaeasError(f"{path} was altered: its arrays hash to sha256 {actual}, its meta records {recorded}; {rerun}")
    for split in ("train", "valid", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise VaeasError(f"{path} has inconsistent {split} arrays (x {x.shape}, y {y.shape}); {rerun}")
        # Intensities feed Bernoulli draws: NaN or values outside [0, 1] are refused, never trained on.
        if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
            bad = int(np.count_nonzero(~(np.isfinite(x) & (x >= 0.0) & (x <= 1.0))))
            raise VaeasError(f"{path}: {split}_x has {bad} values that are NaN, infinite or outside [0, 1]; {rerun}")
        if y.size and y.min() < 0:
            raise VaeasError(f"{path}: {split}_y has negative labels; {rerun}")
    return arrays, meta


def summary(dataset: str, path: Path, splits: Mapping[str, np.ndarray]) -> str:
    """Split sizes, and train class counts where the labels are classes (MNIST, digits)."""
    sizes = ", ".join(f"{s} {len(splits[f'{s}_y'])}" for s in ("train", "valid", "test"))
    height, width = splits["train_x"].shape[1:]
    text = f"{dataset}: wrote {path} ({sizes}; {height}x{width})"
    if dataset in ("mnist", "digits"):
        counts = np.bincount(splits["train_y"], minlength=10)
        text += "\n" + f"{dataset}: train class counts " + " ".join(f"{c}:{n}" for c, n in enumerate(counts))
    return text


def _meta(dataset: str, source: str, splits: Mapping[str, np.ndarray], sources: list[dict], **notes) -> dict:
    return {
        "dataset": dataset,
        "source": source,
        "image_shape": list(splits["train_x"].shape[1:]),
        "splits": {s: int(len(splits[f"{s}_y"])) for s in ("train", "valid", "test")},
        "sources": sources,
        "binarization": BINARIZATION_NOTE,
        **notes,
    }


@dataclass(frozen=True)
class Dataset:
    """A processed data set: images flattened to (n, H·W) float32 in [0, 1], int64 labels."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    valid_x: torch.Tensor
    valid_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    image_shape: tuple[int, int]
    meta: dict


def load(dataset: str, cfg: DataConfig | str | os.PathLike) -> Dataset:
    """Read ``{root}/processed/{dataset}.npz`` (``cfg`` may be the root directory itself)."""
    import torch

    check_dataset(dataset)
    root = cfg.root if isinstance(cfg, DataConfig) else cfg
    path = processed_path(dataset, root)
    if not path.is_file():
        raise VaeasError(f"{path} not found; run 'vaeas process {dataset}' first")
    arrays, meta = read_processed(path, dataset)
    image_shape = tuple(int(s) for s in arrays["train_x"].shape[1:])
    pixels = int(np.prod(image_shape))
    size = cfg.train_size if isinstance(cfg, DataConfig) else 0
    if size:
        arrays, meta = train_subset(arrays, meta, size, path)
    tensors = {}
    for key, value in arrays.items():
        if key.endswith("_x"):
            value = value.reshape(len(value), pixels)   # explicit size: a split may be empty
        tensors[key] = torch.from_numpy(value)
    return Dataset(name=dataset, image_shape=image_shape, meta=meta, **tensors)


#: Seed of the ``data.train_size`` subset: fixed, so every run, evaluation and figure of every
#: profile that asks for n images gets the same n (the first n of one fixed permutation).
SUBSET_SEED = 12345


def rooted(cfg: DataConfig, root: str | os.PathLike | None) -> DataConfig:
    """``cfg`` with its data root replaced by ``root`` (when given): a command's ``--data-root``
    keeps every other data setting, the training subset included."""
    return cfg if not root else dataclasses.replace(cfg, root=str(root))


def train_subset(arrays: dict, meta: dict, size: int, path: Path) -> tuple[dict, dict]:
    """The training split cut to ``size`` images: the first ``size`` of a permutation seeded by
    :data:`SUBSET_SEED`, kept in their original order (so subsets are nested: n < m ⊂).

    A data set without a validation split (Omniglot) gets the training images the subset leaves
    out as its validation split, in the permutation's order: held out, never seen in training."""
    n = len(arrays["train_x"])
    if size > n:
        raise VaeasError(f"data.train_size ({size}) exceeds the {n} training images of {path}")
    order = np.random.default_rng(SUBSET_SEED).permutation(n)
    keep = np.sort(order[:size])
    subset = {"size": size, "of": n, "seed": SUBSET_SEED}
    out = {**arrays, "train_x": arrays["train_x"][keep], "train_y": arrays["train_y"][keep]}
    if len(arrays["valid_x"]) == 0 and size < n:
        rest = order[size:]
        out.update(valid_x=arrays["train_x"][rest], valid_y=arrays["train_y"][rest])
        subset["valid"] = "the training images the subset leaves out, in the seeded permutation's order"
    return out, {**meta, "train_subset": subset}
