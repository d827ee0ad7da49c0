"""Omniglot-mini: a small seeded subset of Omniglot (28 × 28) embedded in the package, so that the
demo and ci profiles run Table 3 and Figure 5 on Omniglot drawings, not on a second copy of the
digits of Table 2, with no download.

The embedded file ``data/embedded/omniglot-mini.npz`` is a processed file in the canonical format
(:func:`vaeas.data.store.write_processed`), cut from the ``lake`` processing of the official
Omniglot zips (Lake et al. 2015, https://github.com/brendenlake/omniglot, MIT License, copyright
2015 Brenden Lake): the first 1,000 training images of Omniglot's seeded training permutation —
the very images ``data.train_size: 1000`` selects (:func:`vaeas.data.store.train_subset`, as the
mnist-cpu profile does) — and the first 400 of the same seeded permutation of its test images,
each subset kept in its original order; values exactly as that processing gives them (the fraction
of ink in each pixel's window). Rebuild it, byte for byte, from a processed ``lake`` file:

    python -m vaeas.data.omniglot_mini data/processed/omniglot.npz src/vaeas/data/embedded/omniglot-mini.npz

(``tests/test_data_omniglot_mini.py`` does so from the offline mirror and compares the bytes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import VaeasError
from ..io import sha256_file
from .catalog import TRAIN_SIZES
from .store import SUBSET_SEED, _meta, read_processed, write_processed

NAME = "omniglot-mini"
MINI_SPLIT = (TRAIN_SIZES[NAME], 0, 400)          # train, valid, test
LICENSE = "MIT License, copyright 2015 Brenden Lake (https://github.com/brendenlake/omniglot)"


def embedded_path() -> Path:
    return Path(__file__).resolve().parent / "embedded" / f"{NAME}.npz"


def _first_of_permutation(n: int, size: int) -> np.ndarray:
    return np.sort(np.random.default_rng(SUBSET_SEED).permutation(n)[:size])


def cut_omniglot_mini(arrays: dict, meta: dict) -> tuple[dict, dict]:
    """The embedded subset from a processed Omniglot file of the ``lake`` source."""
    if meta.get("source") != "lake" or arrays["train_x"].shape[1:] != (28, 28):
        raise VaeasError(f"omniglot-mini is cut from the lake processing of Omniglot (28x28); got source "
                         f"{meta.get('source')!r}, images {arrays['train_x'].shape[1:]}")
    n_train, _, n_test = MINI_SPLIT
    train = _first_of_permutation(len(arrays["train_x"]), n_train)
    test = _first_of_permutation(len(arrays["test_x"]), n_test)
    splits = {"train_x": arrays["train_x"][train], "train_y": arrays["train_y"][train],
              "valid_x": arrays["valid_x"][:0], "valid_y": arrays["valid_y"][:0],
              "test_x": arrays["test_x"][test], "test_y": arrays["test_y"][test]}
    sources = [{**s, "via": "omniglot-lake processing"} for s in meta.get("sources", [])]
    mini = _meta(NAME, "omniglot-lake subset", splits, sources,
                 split_rule=(f"the first {n_train} of the training images and the first {n_test} of the test images, "
                             f"each of a permutation seeded {SUBSET_SEED}, kept in original order "
                             f"(= data.train_size: {n_train} of omniglot lake)"),
                 cut_from={"arrays_sha256": meta.get("arrays_sha256"), "train": len(arrays["train_x"]),
                           "test": len(arrays["test_x"])},
                 license=LICENSE, labels=meta.get("labels"), resize=meta.get("resize"))
    return splits, mini


def process_omniglot_mini() -> tuple[dict[str, np.ndarray], dict]:
    """The embedded subset, verified (its arrays' sha256), with the embedded file as its source."""
    path = embedded_path()
    if not path.is_file():
        raise VaeasError(f"{path} is missing from the installed package; reinstall vaeas")
    arrays, meta = read_processed(path, NAME)
    meta = {k: v for k, v in meta.items() if k != "arrays_sha256"}
    meta["sources"] = [{"file": f"vaeas/data/embedded/{path.name}", "sha256": sha256_file(path), "official": False,
                        "note": f"a seeded subset of Omniglot embedded in vaeas ({LICENSE})"}, *meta["sources"]]
    return arrays, meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cut the embedded omniglot-mini from a processed Omniglot (lake) file.")
    parser.add_argument("source", help="processed Omniglot of the lake source (vaeas process omniglot)")
    parser.add_argument("out", help="where to write omniglot-mini.npz")
    args = parser.parse_args(argv)
    splits, meta = cut_omniglot_mini(*read_processed(Path(args.source), "omniglot"))
    write_processed(Path(args.out), splits, meta)
    print(f"{NAME}: wrote {args.out} ({sha256_file(Path(args.out))})")


if __name__ == "__main__":
    main()
