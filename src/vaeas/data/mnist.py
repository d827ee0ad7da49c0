"""MNIST: the official idx files, the paper's first 55,000 training images."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import VaeasError
from .catalog import TRAIN_SIZES
from .store import _meta
from .verification import VerifiedFile

MNIST_TRAIN = TRAIN_SIZES["mnist"]   # the paper's training set: the first 55,000 official training images


def read_idx(path: Path) -> np.ndarray:
    """The array in a gzipped IDX file (unsigned bytes only, as MNIST uses)."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise VaeasError(f"{path} is not a readable gzip file ({type(exc).__name__}); "
                         f"delete it and rerun 'vaeas fetch mnist'") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise VaeasError(f"{path} is not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise VaeasError(f"{path} holds {body.size} values, its header says {shape}")
    return body.reshape(shape)


def process_mnist(files: list[VerifiedFile]) -> tuple[dict[str, np.ndarray], dict]:
    """Train = first 55,000 official training images, valid = last 5,000, test = the 10,000."""
    by_name = {f.path.name: read_idx(f.path) for f in files}
    train_x = by_name["train-images-idx3-ubyte.gz"].astype(np.float32) / 255.0
    train_y = by_name["train-labels-idx1-ubyte.gz"].astype(np.int64)
    test_x = by_name["t10k-images-idx3-ubyte.gz"].astype(np.float32) / 255.0
    test_y = by_name["t10k-labels-idx1-ubyte.gz"].astype(np.int64)
    splits = {
        "train_x": train_x[:MNIST_TRAIN], "train_y": train_y[:MNIST_TRAIN],
        "valid_x": train_x[MNIST_TRAIN:], "valid_y": train_y[MNIST_TRAIN:],
        "test_x": test_x, "test_y": test_y,
    }
    meta = _meta("mnist", "MNIST IDX files (LeCun et al.)", splits, [f.record() for f in files],
                 split_rule="train: official training images 0-54999; valid: 55000-59999; test: official test set",
                 intensities="grey level / 255")
    return splits, meta
