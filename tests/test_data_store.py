"""Tests of vaeas.data.store and vaeas.data.digits: the canonical processed file (byte-identical,
corruption named) and the embedded digits that need no download.
"""

from __future__ import annotations

import zipfile

import pytest
import torch

from vaeas import data
from vaeas.errors import VaeasError
from vaeas.io import sha256_file

from conftest import config, message


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


def test_train_size_takes_a_fixed_nested_subset_and_leaves_test_alone(tmp_path):
    from vaeas.config import DataConfig

    data.process("digits", DataConfig(root=str(tmp_path)))
    full = data.load("digits", DataConfig(root=str(tmp_path)))
    small = data.load("digits", DataConfig(root=str(tmp_path), train_size=100))
    smaller = data.load("digits", DataConfig(root=str(tmp_path), train_size=50))
    assert small.train_x.shape[0] == 100 and torch.equal(small.test_x, full.test_x)
    rows = {tuple(r.tolist()) for r in small.train_x}
    assert all(tuple(r.tolist()) in rows for r in smaller.train_x)          # nested
    assert torch.equal(small.train_x, data.load("digits", DataConfig(root=str(tmp_path), train_size=100)).train_x)
    assert small.meta["train_subset"] == {"size": 100, "of": 1247, "seed": data.SUBSET_SEED}


def test_train_size_larger_than_the_training_split_is_refused(tmp_path):
    from vaeas.config import DataConfig
    from vaeas.errors import VaeasError

    data.process("digits", DataConfig(root=str(tmp_path)))
    with pytest.raises(VaeasError, match=r"data.train_size \(2000\) exceeds the 1247 training images of .*digits.npz"):
        data.load("digits", DataConfig(root=str(tmp_path), train_size=2000))
