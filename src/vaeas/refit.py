"""Classifier refit at evaluation (beyond the paper): is the softmax estimate biased, or did the
classifier lag behind the encoder?

During training s_ω chases a moving encoder and sees each training sample's label once per epoch
(eq. 8), so the MI / MD it reports at the last epoch (eqs. 5, 9, 10) may describe a classifier
that has not "gradually converged" to q_φ(x|z) (§3.2). Here the encoder is frozen, and a
classifier — a fresh one, or a copy of the trained ω — is trained to convergence on z ~ q_φ(z|x_i)
of the final posteriors, with a fresh z every pass. Its estimates are then compared with the
training-time ones and with the Monte Carlo ones:

* refit ≈ Monte Carlo, training-time far off  → the classifier lagged;
* refit far from Monte Carlo too               → the softmax estimator itself is off (capacity,
  or shared labels: see :func:`marginal_kl_gap`).

Pure functions of tensors (μ, log σ², labels) plus one small training loop; no file I/O.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from .estimators import (kl_standard_normal, marginal_kl_softmax, mutual_information_softmax,
                         softmax_cross_entropy)
from .models import Classifier


@dataclass(frozen=True)
class RefitResult:
    """Softmax estimates of the refit classifier on one fixed draw z_i ~ q(z|x_i)."""

    mi: float          # eqs. 5, 9 with the refit classifier
    md: float          # eq. 10 with the refit classifier's SC
    sc: float          # eq. 8
    epochs: int        # passes over the N posteriors actually run
    converged: bool    # SC changed by < tol over the last `patience` passes


def _draw(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    eps = torch.randn(mu.shape, generator=generator, device=generator.device).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


@torch.no_grad()
def softmax_estimates(classifier: torch.nn.Module, mu: torch.Tensor, logvar: torch.Tensor,
                      labels: torch.Tensor, n_eff: int, generator: torch.Generator,
                      batch: int = 1000, md_count: int | None = None) -> tuple[float, float, float]:
    """(MI, MD, SC) of ``classifier`` on one draw z_i ~ q(z|x_i) per posterior (eqs. 5, 9, 10, 8);
    MD subtracts log ``md_count`` (default ``n_eff``, D5)."""
    z = _draw(mu, logvar, generator)
    logits = torch.cat([torch.cat(classifier(z[i:i + batch]), -1) for i in range(0, z.shape[0], batch)])
    heads = labels.shape[1] if labels.dim() == 2 else 1
    per_head = list(logits.split(logits.shape[-1] // heads, dim=-1))
    sc = softmax_cross_entropy(per_head, labels)
    mi = mutual_information_softmax(per_head, n_eff)
    md = marginal_kl_softmax(kl_standard_normal(mu, logvar), sc, md_count or n_eff)
    return float(mi), float(md), float(sc.mean())


def refit_classifier(classifier: torch.nn.Module, mu: torch.Tensor, logvar: torch.Tensor,
                     labels: torch.Tensor, *, max_epochs: int, lr: float, batch: int,
                     generator: torch.Generator, tol: float = 1e-3, patience: int = 3
                     ) -> tuple[torch.nn.Module, int, bool]:
    """Train ``classifier`` (modified in place and returned) on eq. 8 with the encoder frozen.

    Each pass draws a fresh z_i ~ q(z|x_i) for all N posteriors and visits them in a seeded random
    order, ``batch`` at a time, with Adam at ``lr``. Stops after ``max_epochs`` passes, or earlier
    when the pass-mean SC moved by less than ``tol`` nats for ``patience`` consecutive passes.
    Returns (classifier, passes run, converged).
    """
    opt = torch.optim.Adam(classifier.parameters(), lr=lr)
    n = mu.shape[0]
    history: list[float] = []
    for epoch in range(1, max_epochs + 1):
        z = _draw(mu, logvar, generator)
        perm = torch.randperm(n, generator=generator, device=generator.device).to(mu.device)
        total = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            loss = softmax_cross_entropy(classifier(z[idx]), labels[idx]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        history.append(total / n)
        recent = history[-(patience + 1):]
        if len(recent) == patience + 1 and max(recent) - min(recent) < tol:
            return classifier, epoch, True
    return classifier, max_epochs, False


def refit(trained: Classifier | None, fresh: Classifier, mu: torch.Tensor, logvar: torch.Tensor,
          labels: torch.Tensor, n_eff: int, *, from_trained: bool, max_epochs: int, lr: float,
          batch: int, seed: int, md_count: int | None = None) -> RefitResult:
    """Refit a classifier on the frozen posteriors (mu, logvar) and return its estimates.

    ``from_trained`` starts from a copy of the trained ω (``trained``), else from ``fresh``
    (an untrained :class:`~vaeas.models.Classifier` of the same shape). Training and the final
    estimate use generators seeded by ``seed`` (different streams), so the result is repeatable.
    """
    start = copy.deepcopy(trained) if from_trained and trained is not None else fresh
    start = start.to(mu.device).train()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    with torch.enable_grad():
        clf, epochs, converged = refit_classifier(start, mu.detach(), logvar.detach(), labels,
                                                  max_epochs=max_epochs, lr=lr, batch=batch,
                                                  generator=gen)
    clf.eval()
    mi, md, sc = softmax_estimates(clf, mu, logvar, labels, n_eff,
                                   torch.Generator(device="cpu").manual_seed(seed + 1), md_count=md_count)
    return RefitResult(mi=mi, md=md, sc=sc, epochs=epochs, converged=converged)


def marginal_kl_gap(n_samples: int, n_eff: int) -> float:
    """log N − log N_eff: how far eq. 10's two candidate constants lie apart (0 for one label per
    sample). With V shared labels and a Bayes-optimal classifier, SC = H(e|z) and

        MD(c) − MD_true = log N − c − H(x | z, e),     0 ≤ H(x | z, e) ≤ log(N / V),

    so c = log N is exact when the posteriors sharing a label are separated (H(x|z,e) = 0, the
    regime of the paper's tables) and c = log V when z carries no information (H(x|z,e) =
    log N/V). docs/decisions.md D5 records which one the Monte Carlo estimates support.
    """
    return math.log(n_samples) - math.log(n_eff)
