"""Data acquisition: fetch, verify, process and load MNIST, Omniglot and the sklearn digits.

Three steps, each with one output:

* :func:`fetch` downloads a data set's raw files to ``{root}/raw/{dataset}/``. Every file is
  written to a temporary file in that folder, checked, and renamed into place only if its hash
  is known (see :data:`KNOWN_SHA256`) or matches its pin in the lock file; anything else is
  deleted and reported in one line, so nothing unverified is ever left under ``root``.
* :func:`process` turns verified raw files into one canonical, byte-reproducible
  ``{root}/processed/{dataset}.npz`` (splits as float32 intensities in [0, 1] and int64
  labels, plus a JSON ``meta`` string saying where every byte came from).
* :func:`load` reads that file back as a :class:`Dataset` of flattened torch tensors.

Where files come from (``data.mirror``, overridden by env ``VAEAS_DATA_MIRROR``): ``''`` means
the official hosts; otherwise a base URL or a local directory laid out like the offline mirror
(``<mirror>/mnist/<file>``, ``<mirror>/omniglot/<file>``).

Binarization is deliberately *not* done here: the processed file stores intensities and the
training code draws Bernoulli samples (dynamic each epoch for training, a fixed seeded draw for
evaluation), as in Burda et al. (2015).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from tqdm import tqdm

from . import __version__
from .config import DataConfig
from .errors import VaeasError
from .io import atomic_path, sha256_file, write_json

DATASETS = ("mnist", "omniglot", "digits")

ARRAY_KEYS = ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y")
# Zip members get a fixed timestamp so the processed file's bytes depend only on its content.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
DOWNLOAD_TIMEOUT_S = 60
BINARIZATION_NOTE = (
    "stored as intensities in [0,1]; binarization happens in training: dynamic Bernoulli "
    "resampling each epoch for training, a fixed seeded draw for evaluation"
)


# ---------------------------------------------------------------------------------------------
# What each raw file is and how it is verified
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KnownHash:
    """A sha256 accepted for a raw file, labelled as the official bytes or a named variant."""

    sha256: str
    official: bool
    note: str


@dataclass(frozen=True)
class RawFile:
    """One raw file: where it is published and how its content is checked.

    ``known`` lists every accepted sha256. A file with no published sha256 (``known`` empty) is
    pinned in the lock file on its first download and must match that pin afterwards; ``md5``,
    when published, is checked in addition.
    """

    group: str                       # sub-folder on the mirror and under raw/: mnist, omniglot
    name: str
    official_urls: tuple[str, ...] = ()
    known: tuple[KnownHash, ...] = ()
    md5: str = ""

    @property
    def key(self) -> str:
        """The file's name on the mirror and in the lock file, e.g. ``mnist/t10k-...gz``."""
        return f"{self.group}/{self.name}"

    @property
    def expected_sha256(self) -> str:
        """The hash quoted in error messages: the official one, else the first known one."""
        official = [k.sha256 for k in self.known if k.official]
        return (official or [k.sha256 for k in self.known])[0]


MNIST_RECONSTRUCTION_NOTE = (
    "offline reconstruction of train-images from a PNG export; 97.2% of pixels exact, "
    "rest off by 1/255; see shared/data/README.md"
)
OMNIGLOT_NPZ_NOTE = "offline npz conversion of the official zip"

# Every accepted sha256 per file, official first. A non-official entry is a documented variant:
# accepting it prints a warning and is recorded in the processed file's meta["sources"].
KNOWN_SHA256: dict[str, tuple[KnownHash, ...]] = {
    "mnist/train-images-idx3-ubyte.gz": (
        KnownHash("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", True, "official"),
        KnownHash("8e59d4e6322d5e291f26338633ee8015e1369ee4616a784cd934bc27c2948978", False,
                  MNIST_RECONSTRUCTION_NOTE),
    ),
    "mnist/train-labels-idx1-ubyte.gz": (
        KnownHash("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", True, "official"),
    ),
    "mnist/t10k-images-idx3-ubyte.gz": (
        KnownHash("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", True, "official"),
    ),
    "mnist/t10k-labels-idx1-ubyte.gz": (
        KnownHash("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", True, "official"),
    ),
    "omniglot/images_background.npz": (
        KnownHash("8bf84167413cd00beacdce3fe582f780ab538d8dbef043a6d688f2527bbce199", False, OMNIGLOT_NPZ_NOTE),
    ),
    "omniglot/images_evaluation.npz": (
        KnownHash("0b84c7ffd94c4841c0040e529c86a82eaaccb986d8eadad5673f7991b7475276", False, OMNIGLOT_NPZ_NOTE),
    ),
}

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
OMNIGLOT_PARTS = ("images_background", "images_evaluation")
BURDA_URL = "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/chardata.mat"
LAKE_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"


