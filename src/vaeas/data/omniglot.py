"""Omniglot: Lake's official zips (resized to 28 x 28) or Burda's IWAE chardata.mat."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import VaeasError
from .store import _meta
from .verification import VerifiedFile

OMNIGLOT_SIZE = 28
OMNIGLOT_DRAWERS = 20
OMNIGLOT_TRAIN_DRAWERS = 15    # drawers 0-14 train, 15-19 test: 1623 x 15 = 24,345 as in Burda
_PNG_NAME = re.compile(r"(?:.*/)?([^/]+)/([^/]+)/(\d+)_(\d+)\.png$")


def omniglot_zip_ink(path: Path) -> np.ndarray:
    """Ink masks (characters, 20, 105, 105) from an official Omniglot zip.

    Characters are ordered by the global character id in the file names ``XXXX_YY.png`` (the
    order of sorted alphabet and character folders in the official zips, and the order the
    offline npz uses), drawers by ``YY - 1``.
    """
    from PIL import Image

    characters: dict[int, dict[int, np.ndarray]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                match = _PNG_NAME.match(name)
                if match is None:
                    continue
                char_id, drawer = int(match.group(3)), int(match.group(4)) - 1
                with Image.open(io.BytesIO(archive.read(name))) as image:
                    # Mode "1": True is white background; ink is the complement.
                    characters.setdefault(char_id, {})[drawer] = ~np.asarray(image.convert("1"), dtype=bool)
    except (zipfile.BadZipFile, zlib.error, OSError) as exc:
        raise VaeasError(f"{path} is corrupt ({type(exc).__name__}); delete it and rerun 'vaeas fetch omniglot'") from None
    ink = []
    for char_id in sorted(characters):
        drawers = characters[char_id]
        if sorted(drawers) != list(range(OMNIGLOT_DRAWERS)):
            raise VaeasError(f"{path}: character {char_id} has drawers {sorted(d + 1 for d in drawers)}, expected 1-20")
        ink.append(np.stack([drawers[d] for d in range(OMNIGLOT_DRAWERS)]))
    return np.stack(ink)


def omniglot_ink(path: Path) -> np.ndarray:
    """Ink masks (characters, 20, 105, 105) from the official zip or its offline npz."""
    if path.suffix == ".zip":
        return omniglot_zip_ink(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            background = npz["images"]     # True is the white background
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise VaeasError(f"{path} is corrupt ({type(exc).__name__}); delete it and rerun 'vaeas fetch omniglot'") from None
    return ~background


def area_resize(ink: np.ndarray, size: int = OMNIGLOT_SIZE, chunk: int = 4096) -> np.ndarray:
    """Resize (n, H, W) masks to (n, size, size) by area averaging.

    ``interpolate(mode="area")`` is adaptive average pooling: output pixel (a, b) is the mean of
    input rows ``floor(a*H/size) .. ceil((a+1)*H/size) - 1`` (and likewise columns), windows of
    4 or 5 pixels for 105 -> 28 that overlap by one pixel where 3.75 is not whole. A value is
    thus the fraction of its window covered by ink: a grey level in [0, 1], not a binary pixel.
    Chunked to bound memory at float32 105x105.
    """
    import torch

    out = np.empty((len(ink), size, size), dtype=np.float32)
    for start in range(0, len(ink), chunk):
        block = torch.from_numpy(ink[start:start + chunk].astype(np.float32))[:, None]
        out[start:start + chunk] = torch.nn.functional.interpolate(block, size=(size, size), mode="area")[:, 0].numpy()
    return np.clip(out, 0.0, 1.0)


def process_omniglot_lake(files: list[VerifiedFile]) -> tuple[dict[str, np.ndarray], dict]:
    """All 1,623 characters at 28x28; drawers 0-14 train, 15-19 test; label = global character id."""
    images, labels, counts = [], [], []
    for found in files:                               # background first, then evaluation
        resized = area_resize(omniglot_ink(found.path).reshape(-1, 105, 105))
        characters = len(resized) // OMNIGLOT_DRAWERS
        images.append(resized.reshape(characters, OMNIGLOT_DRAWERS, OMNIGLOT_SIZE, OMNIGLOT_SIZE))
        labels.append(sum(counts) + np.arange(characters, dtype=np.int64))
        counts.append(characters)
    images, labels = np.concatenate(images), np.concatenate(labels)
    k = OMNIGLOT_TRAIN_DRAWERS
    splits = {
        "train_x": images[:, :k].reshape(-1, OMNIGLOT_SIZE, OMNIGLOT_SIZE),
        "train_y": np.repeat(labels, k),
        "valid_x": np.zeros((0, OMNIGLOT_SIZE, OMNIGLOT_SIZE), np.float32),
        "valid_y": np.zeros(0, np.int64),
        "test_x": images[:, k:].reshape(-1, OMNIGLOT_SIZE, OMNIGLOT_SIZE),
        "test_y": np.repeat(labels, OMNIGLOT_DRAWERS - k),
    }
    meta = _meta("omniglot", "lake", splits, [f.record() for f in files],
                 characters={"background": counts[0], "evaluation": counts[1]},
                 split_rule="per character: drawers 0-14 train, 15-19 test; no validation split",
                 labels="global character id 0..1622: background characters, then evaluation ones",
                 resize="105x105 ink masks -> 28x28 by area averaging (torch interpolate mode='area', i.e. "
                        "adaptive average pooling); values are ink fractions in [0,1]",
                 note="stand-in for Burda et al.'s chardata.mat (24,345 train / 8,070 test), which this "
                      "source does not reproduce pixel for pixel")
    return splits, meta


def iwae_reshape(data: np.ndarray) -> np.ndarray:
    """IWAE's ``reshape_data`` of a (784, n) chardata array, returned as (n, 28, 28).

    chardata.mat stores each image column-major; IWAE's double reshape transposes every image,
    so ``out[i, a, b] == data[28 * b + a, i]``.
    """
    flat = data.T.reshape((-1, 28, 28)).reshape((-1, 28 * 28), order="F")
    return flat.reshape(-1, 28, 28)


def burda_labels(raw: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, str]:
    """Character labels for chardata's train and test images.

    ``target``/``testtarget`` are one-hot over the 50 *alphabets*; ``targetchar``/
    ``testtargetchar`` number the character within its alphabet. A character is the pair, so
    the label is the pair's rank among all pairs (falling back to the alphabet if absent).
    """
    alphabet = np.argmax(raw["target"], axis=0), np.argmax(raw["testtarget"], axis=0)
    if "targetchar" not in raw or "testtargetchar" not in raw:
        return alphabet[0].astype(np.int64), alphabet[1].astype(np.int64), "alphabet id (argmax of target)"
    char = np.ravel(raw["targetchar"]), np.ravel(raw["testtargetchar"])
    pairs = np.stack([np.concatenate(alphabet), np.concatenate(char)], axis=1).astype(np.int64)
    _, ids = np.unique(pairs, axis=0, return_inverse=True)
    ids = ids.ravel().astype(np.int64)
    n_train = len(alphabet[0])
    return ids[:n_train], ids[n_train:], "character id: rank of (argmax of target, targetchar) over train+test"


def process_omniglot_burda(files: list[VerifiedFile]) -> tuple[dict[str, np.ndarray], dict]:
    """Burda et al.'s 28x28 Omniglot (the paper's data): chardata.mat read as the IWAE code does."""
    import scipy.io

    path = files[0].path
    try:
        raw = scipy.io.loadmat(path)
        train_x, test_x = iwae_reshape(raw["data"]), iwae_reshape(raw["testdata"])
        train_y, test_y, label_rule = burda_labels(raw)
    except (ValueError, KeyError, OSError, TypeError) as exc:
        raise VaeasError(f"{path} is not a readable chardata.mat ({type(exc).__name__}: {exc})") from None
    if train_x.min() < 0 or train_x.max() > 1 or test_x.min() < 0 or test_x.max() > 1:
        raise VaeasError(f"{path}: pixel values outside [0, 1]")
    splits = {
        "train_x": train_x, "train_y": train_y,
        "valid_x": np.zeros((0, 28, 28), np.float32), "valid_y": np.zeros(0, np.int64),
        "test_x": test_x, "test_y": test_y,
    }
    meta = _meta("omniglot", "burda", splits, [f.record() for f in files],
                 split_rule="chardata.mat's own train/test split; no validation split",
                 labels=label_rule, reshape="IWAE reshape_data: out[i, a, b] = data[28*b + a, i]")
    return splits, meta
