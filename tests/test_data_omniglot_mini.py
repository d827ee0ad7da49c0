"""omniglot-mini: the Omniglot subset embedded in vaeas for the demo's and ci's Table 3."""

import json

import numpy as np
import pytest

from vaeas import data
from vaeas.data import omniglot_mini
from vaeas.errors import VaeasError
from vaeas.io import sha256_file

from conftest import config


def test_embedded_subset_is_a_verified_processed_file_with_its_provenance(tmp_path):
    cfg = config(tmp_path)
    assert data.fetch("omniglot-mini", cfg) == []                  # embedded: nothing to download
    data.process("omniglot-mini", cfg)
    ds = data.load("omniglot-mini", cfg)
    assert ds.image_shape == (28, 28)
    assert ds.train_x.shape == (1000, 784) and ds.valid_x.shape == (0, 784) and ds.test_x.shape == (400, 784)
    assert 0.0 <= float(ds.train_x.min()) and float(ds.train_x.max()) <= 1.0
    assert 0.01 < float(ds.train_x.mean()) < 0.2                   # sparse ink on a blank page
    # labels are Omniglot's character ids; a random 1,000 of 24,345 drawings spans many characters
    assert 0 <= int(ds.train_y.min()) and int(ds.train_y.max()) < 1623 and len(set(ds.train_y.tolist())) > 600
    first = ds.meta["sources"][0]
    assert first["file"] == "vaeas/data/embedded/omniglot-mini.npz"
    assert first["sha256"] == sha256_file(omniglot_mini.embedded_path())
    assert "MIT License" in ds.meta["license"] and ds.meta["splits"] == {"train": 1000, "valid": 0, "test": 400}


def test_embedded_subset_is_the_train_size_1000_subset_of_omniglot_and_rebuilds_byte_for_byte(omniglot_root, tmp_path):
    """The embedded training images are those `data.train_size: 1000` selects from the lake
    processing (the mnist-cpu profile's Omniglot), its test images a seeded 400 of Omniglot's; and
    the committed file is what `python -m vaeas.data.omniglot_mini` cuts from that processing."""
    source = omniglot_root / "processed" / "omniglot.npz"
    subset = data.load("omniglot", config(omniglot_root, train_size=1000))
    mini, meta = data.read_processed(omniglot_mini.embedded_path(), "omniglot-mini")
    np.testing.assert_array_equal(mini["train_x"].reshape(1000, -1), subset.train_x.numpy())
    np.testing.assert_array_equal(mini["train_y"], subset.train_y.numpy())
    full, _ = data.read_processed(source, "omniglot")
    rows = [int(np.flatnonzero((full["test_x"] == x).all(axis=(1, 2)))[0]) for x in mini["test_x"][:20]]
    assert rows == sorted(rows) and len(set(rows)) == 20           # drawn from the test split, in order
    assert meta["cut_from"]["arrays_sha256"] == json.loads(str(np.load(source)["meta"]))["arrays_sha256"]
    out = tmp_path / "omniglot-mini.npz"
    omniglot_mini.main([str(source), str(out)])
    assert sha256_file(out) == sha256_file(omniglot_mini.embedded_path())


def test_only_the_lake_processing_is_cut(tmp_path):
    cfg = config(tmp_path)
    arrays, meta = data.read_processed(data.process("digits", cfg), "digits")
    with pytest.raises(VaeasError,
                       match="omniglot-mini is cut from the lake processing of Omniglot"):
        omniglot_mini.cut_omniglot_mini(arrays, meta)