def mnist_hosts() -> tuple[str, ...]:
    """torchvision's MNIST mirrors, https only (the plain-http host cannot be authenticated)."""
    from torchvision.datasets import MNIST

    return tuple(m for m in MNIST.mirrors if m.startswith("https://"))


def _mnist_files() -> list[RawFile]:
    hosts = mnist_hosts()
    return [RawFile("mnist", name, tuple(h + name for h in hosts), KNOWN_SHA256[f"mnist/{name}"])
            for name in MNIST_FILES]


def _lake_alternatives(part: str) -> tuple[RawFile, RawFile]:
    """The official zip (md5 from torchvision, sha256 pinned) and its offline npz conversion."""
    from torchvision.datasets import Omniglot

    zip_file = RawFile("omniglot", f"{part}.zip", (f"{LAKE_URL}{part}.zip",), md5=Omniglot.zips_md5[part])
    npz_file = RawFile("omniglot", f"{part}.npz", (), KNOWN_SHA256[f"omniglot/{part}.npz"])
    return zip_file, npz_file


def raw_alternatives(dataset: str, cfg: DataConfig) -> list[tuple[RawFile, ...]]:
    """The raw files a data set needs, each as a tuple of alternatives in order of preference."""
    if dataset == "mnist":
        return [(f,) for f in _mnist_files()]
    if dataset == "omniglot" and cfg.omniglot_source == "burda":
        return [(RawFile("omniglot", "chardata.mat", (BURDA_URL,)),)]
    if dataset == "omniglot":
        return [_lake_alternatives(part) for part in OMNIGLOT_PARTS]
    return []


# ---------------------------------------------------------------------------------------------
# Verification and the lock file
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifiedFile:
    """A raw file whose content passed verification, with what that says about its origin."""

    path: Path
    sha256: str
    official: bool
    note: str
    pin: dict | None = field(default=None, compare=False)   # a lock entry still to be written

    def record(self) -> dict:
        """The entry of ``meta["sources"]`` describing this file."""
        return {"file": self.path.name, "sha256": self.sha256, "official": self.official, "note": self.note}


class ChecksumMismatch(VaeasError):
    """A file whose content is not one of the accepted versions."""


class NotOnSource(VaeasError):
    """The source does not have the file (HTTP 404, or missing from a local mirror)."""


def _mismatch(name: str, kind: str, expected: str, actual: str) -> ChecksumMismatch:
    return ChecksumMismatch(f"checksum mismatch for {name}: expected {kind} {expected}, got {actual}; "
                            f"the file was not kept")


