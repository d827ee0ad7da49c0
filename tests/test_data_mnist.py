"""Tests of vaeas.data.mnist: MNIST fetched over HTTP from the offline mirror
(``<repo>/../shared/data`` on 127.0.0.1), processed once per session, and the idx reader.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vaeas import data
from vaeas.errors import VaeasError
from vaeas.io import sha256_file

from conftest import OFFICIAL_SHA256, closed_port_url, config, fetched_and_processed, files_under, message


RECONSTRUCTED_TRAIN_IMAGES = "8e59d4e6322d5e291f26338633ee8015e1369ee4616a784cd934bc27c2948978"
MNIST_TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(scope="session")
def mnist_root(mirror_url, tmp_path_factory) -> Path:
    """MNIST fetched over HTTP from the offline mirror and processed once."""
    return fetched_and_processed("mnist", mirror_url, tmp_path_factory)


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
