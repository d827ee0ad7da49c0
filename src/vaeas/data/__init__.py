"""Data acquisition: fetch, verify, process and load MNIST, Omniglot, the sklearn digits and the
embedded Omniglot subset (omniglot-mini).

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

The package, one module per seam: :mod:`~vaeas.data.catalog` (what each data set is: raw files,
hashes, sizes, paths), :mod:`~vaeas.data.verification` (hashes and the lock file),
:mod:`~vaeas.data.download` (sources and :func:`fetch`), :mod:`~vaeas.data.store` (the canonical
processed file and :func:`load`), :mod:`~vaeas.data.mnist`, :mod:`~vaeas.data.omniglot`,
:mod:`~vaeas.data.digits`, :mod:`~vaeas.data.omniglot_mini` (one processor each; the last two
embedded, nothing to fetch) and :mod:`~vaeas.data.processing`
(:func:`process`). Importing the package does not import torch (only :func:`load` and the
Omniglot resize need it).
"""

from .catalog import (  # noqa: F401
    DATASETS, EMBEDDED, TRAIN_SIZES, DOWNLOAD_TIMEOUT_S, KnownHash, RawFile, KNOWN_SHA256, MNIST_RECONSTRUCTION_NOTE,
    OMNIGLOT_NPZ_NOTE, MNIST_FILES, OMNIGLOT_PARTS, BURDA_URL, LAKE_URL, mnist_hosts,
    raw_alternatives, check_dataset, raw_dir, processed_path,
)
from .verification import (  # noqa: F401
    VerifiedFile, ChecksumMismatch, NotOnSource, md5_file, read_lock, pin_in_lock, verify,
    verified_present,
)
from .download import (  # noqa: F401
    locations, download_url, copy_local, download_verified, ensure_one_of, fetch,
)
from .store import (  # noqa: F401
    ARRAY_KEYS, ZIP_DATE, BINARIZATION_NOTE, write_canonical_npz, arrays_sha256,
    write_processed, read_processed, summary, Dataset, load, SUBSET_SEED, train_subset, rooted,
)
from .mnist import (  # noqa: F401
    MNIST_TRAIN, read_idx, process_mnist,
)
from .omniglot import (  # noqa: F401
    OMNIGLOT_SIZE, OMNIGLOT_DRAWERS, OMNIGLOT_TRAIN_DRAWERS, omniglot_zip_ink, omniglot_ink,
    area_resize, process_omniglot_lake, iwae_reshape, burda_labels, process_omniglot_burda,
)
from .digits import (  # noqa: F401
    DIGITS_SPLIT, process_digits,
)
from .omniglot_mini import (  # noqa: F401
    MINI_SPLIT, cut_omniglot_mini, process_omniglot_mini,
)
from .processing import (  # noqa: F401
    verified_raw_files, process, repair_processed, stamp_path,
)
