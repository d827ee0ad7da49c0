"""What each data set is: its raw files, the hashes they are verified against, where they are
fetched from, the training-set sizes and the paths under ``data.root``.

Numbers and names only (no torch): the experiment grid reads :data:`TRAIN_SIZES` to check
``labels.classes < N`` before any job starts, and the pipeline reads the paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..config import DataConfig
from ..errors import VaeasError

DATASETS = ("mnist", "omniglot", "digits", "omniglot-mini")
#: Data sets shipped with the code (nothing to fetch): scikit-learn's digits, and the seeded
#: Omniglot subset embedded in vaeas (:mod:`vaeas.data.omniglot_mini`).
EMBEDDED = ("digits", "omniglot-mini")

# Training-set size N of each data set, as the processors split it (MNIST: the first 55,000
# official training images; Omniglot: 24,345 from either source; digits: 1,247; omniglot-mini:
# 1,000). Cross-key rules
# that need N (labels.classes < N, evaluation.mc_sizes <= N) are checked against these before any
# job starts, without reading the data; the processors take their split sizes from here.
TRAIN_SIZES = {"mnist": 55_000, "omniglot": 24_345, "digits": 1_247, "omniglot-mini": 1_000}

DOWNLOAD_TIMEOUT_S = 60


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