def md5_file(path: Path) -> str:
    """Hex md5 of a file (only to compare with the md5 torchvision publishes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_lock(lock_file: str | os.PathLike) -> dict:
    """The lock file's pins (``{}`` when the file does not exist yet)."""
    path = Path(lock_file)
    if not path.is_file():
        return {}
    try:
        lock = json.loads(path.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError as exc:
        raise VaeasError(f"lock file {path} is not valid JSON (line {exc.lineno}); fix or delete it") from None
    if not isinstance(lock, dict):
        raise VaeasError(f"lock file {path} must hold a JSON object")
    return lock


def pin_in_lock(lock_file: str | os.PathLike, key: str, entry: dict) -> None:
    """Add one pin to the lock file (re-read first, written atomically, keys sorted)."""
    lock = read_lock(lock_file)
    lock[key] = entry
    write_json(lock_file, lock)


def verify(spec: RawFile, path: Path, lock: Mapping, source: str = "") -> VerifiedFile:
    """Check ``path`` against ``spec``; raise :class:`ChecksumMismatch` if it is not accepted.

    A file without a published sha256 and without a pin yet is accepted (after its md5, if
    published) and returned with the pin to write; ``source`` is the URL recorded in that pin.
    """
    sha = sha256_file(path)
    if spec.md5:
        md5 = md5_file(path)
        if md5 != spec.md5:
            raise _mismatch(spec.name, "md5", spec.md5, md5)
    if spec.known:
        for known in spec.known:
            if known.sha256 == sha:
                return VerifiedFile(path, sha, known.official, known.note)
        raise _mismatch(spec.name, "sha256", spec.expected_sha256, sha)
    pinned = lock.get(spec.key)
    if pinned:
        if pinned.get("sha256") != sha:
            raise _mismatch(spec.name, "sha256", pinned.get("sha256"), sha)
        return VerifiedFile(path, sha, True, f"matches its pin in the lock file (first fetched from {pinned.get('url')})")
    entry = {"sha256": sha, "url": source, "pinned_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if spec.md5:
        entry["md5"] = spec.md5
    return VerifiedFile(path, sha, True, f"pinned in the lock file on first fetch from {source}", pin=entry)


def _warn(message: str) -> None:
    print(f"vaeas: warning: {message}", file=sys.stderr)


def _warn_if_variant(found: VerifiedFile) -> None:
    if not found.official:
        _warn(f"{found.path.name} is a known non-official variant ({found.note}); "
              f"accepted and recorded in the processed file's meta")


def verified_present(spec: RawFile, folder: Path, lock: Mapping) -> VerifiedFile | None:
    """The file already in ``folder`` if it verifies; a file that does not is removed.

    A file with no pin to check against is removed too: the first pin is always taken from a
    fresh download, so the lock file records the URL the bytes came from.
    """
    path = folder / spec.name
    if not path.is_file():
        return None
    try:
        found = verify(spec, path, lock, source=str(path))
    except ChecksumMismatch as exc:
        _warn(f"{path} failed verification ({exc}); removed, fetching it again")
        path.unlink()
        return None
    if found.pin is not None:
        _warn(f"{path} has no pin in the lock file; removed, fetching it again to pin it")
        path.unlink()
        return None
    return found


# ---------------------------------------------------------------------------------------------
# Sources: official hosts, an HTTP mirror, or a local directory mirror
# ---------------------------------------------------------------------------------------------

def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def locations(spec: RawFile, mirror: str) -> tuple[str, ...]:
    """Where to get ``spec`` from, in order: URLs, or a path inside a local mirror."""
    if not mirror:
        return spec.official_urls
    if _is_url(mirror):
        return (f"{mirror.rstrip('/')}/{spec.key}",)
    return (str(Path(mirror.removeprefix("file://")) / spec.group / spec.name),)


def _check_mirror(mirror: str) -> None:
    if mirror and not _is_url(mirror) and not Path(mirror.removeprefix("file://")).is_dir():
        raise VaeasError(f"data mirror '{mirror}' is neither an http(s) URL nor an existing directory "
                         f"(set by data.mirror or VAEAS_DATA_MIRROR)")


class _HttpsStaysHttps(urllib.request.HTTPRedirectHandler):
    """Follow redirects (each is still hash-checked), but never from https to plain http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.full_url.startswith("https://") and not newurl.startswith("https://"):
            raise urllib.error.URLError(f"refused redirect from https to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open_url(request: urllib.request.Request):
    return urllib.request.build_opener(_HttpsStaysHttps).open(request, timeout=DOWNLOAD_TIMEOUT_S)


def download_url(url: str, dest: Path, name: str, progress: bool) -> None:
    """Stream ``url`` into ``dest`` with a progress bar; one-line error if it fails or stops short.

    Redirects are followed except from https to http; whatever arrives is verified afterwards."""
    request = urllib.request.Request(url, headers={"User-Agent": f"vaeas/{__version__}"})
    try:
        with _open_url(request) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            # disable=None lets tqdm switch itself off when stderr is not a terminal (CI, logs).
            with tqdm(total=total or None, unit="B", unit_scale=True, desc=name, leave=False,
                      disable=None if progress else True) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
            if total and out.tell() != total:
                raise VaeasError(f"cannot download {name} from {url}: truncated ({out.tell()} of {total} bytes)")
    except urllib.error.HTTPError as exc:
        error = NotOnSource if exc.code == 404 else VaeasError
        raise error(f"cannot download {name} from {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise VaeasError(f"cannot download {name} from {url}: {exc.reason}") from None
    except (OSError, ValueError) as exc:   # timeouts, resets, http.client.IncompleteRead
        raise VaeasError(f"cannot download {name} from {url}: {type(exc).__name__}: {exc}") from None


def copy_local(path: str, dest: Path, name: str) -> None:
    """Copy a file from a local mirror directory (verified afterwards like a download)."""
    if not Path(path).is_file():
        raise NotOnSource(f"cannot copy {name} from {path}: no such file")
    try:
        shutil.copyfile(path, dest)
    except OSError as exc:
        raise VaeasError(f"cannot copy {name} from {path}: {exc.strerror or exc}") from None


def _fetch_from(location: str, spec: RawFile, dest: Path, lock: Mapping, progress: bool) -> VerifiedFile:
    """Transfer one file into a temp file beside ``dest``, verify it, then rename it into place."""
    with atomic_path(dest) as tmp:
        if _is_url(location):
            download_url(location, tmp, spec.name, progress)
        else:
            copy_local(location, tmp, spec.name)
        found = verify(spec, tmp, lock, source=location)
    return VerifiedFile(dest, found.sha256, found.official, found.note, found.pin)


def _combine(errors: list[VaeasError], name: str) -> VaeasError:
    """One error from several failed attempts (kept as is when there was only one)."""
    if len(errors) == 1:
        return errors[0]
    kind = NotOnSource if all(isinstance(e, NotOnSource) for e in errors) else VaeasError
    return kind(f"all {len(errors)} sources failed for {name}: " + "; ".join(str(e) for e in errors))


def download_verified(spec: RawFile, folder: Path, cfg: DataConfig, progress: bool) -> VerifiedFile:
    """Fetch ``spec`` from each of its locations in turn until one gives verified bytes."""
    sources = locations(spec, cfg.effective_mirror)
    if not sources:
        raise NotOnSource(f"{spec.name} is only available from a data mirror (data.mirror or VAEAS_DATA_MIRROR)")
    errors: list[VaeasError] = []
    for location in sources:
        try:
            found = _fetch_from(location, spec, folder / spec.name, read_lock(cfg.lock_file), progress)
        except VaeasError as exc:
            errors.append(exc)
            continue
        if found.pin is not None:
            pin_in_lock(cfg.lock_file, spec.key, found.pin)
            print(f"{spec.key}: pinned sha256 {found.sha256} in {cfg.lock_file}")
        return found
    raise _combine(errors, spec.name)


def ensure_one_of(alternatives: tuple[RawFile, ...], folder: Path, cfg: DataConfig,
                  progress: bool) -> VerifiedFile:
    """A verified copy of the first available alternative: already present, else fetched.

    Alternatives are tried in order; the next one is tried only when a source does not have the
    previous one at all (so a mirror's zip is preferred to its npz, and a bad zip is an error).
    """
    lock = read_lock(cfg.lock_file)
    for spec in alternatives:
        found = verified_present(spec, folder, lock)
        if found is not None:
            print(f"{spec.key}: already present, sha256 verified")
            _warn_if_variant(found)
            return found
    errors: list[VaeasError] = []
    for spec in alternatives:
        if errors and not locations(spec, cfg.effective_mirror):
            continue   # npz alternatives exist only on a mirror
        try:
            found = download_verified(spec, folder, cfg, progress)
        except NotOnSource as exc:
            errors.append(exc)
            continue
        print(f"{spec.key}: fetched, sha256 {found.sha256[:12]}… verified")
        _warn_if_variant(found)
        return found
    raise _combine(errors, " or ".join(spec.name for spec in alternatives))


# ---------------------------------------------------------------------------------------------
# Public entry points: fetch, process, load
# ---------------------------------------------------------------------------------------------

def check_dataset(dataset: str) -> None:
    """Refuse an unknown data set name before anything is done."""
    if dataset not in DATASETS:
        raise VaeasError(f"unknown data set '{dataset}' (choose from: {', '.join(sorted(DATASETS))})")


def raw_dir(dataset: str, cfg: DataConfig) -> Path:
    """``{root}/raw/{dataset}``."""
    return Path(cfg.root) / "raw" / dataset


def processed_path(dataset: str, root: str | os.PathLike) -> Path:
    """``{root}/processed/{dataset}.npz``."""
    return Path(root) / "processed" / f"{dataset}.npz"


def fetch(dataset: str, cfg: DataConfig, progress: bool = True) -> list[Path]:
    """Download (or copy from the mirror) and verify a data set's raw files; return their paths.

    Files already present are re-verified and not downloaded again. ``digits`` is embedded in
    scikit-learn and needs nothing.
    """
    check_dataset(dataset)
    if dataset == "digits":
        print("digits: embedded in scikit-learn (sklearn.datasets.load_digits); nothing to fetch")
        return []
    _check_mirror(cfg.effective_mirror)
    folder = raw_dir(dataset, cfg)
    return [ensure_one_of(alternatives, folder, cfg, progress).path
            for alternatives in raw_alternatives(dataset, cfg)]


def verified_raw_files(dataset: str, cfg: DataConfig) -> list[VerifiedFile]:
    """The data set's raw files as already fetched, re-verified (for :func:`process`)."""
    folder = raw_dir(dataset, cfg)
    lock = read_lock(cfg.lock_file)
    found = []
    for alternatives in raw_alternatives(dataset, cfg):
        for spec in alternatives:
            if (folder / spec.name).is_file():
                checked = verify(spec, folder / spec.name, lock, source=str(folder / spec.name))
                if checked.pin is not None:
                    raise VaeasError(f"{checked.path} has no pin in {cfg.lock_file}; rerun 'vaeas fetch {dataset}'")
                _warn_if_variant(checked)
                found.append(checked)
                break
        else:
            names = " or ".join(str(folder / spec.name) for spec in alternatives)
            raise VaeasError(f"missing raw file {names}; run 'vaeas fetch {dataset}' first")
    return found


def process(dataset: str, cfg: DataConfig) -> Path:
    """Build ``{root}/processed/{dataset}.npz`` from the verified raw files; return its path."""
    check_dataset(dataset)
    if dataset == "mnist":
        splits, meta = process_mnist(verified_raw_files(dataset, cfg))
    elif dataset == "omniglot" and cfg.omniglot_source == "burda":
        splits, meta = process_omniglot_burda(verified_raw_files(dataset, cfg))
    elif dataset == "omniglot":
        splits, meta = process_omniglot_lake(verified_raw_files(dataset, cfg))
    else:
        splits, meta = process_digits()
    path = processed_path(dataset, cfg.root)
    write_processed(path, splits, meta)
    print(summary(dataset, path, splits))
    return path


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
    check_dataset(dataset)
    root = cfg.root if isinstance(cfg, DataConfig) else cfg
    path = processed_path(dataset, root)
    if not path.is_file():
        raise VaeasError(f"{path} not found; run 'vaeas process {dataset}' first")
    arrays, meta = read_processed(path, dataset)
    image_shape = tuple(int(s) for s in arrays["train_x"].shape[1:])
    pixels = int(np.prod(image_shape))
    tensors = {}
    for key, value in arrays.items():
        if key.endswith("_x"):
            value = value.reshape(len(value), pixels)   # explicit size: a split may be empty
        tensors[key] = torch.from_numpy(value)
    return Dataset(name=dataset, image_shape=image_shape, meta=meta, **tensors)


# ---------------------------------------------------------------------------------------------
# The canonical processed file
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------------------------

MNIST_TRAIN = 55_000   # the paper's training set: the first 55,000 official training images


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


# ---------------------------------------------------------------------------------------------
# Omniglot
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# digits (embedded demo data)
# ---------------------------------------------------------------------------------------------

DIGITS_SPLIT = (1247, 100, 450)   # train, valid, test, by index


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
