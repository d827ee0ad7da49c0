"""Tests of vaeas.data: fetch over real local HTTP servers, verification, processing, loading.

Everything runs offline: the official hosts are replaced by the offline mirror
(``<repo>/../shared/data``) served on 127.0.0.1, a corrupted copy of it, a closed port, and
synthetic files built here. MNIST and Omniglot are processed once per session.
"""

from __future__ import annotations

import gzip
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

from conftest import closed_port_url, serve_directory

OFFICIAL_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
RECONSTRUCTED_TRAIN_IMAGES = "8e59d4e6322d5e291f26338633ee8015e1369ee4616a784cd934bc27c2948978"
MNIST_TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def config(root: Path, mirror: str = "", **kw) -> DataConfig:
    """A DataConfig rooted in a test folder, with its own lock file."""
    return DataConfig(root=str(root), mirror=mirror, lock_file=str(root / "checksums.lock.json"), **kw)


def files_under(folder: Path) -> list[str]:
    """Every file name under ``folder`` (hidden temp files included)."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def message(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


@pytest.fixture(scope="session")
def mnist_root(mirror_url, tmp_path_factory) -> Path:
    """MNIST fetched over HTTP from the offline mirror and processed once."""
    root = tmp_path_factory.mktemp("mnist")
    cfg = config(root, mirror_url)
    data.fetch("mnist", cfg, progress=False)
    data.process("mnist", cfg)
    return root


@pytest.fixture(scope="session")
def omniglot_root(mirror_url, tmp_path_factory) -> Path:
    """Omniglot (lake source, npz form) fetched over HTTP and processed once."""
    root = tmp_path_factory.mktemp("omniglot")
    cfg = config(root, mirror_url)
    data.fetch("omniglot", cfg, progress=False)
    data.process("omniglot", cfg)
    return root


# --- names and configuration ---------------------------------------------------------------

@pytest.mark.parametrize("step", [
    lambda cfg: data.fetch("foo", cfg),
    lambda cfg: data.process("foo", cfg),
    lambda cfg: data.load("foo", cfg),
])
def test_unknown_data_set_is_refused_before_anything_is_done(tmp_path, step):
    root = tmp_path / "root"
    with pytest.raises(VaeasError) as excinfo:
        step(config(root))
    assert message(excinfo) == "unknown data set 'foo' (choose from: digits, mnist, omniglot)"
    assert not root.exists()


def test_mirror_that_is_neither_url_nor_directory(tmp_path):
    with pytest.raises(VaeasError) as excinfo:
        data.fetch("mnist", config(tmp_path, str(tmp_path / "nowhere")))
    assert message(excinfo) == (f"data mirror '{tmp_path / 'nowhere'}' is neither an http(s) URL nor an "
                                f"existing directory (set by data.mirror or VAEAS_DATA_MIRROR)")


def test_official_mnist_hosts_are_https():
    hosts = data.mnist_hosts()
    assert hosts and all(h.startswith("https://") for h in hosts)


# --- MNIST end to end ------------------------------------------------------------------------

def test_mnist_over_http_splits_and_values(mnist_root):
    with np.load(mnist_root / "processed" / "mnist.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in data.ARRAY_KEYS}
        meta = json.loads(str(npz["meta"]))
    assert [len(arrays[f"{s}_x"]) for s in ("train", "valid", "test")] == [55_000, 5_000, 10_000]
    for split in ("train", "valid", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        assert x.dtype == np.float32 and x.shape[1:] == (28, 28)
        assert y.dtype == np.int64 and len(y) == len(x)
        assert x.min() == 0.0 and x.max() == 1.0
    official_60k = np.concatenate([arrays["train_y"], arrays["valid_y"]])
    assert np.bincount(official_60k).tolist() == MNIST_TRAIN_CLASS_COUNTS
    assert meta["splits"] == {"train": 55_000, "valid": 5_000, "test": 10_000}
    assert "dynamic Bernoulli" in meta["binarization"]


def test_mnist_meta_records_the_reconstructed_variant(mnist_root):
    meta = data.load("mnist", str(mnist_root)).meta
    sources = {s["file"]: s for s in meta["sources"]}
    assert sources["train-images-idx3-ubyte.gz"]["sha256"] == RECONSTRUCTED_TRAIN_IMAGES
    assert sources["train-images-idx3-ubyte.gz"]["official"] is False
    assert "reconstruction" in sources["train-images-idx3-ubyte.gz"]["note"]
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert sources[name] == {"file": name, "sha256": OFFICIAL_SHA256[name], "official": True, "note": "official"}


def test_load_gives_flattened_float_tensors(mnist_root):
    ds = data.load("mnist", config(mnist_root))
    assert ds.name == "mnist" and ds.image_shape == (28, 28)
    assert ds.train_x.shape == (55_000, 784) and ds.train_x.dtype == torch.float32
    assert ds.valid_x.shape == (5_000, 784) and ds.test_x.shape == (10_000, 784)
    assert ds.train_y.dtype == torch.int64 and ds.test_y.shape == (10_000,)


def test_mnist_processing_is_byte_identical(mnist_root):
    path = mnist_root / "processed" / "mnist.npz"
    before = sha256_file(path)
    data.process("mnist", config(mnist_root))
    assert sha256_file(path) == before


def test_present_files_are_reverified_not_downloaded(mnist_root, capsys):
    # The only source is a closed port: success proves nothing was downloaded.
    paths = data.fetch("mnist", config(mnist_root, closed_port_url()), progress=False)
    assert [p.name for p in paths] == list(OFFICIAL_SHA256)
    assert capsys.readouterr().out.count("already present, sha256 verified") == 4


def test_local_directory_mirror(shared_data, tmp_path):
    paths = data.fetch("mnist", config(tmp_path, str(shared_data)), progress=False)
    listed = dict(line.split()[::-1] for line in (shared_data / "SHA256SUMS").read_text().splitlines())
    assert {p.name: sha256_file(p) for p in paths} == {p.name: listed[f"mnist/{p.name}"] for p in paths}
    assert files_under(tmp_path / "raw") == sorted(OFFICIAL_SHA256)


def test_environment_mirror_wins_over_params(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("VAEAS_DATA_MIRROR", str(shared_data))
    paths = data.fetch("omniglot", config(tmp_path, closed_port_url()), progress=False)
    assert [p.name for p in paths] == ["images_background.npz", "images_evaluation.npz"]


def test_process_before_fetch_names_the_missing_file(tmp_path):
    with pytest.raises(VaeasError) as excinfo:
        data.process("mnist", config(tmp_path))
    assert message(excinfo) == (f"missing raw file {tmp_path}/raw/mnist/train-images-idx3-ubyte.gz; "
                                f"run 'vaeas fetch mnist' first")


# --- verification failures ------------------------------------------------------------------

def test_corrupted_mirror_file_is_refused_and_not_kept(corrupt_mirror, tmp_path):
    folder, url = corrupt_mirror
    actual = sha256_file(folder / "mnist" / "train-labels-idx1-ubyte.gz")
    with pytest.raises(VaeasError) as excinfo:
        data.fetch("mnist", config(tmp_path, url), progress=False)
    assert message(excinfo) == (
        "checksum mismatch for train-labels-idx1-ubyte.gz: expected sha256 "
        f"3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c, got {actual}; the file was not kept")
    # The file before it verified and stays; nothing of the bad one (not even a temp file) does.
    assert files_under(tmp_path / "raw") == ["train-images-idx3-ubyte.gz"]


def test_truncated_mirror_file_is_refused_and_not_kept(corrupt_mirror, shared_data, tmp_path):
    folder, url = corrupt_mirror
    raw = tmp_path / "raw" / "mnist"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (raw / name).write_bytes((shared_data / "mnist" / name).read_bytes())
    actual = sha256_file(folder / "mnist" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(VaeasError) as excinfo:
        data.fetch("mnist", config(tmp_path, url), progress=False)
    assert message(excinfo) == (
        "checksum mismatch for t10k-labels-idx1-ubyte.gz: expected sha256 "
        f"f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6, got {actual}; the file was not kept")
    assert "t10k-labels-idx1-ubyte.gz" not in " ".join(files_under(raw))


def test_download_cut_short_is_reported(short_read_url, tmp_path):
    with pytest.raises(VaeasError) as excinfo:
        data.fetch("mnist", config(tmp_path, short_read_url), progress=False)
    assert message(excinfo) == (f"cannot download train-images-idx3-ubyte.gz from {short_read_url}/mnist/"
                                f"train-images-idx3-ubyte.gz: truncated (10 of 1000 bytes)")
    assert files_under(tmp_path / "raw") == []


def test_unreachable_host_names_the_url(tmp_path):
    url = closed_port_url()
    with pytest.raises(VaeasError) as excinfo:
        data.fetch("mnist", config(tmp_path, url), progress=False)
    text = message(excinfo)
    assert text.startswith(f"cannot download train-images-idx3-ubyte.gz from {url}/mnist/train-images-idx3-ubyte.gz: ")
    assert "refused" in text.lower()
    assert files_under(tmp_path / "raw") == []


def test_all_hosts_are_tried_and_reported(tmp_path):
    urls = (closed_port_url() + "/a.gz", closed_port_url() + "/a.gz")
    spec = data.RawFile("mnist", "a.gz", urls, (data.KnownHash("0" * 64, True, "official"),))
    with pytest.raises(VaeasError) as excinfo:
        data.download_verified(spec, tmp_path / "raw", config(tmp_path), progress=False)
    text = message(excinfo)
    assert text.startswith("all 2 sources failed for a.gz: ")
    assert all(f"cannot download a.gz from {u}: " in text for u in urls)


def test_missing_file_on_mirror_is_reported_as_not_found(tmp_path):
    (tmp_path / "empty").mkdir()
    with serve_directory(tmp_path / "empty") as url, pytest.raises(VaeasError) as excinfo:
        data.fetch("mnist", config(tmp_path / "root", url), progress=False)
    assert message(excinfo) == (f"cannot download train-images-idx3-ubyte.gz from {url}/mnist/"
                                f"train-images-idx3-ubyte.gz: HTTP 404 File not found")


def test_present_file_with_wrong_hash_is_replaced(mirror_url, tmp_path, capsys):
    raw = tmp_path / "raw" / "mnist"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the labels")
    data.fetch("mnist", config(tmp_path, mirror_url), progress=False)
    assert sha256_file(raw / "t10k-labels-idx1-ubyte.gz") == OFFICIAL_SHA256["t10k-labels-idx1-ubyte.gz"]
    assert "failed verification" in capsys.readouterr().err


def test_unreadable_gzip_is_a_one_line_error(shared_data, tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes((shared_data / "mnist" / path.name).read_bytes()[:2000])
    with pytest.raises(VaeasError) as excinfo:
        data.read_idx(path)
    assert message(excinfo) == (f"{path} is not a readable gzip file (EOFError); "
                                f"delete it and rerun 'vaeas fetch mnist'")


def test_idx_reader_reads_header_and_body(tmp_path):
    values = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x.gz"
    header = bytes([0, 0, 8, 3]) + np.array([2, 3, 4], dtype=">u4").tobytes()
    path.write_bytes(gzip.compress(header + values.tobytes()))
    np.testing.assert_array_equal(data.read_idx(path), values)


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
        np.testing.assert_allclose(train_x[:, a, b], ink[:, rows, cols].mean(axis=(1, 2)), atol=1e-6)


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


# --- digits and the processed file ------------------------------------------------------------

def test_digits_is_embedded(tmp_path, capsys):
    cfg = config(tmp_path)
    assert data.fetch("digits", cfg) == []
    assert "embedded" in capsys.readouterr().out
    data.process("digits", cfg)
    ds = data.load("digits", cfg)
    assert [len(ds.train_y), len(ds.valid_y), len(ds.test_y)] == [1247, 100, 450]
    assert ds.image_shape == (8, 8) and ds.train_x.shape == (1247, 64)
    everything = torch.cat([ds.train_x, ds.valid_x, ds.test_x])
    assert len(everything) == 1797 and float(everything.min()) == 0.0 and float(everything.max()) == 1.0


def test_digits_processing_is_byte_identical(tmp_path):
    first = data.process("digits", config(tmp_path / "a"))
    second = data.process("digits", config(tmp_path / "b"))
    assert sha256_file(first) == sha256_file(second)
    with zipfile.ZipFile(first) as archive:
        assert [i.filename for i in archive.infolist()] == [f"{k}.npy" for k in (*data.ARRAY_KEYS, "meta")]
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_processed_file_names_the_file(tmp_path, damage):
    path = data.process("digits", config(tmp_path))
    content = bytearray(path.read_bytes())
    if damage == "truncate":
        content = content[: len(content) // 2]
    else:
        for i in range(2000, 2100):
            content[i] ^= 0x5A
    path.write_bytes(bytes(content))
    with pytest.raises(VaeasError) as excinfo:
        data.load("digits", str(tmp_path))
    text = message(excinfo)
    assert text.startswith(f"{path} is corrupt or truncated (")
    assert text.endswith("); rerun 'vaeas process digits'")


def test_load_without_processed_file(tmp_path):
    with pytest.raises(VaeasError) as excinfo:
        data.load("digits", str(tmp_path))
    assert message(excinfo) == f"{tmp_path}/processed/digits.npz not found; run 'vaeas process digits' first"
