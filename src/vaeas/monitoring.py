"""Training-time monitoring (beyond the paper): the softmax estimates beside the Monte Carlo ones.

Every ``training.monitor_every`` epochs the training loop records, on a fixed seeded subset of
the training set (``training.monitor_size`` posteriors; 0 = all N) with the evaluation's fixed
binarization and one z ~ q(z|x) per sample:

* the softmax MI, MD and SC of the classifier as it is at that epoch (eqs. 5, 9, 10, 8);
* the Monte Carlo MI and MD over those posteriors (Hoffman & Johnson 2016);
* KL_train and the reconstruction term on the same z.

Written as ``mon_*`` columns of ``model.log.csv``, so a reviewer sees *when* the classifier
caught up with the encoder (docs/regime.md). The Monte Carlo MI over S < N posteriors is the MI
of an S-sample mixture (at most log S), so compare it with the softmax MI only at S = N.
"""

from __future__ import annotations

import torch

from .estimators import mc_estimates
from .passes import posteriors, training_set_pass

#: The columns added to model.log.csv when monitoring is on (empty on unmonitored epochs).
MONITOR_COLUMNS = ("mon_nll_train", "mon_kl", "mon_mi", "mon_md", "mon_sc", "mon_mi_mc", "mon_md_mc", "mon_size")


def monitor_subset(n_train: int, size: int, seed: int) -> torch.Tensor:
    """Sorted indices of the seeded monitoring subset (all N when ``size`` is 0 or ≥ N)."""
    if size <= 0 or size >= n_train:
        return torch.arange(n_train)
    return torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))[:size].sort().values


@torch.no_grad()
def monitor_row(model, x: torch.Tensor, labels: torch.Tensor | None, n_eff: int, seed: int,
                chunk: int = 1024, md_count: int | None = None) -> dict:
    """The ``mon_*`` values of one monitored epoch on the binarized subset ``x`` (labels alike).

    The softmax side reuses :func:`vaeas.passes.training_set_pass` (the evaluation's own
    pass, so monitoring and evaluation compute the same quantities the same way); the Monte Carlo
    side draws its own z from a generator seeded by ``seed``.
    """
    was_training = model.training
    model.eval()
    device = x.device
    soft = training_set_pass(model, x, labels, n_eff, torch.Generator(device=device).manual_seed(seed),
                             md_count=md_count)
    mu, logvar = posteriors(model, x)
    mc = mc_estimates(mu, logvar, torch.Generator(device=device).manual_seed(seed + 1), chunk=chunk)
    model.train(was_training)
    nan = float("nan")
    return {"mon_nll_train": soft["nll_train"], "mon_kl": soft["kl_train"],
            "mon_mi": soft.get("mi", nan), "mon_md": soft.get("md", nan), "mon_sc": soft.get("sc", nan),
            "mon_mi_mc": mc["mi"], "mon_md_mc": mc["md"], "mon_size": int(x.shape[0])}
