"""Training of any objective of :mod:`vaeas.objectives`, in three modules:

* :mod:`~vaeas.training.step` — one step: :func:`loss_terms` (the run's objective on a batch)
  and :func:`backward` (θ, φ get ∇loss; ω only ∇SC);
* :mod:`~vaeas.training.loop` — the loop of one run, :func:`train`, with bitwise resume from
  checkpoints;
* :mod:`~vaeas.training.checkpoint` — the files: checkpoints, final models and logs with their
  sha256, and :func:`load_model`.

Where tensors run (device, autocast, binarization) is :mod:`vaeas.runtime`; the names are
re-exported here for the callers that always found them in training.
"""

from ..objectives import LOG_COLUMNS, LOGGED, LossTerms, standard_normal  # noqa: F401
from ..run import RunSpec  # noqa: F401
from ..runtime import autocast_context, binarize, eval_binarized, resolve_device, tune_allocator  # noqa: F401
from .checkpoint import (  # noqa: F401
    CHECKPOINT_FORMAT,
    MODEL_FORMAT,
    load_model,
    run_record,
    write_log_csv,
)
from .loop import build_model, make_optimizer, train  # noqa: F401
from .step import backward, loss_terms  # noqa: F401
