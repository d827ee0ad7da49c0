"""Tests of vaeas.data.omniglot: Lake's zips (via the offline mirror's npz conversion) and
Burda et al.'s chardata.mat (a synthetic stand-in built here).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from vaeas import data
from vaeas.config import DataConfig
from vaeas.errors import VaeasError
from vaeas.io import sha256_file

from conftest import config, files_under, message, serve_directory
from tolerance import sum_bound


# --- Omniglot --------------------------------------------------------------------------------

def test_omniglot_lake_from_mirror(omniglot_root):
    ds = data.load("omniglot", str(omniglot_root))
    assert ds.image_shape == (28, 28)
    assert ds.train_x.shape == (24_345, 784) and ds.test_x.shape == (8_115, 784)
    assert ds.valid_x.shape == (0, 784) and ds.valid_y.shape == (0,)
    assert float(ds.train_x.min()) >= 0.0 and float(ds.train_x.max()) <= 1.0
    assert torch.bincount(ds.train_y).tolist() == [15] * 1623
    assert torch.bincount(ds.test_y).tolist() == [5] * 1623
    assert ds.meta["characters"] == {"background": 964, "evaluation": 659}
    assert all(s["official"] is False for s in ds.meta["sources"])
    # Ink is sparse: a mean well below one half says the background was inverted away.
    assert 0.01 < float(ds.train_x.mean()) < 0.2


def test_omniglot_pixels_are_ink_fractions_of_their_window(omniglot_root, shared_data):
    with np.load(shared_data / "omniglot" / "images_background.npz") as npz:
        ink = ~npz["images"][0, :15]            # character 0, training drawers
    train_x = data.load("omniglot", str(omniglot_root)).train_x[:15].reshape(15, 28, 28).numpy()
    # interpolate(mode="area") = adaptive average pooling: window floor(a*105/28)..ceil((a+1)*105/28).
    for a, b in [(0, 0), (3, 7), (13, 14), (27, 27), (10, 21)]:
        rows = slice(a * 105 // 28, -(-(a + 1) * 105 // 28))
        cols = slice(b * 105 // 28, -(-(b + 1) * 105 // 28))
        # A float32 mean of ≤ 25 values in [0, 1]: within γ_26 (tests/tolerance.py), 1.6e-6; 1e-6
        # was inside that bound. Distinct window means differ by ≥ 1/400, far above it.
        np.testing.assert_allclose(train_x[:, a, b], ink[:, rows, cols].mean(axis=(1, 2)), rtol=0,
                                   atol=sum_bound(26, 1.0, torch.float32))


def test_omniglot_processing_is_byte_identical(omniglot_root, mirror_url):
    path = omniglot_root / "processed" / "omniglot.npz"
    before = sha256_file(path)
    data.process("omniglot", config(omniglot_root, mirror_url))
    assert sha256_file(path) == before


def _png(mask_white: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask_white).save(buffer, format="PNG")
    return buffer.getvalue()


def test_lake_zip_layout_matches_npz(shared_data, tmp_path):
    with np.load(shared_data / "omniglot" / "images_background.npz") as npz:
        white = npz["images"][:3]
    path = tmp_path / "images_background.zip"
    members = [(f"images_background/Alpha_{c // 2}/character{c + 1:02d}/{c + 1:04d}_{d + 1:02d}.png", c, d)
               for c in range(3) for d in range(20)]
    with zipfile.ZipFile(path, "w") as archive:
        for name, c, d in reversed(members):    # member order must not matter
            archive.writestr(name, _png(white[c, d]))
    np.testing.assert_array_equal(data.omniglot_zip_ink(path), ~white)


def test_mirror_zip_is_preferred_and_md5_checked(tmp_path):
    mirror = tmp_path / "mirror" / "omniglot"
    mirror.mkdir(parents=True)
    fake = mirror / "images_background.zip"
    fake.write_bytes(b"PK not the official zip")
    with serve_directory(tmp_path / "mirror") as url, pytest.raises(VaeasError) as excinfo:
        data.fetch("omniglot", config(tmp_path / "root", url), progress=False)
    assert message(excinfo) == (
        "checksum mismatch for images_background.zip: expected md5 68d2efa1b9178cc56df9314c21c6e718, "
        f"got {data.md5_file(fake)}; the file was not kept")
    assert files_under(tmp_path / "root" / "raw") == []


# --- Omniglot, Burda et al.'s chardata.mat (synthetic stand-in) -------------------------------

def _synthetic_chardata(path: Path, seed: int, n_train: int = 30, n_test: int = 12) -> dict:
    """A small file with chardata.mat's keys and layout: (784, n) images, one-hot alphabets."""
    rng = np.random.default_rng(seed)

    def one_hot(alphabets):
        out = np.zeros((50, len(alphabets)))
        out[alphabets, np.arange(len(alphabets))] = 1
        return out

    alphabet, test_alphabet = rng.integers(0, 3, n_train), rng.integers(0, 3, n_test)
    mat = {
        "data": rng.random((784, n_train)), "testdata": rng.random((784, n_test)),
        "target": one_hot(alphabet), "testtarget": one_hot(test_alphabet),
        "targetchar": rng.integers(1, 4, (1, n_train)).astype(float),
        "testtargetchar": rng.integers(1, 4, (1, n_test)).astype(float),
    }
    scipy.io.savemat(path, mat)
    return mat


