"""Tests of vaeas.data.download and vaeas.data.verification: names, mirrors, and every way a
fetch can fail, over real local HTTP servers (the offline mirror, a corrupted copy, a closed port).
"""

from __future__ import annotations


import pytest

from vaeas import data
from vaeas.errors import VaeasError
from vaeas.io import sha256_file

from conftest import OFFICIAL_SHA256, closed_port_url, config, files_under, message, serve_directory


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
    assert message(excinfo) == "unknown data set 'foo' (choose from: digits, mnist, omniglot, omniglot-mini)"
    assert not root.exists()


def test_mirror_that_is_neither_url_nor_directory(tmp_path):
    with pytest.raises(VaeasError) as excinfo:
        data.fetch("mnist", config(tmp_path, str(tmp_path / "nowhere")))
    assert message(excinfo) == (f"data mirror '{tmp_path / 'nowhere'}' is neither an http(s) URL nor an "
                                f"existing directory (set by data.mirror or VAEAS_DATA_MIRROR)")


def test_official_mnist_hosts_are_https():
    hosts = data.mnist_hosts()
    assert hosts and all(h.startswith("https://") for h in hosts)


# --- verification failures ------------------------------------------------------------------

def test_corrupted_mirror_file_is_refused_and_not_kept(corrupt_mirror, tmp_path):
    folder, url = corrupt_mirror
    actual = sha256_file(folder / "mnist" / "train-labels-idx1-ubyte.gz")
    with pytest.raises(VaeasError) as excinfo:
        data.fetch("mnist", config(tmp_path, url), progress=False)
    assert message(excinfo) == (
        "checksum mismatch for train-labels-idx1-ubyte.gz: expected sha256 "
        f"3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c, got {actual}; the file was not kept")
    # The folder was this fetch's: it goes, with the file that verified before the bad one, so
    # no partial raw/mnist/ is left for Snakemake or DVC to take as a finished fetch.
    assert not (tmp_path / "raw").exists()


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
    # The folder was there before: the files verified before this fetch stay, the bad one does not.
    assert files_under(raw) == ["t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


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
    assert not (tmp_path / "raw").exists()


MIRROR_HINT = ("; without internet, point data.mirror (params.yaml) or VAEAS_DATA_MIRROR at a copy laid out as "
               "<mirror>/mnist/*.gz, <mirror>/omniglot/* (e.g. VAEAS_DATA_MIRROR=../shared/data)")


@pytest.mark.parametrize("left_before", [False, True])
def test_offline_fetch_names_the_mirror_option_and_leaves_no_folder(tmp_path, monkeypatch, left_before):
    """Offline, the official hosts are unreachable (here: a closed port on 127.0.0.1). The error
    says how to use the offline copy, and no raw/mnist/ is left, not even an empty one that an
    older failed fetch left behind: Snakemake took that for a finished fetch."""
    url = closed_port_url()
    monkeypatch.setattr(data.catalog, "mnist_hosts", lambda: (url + "/",))
    raw = tmp_path / "raw" / "mnist"
    if left_before:
        raw.mkdir(parents=True)
    with pytest.raises(VaeasError) as excinfo:
        data.fetch("mnist", config(tmp_path), progress=False)
    text = message(excinfo)
    assert text.startswith(f"cannot download train-images-idx3-ubyte.gz from {url}/train-images-idx3-ubyte.gz: ")
    assert "Connection refused" in text and text.endswith(MIRROR_HINT)
    assert not raw.exists()
    assert (tmp_path / "raw").exists() == left_before     # a parent that was there is left alone


def test_burda_omniglot_missing_from_the_mirror_suggests_the_lake_source(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    (mirror / "omniglot").mkdir(parents=True)
    (mirror / "omniglot" / "images_background.npz").write_bytes(b"not read")
    root = tmp_path / "data"
    params = tmp_path / "params.yaml"
    params.write_text(f"data: {{root: '{root}', mirror: '{mirror}', omniglot_source: burda, "
                      f"lock_file: '{root}/checksums.lock.json'}}\n")
    from vaeas.cli import main

    assert main(["fetch", "omniglot", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert err == (f"vaeas: error: cannot copy chardata.mat from {mirror / 'omniglot' / 'chardata.mat'}: no such file; "
                   "the mirror has no chardata.mat (the offline copy holds the official images_background and "
                   "images_evaluation): set data.omniglot_source: lake, or pass --set data.omniglot_source=lake\n")
    assert not root.exists()


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


def test_mirror_skip_reason_says_how_to_point_at_the_data(tmp_path, monkeypatch):
    import conftest

    monkeypatch.setenv("VAEAS_SHARED_DATA", str(tmp_path / "none"))
    assert conftest.shared_data_dir() == tmp_path / "none"
    assert conftest.mirror_skip_reason(conftest.shared_data_dir()) == (
        f"offline data mirror not found at {tmp_path / 'none'} (no mnist/ in it); to run this test, set "
        "VAEAS_SHARED_DATA=/path/to/shared/data, the folder holding mnist/ and omniglot/")
