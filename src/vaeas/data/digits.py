"""The sklearn digits, embedded demo data (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import sha256_file
from .catalog import TRAIN_SIZES
from .store import _meta

DIGITS_SPLIT = (TRAIN_SIZES["digits"], 100, 450)   # train, valid, test, by index


def _digits_source() -> dict:
    from importlib import resources

    import sklearn

    csv = resources.files("sklearn.datasets.data").joinpath("digits.csv.gz")
    return {"file": f"sklearn/datasets/data/digits.csv.gz (scikit-learn {sklearn.__version__})",
            "sha256": sha256_file(Path(str(csv))), "official": True,
            "note": "embedded in scikit-learn (UCI optical recognition of handwritten digits, test part)"}


def process_digits() -> tuple[dict[str, np.ndarray], dict]:
    """sklearn's 1,797 8x8 digits, values 0-16 divided by 16; split by index 1247/100/450."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    a, b = DIGITS_SPLIT[0], DIGITS_SPLIT[0] + DIGITS_SPLIT[1]
    splits = {"train_x": x[:a], "train_y": y[:a], "valid_x": x[a:b], "valid_y": y[a:b],
              "test_x": x[b:], "test_y": y[b:]}
    meta = _meta("digits", "sklearn.datasets.load_digits", splits, [_digits_source()],
                 split_rule="by index: 0-1246 train, 1247-1346 valid, 1347-1796 test",
                 intensities="value / 16")
    return splits, meta