@pytest.fixture
def burda_mirror(tmp_path):
    folder = tmp_path / "burda_mirror"
    (folder / "omniglot").mkdir(parents=True)
    mat = _synthetic_chardata(folder / "omniglot" / "chardata.mat", seed=0)
    with serve_directory(folder) as url:
        yield folder, url, mat


def test_burda_first_fetch_pins_sha256(burda_mirror, tmp_path):
    folder, url, _ = burda_mirror
    cfg = config(tmp_path / "root", url, omniglot_source="burda")
    data.fetch("omniglot", cfg, progress=False)
    lock = json.loads(Path(cfg.lock_file).read_text())
    pin = lock["omniglot/chardata.mat"]
    assert pin["sha256"] == sha256_file(folder / "omniglot" / "chardata.mat")
    assert pin["url"] == f"{url}/omniglot/chardata.mat"
    assert pin["pinned_at"].endswith("+00:00")


def test_burda_later_mismatch_is_refused(burda_mirror, tmp_path):
    folder, url, _ = burda_mirror
    cfg = config(tmp_path / "root", url, omniglot_source="burda")
    data.fetch("omniglot", cfg, progress=False)
    pinned = json.loads(Path(cfg.lock_file).read_text())["omniglot/chardata.mat"]["sha256"]
    _synthetic_chardata(folder / "omniglot" / "chardata.mat", seed=1)
    # A fresh data root sharing the lock file, as on another machine after a git pull.
    other = DataConfig(root=str(tmp_path / "other"), mirror=url, omniglot_source="burda", lock_file=cfg.lock_file)
    with pytest.raises(VaeasError) as excinfo:
        data.fetch("omniglot", other, progress=False)
    actual = sha256_file(folder / "omniglot" / "chardata.mat")
    assert message(excinfo) == (f"checksum mismatch for chardata.mat: expected sha256 {pinned}, got {actual}; "
                                f"the file was not kept")
    assert files_under(Path(other.root)) == []


def test_burda_processing_follows_iwae_reshape(burda_mirror, tmp_path):
    _, url, mat = burda_mirror
    cfg = config(tmp_path / "root", url, omniglot_source="burda")
    data.fetch("omniglot", cfg, progress=False)
    data.process("omniglot", cfg)
    with np.load(data.processed_path("omniglot", cfg.root)) as npz:
        train_x, test_x, train_y = npz["train_x"], npz["test_x"], npz["train_y"]
        meta = json.loads(str(npz["meta"]))
    assert train_x.shape == (30, 28, 28) and test_x.shape == (12, 28, 28)
    # One pixel explicitly: row a, column b of image i is entry 28*b + a of column i.
    assert train_x[7, 3, 20] == np.float32(mat["data"][28 * 20 + 3, 7])
    np.testing.assert_array_equal(train_x, mat["data"].T.reshape(-1, 28, 28).transpose(0, 2, 1).astype(np.float32))
    pairs = list(zip(mat["target"].argmax(0), mat["targetchar"].ravel()))
    ranks = {p: i for i, p in enumerate(sorted(set(pairs) | set(zip(mat["testtarget"].argmax(0),
                                                                      mat["testtargetchar"].ravel()))))}
    assert train_y.tolist() == [ranks[p] for p in pairs]
    assert meta["source"] == "burda" and meta["splits"] == {"train": 30, "valid": 0, "test": 12}


def test_invalid_lock_file_is_a_one_line_error(burda_mirror, tmp_path):
    _, url, _ = burda_mirror
    cfg = config(tmp_path, url, omniglot_source="burda")
    Path(cfg.lock_file).write_text("{ not json")
    with pytest.raises(VaeasError) as excinfo:
        data.fetch("omniglot", cfg, progress=False)
    assert message(excinfo) == f"lock file {cfg.lock_file} is not valid JSON (line 1); fix or delete it"
