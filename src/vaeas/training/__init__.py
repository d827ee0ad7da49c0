"""Training of VAE (eq. 2) and VAE-AS (eq. 3), in three modules:

* :mod:`~vaeas.training.objective` — what is minimised: :class:`RunSpec`, :func:`loss_terms`
  (recon + α·MI + β·MD for θ, φ; SC for ω) and :func:`backward` (the gradient routing);
* :mod:`~vaeas.training.loop` — how: the one loop that :func:`train` (one run) and
  :func:`train_many` (K runs stacked) share, with bitwise resume from checkpoints;
* :mod:`~vaeas.training.checkpoint` — the files: checkpoints, final models and logs with their
  sha256, and :func:`load_model`.

Where tensors run (device, autocast, binarization) is :mod:`vaeas.runtime`; the names are
re-exported here for the callers that always found them in training.
"""

from ..runtime import autocast_context, binarize, eval_binarized, resolve_device, tune_allocator  # noqa: F401
from .checkpoint import (  # noqa: F401
    CHECKPOINT_FORMAT,
    MODEL_FORMAT,
    load_model,
    run_fingerprint,
    write_log_csv,
)
from .loop import build_model, make_optimizer, train, train_many  # noqa: F401
from .objective import (  # noqa: F401
    LOG_COLUMNS,
    LOGGED,
    OBJECTIVES,
    LossTerms,
    RunSpec,
    StackedSpec,
    backward,
    loss_terms,
    standard_normal,
)
